// Plain words, labels, the language switch, keyboard focus and names for
// screen readers, view by view.
import { clearMocks } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AppInfo } from "../src/bindings/AppInfo";
import type { SyncRun } from "../src/bindings/SyncRun";
import { setLocale } from "../src/i18n";
import { startApp } from "../src/main";
import { conflicts } from "../src/views/conflicts";
import { failures } from "../src/views/failures";
import { history } from "../src/views/history";
import { overview } from "../src/views/overview";
import { queue } from "../src/views/queue";
import { settings } from "../src/views/settings";
import { conflict, item, status } from "./fixtures";
import { byTestId, ctx, ipc, sent, settle } from "./harness";

beforeEach(() => { document.body.innerHTML = ""; });
afterEach(() => { clearMocks(); setLocale("en"); });

const SHELL = `<nav id="nav" aria-label="Views"><span class="dot" id="brand-dot"></span>
  <button data-view="overview" data-testid="nav-overview"><span data-i18n="nav-overview">Overview</span></button>
  <button data-view="queue" data-testid="nav-queue"><span data-i18n="nav-queue">Queue</span> <span data-count="waiting"></span></button>
  <button data-view="settings" data-testid="nav-settings"><span data-i18n="nav-settings">Settings</span></button>
  <div id="nav-foot"></div></nav><main id="view" tabindex="-1"></main>`;

function info(locale: string): AppInfo {
  return { version: "0.2.0", demo: false, data_dir: "/tmp/x", locale };
}

const prefs = (language: string) => ({
  server: "https://s", user: "ann", autostart: false, notifications: true, pull_interval_secs: 60,
  policies: [{ entity: "activity", policy: "lww", title_field: null }], language,
});

describe("the shell", () => {
  it("marks the current view, and moves the focus to its heading on a switch", async () => {
    document.body.innerHTML = SHELL;
    ipc({ app_info: () => info("en"), status: () => status({ server: "https://s" }), queue_page: () => [item(1)], settings: () => prefs("system") }, true);
    const app = startApp(document);
    await app.ready;
    await settle();
    const nav = (v: string) => document.querySelector<HTMLButtonElement>(`[data-testid=nav-${v}]`)!;
    expect(nav("overview").getAttribute("aria-current")).toBe("page");
    nav("queue").focus();
    nav("queue").click();
    await settle();
    expect(nav("queue").getAttribute("aria-current")).toBe("page");
    expect(nav("overview").hasAttribute("aria-current")).toBe(false);
    const h1 = document.querySelector<HTMLElement>("#view h1")!;
    expect(h1.textContent).toBe("Queue");
    expect(document.activeElement).toBe(h1);
    expect(h1.tabIndex).toBe(-1);
    // No positive tabindex anywhere.
    expect([...document.querySelectorAll<HTMLElement>("[tabindex]")].filter((e) => e.tabIndex > 0)).toEqual([]);
  });

  it("switches to Norwegian when the settings change: words, 24-hour times, <html lang>", async () => {
    document.body.innerHTML = SHELL;
    let locale = "en";
    const syncedAt = new Date(2026, 0, 5, 16, 4, 0).getTime();
    ipc({
      app_info: () => info(locale),
      status: () => status({ server: "https://s", last_sync_at: Date.now() - 125_000 }),
      settings: () => prefs(locale),
      set_language: (a) => { locale = a.language as string; return null; },
      history: () => [],
      sync_runs: (): SyncRun[] => [{ started_at: syncedAt - 2500, finished_at: syncedAt, uploaded: 1234, downloaded: 0, failed: 0, conflicts: 0, error: null, problem: null }],
    }, true);
    const app = startApp(document);
    await app.ready;
    await settle();
    expect(document.documentElement.lang).toBe("en");
    expect(document.querySelector("[data-testid=state-word]")!.textContent).toBe("Up to date");
    expect(document.querySelector("[data-testid=last-sync]")!.textContent).toContain("Last synced 2 min ago");

    // The user picks Norsk bokmål; the app pushes settings-changed.
    document.querySelector<HTMLButtonElement>("[data-testid=nav-settings]")!.click();
    await settle();
    const lang = document.querySelector<HTMLSelectElement>("[data-testid=language]")!;
    expect(lang.value).toBe("en");
    lang.focus();
    lang.value = "nb";
    lang.dispatchEvent(new Event("change"));
    await settle();
    expect(sent("set_language")).toEqual([{ language: "nb" }]);
    await emit("ferry://settings", null);
    await settle();
    expect(document.documentElement.lang).toBe("nb");
    expect(document.querySelector("[data-testid=nav-queue]")!.textContent).toContain("Kø");
    expect(document.querySelector("#view h1")!.textContent).toBe("Innstillinger");
    // The focus stays on the language choice across the re-render.
    expect(document.activeElement).toBe(document.querySelector("[data-testid=language]"));

    app.ctx.go("overview");
    expect(document.querySelector("[data-testid=state-word]")!.textContent).toBe("Oppdatert");
    expect(document.querySelector("[data-testid=last-sync]")!.textContent).toContain("Sist synkronisert for 2 min siden");
    expect(document.querySelector("[data-testid=sync-now]")!.textContent).toBe("Synkroniser nå");

    app.ctx.go("history");
    await settle();
    const row = document.querySelector("[data-testid=sync-runs] tbody tr")!;
    expect(row.children[0].textContent).toMatch(/16:04:00$/);
    expect(row.children[2].textContent!.replace(/\s/g, " ")).toBe("1 234");
  });
});

describe("plain words, details on demand", () => {
  it("a refused command's toast says first that it did not work", async () => {
    document.body.innerHTML = SHELL;
    ipc({ app_info: () => info("nb"), status: () => status({ server: "https://s" }), sync_now: () => { throw "engine is shutting down"; } }, true);
    const app = startApp(document);
    await app.ready;
    document.querySelector<HTMLElement>("[data-testid=sync-now]")!.click();
    await settle();
    const toast = document.querySelector("[data-testid=toast]")!;
    expect(toast.textContent).toBe("Det gikk ikke: engine is shutting down");
    expect(toast.getAttribute("role")).toBe("status");
  });

  it("the overview says what happened and when Ferry tries again; the engine's text is behind Details", () => {
    const s = status({
      state: "offline", server: "https://s", problem: "unreachable", next_retry_at: Date.now() + 3500,
      last_error: "error sending request for url (https://s/v1/push): tcp connect error: Connection refused (os error 111)",
    });
    const v = overview(ctx({ status: () => s }));
    const box = byTestId(v.el, "last-error")[0];
    expect(byTestId(box, "problem")[0].textContent).toBe("Can't reach the server. Ferry tries again in 4 s.");
    const det = box.querySelector("details")!;
    expect(det.open).toBe(false);
    expect(det.querySelector("summary")!.textContent).toBe("Details");
    expect(det.querySelector("pre")!.textContent).toContain("Connection refused");
    expect(byTestId(box, "problem")[0].textContent).not.toContain("os error");
  });

  it("the same in Norwegian, and a Details disclosure left open stays open on the next push", () => {
    setLocale("nb");
    let s = status({ state: "error", server: "https://s", problem: "server-error", next_retry_at: Date.now() + 60_000, last_error: "HTTP 503" });
    const v = overview(ctx({ status: () => s }));
    expect(byTestId(v.el, "problem")[0].textContent).toBe("Serveren har et problem akkurat nå. Ferry prøver igjen om 1 min.");
    expect(v.el.querySelector("details summary")!.textContent).toBe("Detaljer");
    v.el.querySelector("details")!.open = true;
    s = { ...s, next_retry_at: Date.now() + 30_000 };
    v.refresh();
    expect(v.el.querySelector("details")!.open).toBe(true);
  });

  it("an expired sign-in is said once, with the engine's text behind Details", () => {
    const v = overview(ctx({ status: () => status({ state: "needs-sign-in", server: "https://s", problem: "sign-in-needed", last_error: "refresh token rejected (401)" }) }));
    expect(v.el.textContent!.match(/sign in again/gi)).toHaveLength(1);
    const box = byTestId(v.el, "last-error")[0];
    expect(box.textContent).toContain("Your sign-in expired");
    expect(box.querySelector("details pre")!.textContent).toBe("refresh token rejected (401)");
  });

  it("a failed sync run in History: plain words, the error behind Details", async () => {
    ipc({
      history: () => [],
      sync_runs: (): SyncRun[] => [{ started_at: 1000, finished_at: 3000, uploaded: 0, downloaded: 0, failed: 0, conflicts: 0, error: "dns error: failed to lookup address", problem: "unreachable" }],
    });
    const v = history(ctx());
    document.body.append(v.el);
    await settle();
    const cell = byTestId(v.el, "run-problem")[0];
    expect(cell.querySelector("span")!.textContent).toBe("Can't reach the server. Ferry keeps your changes and tries again by itself.");
    expect(cell.querySelector("details pre")!.textContent).toBe("dns error: failed to lookup address");
  });

  it("a waiting queue row says when Ferry tries again; the engine's text is the cell's title", async () => {
    const now = Date.now();
    ipc({ queue_page: () => [item(1, { attempts: 2, last_error: "timeout", next_attempt_at: now + 8000 }), item(2, { state: "failed", last_error: "amount: too small" })] });
    const v = queue(ctx());
    document.body.append(v.el);
    await settle();
    const notes = byTestId(v.el, "queue-note");
    expect(notes[0].textContent).toMatch(/^Tries again in [78] s$/);
    expect(notes[0].title).toBe("timeout");
    expect(notes[1].textContent).toBe("Refused: see Failures");
  });

  it("a failed change gives the server's reason and what the user can do", async () => {
    ipc({ queue_page: () => [item(3, { state: "failed", last_error: "amount must be positive" })] });
    const v = failures(ctx());
    document.body.append(v.el);
    await settle();
    const card = byTestId(v.el, "failure")[0];
    expect(byTestId(card, "failure-reason")[0].textContent).toBe("The server refused this change: amount must be positive");
    expect(card.textContent).toContain("Edit it and send again, or discard it.");
  });
});

describe("labels", () => {
  it("records are named by their label in every list", async () => {
    ipc({
      queue_page: (a) => (a.filter === "failed" ? [item(4, { state: "failed", label: "Taxi to the hospital" })] : [item(5, { label: "Walk & talk" })]),
      conflicts: () => [conflict({ label: "Walk in the park" })],
      history: () => [{
        id: 1, entity: "expense", record_id: "exp-1", label: "Bus tickets", policy: "lww", winner: "remote", reason: "later", local: {}, remote: {}, result: {},
        superseded: [], at: Date.now(), restorable: false, conflict_id: null, upload_mutation_id: null,
      }],
      sync_runs: () => [],
    });
    const q = queue(ctx()); const f = failures(ctx()); const c = conflicts(ctx()); const hv = history(ctx());
    document.body.append(q.el, f.el, c.el, hv.el);
    await settle();
    expect(byTestId(q.el, "queue-label")[0].textContent).toBe("Walk & talk");
    expect(byTestId(f.el, "failure-label")[0].textContent).toBe("Taxi to the hospital");
    expect(byTestId(c.el, "conflict-label")[0].textContent).toBe("Walk in the park");
    expect(byTestId(hv.el, "resolution-label")[0].textContent).toBe("Bus tickets");
    // The entity and id stay as small secondary text.
    expect(byTestId(q.el, "queue-row")[0].textContent).toContain("activity");
  });
});

describe("names for screen readers", () => {
  it("per-field picks say which side, which field and which value", async () => {
    ipc({ conflicts: () => [conflict()] });
    const v = conflicts(ctx());
    document.body.append(v.el);
    await settle();
    expect(byTestId(v.el, "pick-local-hours")[0].getAttribute("aria-label")).toBe("Keep mine for hours: 3");
    expect(byTestId(v.el, "pick-remote-notes")[0].getAttribute("aria-label")).toBe("Keep theirs for notes: (empty)");
  });

  it("repeated buttons carry the record's label", async () => {
    ipc({
      conflicts: () => [conflict({ label: "Walk" }), conflict({ id: "c2", record_id: "act-002", label: "Quiz night" })],
      queue_page: () => [item(1, { state: "failed", label: "Taxi" }), item(2, { state: "failed", label: "Lunch" })],
    });
    const c = conflicts(ctx()); const f = failures(ctx());
    document.body.append(c.el, f.el);
    await settle();
    expect(byTestId(c.el, "keep-mine").map((b) => b.getAttribute("aria-label"))).toEqual(["Keep mine for Walk", "Keep mine for Quiz night"]);
    expect(byTestId(c.el, "keep-theirs")[1].getAttribute("aria-label")).toBe("Keep theirs for Quiz night");
    expect(byTestId(f.el, "retry").map((b) => b.getAttribute("aria-label"))).toEqual(["Retry Taxi", "Retry Lunch"]);
    // The visible words start the name (WCAG 2.5.3, label in name).
    for (const b of [...byTestId(c.el, "keep-mine"), ...byTestId(f.el, "retry")]) {
      expect(b.getAttribute("aria-label")!.startsWith(b.textContent!)).toBe(true);
    }
  });

  it("the queue is a table: rows, cells and column headers", async () => {
    ipc({ queue_page: () => [item(1), item(2)] });
    const v = queue(ctx());
    document.body.append(v.el);
    await settle();
    const table = v.el.querySelector("[role=table]")!;
    expect(table.getAttribute("aria-labelledby")).toBe(v.el.querySelector("h1")!.id);
    expect(table.querySelectorAll("[role=columnheader]")).toHaveLength(6);
    const rows = byTestId(v.el, "queue-row");
    expect(rows.every((r) => r.getAttribute("role") === "row" && r.querySelectorAll(":scope > [role=cell]").length === 6)).toBe(true);
    expect(rows.map((r) => r.getAttribute("aria-rowindex"))).toEqual(["2", "3"]);
  });

  it("the History row's restore button is not inside its summary", async () => {
    ipc({
      history: () => [{
        id: 9, entity: "expense", record_id: "exp-9", label: "Taxi", policy: "lww", winner: "remote", reason: "later", local: { a: 1 }, remote: { a: 2 }, result: { a: 2 },
        superseded: ["m"], at: Date.now(), restorable: true, conflict_id: null, upload_mutation_id: null,
      }],
      sync_runs: () => [],
    });
    const v = history(ctx());
    document.body.append(v.el);
    await settle();
    const restore = byTestId(v.el, "restore")[0];
    expect(restore.closest("summary")).toBeNull();
    expect(restore.getAttribute("aria-label")).toBe("Restore my edit to Taxi");
    expect(v.el.querySelectorAll("summary button, summary a, summary input")).toHaveLength(0);
  });
});

describe("focus after an action", () => {
  it("Keep mine moves the focus to the next card's first action, then to the heading", async () => {
    let open = [conflict({ id: "c1", label: "A" }), conflict({ id: "c2", record_id: "act-002", label: "B" })];
    ipc({ conflicts: () => open, resolve: (a) => { open = open.filter((c) => c.id !== a.conflictId); return null; } });
    const v = conflicts(ctx());
    document.body.append(v.el);
    await settle();
    const mine = byTestId(v.el, "keep-mine")[0];
    mine.focus();
    mine.click();
    await settle();
    expect(document.activeElement).toBe(byTestId(v.el, "keep-mine")[0]);
    expect(document.activeElement!.getAttribute("aria-label")).toBe("Keep mine for B");
    (document.activeElement as HTMLElement).click();
    await settle();
    expect(document.activeElement).toBe(v.el.querySelector("h1"));
  });

  it("a per-field pick keeps the focus on the pick (the card is rebuilt)", async () => {
    ipc({ conflicts: () => [conflict()] });
    const v = conflicts(ctx());
    document.body.append(v.el);
    await settle();
    const pick = byTestId(v.el, "pick-local-hours")[0];
    pick.focus();
    pick.click();
    expect(byTestId(v.el, "pick-local-hours")[0]).not.toBe(pick);
    expect(document.activeElement).toBe(byTestId(v.el, "pick-local-hours")[0]);
  });

  it("Retry moves the focus to the next failure's first action", async () => {
    let failed = [item(1, { state: "failed", label: "A" }), item(2, { state: "failed", label: "B" })];
    ipc({ queue_page: () => failed, retry: (a) => { failed = failed.filter((x) => x.mutation_id !== a.mutationId); return null; } });
    const v = failures(ctx());
    document.body.append(v.el);
    await settle();
    const retry = byTestId(v.el, "retry")[0];
    retry.focus();
    retry.click();
    await settle();
    const card = byTestId(v.el, "failure")[0];
    expect(card.dataset.mutation).toBe("m-2");
    expect(document.activeElement).toBe(card.querySelector(".actions button"));
    expect(document.activeElement).not.toBe(document.body);
  });
});

describe("settings for issue 19", () => {
  it("language, title field per entity, and diagnostics with a records checkbox off by default", async () => {
    let toastText = "";
    ipc({
      settings: () => prefs("system"),
      set_language: () => null, set_title_field: () => null,
      save_diagnostics: () => "/home/ann/Downloads/ferry-diagnostics-20260104-101500.tar.gz",
    });
    const v = settings(ctx({ toast: (m: string) => { toastText = m; } }));
    document.body.append(v.el);
    await settle();
    const lang = byTestId(v.el, "language")[0] as HTMLSelectElement;
    expect([...lang.options].map((o) => o.value)).toEqual(["system", "nb", "en"]);
    expect([...lang.options].map((o) => o.textContent)).toEqual(["Same as the system", "Norsk bokmål", "English"]);
    expect(v.el.querySelector(`label[for="${lang.id}"]`)!.textContent).toBe("Language");
    lang.value = "en";
    lang.dispatchEvent(new Event("change"));
    await settle();
    expect(sent("set_language")).toEqual([{ language: "en" }]);

    const title = byTestId(v.el, "title-field-activity")[0] as HTMLInputElement;
    expect(title.getAttribute("aria-label")).toBe("Title field for activity");
    title.value = "name";
    title.dispatchEvent(new Event("change"));
    await settle();
    const again = byTestId(v.el, "title-field-activity")[0] as HTMLInputElement;
    again.value = "";
    again.dispatchEvent(new Event("change")); // still "" in prefs → nothing to save
    await settle();
    expect(sent("set_title_field")).toEqual([{ entity: "activity", field: "name" }]);

    const records = byTestId(v.el, "diagnostics-records")[0] as HTMLInputElement;
    expect(records.checked).toBe(false);
    byTestId(v.el, "save-diagnostics")[0].click();
    await settle();
    records.checked = true;
    records.dispatchEvent(new Event("change"));
    byTestId(v.el, "save-diagnostics")[0].click();
    await settle();
    expect(sent("save_diagnostics")).toEqual([{ includeRecords: false }, { includeRecords: true }]);
    expect(toastText).toBe("Diagnostics saved to /home/ann/Downloads/ferry-diagnostics-20260104-101500.tar.gz");
  });

  it("an emptied title field goes back to the default", async () => {
    ipc({ settings: () => ({ ...prefs("nb"), policies: [{ entity: "expense", policy: "merge", title_field: "description" }] }), set_title_field: () => null });
    const v = settings(ctx());
    document.body.append(v.el);
    await settle();
    const title = byTestId(v.el, "title-field-expense")[0] as HTMLInputElement;
    expect(title.value).toBe("description");
    title.value = " ";
    title.dispatchEvent(new Event("change"));
    await settle();
    expect(sent("set_title_field")).toEqual([{ entity: "expense", field: null }]);
  });
});
