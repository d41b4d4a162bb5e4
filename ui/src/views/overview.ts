import { api, errorText } from "../api";
import type { Ctx, View } from "../ctx";
import { clear, details, h } from "../dom";
import { ago, headline, number, picture, problemWords } from "../format";
import { t } from "../i18n";

export function overview(ctx: Ctx): View {
  const el = h("section", { class: "view overview", "data-testid": "view-overview" });

  function render() {
    const s = ctx.status();
    const now = Date.now();
    const waiting = s.pending + s.in_flight;
    // The heading and the buttons are rebuilt on every push: keep the focus.
    const activeKey = (el.ownerDocument.activeElement as HTMLElement | null)?.dataset?.testid;
    const hadFocus = el.contains(el.ownerDocument.activeElement);
    const detailsOpen = el.querySelector<HTMLDetailsElement>("[data-testid=last-error] details")?.open ?? false;
    clear(el);
    const pic = picture(s);
    el.append(
      h("div", { class: `hero ${pic}` },
        h("span", { class: `state-icon ${pic}`, "aria-hidden": "true" }),
        h("div", {},
          h("h1", { "data-testid": "state-word", tabindex: -1 }, headline(s)),
          h("p", { class: "muted", "data-testid": "last-sync" },
            s.last_sync_at ? t("overview-last-synced", { ago: ago(now - s.last_sync_at) }) : t("overview-not-synced"),
            s.server ? ` · ${s.server}` : "",
            s.user ? ` · ${t("overview-signed-in-as", { user: s.user })}` : ""),
        ),
        h("div", { class: "hero-actions" },
          h("button", { class: "primary", "data-testid": "sync-now", onclick: () => act(api.syncNow(), t("toast-syncing")) }, t("overview-sync-now")),
          h("button", { "data-testid": "pause-toggle", onclick: () => act(api.setPaused(!s.paused), s.paused ? t("toast-resumed") : t("toast-paused")) },
            s.paused ? t("overview-resume") : t("overview-pause")),
        ),
      ),
    );
    if (s.progress && s.state === "syncing" && s.progress.to_upload > 0) {
      const pct = Math.min(100, Math.round((100 * s.progress.uploaded) / s.progress.to_upload));
      const bar = h("div", { class: "bar" });
      bar.style.width = `${pct}%`;
      el.append(h("div", { class: "progress", "data-testid": "progress" },
        h("div", {
          class: "track", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct,
          "aria-label": t("overview-progress-label"),
        }, bar),
        h("span", { class: "muted" }, t("overview-progress", {
          uploaded: s.progress.uploaded, total: s.progress.to_upload, downloaded: s.progress.downloaded,
        }))));
    }
    el.append(
      h("div", { class: "cards" },
        card(t("overview-card-waiting"), waiting, "queue", waiting ? t("overview-card-waiting-some") : t("overview-card-waiting-none"), "count-waiting"),
        card(t("overview-card-failed"), s.failed, "failures", s.failed ? t("overview-card-failed-some") : t("overview-card-none"), "count-failed", s.failed > 0),
        card(t("overview-card-conflicts"), s.conflicts, "conflicts", s.conflicts ? t("overview-card-conflicts-some") : t("overview-card-none"), "count-conflicts", s.conflicts > 0),
      ),
    );
    const notes: HTMLElement[] = [];
    // The sign-in callout already says it in plain words: no second one.
    const signIn = s.state === "needs-sign-in";
    if (signIn) {
      const c = callout(t("overview-sign-in-expired"), t("overview-go-sign-in"), "settings");
      if (s.last_error) {
        c.dataset.testid = "last-error";
        c.append(details(t("details"), s.last_error, "details", detailsOpen));
      }
      notes.push(c);
    }
    if (s.conflicts > 0) notes.push(callout(t("overview-conflicts-need", { n: s.conflicts }), t("overview-go-resolve"), "conflicts"));
    if (s.failed > 0) notes.push(callout(t("overview-failed-refused", { n: s.failed }), t("overview-go-review"), "failures"));
    if (s.state === "stalled") notes.push(callout(t("overview-stalled", { n: waiting }), t("overview-go-queue"), "queue"));
    if (s.last_error && s.state !== "idle" && !signIn) {
      notes.push(h("div", { class: "callout problem", "data-testid": "last-error" },
        h("p", { "data-testid": "problem" }, problemWords(s.problem, s.next_retry_at, now)),
        details(t("details"), s.last_error, "details", detailsOpen)));
    }
    if (!s.server) notes.push(callout(t("overview-no-server"), t("overview-go-settings"), "settings"));
    el.append(...notes);
    if (hadFocus && activeKey) el.querySelector<HTMLElement>(`[data-testid="${activeKey}"]`)?.focus();
  }

  function card(title: string, n: number, view: "queue" | "failures" | "conflicts", sub: string, testid: string, warn = false) {
    return h("button", { class: `card${warn ? " warn" : ""}`, "data-testid": testid, onclick: () => ctx.go(view) },
      h("span", { class: "card-title" }, title),
      h("span", { class: "card-n" }, number(n)),
      h("span", { class: "muted" }, sub));
  }

  function callout(text: string, action: string, view: "settings" | "conflicts" | "failures" | "queue") {
    return h("div", { class: "callout attention" }, h("span", {}, text), h("button", { onclick: () => ctx.go(view) }, action));
  }

  async function act(p: Promise<unknown>, ok: string) {
    try {
      await p;
      ctx.toast(ok);
    } catch (e) {
      ctx.toast(errorText(e), "error");
    }
  }

  render();
  return { el, refresh: render };
}
