// Sync runs and automatic resolutions; a losing local edit can be restored.
import { api, errorText } from "../api";
import type { ResolutionEntry } from "../bindings/ResolutionEntry";
import type { SyncRun } from "../bindings/SyncRun";
import type { Ctx, View } from "../ctx";
import { clear, h } from "../dom";
import { clock, value } from "../format";

const WINNER: Record<string, string> = { local: "this device's edit kept", remote: "server's edit kept", merged: "merged" };

export function history(ctx: Ctx): View {
  const el = h("section", { class: "view history", "data-testid": "view-history" });
  const resolutions = h("div", { class: "list" });
  const runs = h("tbody");
  el.append(
    h("div", { class: "toolbar" }, h("h1", {}, "History")),
    h("h2", {}, "Conflicts settled"), resolutions,
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

  async function reload() {
    try {
      const [rs, ss] = await Promise.all([api.history(200), api.syncRuns(100)]);
      clear(resolutions);
      if (rs.length === 0) resolutions.append(h("p", { class: "empty" }, "No conflicts were settled automatically."));
      resolutions.append(...rs.map(entry));
      clear(runs);
      runs.append(...ss.map(run));
      if (ss.length === 0) runs.append(h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No sync runs yet.")));
    } catch (e) { ctx.toast(errorText(e), "error"); }
  }

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
