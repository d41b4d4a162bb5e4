// The outbox, windowed: only the rows in view exist in the DOM, and pages
// of 500 load by keyset as the user scrolls, so 100 000 queued items scroll
// as smoothly as 10.
import { api } from "../api";
import type { MutationState } from "../bindings/MutationState";
import type { QueueItem } from "../bindings/QueueItem";
import type { Ctx, View } from "../ctx";
import { clear, h } from "../dom";
import { ago, inFuture } from "../format";
import { KeysetPager, visibleRange } from "../pager";

export const ROW_HEIGHT = 34;

export function queue(ctx: Ctx): View {
  const pager = new KeysetPager(api.queuePage, null, 500);
  const el = h("section", { class: "view queue", "data-testid": "view-queue" });
  const count = h("span", { class: "muted", "data-testid": "queue-count" });
  const stale = h("button", { class: "link hidden", "data-testid": "queue-reload", onclick: () => reload() }, "The queue changed — reload");
  const filter = h("select", { "data-testid": "queue-filter", "aria-label": "Show" },
    h("option", { value: "" }, "All"),
    h("option", { value: "pending" }, "Waiting"),
    h("option", { value: "in-flight" }, "Uploading"),
    h("option", { value: "failed" }, "Failed"),
    h("option", { value: "conflict" }, "In conflict"));
  filter.addEventListener("change", () => {
    pager.reset((filter.value || null) as MutationState | null);
    scroller.scrollTop = 0;
    void reload();
  });
  const head = h("div", { class: "qrow qhead" },
    h("span", {}, "State"), h("span", {}, "Record"), h("span", {}, "Change"), h("span", {}, "Tries"),
    h("span", {}, "Next try"), h("span", {}, "Edited"), h("span", {}, "Last error"));
  const spacer = h("div", { class: "spacer" });
  const rows = h("div", { class: "rows" });
  const scroller = h("div", { class: "scroller", "data-testid": "queue-scroller" }, spacer, rows);
  const empty = h("p", { class: "empty hidden", "data-testid": "queue-empty" }, "Nothing waiting. Everything is on the server.");
  el.append(h("div", { class: "toolbar" }, h("h1", {}, "Queue"), filter, count, stale), head, scroller, empty);

  let frame = 0;
  scroller.addEventListener("scroll", () => {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; paint(); });
  });

  function row(it: QueueItem, now: number): HTMLElement {
    return h("div", { class: `qrow ${it.state}`, "data-testid": "queue-row", "data-seq": it.seq },
      h("span", { class: `pill ${it.state}` }, it.state === "pending" ? "waiting" : it.state),
      h("span", { class: "rec", title: `${it.entity}/${it.record_id}` }, `${it.entity} `, h("b", {}, it.record_id)),
      h("span", {}, it.op),
      h("span", {}, String(it.attempts)),
      h("span", {}, it.next_attempt_at && it.next_attempt_at > now ? inFuture(it.next_attempt_at - now) : it.state === "pending" ? "now" : "—"),
      h("span", { title: new Date(it.edited_at).toLocaleString() }, ago(now - it.edited_at)),
      h("span", { class: "err", title: it.last_error ?? "" }, it.last_error ?? ""));
  }

  function paint() {
    const total = pager.items.length;
    spacer.style.height = `${(total + (pager.done ? 0 : 20)) * ROW_HEIGHT}px`;
    const { first, last } = visibleRange(scroller.scrollTop, scroller.clientHeight || 600, ROW_HEIGHT, total);
    const now = Date.now();
    clear(rows);
    rows.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    for (let i = first; i < last; i++) rows.append(row(pager.items[i], now));
    const s = ctx.status();
    const all = s.pending + s.in_flight + s.failed + s.conflicts;
    count.textContent = pager.filter ? `${total.toLocaleString()}${pager.done ? "" : "+"} shown` : `${all.toLocaleString()} in the queue`;
    empty.classList.toggle("hidden", !(pager.done && total === 0));
    // Near the end of what is loaded: fetch the next page.
    if (!pager.done && last > total - 200) void pager.loadMore().then(paint);
  }

  async function reload() {
    stale.classList.add("hidden");
    // Keep what the user was looking at loaded after the reset.
    const want = Math.max(pager.pageSize, Math.ceil((scroller.scrollTop + scroller.clientHeight) / ROW_HEIGHT) + 200);
    pager.reset();
    try {
      await pager.ensure(want);
    } catch (e) {
      ctx.toast(String(e), "error");
    }
    paint();
  }

  // What the queue looked like at the last reload: a status push that does
  // not change it (the periodic one, a pull) only repaints the "next try"
  // times instead of fetching 500 rows again.
  const shape = () => {
    const s = ctx.status();
    return `${s.pending}/${s.in_flight}/${s.failed}/${s.conflicts}/${s.last_sync_at}/${s.next_retry_at}`;
  };
  let loadedShape = shape();
  void reload();
  return {
    el,
    refresh() {
      const now = shape();
      if (now === loadedShape) { paint(); return; }
      loadedShape = now;
      // Near the top the list follows the queue live; deep in a long list a
      // reload would move things under the user, so offer it instead.
      if (scroller.scrollTop < 50 * ROW_HEIGHT) void reload();
      else { stale.classList.remove("hidden"); paint(); }
    },
    dispose() { if (frame) cancelAnimationFrame(frame); },
  };
}
