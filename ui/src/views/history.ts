// Sync runs and automatic resolutions; a losing local edit can be restored.
// Resolutions come a page at a time, newest first ("Show older" pages on by
// id, so the whole history stays reachable).
import { api, errorText } from "../api";
import type { ResolutionEntry } from "../bindings/ResolutionEntry";
import type { SyncRun } from "../bindings/SyncRun";
import type { Ctx, View } from "../ctx";
import { clear, h } from "../dom";
import { clock, value } from "../format";

export const HISTORY_PAGE = 100;
/** The most one call returns (the app's limit). */
export const HISTORY_FETCH_MAX = 1000;

const WINNER: Record<string, string> = { local: "this device's edit kept", remote: "server's edit kept", merged: "merged" };

export function history(ctx: Ctx, page = HISTORY_PAGE): View {
  const el = h("section", { class: "view history", "data-testid": "view-history" });
  const resolutions = h("div", { class: "list" });
  const older = h("button", { class: "hidden", "data-testid": "history-older", onclick: () => void loadOlder() }, "Show older");
  const runs = h("tbody");
  // What is shown, newest first; `complete`: nothing older exists.
  let entries: ResolutionEntry[] = [];
  let complete = false;
  el.append(
    h("div", { class: "toolbar" }, h("h1", {}, "History")),
    h("h2", {}, "Conflicts settled"), resolutions, older,
    h("h2", {}, "Sync runs"),
    h("table", { class: "runs", "data-testid": "sync-runs" },
      h("thead", {}, h("tr", {}, h("th", {}, "Finished"), h("th", {}, "Took"), h("th", {}, "Uploaded"), h("th", {}, "Downloaded"),
        h("th", {}, "Failed"), h("th", {}, "Conflicts"), h("th", {}, "Result"))),
      runs));

  function fields(title: string, f: Record<string, unknown> | null) {
    return h("div", { class: "side" }, h("b", {}, title),
      f ? h("pre", {}, Object.entries(f).map(([k, v]) => `${k}: ${value(v)}`).join("\n")) : h("p", { class: "muted" }, "deleted"));
  }

  function entry(r: ResolutionEntry) {
    return h("details", { class: "resolution", "data-testid": "resolution" },
      h("summary", {},
        h("b", {}, `${r.entity} ${r.record_id}`),
        h("span", { class: "muted" }, ` · ${clock(r.at)} · ${r.policy} · ${WINNER[r.winner] ?? r.winner}`),
        h("span", { class: "reason" }, ` — ${r.reason}`),
        r.restorable ? h("button", {
          class: "restore", "data-testid": "restore",
          onclick: (e: Event) => { e.preventDefault(); void restore(r.id); },
        }, "Restore my edit") : null),
      h("div", { class: "sides3" }, fields("This device", r.local), fields("Server", r.remote), fields("Result", r.result)));
  }

  function run(r: SyncRun) {
    return h("tr", { class: r.error ? "bad" : "" },
      h("td", {}, clock(r.finished_at)),
      h("td", {}, `${((r.finished_at - r.started_at) / 1000).toFixed(1)} s`),
      h("td", {}, r.uploaded.toLocaleString()), h("td", {}, r.downloaded.toLocaleString()),
      h("td", {}, String(r.failed)), h("td", {}, String(r.conflicts)),
      h("td", { class: r.error ? "err" : "" }, r.error ?? "ok"));
  }

  async function restore(id: number) {
    try { await api.restore(id); ctx.toast("Your edit is queued again"); } catch (e) { ctx.toast(errorText(e), "error"); }
    void reload();
  }

  function renderResolutions() {
    clear(resolutions);
    if (entries.length === 0) resolutions.append(h("p", { class: "empty" }, "No conflicts were settled automatically."));
    resolutions.append(...entries.map(entry));
    older.classList.toggle("hidden", complete);
  }

  // One load at a time: "Show older" pages on from the entries a reload
  // has just replaced, never from the ones before it.
  let chain: Promise<void> = Promise.resolve();
  const oneAtATime = (f: () => Promise<void>) => { chain = chain.then(f, f); return chain; };

  /** Up to `want` entries older than `before`, in pages the app serves (≤ 1 000). */
  async function fetchEntries(before: number | null, want: number): Promise<{ rs: ResolutionEntry[]; complete: boolean }> {
    const rs: ResolutionEntry[] = [];
    while (rs.length < want) {
      const n = Math.min(HISTORY_FETCH_MAX, want - rs.length);
      const page = await api.history(rs.length ? rs[rs.length - 1].id : before, n);
      rs.push(...page);
      if (page.length < n) return { rs, complete: true };
    }
    return { rs, complete: false };
  }

  function loadOlder() {
    return oneAtATime(async () => {
      const last = entries[entries.length - 1];
      try {
        const got = await fetchEntries(last ? last.id : null, page);
        entries = entries.concat(got.rs);
        complete = got.complete;
      } catch (e) { ctx.toast(errorText(e), "error"); }
      renderResolutions();
    });
  }

  const reload = () => oneAtATime(async () => {
    try {
      // As many as were shown (new entries push the oldest shown off the
      // end; "Show older" brings them back).
      const [got, ss] = await Promise.all([fetchEntries(null, Math.max(page, entries.length)), api.syncRuns(100)]);
      entries = got.rs;
      complete = got.complete;
      renderResolutions();
      clear(runs);
      runs.append(...ss.map(run));
      if (ss.length === 0) runs.append(h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No sync runs yet.")));
    } catch (e) { ctx.toast(errorText(e), "error"); }
  });

  void reload();
  let lastSync: number | null = null;
  return {
    el,
    refresh() {
      const s = ctx.status();
      if (s.last_sync_at !== lastSync) { lastSync = s.last_sync_at; void reload(); }
    },
  };
}
