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
  // The failed change whose fields are open for correcting.
  let editing: string | null = null;

  function item(it: QueueItem) {
    const armed = confirming === it.mutation_id;
    if (editing === it.mutation_id && it.payload) return editor(it, it.payload);
    return h("article", { class: "fail", "data-testid": "failure", "data-mutation": it.mutation_id },
      h("div", { class: "fail-head" },
        h("b", {}, `${it.entity} ${it.record_id}`), h("span", { class: "muted" }, ` · ${it.op} · ${ago(Date.now() - it.edited_at)} · ${it.attempts} tries`)),
      h("p", { class: "reason", "data-testid": "failure-reason" }, it.last_error ?? "The server refused this change."),
      it.payload ? h("pre", { class: "payload" }, Object.entries(it.payload).map(([k, v]) => `${k}: ${value(v)}`).join("\n")) : null,
      h("div", { class: "actions" },
        it.payload && it.op !== "delete"
          ? h("button", { class: "primary", "data-testid": "edit", onclick: () => { editing = it.mutation_id; confirming = null; render(); focusEditor(); } }, "Edit and send again")
          : null,
        h("button", { class: it.payload && it.op !== "delete" ? "" : "primary", "data-testid": "retry", onclick: () => void act(api.retry(it.mutation_id), "Queued again") }, "Retry"),
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

  /** The failed change's fields as a form; sending replaces the change with
   * the corrected one in one step. Each field keeps its kind: a number stays
   * a number (a decimal comma is accepted), a yes/no a checkbox, anything
   * else structured is edited as JSON. */
  function editor(it: QueueItem, payload: Record<string, unknown>) {
    const reason = it.last_error ?? "";
    const inputs: [string, unknown, HTMLInputElement][] = Object.entries(payload).map(([key, v], i) => {
      const id = `fix-${it.mutation_id}-${i}`;
      const input = typeof v === "boolean"
        ? h("input", { id, type: "checkbox", "data-field": key, checked: v })
        : h("input", {
          id, type: "text", "data-field": key,
          inputmode: typeof v === "number" ? "decimal" : null,
          value: typeof v === "string" ? v : JSON.stringify(v),
          // The server's reason names the field it refused ("amount: …").
          "aria-invalid": reason.includes(`${key}: `) ? "true" : null,
        });
      return [key, v, input];
    });
    const problem = h("p", { class: "reason hidden", role: "alert", "data-testid": "edit-problem" });
    const form = h("form", { class: "fix", "data-testid": "edit-form" },
      ...inputs.map(([key, , input]) => h("div", { class: "row" }, h("label", { for: input.id }, key), input)),
      problem,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary", "data-testid": "send-corrected" }, "Send corrected change"),
        h("button", { type: "button", "data-testid": "edit-cancel", onclick: () => { editing = null; render(); } }, "Cancel")));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const fields: Record<string, unknown> = {};
      for (const [key, old, input] of inputs) {
        const read = fieldValue(old, input);
        if (!read.ok) {
          problem.textContent = `${key}: ${read.problem}`;
          problem.classList.remove("hidden");
          input.setAttribute("aria-invalid", "true");
          input.focus();
          return;
        }
        fields[key] = read.value;
      }
      editing = null;
      void act(api.correct(it.mutation_id, fields), "Corrected change queued");
    });
    return h("article", { class: "fail", "data-testid": "failure", "data-mutation": it.mutation_id },
      h("div", { class: "fail-head" }, h("b", {}, `${it.entity} ${it.record_id}`), h("span", { class: "muted" }, " · correcting")),
      h("p", { class: "reason", "data-testid": "failure-reason" }, reason || "The server refused this change."),
      form);
  }

  function focusEditor() {
    const form = list.querySelector('[data-testid="edit-form"]');
    (form?.querySelector<HTMLInputElement>('input[aria-invalid="true"]') ?? form?.querySelector<HTMLInputElement>("input"))?.focus();
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

type Read = { ok: true; value: unknown } | { ok: false; problem: string };

/** What the user typed, as a value of the field's kind. */
export function fieldValue(old: unknown, input: HTMLInputElement): Read {
  if (typeof old === "boolean") return { ok: true, value: input.checked };
  const text = input.value.trim();
  if (typeof old === "string") return { ok: true, value: input.value };
  if (typeof old === "number") {
    const n = Number(text.replace(/\s/g, "").replace(",", "."));
    return text !== "" && Number.isFinite(n) ? { ok: true, value: n } : { ok: false, problem: "type a number, e.g. 150 or 149,50" };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, problem: "type a JSON value, e.g. [\"a\", \"b\"] or null" };
  }
}
