// Tiny DOM helpers. Text always goes in through textContent, never
// innerHTML: record fields are user data and the CSP forbids inline code.

type Attrs = Record<string, string | number | boolean | undefined | null | EventListener>;
export type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2).toLowerCase(), v as EventListener);
    } else if (k === "class") {
      el.className = String(v);
    } else if (v === true) {
      el.setAttribute(k, "");
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el: HTMLElement, children: (Child | Child[])[]) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el: HTMLElement) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** The technical text behind a "Details" disclosure (closed by default). */
export function details(summary: string, text: string, testid = "details", open = false): HTMLDetailsElement {
  return h("details", { class: "tech", "data-testid": testid, open }, h("summary", {}, summary), h("pre", {}, text));
}

/** What identifies a control across re-renders: its data-key, else its data-testid. */
function focusKey(el: Element | null): string | null {
  if (!(el instanceof HTMLElement)) return null;
  return el.dataset.key ?? el.dataset.testid ?? null;
}

/**
 * Runs `paint` (which rebuilds part of `root`) and puts the keyboard focus
 * back on the control that had it, found again by its key; if it is gone,
 * on `fallback()`. Without this a rebuilt list drops focus to the body.
 */
export function keepFocus(root: HTMLElement, paint: () => void, fallback?: () => HTMLElement | null | undefined) {
  const doc = root.ownerDocument;
  const active = doc.activeElement;
  const key = active && active !== doc.body && root.contains(active) ? focusKey(active) : null;
  paint();
  if (key === null || (doc.activeElement && doc.activeElement !== doc.body && root.contains(doc.activeElement))) return;
  const again = [...root.querySelectorAll<HTMLElement>("[data-key],[data-testid]")].find((e) => focusKey(e) === key);
  // A control that went (or got disabled, or hidden) cannot hold the focus.
  const usable = again && !(again as HTMLButtonElement).disabled && !again.closest(".hidden");
  const target = usable ? again : fallback?.();
  target?.focus();
}

/** The focus target after an item left a list: the first action of the item
 * now at `index` (or the last one), else the view's heading. */
export function focusAfterRemoval(items: HTMLElement[], index: number, action: string, heading: HTMLElement) {
  const card = items[Math.min(index, items.length - 1)];
  const target = card?.querySelector<HTMLElement>(action) ?? heading;
  target.focus();
}
