// The window's shell: navigation, live status from the engine (pushed as
// Tauri events by src-tauri; the UI never polls), and a toast line.
import { api, errorText, onEngineEvent, onSettingsChanged, onStatus } from "./api";
import type { AppInfo } from "./bindings/AppInfo";
import type { Status } from "./bindings/Status";
import { EMPTY_STATUS, type Ctx, type View, type ViewName } from "./ctx";
import { headline, picture } from "./format";
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
    go,
    toast(message, kind = "ok") {
      toastEl.textContent = message;
      toastEl.className = `toast ${kind}`;
      clearTimeout(toastTimer);
      toastTimer = setTimeout(() => toastEl.classList.add("hidden"), kind === "error" ? 8000 : 3000);
    },
  };

  function go(name: ViewName) {
    current?.view.dispose?.();
    const view = VIEWS[name](ctx);
    current = { name, view };
    main.replaceChildren(view.el);
    for (const b of doc.querySelectorAll<HTMLButtonElement>("#nav button[data-view]")) {
      b.classList.toggle("active", b.dataset.view === name);
    }
  }

  function chrome() {
    const waiting = status.pending + status.in_flight;
    const counts: Record<string, number> = { waiting, failed: status.failed, conflicts: status.conflicts };
    for (const b of doc.querySelectorAll<HTMLElement>("[data-count]")) {
      const n = counts[b.dataset.count!] ?? 0;
      b.textContent = n ? n.toLocaleString() : "";
    }
    doc.getElementById("brand-dot")!.className = `dot ${picture(status)}`;
    foot.textContent = `${headline(status)}${info?.demo ? " · demo" : ""}`;
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

  for (const b of doc.querySelectorAll<HTMLButtonElement>("#nav button[data-view]")) {
    b.addEventListener("click", () => go(b.dataset.view as ViewName));
  }

  const ready = (async () => {
    await onStatus(setStatus);
    await onEngineEvent(() => current?.view.refresh());
    await onSettingsChanged(() => { if (current?.name === "settings") go("settings"); });
    try {
      [info, status] = await Promise.all([api.appInfo(), api.status()]);
    } catch (e) {
      ctx.toast(errorText(e), "error");
    }
    chrome();
    go("overview");
  })();
  return { ctx, ready, setStatus, current: () => current };
}

if (typeof window !== "undefined" && !(window as unknown as { __FERRY_TEST__?: boolean }).__FERRY_TEST__) {
  startApp();
}
