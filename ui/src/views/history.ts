// Sync runs and automatic resolutions; a losing local edit can be restored.
// Resolutions come a page at a time, newest first ("Show older" pages on by
// id, so the whole history stays reachable).
import { api, errorText } from "../api";
import type { ResolutionEntry } from "../bindings/ResolutionEntry";
import type { SyncRun } from "../bindings/SyncRun";
import type { Ctx, View } from "../ctx";
import { clear, details, h, keepFocus } from "../dom";
import { clock, dateTime, number, problemWords, value } from "../format";
import { t } from "../i18n";

export const HISTORY_PAGE = 100;
/** The most one call returns (the app's limit). */
export const HISTORY_FETCH_MAX = 1000;

export function history(ctx: Ctx, page = HISTORY_PAGE): View {
  const el = h("section", { class: "view history", "data-testid": "view-history" });
  const resolutions = h("div", { class: "list" });
  const older = h("button", { class: "hidden", "data-testid": "history-older", onclick: () => void loadOlder() }, t("history-older"));
  const heading = h("h1", { tabindex: -1 }, t("history-title"));
  const runs = h("tbody");
  // What is shown, newest first; `complete`: nothing older exists.
  let entries: ResolutionEntry[] = [];
  let complete = false;
  el.append(
    h("div", { class: "toolbar" }, heading),
    h("h2", { id: "history-settled" }, t("history-settled")), resolutions, older,
    h("h2", { id: "history-runs" }, t("history-runs")),
    h("table", { class: "runs", "data-testid": "sync-runs", "aria-labelledby": "history-runs" },
      h("thead", {}, h("tr", {}, ...["finished", "took", "uploaded", "downloaded", "failed", "conflicts", "result"]
        .map((c) => h("th", { scope: "col" }, t(`history-col-${c}`))))),
      runs));

  function fields(title: string, f: Record<string, unknown> | null) {
    return h("div", { class: "side" }, h("b", {}, title),
      f ? h("pre", {}, Object.entries(f).map(([k, v]) => `${k}: ${value(v)}`).join("\n")) : h("p", { class: "muted" }, t("history-deleted")));
  }

  // A row is its disclosure (the record's sides) and, beside it, never
  // inside its <summary>, the restore button.
  function entry(r: ResolutionEntry) {
    const name = r.label || r.record_id;
    return h("article", { class: "resolution", "data-testid": "resolution", "data-id": r.id },
      h("details", { "data-testid": "resolution-details" },
        h("summary", { "data-key": `sum-${r.id}` },
          h("b", { "data-testid": "resolution-label" }, name),
          h("span", { class: "muted small" }, ` ${r.entity} ${r.record_id}`),
          h("span", { class: "muted" }, " · ", h("span", { title: dateTime(r.at) }, clock(r.at)),
            ` · ${t(`policy-${r.policy}`)} · ${t(`history-winner-${["local", "remote", "merged"].includes(r.winner) ? r.winner : "other"}`, { winner: r.winner })}`),
          h("span", { class: "reason" }, ` — ${r.reason}`)),
        h("div", { class: "sides3" }, fields(t("history-side-local"), r.local), fields(t("history-side-remote"), r.remote), fields(t("history-side-result"), r.result))),
      r.restorable ? h("button", {
        class: "restore", "data-testid": "restore", "data-key": `restore-${r.id}`,
        "aria-label": t("history-restore-named", { label: name }),
        onclick: () => void restore(r.id),
      }, t("history-restore")) : null);
  }

  function run(r: SyncRun) {
    return h("tr", { class: r.error ? "bad" : "" },
      h("td", { title: dateTime(r.finished_at) }, clock(r.finished_at)),
      h("td", {}, t("history-took", { s: Math.round((r.finished_at - r.started_at) / 100) / 10 })),
      h("td", {}, number(r.uploaded)), h("td", {}, number(r.downloaded)),
      h("td", {}, number(r.failed)), h("td", {}, number(r.conflicts)),
      r.error
        ? h("td", { class: "err", "data-testid": "run-problem" },
          h("span", {}, problemWords(r.problem, null)), details(t("details"), r.error))
        : h("td", {}, t("history-run-ok")));
  }

  async function restore(id: number) {
    const button = resolutions.querySelector<HTMLElement>(`[data-key="restore-${id}"]`);
    const hadFocus = button !== null && button === el.ownerDocument.activeElement;
    try { await api.restore(id); ctx.toast(t("toast-restored")); } catch (e) { ctx.toast(errorText(e), "error"); }
    await reload();
    // The button is gone once restored: the row's disclosure takes the focus.
    if (hadFocus && !el.contains(el.ownerDocument.activeElement)) {
      (resolutions.querySelector<HTMLElement>(`[data-key="restore-${id}"]`)
        ?? resolutions.querySelector<HTMLElement>(`[data-key="sum-${id}"]`) ?? heading).focus();
    }
  }

  function renderResolutions() {
    const open = new Set([...resolutions.querySelectorAll<HTMLElement>("[data-testid=resolution]")]
      .filter((a) => a.querySelector("details")?.open).map((a) => a.dataset.id));
    keepFocus(resolutions, () => {
      clear(resolutions);
      if (entries.length === 0) resolutions.append(h("p", { class: "empty" }, t("history-empty")));
      resolutions.append(...entries.map((r) => {
        const a = entry(r);
        if (open.has(String(r.id))) a.querySelector("details")!.open = true;
        return a;
      }));
    });
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
      if (ss.length === 0) runs.append(h("tr", {}, h("td", { colspan: 7, class: "empty" }, t("history-no-runs"))));
    } catch (e) { ctx.toast(errorText(e), "error"); }
  });

  const ready = reload();
  let lastSync: number | null = null;
  return {
    el,
    ready,
    refresh() {
      const s = ctx.status();
      if (s.last_sync_at !== lastSync) { lastSync = s.last_sync_at; void reload(); }
    },
  };
}
