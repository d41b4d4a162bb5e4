import { api, errorText } from "../api";
import type { QueueItem } from "../bindings/QueueItem";
import type { Ctx, View } from "../ctx";
import { clear, h } from "../dom";
import { ago, value } from "../format";
import { KeysetPager } from "../pager";

export function failures(ctx: Ctx): View {
  const pager = new KeysetPager(api.queuePage, "failed", 100);
  const el = h("section", { class: "view failures", "data-testid": "view-failures" });
  const list = h("div", { class: "list" });
  const more = h("button", { class: "hidden", onclick: () => void pager.loadMore().then(render) }, "Show more");
  const retryAll = h("button", { "data-testid": "retry-all", onclick: () => void act(api.retryAll(), "Retrying all") }, "Retry all");
  el.append(h("div", { class: "toolbar" }, h("h1", {}, "Failures"), retryAll), list, more);
  // Discard needs a second click on the same row: it throws a change away.
  let confirming: string | null = null;

  function item(it: QueueItem) {
    const armed = confirming === it.mutation_id;
    return h("article", { class: "fail", "data-testid": "failure", "data-mutation": it.mutation_id },
      h("div", { class: "fail-head" },
        h("b", {}, `${it.entity} ${it.record_id}`), h("span", { class: "muted" }, ` · ${it.op} · ${ago(Date.now() - it.edited_at)} · ${it.attempts} tries`)),
      h("p", { class: "reason", "data-testid": "failure-reason" }, it.last_error ?? "The server refused this change."),
      it.payload ? h("pre", { class: "payload" }, Object.entries(it.payload).map(([k, v]) => `${k}: ${value(v)}`).join("\n")) : null,
      h("div", { class: "actions" },
        h("button", { class: "primary", "data-testid": "retry", onclick: () => void act(api.retry(it.mutation_id), "Queued again") }, "Retry"),
        h("button", {
          class: armed ? "danger" : "",
          "data-testid": "discard",
          onclick: () => {
            if (!armed) { confirming = it.mutation_id; render(); return; }
            confirming = null;
            void act(api.discard(it.mutation_id), "Change discarded");
          },
        }, armed ? "Discard this change for good?" : "Discard")));
  }

  function render() {
    clear(list);
    if (pager.items.length === 0 && pager.done) {
      list.append(h("p", { class: "empty", "data-testid": "failures-empty" }, "No failed changes."));
    }
    list.append(...pager.items.map(item));
    more.classList.toggle("hidden", pager.done);
    retryAll.toggleAttribute("disabled", pager.items.length === 0);
  }

  async function reload() {
    pager.reset();
    try { await pager.loadMore(); } catch (e) { ctx.toast(errorText(e), "error"); }
    render();
  }

  async function act(p: Promise<unknown>, ok: string) {
    try { await p; ctx.toast(ok); } catch (e) { ctx.toast(errorText(e), "error"); }
    await reload();
  }

  void reload();
  let last = -1;
  return {
    el,
    refresh() {
      const n = ctx.status().failed;
      if (n !== last) { last = n; void reload(); }
    },
  };
}
