// The window's shell: navigation, live status from the engine (pushed as
// Tauri events by src-tauri; the UI never polls), the toast line, and the
// language (AppInfo.locale, read again when the settings change).
import { api, errorText, onEngineEvent, onSettingsChanged, onStatus } from "./api";
import type { AppInfo } from "./bindings/AppInfo";
import type { Status } from "./bindings/Status";
import { EMPTY_STATUS, type Ctx, type View, type ViewName } from "./ctx";
import { headline, number, picture } from "./format";
import { locale, setLocale, t, translateStatic } from "./i18n";
import { conflicts } from "./views/conflicts";
import { failures } from "./views/failures";
import { history } from "./views/history";
import { overview } from "./views/overview";
import { queue } from "./views/queue";
import { settings } from "./views/settings";

const VIEWS: Record<ViewName, (ctx: Ctx) => View> = { overview, queue, failures, conflicts, history, settings };

export function startApp(doc: Document = document) {
  let status: Status = EMPTY_STATUS;
  let info: AppInfo | null = null;
  let current: { name: ViewName; view: View } | null = null;
  const main = doc.getElementById("view")!;
  const foot = doc.getElementById("nav-foot")!;
  let toastTimer: ReturnType<typeof setTimeout> | undefined;
  const toastEl = doc.createElement("div");
  toastEl.className = "toast hidden";
  toastEl.setAttribute("role", "status");
  toastEl.dataset.testid = "toast";
  doc.body.append(toastEl);

  const ctx: Ctx = {
    status: () => status,
    info: () => info,
    go: (name) => go(name),
    toast(message, kind = "ok", ms) {
      // A command's refusal is the engine's text: say first that it did not work.
      toastEl.textContent = kind === "error" ? t("toast-error", { reason: message }) : message;
      toastEl.className = `toast ${kind}`;
      clearTimeout(toastTimer);
      toastTimer = setTimeout(() => toastEl.classList.add("hidden"), ms ?? (kind === "error" ? 8000 : 3000));
    },
  };

  /** Shows a view. `focus`: move the keyboard focus to its heading (a
   * switch the user made), instead of leaving it in the navigation. */
  function go(name: ViewName, focus = true) {
    current?.view.dispose?.();
    const view = VIEWS[name](ctx);
    current = { name, view };
    main.replaceChildren(view.el);
    for (const b of doc.querySelectorAll<HTMLButtonElement>("#nav button[data-view]")) {
      const on = b.dataset.view === name;
      b.classList.toggle("active", on);
      if (on) b.setAttribute("aria-current", "page");
      else b.removeAttribute("aria-current");
    }
    const h1 = view.el.querySelector<HTMLElement>("h1");
    if (h1) {
      h1.tabIndex = -1;
      if (focus) h1.focus();
    }
  }

  function chrome() {
    const waiting = status.pending + status.in_flight;
    const counts: Record<string, number> = { waiting, failed: status.failed, conflicts: status.conflicts };
    for (const b of doc.querySelectorAll<HTMLElement>("[data-count]")) {
      const n = counts[b.dataset.count!] ?? 0;
      b.textContent = n ? number(n) : "";
    }
    doc.getElementById("brand-dot")!.className = `dot ${picture(status)}`;
    foot.textContent = `${headline(status)}${info?.demo ? ` · ${t("nav-demo")}` : ""}`;
  }

  // Several status updates can arrive in one frame while a queue drains.
  let pending = false;
  function setStatus(s: Status) {
    status = s;
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      chrome();
      current?.view.refresh();
    });
  }

  /** The language may have changed: take the app's word for it, and
   * re-render everything in it (the settings view keeps the focus). */
  async function settingsChanged() {
    const before = locale();
    try { info = await api.appInfo(); } catch (e) { ctx.toast(errorText(e), "error"); }
    setLocale(info?.locale, doc);
    if (locale() !== before) {
      translateStatic(doc);
      chrome();
    }
    if (current && (current.name === "settings" || locale() !== before)) {
      const active = doc.activeElement as HTMLElement | null;
      const key = active && main.contains(active) ? active.dataset.testid : undefined;
      go(current.name, false);
      await current.view.ready;
      const again = key ? main.querySelector<HTMLElement>(`[data-testid="${key}"]`) : null;
      if (again) again.focus();
      else if (key) main.querySelector<HTMLElement>("h1")?.focus();
    }
  }

  for (const b of doc.querySelectorAll<HTMLButtonElement>("#nav button[data-view]")) {
    b.addEventListener("click", () => go(b.dataset.view as ViewName));
  }

  const ready = (async () => {
    await onStatus(setStatus);
    await onEngineEvent(() => current?.view.refresh());
    await onSettingsChanged(() => void settingsChanged());
    try {
      [info, status] = await Promise.all([api.appInfo(), api.status()]);
    } catch (e) {
      ctx.toast(errorText(e), "error");
    }
    setLocale(info?.locale, doc);
    translateStatic(doc);
    chrome();
    go("overview", false);
  })();
  return { ctx, ready, setStatus, current: () => current };
}

if (typeof window !== "undefined" && !(window as unknown as { __FERRY_TEST__?: boolean }).__FERRY_TEST__) {
  startApp();
}
