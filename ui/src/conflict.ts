// The conflict view's logic: which fields to show, which differ, and the
// Resolution a set of per-field picks turns into.
import type { ConflictView } from "./bindings/ConflictView";
import type { Resolution } from "./bindings/Resolution";
import type { Side } from "./bindings/Side";

export interface FieldRow {
  field: string;
  base: unknown;
  local: unknown;
  remote: unknown;
  differs: boolean;
  /** Only this device changed it since the base (a pick is suggested, not needed). */
  changedHere: boolean;
  changedThere: boolean;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** One row per field of base ∪ local ∪ remote; differing fields first. */
export function fieldRows(c: ConflictView): FieldRow[] {
  const names = new Set<string>();
  for (const side of [c.base, c.local, c.remote]) {
    if (side) Object.keys(side).forEach((k) => names.add(k));
  }
  const differing = new Set(c.differing_fields);
  const rows = [...names].map((field) => {
    const base = c.base ? c.base[field] : undefined;
    const local = c.local ? c.local[field] : undefined;
    const remote = c.remote ? c.remote[field] : undefined;
    return {
      field,
      base,
      local,
      remote,
      differs: differing.has(field) || !same(local, remote),
      changedHere: !same(local, base),
      changedThere: !same(remote, base),
    };
  });
  rows.sort((a, b) => Number(b.differs) - Number(a.differs) || a.field.localeCompare(b.field));
  return rows;
}

/** A delete on either side can only be settled whole: keep mine or keep theirs. */
export function isDeleteConflict(c: ConflictView): boolean {
  return c.local === null || c.remote === null;
}

/**
 * Resolution from per-field picks; every differing field must be picked.
 * Returns null while a differing field is still unpicked.
 */
export function resolutionFromPicks(c: ConflictView, picks: Record<string, Side>): Resolution | null {
  if (isDeleteConflict(c)) return null;
  const fields: { [key in string]?: Side } = {};
  for (const row of fieldRows(c)) {
    if (!row.differs) continue;
    const side = picks[row.field];
    if (!side) return null;
    fields[row.field] = side;
  }
  // Unlisted fields are equal on both sides; "local" just makes the request complete.
  return { keep: "local", fields };
}

export function keep(side: Side): Resolution {
  return { keep: side, fields: {} };
}
