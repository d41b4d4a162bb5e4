// The window with its commands mocked, for the accessibility check and the
// screenshots (a11y/run.mjs): realistic data in every view, nothing real
// behind it. `?lang=nb` picks the language AppInfo reports.
import { mockIPC } from "@tauri-apps/api/mocks";
import type { ConflictView } from "../src/bindings/ConflictView";
import type { QueueItem } from "../src/bindings/QueueItem";
import type { ResolutionEntry } from "../src/bindings/ResolutionEntry";
import type { Settings } from "../src/bindings/Settings";
import type { Status } from "../src/bindings/Status";
import type { SyncRun } from "../src/bindings/SyncRun";

const lang = new URLSearchParams(location.search).get("lang") === "nb" ? "nb" : "en";
const now = Date.now();
const min = 60_000;

const labels = [
  "Walk & talk in the park", "Homework club", "Football practice", "Board game evening", "Cooking together",
  "Library visit", "Swimming lessons", "Art workshop", "Museum trip", "Choir rehearsal", "Bike repair café", "Quiz night",
];

function queued(i: number, over: Partial<QueueItem> = {}): QueueItem {
  return {
    mutation_id: `m-${i}`, seq: i, entity: "activity", record_id: `act-${String(i + 10).padStart(3, "0")}`,
    label: labels[i % labels.length], op: "upsert", state: "pending", attempts: 0, next_attempt_at: null,
    last_error: null, edited_at: now - (40 - i) * min, payload: { title: labels[i % labels.length] }, ...over,
  };
}

const failed = queued(13, {
  mutation_id: "m-13", entity: "expense", record_id: "exp-013", label: "Taxi to the hospital visit", state: "failed", attempts: 1,
  last_error: "validation: expense/exp-013 breaks this server's rules for expense: amount: -150 is less than or equal to the minimum of 0 (rule: exclusiveMinimum)",
  payload: { description: "Taxi to the hospital visit", amount: -150, receipt: true, tags: ["transport"] },
});

const queue: QueueItem[] = [
  ...Array.from({ length: 12 }, (_, i) => queued(i + 1, i < 3 ? {
    attempts: 3 - i, last_error: "error sending request: tcp connect error: Connection refused (os error 111)", next_attempt_at: now + 4000 + i * 1000,
  } : {})),
  failed,
  queued(14, { state: "conflict", record_id: "act-001", label: "Walk & talk" }),
  queued(15, { state: "conflict", record_id: "act-002", label: "Quiz night" }),
];

const conflicts: ConflictView[] = [
  {
    id: "c1", entity: "activity", record_id: "act-001", label: "Walk & talk",
    base: { title: "Walk & talk", hours: 1, notes: "", mentor: "Aisha" },
    local: { title: "Walk & talk", hours: 3, notes: "Two new participants joined", mentor: "Aisha" },
    remote: { title: "Walk & talk (park)", hours: 2, notes: "", mentor: "Aisha" },
    remote_version: 4, local_edited_at: now - 50 * min, remote_edited_at: now - 20 * min, remote_edited_by: "sam",
    differing_fields: ["hours", "notes", "title"], detected_at: now - 5 * min,
  },
  {
    id: "c2", entity: "activity", record_id: "act-002", label: "Quiz night",
    base: { title: "Quiz night", participants: 5, notes: "", date: "2025-03-03" },
    local: { title: "Quiz night", participants: 6, notes: "Rain: moved indoors", date: "2025-03-03" },
    remote: { title: "Quiz night", participants: 7, notes: "", date: "2025-03-04" },
    remote_version: 2, local_edited_at: now - 45 * min, remote_edited_at: now - 15 * min, remote_edited_by: "kari",
    differing_fields: ["participants", "notes", "date"], detected_at: now - 5 * min,
  },
];

const history: ResolutionEntry[] = [
  {
    id: 12, entity: "expense", record_id: "exp-003", label: "Bus tickets for the museum trip", policy: "lww", winner: "remote",
    reason: "remote edit made later: 09:14 vs 08:02", local: { description: "Bus tickets for the museum trip", amount: 180 },
    remote: { description: "Bus tickets for the museum trip", amount: 175 }, result: { description: "Bus tickets for the museum trip", amount: 175 },
    superseded: ["m-90"], at: now - 3 * 60 * min, restorable: true, conflict_id: null, upload_mutation_id: null,
  },
  {
    id: 11, entity: "contact", record_id: "con-001", label: "Ingrid Hansen", policy: "merge", winner: "merged",
    reason: "different fields changed on each side", local: { name: "Ingrid Hansen", phone: "+47 912 34 567" },
    remote: { name: "Ingrid Hansen", email: "ingrid@example.org" }, result: { name: "Ingrid Hansen", phone: "+47 912 34 567", email: "ingrid@example.org" },
    superseded: [], at: now - 26 * 60 * min, restorable: false, conflict_id: null, upload_mutation_id: "m-91",
  },
];

const runs: SyncRun[] = [
  { started_at: now - 5 * min - 2500, finished_at: now - 5 * min, uploaded: 0, downloaded: 0, failed: 0, conflicts: 0,
    error: "error sending request for url (https://sync.example.org/v1/push): error trying to connect: dns error: failed to lookup address information", problem: "unreachable" },
  { started_at: now - 65 * min - 3100, finished_at: now - 65 * min, uploaded: 46, downloaded: 3, failed: 1, conflicts: 2, error: null, problem: null },
  { started_at: now - 125 * min - 900, finished_at: now - 125 * min, uploaded: 2, downloaded: 12, failed: 0, conflicts: 0, error: null, problem: null },
];

const status: Status = {
  state: "offline", pending: 12, in_flight: 0, failed: 1, conflicts: 2, last_sync_at: now - 65 * min,
  last_error: "error sending request for url (https://sync.example.org/v1/push): error trying to connect: tcp connect error: Connection refused (os error 111)",
  problem: "unreachable", next_retry_at: now + 4000, progress: null, server: "https://sync.example.org", user: "mentor", paused: false,
};

const settings: Settings = {
  server: "https://sync.example.org", user: "mentor", autostart: true, notifications: true, pull_interval_secs: 60,
  policies: [
    { entity: "activity", policy: "manual", title_field: null },
    { entity: "contact", policy: "merge", title_field: "name" },
    { entity: "expense", policy: "lww", title_field: "description" },
  ],
  language: lang,
};

mockIPC((cmd, args) => {
  const a = (args ?? {}) as Record<string, unknown>;
  switch (cmd) {
    case "app_info": return { version: "0.2.0", demo: false, data_dir: "/home/ann/.local/share/ferry", locale: lang };
    case "status": return status;
    case "queue_page": {
      const after = (a.after as number | null) ?? 0;
      return queue.filter((q) => (!a.filter || q.state === a.filter) && q.seq > after).slice(0, a.limit as number);
    }
    case "conflicts": return conflicts;
    case "history": return a.before === null ? history : [];
    case "sync_runs": return runs;
    case "settings": return settings;
    case "save_diagnostics": return "/home/ann/Downloads/ferry-diagnostics-20260104-101500.tar.gz";
    default: return null;
  }
}, { shouldMockEvents: true });
