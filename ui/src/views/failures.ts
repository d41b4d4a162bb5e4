// Changes the server refused: its reason in its own words, then what the
// user can do (edit and send again, retry, discard). Cards are rebuilt on
// every change; the focus moves to the next card's first action.
import { api, errorText } from "../api";
import type { QueueItem } from "../bindings/QueueItem";
import type { Ctx, View } from "../ctx";
import { clear, focusAfterRemoval, h, keepFocus } from "../dom";
import { ago, dateTime, value } from "../format";
import { t } from "../i18n";
import { KeysetPager } from "../pager";

export function failures(ctx: Ctx): View {
  const pager = new KeysetPager(api.queuePage, "failed", 100);
  const el = h("section", { class: "view failures", "data-testid": "view-failures" });
  const list = h("div", { class: "list" });
  const heading = h("h1", { tabindex: -1 }, t("failures-title"));
  const more = h("button", { class: "hidden", "data-testid": "failures-more", onclick: () => void pager.loadMore().then(render) }, t("show-more"));
  const retryAll = h("button", { "data-testid": "retry-all", onclick: () => { refocus = 0; void act(api.retryAll(), t("toast-retrying-all")); } }, t("failures-retry-all"));
  el.append(h("div", { class: "toolbar" }, heading, retryAll), list, more);
  // Discard needs a second click on the same row: it throws a change away.
  let confirming: string | null = null;
  // The failed change whose fields are open for correcting.
  let editing: string | null = null;
  // After an action removed a card: the index whose first action gets the focus.
  let refocus: number | null = null;

  const name = (it: QueueItem) => it.label || it.record_id;

  function head(it: QueueItem, ...extra: (Node | string)[]) {
    return h("div", { class: "fail-head" },
      h("b", { "data-testid": "failure-label" }, name(it)),
      h("span", { class: "muted small" }, ` ${it.entity} ${it.record_id}`),
      h("span", { class: "muted" }, " · ", ...extra));
  }

  function reasonText(it: QueueItem) {
    const reason = (it.last_error ?? "").trim();
    return reason ? t("failure-refused", { reason }) : t("failure-refused-no-reason");
  }

  function item(it: QueueItem, index: number) {
    const armed = confirming === it.mutation_id;
    if (editing === it.mutation_id && it.payload) return editor(it, it.payload);
    const editable = !!it.payload && it.op !== "delete";
    const when = h("span", { title: dateTime(it.edited_at) }, ago(Date.now() - it.edited_at));
    const headEl = head(it, `${t(`queue-op-${it.op === "delete" ? "delete" : "upsert"}`)} · `, when, ` · ${t("failure-tries", { n: it.attempts })}`);
    return h("article", { class: "fail", "data-testid": "failure", "data-mutation": it.mutation_id, "data-index": index },
      headEl,
      h("p", { class: "reason", "data-testid": "failure-reason" }, reasonText(it)),
      h("p", { class: "next" }, editable ? t("failure-next-edit") : t("failure-next")),
      it.payload ? h("pre", { class: "payload" }, Object.entries(it.payload).map(([k, v]) => `${k}: ${value(v)}`).join("\n")) : null,
      h("div", { class: "actions" },
        editable
          ? h("button", {
            class: "primary", "data-testid": "edit", "data-key": `edit-${it.mutation_id}`,
            "aria-label": t("failure-edit-named", { label: name(it) }),
            onclick: () => { editing = it.mutation_id; confirming = null; render(); focusEditor(); },
          }, t("failure-edit"))
          : null,
        h("button", {
          class: editable ? "" : "primary", "data-testid": "retry", "data-key": `retry-${it.mutation_id}`,
          "aria-label": t("failure-retry-named", { label: name(it) }),
          onclick: () => { refocus = index; void act(api.retry(it.mutation_id), t("toast-queued-again")); },
        }, t("failure-retry")),
        h("button", {
          class: armed ? "danger" : "",
          "data-testid": "discard", "data-key": `discard-${it.mutation_id}`,
          "aria-label": armed ? t("failure-discard-confirm-named", { label: name(it) }) : t("failure-discard-named", { label: name(it) }),
          onclick: () => {
            if (!armed) { confirming = it.mutation_id; render(); return; }
            confirming = null;
            refocus = index;
            void act(api.discard(it.mutation_id), t("toast-discarded"));
          },
        }, armed ? t("failure-discard-confirm") : t("failure-discard"))));
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
          "aria-describedby": reason.includes(`${key}: `) ? `reason-${it.mutation_id}` : null,
        });
      return [key, v, input];
    });
    const problem = h("p", { class: "reason hidden", role: "alert", "data-testid": "edit-problem" });
    const form = h("form", { class: "fix", "data-testid": "edit-form", "aria-label": t("failure-edit-form", { label: name(it) }) },
      ...inputs.map(([key, , input]) => h("div", { class: "row" }, h("label", { for: input.id }, key), input)),
      problem,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary", "data-testid": "send-corrected" }, t("failure-send-corrected")),
        h("button", { type: "button", "data-testid": "edit-cancel", onclick: () => { editing = null; render(); list.querySelector<HTMLElement>(`[data-key="edit-${it.mutation_id}"]`)?.focus(); } }, t("cancel"))));
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
      refocus = pager.items.findIndex((x) => x.mutation_id === it.mutation_id);
      void act(api.correct(it.mutation_id, fields), t("toast-corrected"));
    });
    return h("article", { class: "fail", "data-testid": "failure", "data-mutation": it.mutation_id },
      head(it, t("failure-correcting")),
      h("p", { class: "reason", "data-testid": "failure-reason", id: `reason-${it.mutation_id}` }, reasonText(it)),
      form);
  }

  function focusEditor() {
    const form = list.querySelector('[data-testid="edit-form"]');
    (form?.querySelector<HTMLInputElement>('input[aria-invalid="true"]') ?? form?.querySelector<HTMLInputElement>("input"))?.focus();
  }

  function render() {
    keepFocus(el, () => {
      clear(list);
      if (pager.items.length === 0 && pager.done) {
        list.append(h("p", { class: "empty", "data-testid": "failures-empty" }, t("failures-empty")));
      }
      list.append(...pager.items.map(item));
      more.classList.toggle("hidden", pager.done);
      retryAll.toggleAttribute("disabled", pager.items.length === 0);
    }, () => heading);
    if (refocus !== null) {
      const at = refocus;
      refocus = null;
      focusAfterRemoval([...list.querySelectorAll<HTMLElement>("[data-testid=failure]")], at, ".actions button", heading);
    }
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

  const ready = reload();
  let last = -1;
  return {
    el,
    ready,
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
    return text !== "" && Number.isFinite(n) ? { ok: true, value: n } : { ok: false, problem: t("edit-problem-number") };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, problem: t("edit-problem-json") };
  }
}
