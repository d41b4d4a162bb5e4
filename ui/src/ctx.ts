// What every view gets from the shell.
import type { AppInfo } from "./bindings/AppInfo";
import type { Status } from "./bindings/Status";

export type ViewName = "overview" | "queue" | "failures" | "conflicts" | "history" | "settings";

export interface Ctx {
  status(): Status;
  info(): AppInfo | null;
  go(view: ViewName): void;
  /** A line at the bottom for a few seconds (`ms`: longer, for a message to copy from). */
  toast(message: string, kind?: "ok" | "error", ms?: number): void;
}

export interface View {
  el: HTMLElement;
  /** Called when the engine's status or events say the data may have changed. */
  refresh(): void;
  dispose?(): void;
  /** Settles when the first load is shown (the shell refocuses after it). */
  ready?: Promise<void>;
}

export const EMPTY_STATUS: Status = {
  state: "idle",
  pending: 0,
  in_flight: 0,
  failed: 0,
  conflicts: 0,
  last_sync_at: null,
  last_error: null,
  problem: null,
  next_retry_at: null,
  progress: null,
  server: null,
  user: null,
  paused: false,
};
