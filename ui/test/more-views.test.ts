import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ResolutionEntry } from "../src/bindings/ResolutionEntry";
import type { Settings } from "../src/bindings/Settings";
import type { Status } from "../src/bindings/Status";
import { HISTORY_FETCH_MAX, HISTORY_PAGE, history } from "../src/views/history";
import { overview } from "../src/views/overview";
import { queue } from "../src/views/queue";
import { settings } from "../src/views/settings";
import { item, status } from "./fixtures";
import { byTestId, ctx, ipc, sent, settle } from "./harness";

beforeEach(() => { document.body.innerHTML = ""; });
afterEach(() => clearMocks());

describe("queue view refresh", () => {
  it("reloads when the queue changed, only repaints when it did not", async () => {
    let s: Status = status({ pending: 2 });
    ipc({ queue_page: () => [item(1), item(2)] });
    const v = queue(ctx({ status: () => s }));
    document.body.append(v.el);
    await settle();
    expect(sent("queue_page")).toHaveLength(1);
    v.refresh(); // e.g. the periodic status push: nothing changed
    await settle();
    expect(sent("queue_page")).toHaveLength(1);
    s = status({ pending: 1, last_sync_at: 5 });
    v.refresh();
    await settle();
    expect(sent("queue_page")).toHaveLength(2);
  });
});

function resolution(over: Partial<ResolutionEntry> = {}): ResolutionEntry {
  return {
    id: 11, entity: "expense", record_id: "exp-003", label: "Taxi", policy: "lww", winner: "remote",
    reason: "remote edit made later", local: { amount: 180 }, remote: { amount: 175 }, result: { amount: 175 },
    superseded: ["m-1"], at: Date.now(), restorable: true, conflict_id: null, upload_mutation_id: null, ...over,
  };
}

describe("history view", () => {
  it("lists resolutions and sync runs; restoring queues the losing edit again", async () => {
    const toast = vi.fn();
    ipc({
      history: () => [resolution(), resolution({ id: 12, record_id: "con-001", winner: "merged", restorable: false })],
      sync_runs: () => [{ started_at: 1000, finished_at: 3500, uploaded: 46, downloaded: 0, failed: 0, conflicts: 0, error: null, problem: null }],
      restore: () => null,
    });
    const v = history(ctx({ toast }));
    document.body.append(v.el);
    await settle();
    expect(byTestId(v.el, "resolution")).toHaveLength(2);
    expect(byTestId(v.el, "restore")).toHaveLength(1); // only the restorable one
    expect(v.el.querySelector("[data-testid=sync-runs] tbody")!.textContent).toContain("46");
    byTestId(v.el, "restore")[0].click();
    await settle();
    expect(sent("restore")).toEqual([{ historyId: 11 }]);
    expect(toast).toHaveBeenCalledWith("Your edit is queued again");
  });

  it("pages older resolutions by id until there are none", async () => {
    // 250 entries, ids 250..1, newest first.
    const all = Array.from({ length: 250 }, (_, i) => resolution({ id: 250 - i, restorable: false }));
    ipc({
      history: (a) => all.filter((r) => a.before === null || r.id < (a.before as number)).slice(0, a.limit as number),
      sync_runs: () => [],
    });
    let syncedAt: number | null = null;
    const v = history(ctx({ status: () => status({ last_sync_at: syncedAt }) }));
    document.body.append(v.el);
    await settle();
    expect(sent("history")).toEqual([{ before: null, limit: HISTORY_PAGE }]);
    const older = byTestId(v.el, "history-older")[0];
    expect(older.classList.contains("hidden")).toBe(false);
    older.click();
    await settle();
    older.click();
    await settle();
    expect(sent("history").slice(1)).toEqual([{ before: 151, limit: HISTORY_PAGE }, { before: 51, limit: HISTORY_PAGE }]);
    expect(byTestId(v.el, "resolution")).toHaveLength(250);
    expect(older.classList.contains("hidden")).toBe(true);
    // A sync's refresh reloads, keeping everything that was shown.
    syncedAt = 5000;
    v.refresh();
    await settle();
    expect(sent("history").slice(-1)[0]).toEqual({ before: null, limit: 250 });
    expect(byTestId(v.el, "resolution")).toHaveLength(250);
  });

  it("keeps more than the app serves at once, and loads one page at a time", async () => {
    const all = Array.from({ length: 1150 }, (_, i) => resolution({ id: 1150 - i, record_id: `r${1150 - i}`, label: `r${1150 - i}`, restorable: false }));
    ipc({
      history: (a) => {
        if ((a.limit as number) > HISTORY_FETCH_MAX) throw "limit over the app's maximum";
        return all.filter((r) => a.before === null || r.id < (a.before as number)).slice(0, a.limit as number);
      },
      sync_runs: () => [],
    });
    let syncedAt: number | null = null;
    // Pages of 550: 550, 1 100, then the last 50.
    const v = history(ctx({ status: () => status({ last_sync_at: syncedAt }) }), 550);
    document.body.append(v.el);
    await settle();
    const older = byTestId(v.el, "history-older")[0];
    older.click();
    await settle();
    expect(byTestId(v.el, "resolution")).toHaveLength(1100);
    syncedAt = 1;
    v.refresh();
    await settle();
    expect(sent("history").slice(-2)).toEqual([{ before: null, limit: 1000 }, { before: 151, limit: 100 }]);
    expect(byTestId(v.el, "resolution")).toHaveLength(1100);
    expect(older.classList.contains("hidden")).toBe(false);
    // Clicks that come faster than the answers still page on in order.
    older.click();
    older.click();
    await settle();
    await settle();
    const ids = byTestId(v.el, "resolution").map((e) => e.querySelector("b")!.textContent);
    expect(ids).toHaveLength(1150);
    expect(new Set(ids).size).toBe(1150);
    expect(older.classList.contains("hidden")).toBe(true);
  }, 20_000);

  it("shows the server's refusal of a restore as an error", async () => {
    const toast = vi.fn();
    ipc({ history: () => [resolution()], sync_runs: () => [], restore: () => { throw "already restored"; } });
    const v = history(ctx({ toast }));
    document.body.append(v.el);
    await settle();
    byTestId(v.el, "restore")[0].click();
    await settle();
    expect(toast).toHaveBeenCalledWith("already restored", "error");
  });
});

function prefs(over: Partial<Settings> = {}): Settings {
  return {
    server: "https://sync.example.org", user: "mentor", autostart: false, notifications: true,
    pull_interval_secs: 60, policies: [{ entity: "activity", policy: "lww", title_field: null }, { entity: "expense", policy: "merge", title_field: "description" }],
    language: "system", ...over,
  };
}

describe("settings view", () => {
  it("saves the policy per entity, the pull interval, notifications and start at login", async () => {
    ipc({ settings: () => prefs(), set_policy: () => null, set_pull_interval: () => null, set_notifications: () => null, set_autostart: () => true });
    const v = settings(ctx());
    document.body.append(v.el);
    await settle();
    const policy = byTestId(v.el, "policy-activity")[0] as HTMLSelectElement;
    expect(policy.value).toBe("lww");
    expect((byTestId(v.el, "policy-expense")[0] as HTMLSelectElement).value).toBe("merge");
    policy.value = "manual";
    policy.dispatchEvent(new Event("change"));
    await settle();
    expect(sent("set_policy")).toEqual([{ entity: "activity", policy: "manual" }]);

    const interval = byTestId(v.el, "pull-interval")[0] as HTMLSelectElement;
    expect(interval.value).toBe("60");
    interval.value = "300";
    interval.dispatchEvent(new Event("change"));
    await settle();
    expect(sent("set_pull_interval")).toEqual([{ secs: 300 }]);

    const notes = byTestId(v.el, "notifications")[0] as HTMLInputElement;
    notes.checked = false;
    notes.dispatchEvent(new Event("change"));
    const auto = byTestId(v.el, "autostart")[0] as HTMLInputElement;
    auto.checked = true;
    auto.dispatchEvent(new Event("change"));
    await settle();
    expect(sent("set_notifications")).toEqual([{ on: false }]);
    expect(sent("set_autostart")).toEqual([{ on: true }]);
  });

  it("signs in with the password once and never keeps it", async () => {
    let user: string | null = null;
    ipc({ settings: () => prefs({ user }), login: () => { user = "ann"; return null; } });
    const v = settings(ctx());
    document.body.append(v.el);
    await settle();
    (byTestId(v.el, "login-user")[0] as HTMLInputElement).value = "ann";
    const pw = byTestId(v.el, "login-password")[0] as HTMLInputElement;
    pw.value = "s3cret";
    (v.el.querySelector("form") as HTMLFormElement).dispatchEvent(new Event("submit", { cancelable: true }));
    expect(pw.value).toBe("");
    await settle();
    expect(sent("login")).toEqual([{ user: "ann", password: "s3cret" }]);
    expect(byTestId(v.el, "signed-in-as")[0].textContent).toBe("Signed in as ann");
    expect(v.el.innerHTML).not.toContain("s3cret");
  });

  it("a pull interval outside the list is still shown, and the demo's server cannot be changed", async () => {
    ipc({ settings: () => prefs({ pull_interval_secs: 45 }) });
    const v = settings(ctx({ info: () => ({ version: "0.1.0", demo: true, data_dir: "/tmp/d", locale: "en" }) }));
    document.body.append(v.el);
    await settle();
    expect((byTestId(v.el, "pull-interval")[0] as HTMLSelectElement).value).toBe("45");
    const save = [...v.el.querySelectorAll("button")].find((b) => b.textContent === "Save") as HTMLButtonElement;
    expect(save.disabled).toBe(true);
  });
});

describe("overview", () => {
  it("says what needs the user and where to go", () => {
    const go = vi.fn();
    const v = overview(ctx({ go, status: () => status({ state: "needs-sign-in", conflicts: 2, failed: 1, pending: 3, server: "https://s" }) }));
    const text = v.el.textContent!;
    expect(text).toContain("Your sign-in expired");
    expect(text).toContain("2 conflicts need your decision");
    expect(text).toContain("1 change was refused");
    expect(byTestId(v.el, "count-waiting")[0].querySelector(".card-n")!.textContent).toBe("3");
    byTestId(v.el, "count-conflicts")[0].click();
    expect(go).toHaveBeenCalledWith("conflicts");
  });

  it("shows upload progress while syncing, and its buttons call the engine", async () => {
    ipc({ sync_now: () => null, set_paused: () => null });
    const v = overview(ctx({ status: () => status({ state: "syncing", pending: 50, progress: { uploaded: 25, to_upload: 100, downloaded: 3 }, server: "https://s" }) }));
    expect(byTestId(v.el, "progress")[0].textContent).toContain("25 of 100 uploaded");
    byTestId(v.el, "sync-now")[0].click();
    byTestId(v.el, "pause-toggle")[0].click();
    await settle();
    expect(sent("sync_now")).toHaveLength(1);
    expect(sent("set_paused")).toEqual([{ paused: true }]);
  });

  it("offers set-up when no server is configured", () => {
    const go = vi.fn();
    const v = overview(ctx({ go, status: () => status({ server: null }) }));
    expect(v.el.textContent).toContain("No server set up yet.");
  });
});
