// The outbox, windowed: only the rows in view exist in the DOM, and pages
// of 500 load by keyset as the user scrolls, so 100 000 queued items scroll
// as smoothly as 10. A table to assistive technology (role=table, rows
// with aria-rowindex, column headers), since only some rows exist at once.
import { api } from "../api";
import type { MutationState } from "../bindings/MutationState";
import type { QueueItem } from "../bindings/QueueItem";
import type { Ctx, View } from "../ctx";
import { clear, h } from "../dom";
import { ago, dateTime, inFuture, number } from "../format";
import { t } from "../i18n";
import { KeysetPager, visibleRange } from "../pager";

export const ROW_HEIGHT = 34;

/** What a row says, in plain words: when Ferry tries again, or where the
 * user decides (the engine's error text is the cell's title, for details). */
export function queueNote(it: QueueItem, now: number): string {
  if (it.state === "failed") return t("queue-note-failed");
  if (it.state === "conflict") return t("queue-note-conflict");
  if (it.state === "in-flight") return t("queue-note-sending");
  if (!it.last_error && it.attempts === 0) return t("queue-note-next-upload");
  return it.next_attempt_at && it.next_attempt_at > now
    ? t("queue-note-retry", { when: inFuture(it.next_attempt_at - now) })
    : t("queue-note-retry-soon");
}

export function queue(ctx: Ctx): View {
  const pager = new KeysetPager(api.queuePage, null, 500);
  const el = h("section", { class: "view queue", "data-testid": "view-queue" });
  const count = h("span", { class: "muted", "data-testid": "queue-count" });
  const stale = h("button", { class: "link hidden", "data-testid": "queue-reload", onclick: () => reload() }, t("queue-changed-reload"));
  const filter = h("select", { "data-testid": "queue-filter", "aria-label": t("queue-filter-label") },
    h("option", { value: "" }, t("queue-filter-all")),
    h("option", { value: "pending" }, t("queue-filter-pending")),
    h("option", { value: "in-flight" }, t("queue-filter-in-flight")),
    h("option", { value: "failed" }, t("queue-filter-failed")),
    h("option", { value: "conflict" }, t("queue-filter-conflict")));
  filter.addEventListener("change", () => {
    pager.reset((filter.value || null) as MutationState | null);
    scroller.scrollTop = 0;
    void reload();
  });
  const heading = h("h1", { id: "queue-title" }, t("queue-title"));
  const col = (id: string) => h("span", { role: "columnheader" }, t(id));
  const head = h("div", { class: "qrow qhead", role: "row", "aria-rowindex": 1 },
    col("queue-col-state"), col("queue-col-record"), col("queue-col-change"), col("queue-col-tries"),
    col("queue-col-edited"), col("queue-col-note"));
  const spacer = h("div", { class: "spacer" });
  const rows = h("div", { class: "rows" });
  // Focusable so the keyboard can scroll it.
  const scroller = h("div", { class: "scroller", "data-testid": "queue-scroller", role: "rowgroup", tabindex: 0 }, spacer, rows);
  const table = h("div", { class: "qtable", role: "table", "aria-labelledby": "queue-title", "data-testid": "queue-table" },
    h("div", { role: "rowgroup" }, head), scroller);
  const empty = h("p", { class: "empty hidden", "data-testid": "queue-empty" }, t("queue-empty"));
  el.append(h("div", { class: "toolbar" }, heading, filter, count, stale), table, empty);

  let frame = 0;
  scroller.addEventListener("scroll", () => {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; paint(); });
  });

  function row(it: QueueItem, index: number, now: number): HTMLElement {
    const cell = (attrs: Record<string, string>, ...c: (Node | string)[]) => h("span", { role: "cell", ...attrs }, ...c);
    const note = queueNote(it, now);
    return h("div", { class: `qrow ${it.state}`, role: "row", "aria-rowindex": index + 2, "data-testid": "queue-row", "data-seq": it.seq },
      cell({}, h("span", { class: `pill ${it.state}` }, t(`queue-state-${it.state}`))),
      cell({ class: "rec", title: `${it.label || it.record_id} — ${it.entity}/${it.record_id}` }, h("b", { "data-testid": "queue-label" }, it.label || it.record_id), " ", h("span", { class: "muted small" }, it.entity)),
      cell({}, t(`queue-op-${it.op === "delete" ? "delete" : "upsert"}`)),
      cell({}, number(it.attempts)),
      cell({ title: dateTime(it.edited_at) }, ago(now - it.edited_at)),
      cell({ class: it.state === "failed" || it.state === "conflict" ? "err" : "", title: it.last_error ?? "", "data-testid": "queue-note" }, note));
  }

  function paint() {
    const total = pager.items.length;
    spacer.style.height = `${(total + (pager.done ? 0 : 20)) * ROW_HEIGHT}px`;
    const { first, last } = visibleRange(scroller.scrollTop, scroller.clientHeight || 600, ROW_HEIGHT, total);
    const now = Date.now();
    clear(rows);
    rows.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    for (let i = first; i < last; i++) rows.append(row(pager.items[i], i, now));
    const s = ctx.status();
    const all = s.pending + s.in_flight + s.failed + s.conflicts;
    table.setAttribute("aria-rowcount", String(pager.done ? total + 1 : -1));
    count.textContent = pager.filter
      ? (pager.done ? t("queue-count-shown", { n: total }) : t("queue-count-shown-more", { n: total }))
      : t("queue-count-all", { n: all });
    empty.classList.toggle("hidden", !(pager.done && total === 0));
    table.classList.toggle("hidden", pager.done && total === 0);
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
  const ready = reload();
  return {
    el,
    ready,
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
