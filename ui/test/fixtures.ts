import type { ConflictView } from "../src/bindings/ConflictView";
import type { QueueItem } from "../src/bindings/QueueItem";
import type { Status } from "../src/bindings/Status";
import { EMPTY_STATUS } from "../src/ctx";

export function status(over: Partial<Status> = {}): Status {
  return { ...EMPTY_STATUS, ...over };
}

export function item(seq: number, over: Partial<QueueItem> = {}): QueueItem {
  return {
    mutation_id: `m-${seq}`,
    seq,
    entity: "activity",
    record_id: `act-${seq}`,
    label: `Activity ${seq}`,
    op: "upsert",
    state: "pending",
    attempts: 0,
    next_attempt_at: null,
    last_error: null,
    edited_at: Date.now() - 60_000,
    payload: { title: `t${seq}` },
    ...over,
  };
}

/** A fake outbox of `n` items answering keyset pages like the engine does. */
export function outbox(n: number) {
  const calls: { filter: unknown; after: number | null; limit: number }[] = [];
  const page = async (filter: unknown, after: number | null, limit: number) => {
    calls.push({ filter, after, limit });
    const start = after === null ? 1 : after + 1;
    const out: QueueItem[] = [];
    for (let s = start; s <= n && out.length < limit; s++) out.push(item(s));
    return out;
  };
  return { page, calls };
}

export function conflict(over: Partial<ConflictView> = {}): ConflictView {
  return {
    id: "c1",
    entity: "activity",
    record_id: "act-001",
    label: "Walk",
    base: { title: "Walk", hours: 1, notes: "", mentor: "Aisha" },
    local: { title: "Walk", hours: 3, notes: "Two joined", mentor: "Aisha" },
    remote: { title: "Walk (park)", hours: 2, notes: "", mentor: "Aisha" },
    remote_version: 2,
    local_edited_at: Date.now() - 5000,
    remote_edited_at: Date.now() - 4000,
    remote_edited_by: "sam",
    differing_fields: ["hours", "notes", "title"],
    detected_at: Date.now(),
    ...over,
  };
}
