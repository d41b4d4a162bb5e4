// Formatting for people, in the current language (./i18n): numbers, times
// and dates through Intl with the locale (nb-NO: 24-hour clock), the words
// from the .ftl files. Mirrors the engine's wording ("synced 2 min ago").
import type { Problem } from "./bindings/Problem";
import type { Status } from "./bindings/Status";
import type { SyncState } from "./bindings/SyncState";
import { intlTag, t } from "./i18n";

export function number(n: number): string {
  return new Intl.NumberFormat(intlTag()).format(n);
}

export function ago(ms: number): string {
  const s = Math.floor(Math.max(0, ms) / 1000);
  if (s < 5) return t("ago-now");
  if (s < 60) return t("ago-s", { n: s });
  if (s < 3600) return t("ago-min", { n: Math.floor(s / 60) });
  if (s < 86400) return t("ago-h", { n: Math.floor(s / 3600) });
  return t("ago-d", { n: Math.floor(s / 86400) });
}

export function inFuture(ms: number): string {
  const s = Math.ceil(Math.max(0, ms) / 1000);
  if (s < 1) return t("in-now");
  if (s < 60) return t("in-s", { n: s });
  if (s < 3600) return t("in-min", { n: Math.ceil(s / 60) });
  return t("in-h", { n: Math.round(s / 3600) });
}

/** A time today ("14:05:09"), or a date and time on other days. */
export function clock(at: number, now = new Date()): string {
  const d = new Date(at);
  const tag = intlTag();
  const time = new Intl.DateTimeFormat(tag, { hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(d);
  if (d.toDateString() === now.toDateString()) return time;
  return `${new Intl.DateTimeFormat(tag, { dateStyle: "short" }).format(d)} ${time}`;
}

/** Date and time in full, for a tooltip. */
export function dateTime(at: number): string {
  return new Intl.DateTimeFormat(intlTag(), { dateStyle: "medium", timeStyle: "medium" }).format(new Date(at));
}

export function stateWord(s: SyncState): string {
  return t(`state-${s}`);
}

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
  if (s.state !== "idle") return stateWord(s.state);
  if (s.paused) return stateWord("paused");
  if (s.failed > 0 || s.conflicts > 0) return t("state-needs-decision");
  if (s.pending + s.in_flight > 0) return t("state-waiting");
  return stateWord("idle");
}

/** The kinds of trouble Ferry retries by itself. */
const RETRIED: Problem[] = ["unreachable", "server-error", "rate-limited", "bad-answer", "other"];

/** A failure in plain words: what happened, then what Ferry will do (with
 * the retry time when there is one) or what the user can do. The technical
 * text (`last_error`) is for a "Details" disclosure, not for this. */
export function problemWords(problem: Problem | null, nextRetryAt: number | null, now = Date.now()): string {
  const p: Problem = problem ?? "other";
  const what = t(`problem-${p}`);
  const next = nextRetryAt !== null && RETRIED.includes(p)
    ? t("problem-retry", { when: inFuture(nextRetryAt - now) })
    : t(`problem-${p}-next`);
  return `${what} ${next}`;
}

export function value(v: unknown): string {
  if (v === undefined) return "—";
  if (v === null) return t("value-null");
  if (v === "") return t("value-empty");
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}
