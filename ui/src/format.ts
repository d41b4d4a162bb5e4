// Formatting for people. Mirrors the engine's wording ("synced 2 min ago").
import type { Status } from "./bindings/Status";
import type { SyncState } from "./bindings/SyncState";

export function ago(ms: number): string {
  const s = Math.floor(Math.max(0, ms) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function inFuture(ms: number): string {
  const s = Math.ceil(Math.max(0, ms) / 1000);
  if (s < 1) return "now";
  if (s < 60) return `in ${s} s`;
  if (s < 3600) return `in ${Math.ceil(s / 60)} min`;
  return `in ${Math.round(s / 3600)} h`;
}

export function clock(at: number): string {
  const d = new Date(at);
  const today = new Date();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.toLocaleDateString()} ${time}`;
}

export const STATE_WORDS: Record<SyncState, string> = {
  idle: "Up to date",
  syncing: "Syncing",
  offline: "Offline",
  paused: "Paused",
  error: "Error",
  stalled: "Stalled",
  "needs-sign-in": "Sign-in needed",
};

/** The tray's five pictures, by the same precedence as crates/ferry-desktop/src/tray.rs
 * (test/pictures.json, written by the tray's tests, keeps the two in step). */
export type Picture = "synced" | "syncing" | "offline" | "paused" | "attention";

export function picture(s: Status): Picture {
  if (s.failed > 0 || s.conflicts > 0 || s.state === "needs-sign-in" || s.state === "error" || s.state === "stalled") {
    return "attention";
  }
  if (s.state === "offline") return "offline";
  if (s.state === "syncing") return "syncing";
  if (s.paused || s.state === "paused") return "paused";
  if (s.pending + s.in_flight > 0) return "syncing";
  return "synced";
}

/** The overview's headline: the state's word, except that an idle engine
 * is "Up to date" only when nothing waits, failed or is in conflict (the
 * tray's picture and status line agree). */
export function headline(s: Status): string {
  if (s.state !== "idle") return STATE_WORDS[s.state];
  if (s.paused) return STATE_WORDS.paused;
  if (s.failed > 0 || s.conflicts > 0) return "Needs your decision";
  if (s.pending + s.in_flight > 0) return "Waiting to upload";
  return STATE_WORDS.idle;
}

export function plural(n: number, one: string, many: string): string {
  return n === 1 ? `1 ${one}` : `${n.toLocaleString()} ${many}`;
}

export function value(v: unknown): string {
  if (v === undefined) return "—";
  if (v === null) return "null";
  if (v === "") return "(empty)";
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}
