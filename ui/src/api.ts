// Typed wrappers over the app's commands (src-tauri/src/commands.rs). The
// types come from ./bindings, generated from the Rust types by ts-rs.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { AppInfo } from "./bindings/AppInfo";
import type { ConflictPolicy } from "./bindings/ConflictPolicy";
import type { ConflictView } from "./bindings/ConflictView";
import type { EngineEvent } from "./bindings/EngineEvent";
import type { MutationState } from "./bindings/MutationState";
import type { QueueItem } from "./bindings/QueueItem";
import type { Resolution } from "./bindings/Resolution";
import type { ResolutionEntry } from "./bindings/ResolutionEntry";
import type { Settings } from "./bindings/Settings";
import type { Side } from "./bindings/Side";
import type { Status } from "./bindings/Status";
import type { SyncRun } from "./bindings/SyncRun";

export const EV_STATUS = "ferry://status";
export const EV_ENGINE = "ferry://event";
export const EV_SETTINGS = "ferry://settings";

export const api = {
  appInfo: () => invoke<AppInfo>("app_info"),
  status: () => invoke<Status>("status"),
  queuePage: (filter: MutationState | null, after: number | null, limit: number) =>
    invoke<QueueItem[]>("queue_page", { filter, after, limit }),
  conflicts: (limit: number) => invoke<ConflictView[]>("conflicts", { limit }),
  resolve: (conflictId: string, resolution: Resolution) => invoke<void>("resolve", { conflictId, resolution }),
  resolveAll: (keep: Side, ids: string[] | null) => invoke<number>("resolve_all", { keep, ids }),
  history: (before: number | null, limit: number) => invoke<ResolutionEntry[]>("history", { before, limit }),
  syncRuns: (limit = 100) => invoke<SyncRun[]>("sync_runs", { limit }),
  restore: (historyId: number) => invoke<void>("restore", { historyId }),
  retry: (mutationId: string) => invoke<void>("retry", { mutationId }),
  retryAll: () => invoke<void>("retry_all"),
  correct: (mutationId: string, fields: Record<string, unknown>) => invoke<void>("correct", { mutationId, fields }),
  discard: (mutationId: string) => invoke<void>("discard", { mutationId }),
  syncNow: () => invoke<void>("sync_now"),
  setPaused: (paused: boolean) => invoke<void>("set_paused", { paused }),
  settings: () => invoke<Settings>("settings"),
  setServer: (url: string) => invoke<boolean>("set_server", { url }),
  setPullInterval: (secs: number) => invoke<void>("set_pull_interval", { secs }),
  setNotifications: (on: boolean) => invoke<void>("set_notifications", { on }),
  setAutostart: (on: boolean) => invoke<boolean>("set_autostart", { on }),
  setPolicy: (entity: string, policy: ConflictPolicy) => invoke<void>("set_policy", { entity, policy }),
  login: (user: string, password: string) => invoke<void>("login", { user, password }),
  logout: () => invoke<void>("logout"),
  setLanguage: (language: string) => invoke<void>("set_language", { language }),
  setTitleField: (entity: string, field: string | null) => invoke<void>("set_title_field", { entity, field }),
  saveDiagnostics: (includeRecords: boolean) => invoke<string>("save_diagnostics", { includeRecords }),
};

export function onStatus(f: (s: Status) => void): Promise<UnlistenFn> {
  return listen<Status>(EV_STATUS, (e) => f(e.payload));
}
export function onEngineEvent(f: (e: EngineEvent) => void): Promise<UnlistenFn> {
  return listen<EngineEvent>(EV_ENGINE, (e) => f(e.payload));
}
export function onSettingsChanged(f: () => void): Promise<UnlistenFn> {
  return listen(EV_SETTINGS, () => f());
}

/** Error text for people; commands reject with the engine's message. */
export function errorText(e: unknown): string {
  if (typeof e === "string") return e;
  if (e instanceof Error) return e.message;
  return JSON.stringify(e);
}
