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
import { clear, h } from "../dom";
import { clock, plural, value } from "../format";

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
  }, "Show more");
  const capped = h("p", { class: "muted hidden", "data-testid": "conflicts-capped" });
  el.append(h("div", { class: "toolbar" }, h("h1", {}, "Conflicts"), bulk), list, more, capped);
  let items: ConflictView[] = [];
  let shown = page;
  // All open conflicts, shown or not (the status counts them).
  const total = () => Math.max(ctx.status().conflicts, items.length);
  const picks = new Map<string, Record<string, Side>>();
  const selected = new Set<string>();
  let busy = false;

  function pick(c: ConflictView, field: string, side: Side) {
    const p = picks.get(c.id) ?? {};
    p[field] = side;
    picks.set(c.id, p);
    render();
  }

  function card(c: ConflictView) {
    const p = picks.get(c.id) ?? {};
    const del = isDeleteConflict(c);
    const rows = fieldRows(c);
    const res = resolutionFromPicks(c, p);
    const table = h("table", { class: "sides" },
      h("thead", {}, h("tr", {},
        h("th", {}, "Field"), h("th", {}, "Before both edits"),
        h("th", {}, "This device (mine)"), h("th", {}, `Server (theirs, ${c.remote_edited_by || "another device"})`))),
      h("tbody", {}, rows.map((r) => {
        const cell = (side: Side, v: unknown, changed: boolean) => {
          const chosen = p[r.field] === side;
          const content = h("span", {}, value(v));
          if (!r.differs || del) return h("td", { class: changed ? "changed" : "" }, content);
          return h("td", { class: `pickable${chosen ? " chosen" : ""}${changed ? " changed" : ""}` },
            h("button", {
              class: "pick",
              "data-testid": `pick-${side}-${r.field}`,
              "aria-pressed": chosen ? "true" : "false",
              title: side === "local" ? "Keep this device's value" : "Keep the server's value",
              onclick: () => pick(c, r.field, side),
            }, content));
        };
        return h("tr", { class: r.differs ? "differs" : "", "data-field": r.field },
          h("th", { scope: "row" }, r.field),
          h("td", { class: "base" }, value(r.base)),
          cell("local", r.local, r.changedHere),
          cell("remote", r.remote, r.changedThere));
      })));
    return h("article", { class: "conflict", "data-testid": "conflict", "data-record": c.record_id, "data-id": c.id },
      h("div", { class: "conflict-head" },
        h("input", {
          type: "checkbox", "aria-label": "Select for bulk", "data-testid": "conflict-select",
          checked: selected.has(c.id),
          onchange: (e: Event) => { (e.target as HTMLInputElement).checked ? selected.add(c.id) : selected.delete(c.id); renderBulk(); },
        }),
        h("b", {}, `${c.entity} ${c.record_id}`),
        h("span", { class: "muted" },
          ` · edited here ${clock(c.local_edited_at)}, on the server ${clock(c.remote_edited_at)}`,
          del ? (c.local === null ? " · deleted here" : " · deleted on the server") : "")),
      del ? h("p", { class: "muted" }, "One side deleted the record: keep it deleted or keep the other side whole.") : table,
      h("div", { class: "actions" },
        h("button", { class: "primary", "data-testid": "keep-mine", disabled: busy, onclick: () => void resolve(c.id, keep("local")) }, "Keep mine"),
        h("button", { "data-testid": "keep-theirs", disabled: busy, onclick: () => void resolve(c.id, keep("remote")) }, "Keep theirs"),
        del ? null : h("button", {
          "data-testid": "apply-picks",
          disabled: busy || res === null,
          title: res === null ? "Pick a value in every highlighted row first" : "Keep the picked values",
          onclick: () => { if (res) void resolve(c.id, res); },
        }, "Keep picked values")));
  }

  function renderBulk() {
    clear(bulk);
    if (total() < 2) return;
    const ids = selected.size ? [...selected] : null;
    const what = ids ? plural(ids.length, "selected", "selected") : `all ${total().toLocaleString()}`;
    bulk.append(
      h("button", { "data-testid": "bulk-mine", disabled: busy, onclick: () => void resolveAll("local", ids) }, `Keep mine for ${what}`),
      h("button", { "data-testid": "bulk-theirs", disabled: busy, onclick: () => void resolveAll("remote", ids) }, `Keep theirs for ${what}`));
  }

  function render() {
    clear(list);
    if (items.length === 0) list.append(h("p", { class: "empty", "data-testid": "conflicts-empty" }, "No conflicts. Nothing needs your decision."));
    list.append(...items.map(card));
    const hidden = total() - items.length;
    const atCap = items.length >= CONFLICTS_MAX;
    more.textContent = `Show more (${hidden.toLocaleString()} not shown)`;
    more.classList.toggle("hidden", hidden <= 0 || atCap);
    capped.textContent = `Showing the oldest ${items.length.toLocaleString()} of ${total().toLocaleString()}: `
      + "settle some, or keep one side for all, to see the rest.";
    capped.classList.toggle("hidden", hidden <= 0 || !atCap);
    renderBulk();
  }

  async function resolve(id: string, r: Parameters<typeof api.resolve>[1]) {
    busy = true; render();
    try {
      await api.resolve(id, r);
      picks.delete(id); selected.delete(id);
      ctx.toast("Resolved; uploading your choice");
    } catch (e) { ctx.toast(errorText(e), "error"); }
    busy = false;
    await reload();
  }

  async function resolveAll(side: Side, ids: string[] | null) {
    busy = true; render();
    try {
      const n = await api.resolveAll(side, ids);
      selected.clear();
      ctx.toast(`${plural(n, "conflict", "conflicts")} resolved`);
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

  void reload();
  let last = -1;
  return {
    el,
    refresh() {
      const n = ctx.status().conflicts;
      if (n !== last && !busy) { last = n; void reload(); }
    },
  };
}
