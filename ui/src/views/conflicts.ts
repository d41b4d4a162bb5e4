// Parked conflicts: base, this device and the server side by side, the
// fields that differ highlighted. Keep mine, keep theirs, or click the value
// to keep in each differing row; bulk keep for the selected ones (or all).
// Cards come a page at a time, oldest first: after a long absence there can
// be thousands, and a card is a table.
import { api, errorText } from "../api";
import type { ConflictView } from "../bindings/ConflictView";
import type { Side } from "../bindings/Side";
import { fieldRows, isDeleteConflict, keep, resolutionFromPicks } from "../conflict";
import type { Ctx, View } from "../ctx";
import { clear, focusAfterRemoval, h, keepFocus } from "../dom";
import { clock, value } from "../format";
import { t } from "../i18n";

export const CONFLICTS_PAGE = 50;
/** The most the app returns at once; past that, settling makes room. */
export const CONFLICTS_MAX = 1000;

export function conflicts(ctx: Ctx, page = CONFLICTS_PAGE): View {
  const el = h("section", { class: "view conflicts", "data-testid": "view-conflicts" });
  const list = h("div", { class: "list" });
  const bulk = h("div", { class: "bulk" });
  const more = h("button", {
    class: "hidden", "data-testid": "conflicts-more",
    onclick: () => { shown = Math.min(shown + page, CONFLICTS_MAX); void reload(); },
  }, t("show-more"));
  const capped = h("p", { class: "muted hidden", "data-testid": "conflicts-capped" });
  const heading = h("h1", { tabindex: -1 }, t("conflicts-title"));
  el.append(h("div", { class: "toolbar" }, heading, bulk), list, more, capped);
  let items: ConflictView[] = [];
  let shown = page;
  // All open conflicts, shown or not (the status counts them).
  const total = () => Math.max(ctx.status().conflicts, items.length);
  const picks = new Map<string, Record<string, Side>>();
  const selected = new Set<string>();
  let busy = false;
  // After a card was settled: the index whose first action gets the focus.
  let refocus: number | null = null;

  function pick(c: ConflictView, field: string, side: Side) {
    const p = picks.get(c.id) ?? {};
    p[field] = side;
    picks.set(c.id, p);
    render();
  }

  function card(c: ConflictView, index: number) {
    const p = picks.get(c.id) ?? {};
    const name = c.label || c.record_id;
    const del = isDeleteConflict(c);
    const rows = fieldRows(c);
    const res = resolutionFromPicks(c, p);
    const table = h("table", { class: "sides" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, t("conflict-col-field")), h("th", { scope: "col" }, t("conflict-col-base")),
        h("th", { scope: "col" }, t("conflict-col-mine")),
        h("th", { scope: "col" }, c.remote_edited_by ? t("conflict-col-theirs-by", { who: c.remote_edited_by }) : t("conflict-col-theirs")))),
      h("tbody", {}, rows.map((r) => {
        const cell = (side: Side, v: unknown, changed: boolean) => {
          const chosen = p[r.field] === side;
          const content = h("span", {}, value(v));
          if (!r.differs || del) return h("td", { class: changed ? "changed" : "" }, content);
          return h("td", { class: `pickable${chosen ? " chosen" : ""}${changed ? " changed" : ""}` },
            h("button", {
              class: "pick",
              "data-testid": `pick-${side}-${r.field}`,
              "data-key": `pick-${c.id}-${side}-${r.field}`,
              "aria-pressed": chosen ? "true" : "false",
              "aria-label": t(side === "local" ? "conflict-pick-mine" : "conflict-pick-theirs", { field: r.field, value: value(v) }),
              onclick: () => pick(c, r.field, side),
            }, content));
        };
        return h("tr", { class: r.differs ? "differs" : "", "data-field": r.field },
          h("th", { scope: "row" }, r.field),
          h("td", { class: "base" }, value(r.base)),
          cell("local", r.local, r.changedHere),
          cell("remote", r.remote, r.changedThere));
      })));
    return h("article", { class: "conflict", "data-testid": "conflict", "data-record": c.record_id, "data-id": c.id, "aria-labelledby": `cl-${c.id}` },
      h("div", { class: "conflict-head" },
        h("input", {
          type: "checkbox", "aria-label": t("conflict-select", { label: name }), "data-testid": "conflict-select", "data-key": `select-${c.id}`,
          checked: selected.has(c.id),
          onchange: (e: Event) => { (e.target as HTMLInputElement).checked ? selected.add(c.id) : selected.delete(c.id); renderBulk(); },
        }),
        h("b", { id: `cl-${c.id}`, "data-testid": "conflict-label" }, name),
        h("span", { class: "muted small" }, `${c.entity} ${c.record_id}`),
        h("span", { class: "muted" },
          ` · ${t("conflict-edited", { here: clock(c.local_edited_at), there: clock(c.remote_edited_at) })}`,
          del ? ` · ${c.local === null ? t("conflict-deleted-here") : t("conflict-deleted-there")}` : "")),
      del ? h("p", { class: "muted" }, t("conflict-delete-explain")) : table,
      h("div", { class: "actions" },
        h("button", {
          class: "primary", "data-testid": "keep-mine", "data-key": `mine-${c.id}`, disabled: busy,
          "aria-label": t("conflict-keep-mine-named", { label: name }),
          onclick: () => { refocus = index; void resolve(c.id, keep("local")); },
        }, t("conflict-keep-mine")),
        h("button", {
          "data-testid": "keep-theirs", "data-key": `theirs-${c.id}`, disabled: busy,
          "aria-label": t("conflict-keep-theirs-named", { label: name }),
          onclick: () => { refocus = index; void resolve(c.id, keep("remote")); },
        }, t("conflict-keep-theirs")),
        del ? null : h("button", {
          "data-testid": "apply-picks", "data-key": `apply-${c.id}`,
          disabled: busy || res === null,
          "aria-label": t("conflict-apply-named", { label: name }),
          "aria-describedby": res === null ? `hint-${c.id}` : null,
          onclick: () => { if (res) { refocus = index; void resolve(c.id, res); } },
        }, t("conflict-apply")),
        del || res !== null ? null : h("span", { class: "muted small", id: `hint-${c.id}` }, t("conflict-apply-hint"))));
  }

  function renderBulk() {
    clear(bulk);
    if (total() < 2) return;
    const ids = selected.size ? [...selected] : null;
    const n = ids ? ids.length : total();
    const which = ids ? "selected" : "all";
    bulk.append(
      h("button", { "data-testid": "bulk-mine", disabled: busy, onclick: () => void resolveAll("local", ids) }, t("conflicts-bulk-mine", { n, which })),
      h("button", { "data-testid": "bulk-theirs", disabled: busy, onclick: () => void resolveAll("remote", ids) }, t("conflicts-bulk-theirs", { n, which })));
  }

  function render() {
    keepFocus(el, () => {
      clear(list);
      if (items.length === 0) list.append(h("p", { class: "empty", "data-testid": "conflicts-empty" }, t("conflicts-empty")));
      list.append(...items.map(card));
      const hidden = total() - items.length;
      const atCap = items.length >= CONFLICTS_MAX;
      more.textContent = t("conflicts-show-more", { n: hidden });
      more.classList.toggle("hidden", hidden <= 0 || atCap);
      capped.textContent = t("conflicts-capped", { shown: items.length, total: total() });
      capped.classList.toggle("hidden", hidden <= 0 || !atCap);
      renderBulk();
    }, () => heading);
    if (refocus !== null && !busy) {
      const at = refocus;
      refocus = null;
      focusAfterRemoval([...list.querySelectorAll<HTMLElement>("[data-testid=conflict]")], at, "[data-testid=keep-mine]", heading);
    }
  }

  async function resolve(id: string, r: Parameters<typeof api.resolve>[1]) {
    busy = true; render();
    try {
      await api.resolve(id, r);
      picks.delete(id); selected.delete(id);
      ctx.toast(t("toast-resolved"));
    } catch (e) { ctx.toast(errorText(e), "error"); }
    busy = false;
    await reload();
  }

  async function resolveAll(side: Side, ids: string[] | null) {
    // The bulk buttons may go with the cards: the first card left, or the heading, takes the focus.
    if (bulk.contains(el.ownerDocument.activeElement)) refocus = 0;
    busy = true; render();
    try {
      const n = await api.resolveAll(side, ids);
      selected.clear();
      ctx.toast(t("toast-resolved-n", { n }));
    } catch (e) { ctx.toast(errorText(e), "error"); }
    busy = false;
    await reload();
  }

  async function reload() {
    try {
      items = await api.conflicts(shown);
      const open = new Set(items.map((c) => c.id));
      for (const id of [...picks.keys()]) if (!open.has(id)) picks.delete(id);
      for (const id of [...selected]) if (!open.has(id)) selected.delete(id);
    } catch (e) { ctx.toast(errorText(e), "error"); }
    render();
  }

  const ready = reload();
  let last = -1;
  return {
    el,
    ready,
    refresh() {
      const n = ctx.status().conflicts;
      if (n !== last && !busy) { last = n; void reload(); }
    },
  };
}
