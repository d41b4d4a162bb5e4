import { api, errorText } from "../api";
import type { Ctx, View } from "../ctx";
import { clear, h } from "../dom";
import { ago, headline, inFuture, picture, plural } from "../format";

export function overview(ctx: Ctx): View {
  const el = h("section", { class: "view overview", "data-testid": "view-overview" });

  function render() {
    const s = ctx.status();
    const now = Date.now();
    const waiting = s.pending + s.in_flight;
    clear(el);
    const pic = picture(s);
    el.append(
      h("div", { class: `hero ${pic}` },
        h("span", { class: `state-icon ${pic}`, "aria-hidden": "true" }),
        h("div", {},
          h("h1", { "data-testid": "state-word" }, headline(s)),
          h("p", { class: "muted", "data-testid": "last-sync" },
            s.last_sync_at ? `Last synced ${ago(now - s.last_sync_at)}` : "Not synced yet",
            s.server ? ` · ${s.server}` : "",
            s.user ? ` · signed in as ${s.user}` : ""),
        ),
        h("div", { class: "hero-actions" },
          h("button", { class: "primary", "data-testid": "sync-now", onclick: () => act(api.syncNow(), "Syncing now") }, "Sync now"),
          h("button", { "data-testid": "pause-toggle", onclick: () => act(api.setPaused(!s.paused), s.paused ? "Resumed" : "Paused") },
            s.paused ? "Resume" : "Pause"),
        ),
      ),
    );
    if (s.progress && s.state === "syncing" && s.progress.to_upload > 0) {
      const pct = Math.min(100, Math.round((100 * s.progress.uploaded) / s.progress.to_upload));
      const bar = h("div", { class: "bar" });
      bar.style.width = `${pct}%`;
      el.append(h("div", { class: "progress", "data-testid": "progress" },
        h("div", { class: "track" }, bar),
        h("span", { class: "muted" }, `${s.progress.uploaded.toLocaleString()} of ${s.progress.to_upload.toLocaleString()} uploaded · ${s.progress.downloaded.toLocaleString()} downloaded`)));
    }
    el.append(
      h("div", { class: "cards" },
        card("Waiting", waiting, "queue", waiting ? "to upload" : "nothing to upload", "count-waiting"),
        card("Failed", s.failed, "failures", s.failed ? "refused by the server" : "none", "count-failed", s.failed > 0),
        card("Conflicts", s.conflicts, "conflicts", s.conflicts ? "need your decision" : "none", "count-conflicts", s.conflicts > 0),
      ),
    );
    const notes: HTMLElement[] = [];
    if (s.state === "needs-sign-in") {
      notes.push(callout("Your sign-in expired. Your changes are kept; sign in again to keep syncing.", "Sign in", "settings"));
    }
    if (s.conflicts > 0) notes.push(callout(`${plural(s.conflicts, "conflict needs", "conflicts need")} your decision.`, "Resolve", "conflicts"));
    if (s.failed > 0) notes.push(callout(`${plural(s.failed, "change was", "changes were")} refused by the server.`, "Review", "failures"));
    if (s.state === "stalled") notes.push(callout(`${plural(waiting, "change is", "changes are")} waiting and nothing moved for a while.`, "Open queue", "queue"));
    if (s.last_error && s.state !== "idle") {
      notes.push(h("div", { class: "callout", "data-testid": "last-error" }, h("span", {}, s.last_error),
        s.next_retry_at ? h("span", { class: "muted" }, ` · retrying ${inFuture(s.next_retry_at - now)}`) : null));
    }
    if (!s.server) notes.push(callout("No server set up yet.", "Settings", "settings"));
    el.append(...notes);
  }

  function card(title: string, n: number, view: "queue" | "failures" | "conflicts", sub: string, testid: string, warn = false) {
    return h("button", { class: `card${warn ? " warn" : ""}`, "data-testid": testid, onclick: () => ctx.go(view) },
      h("span", { class: "card-title" }, title),
      h("span", { class: "card-n" }, n.toLocaleString()),
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
