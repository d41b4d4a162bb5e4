// The page's words, in Norwegian Bokmål and English (Project Fluent). Every
// .ftl file of a language is loaded (window.ftl is the page's; desktop.ftl,
// the tray's and notifications', shares the ids' namespace), so a new file
// needs no change here. The shell sets the locale from AppInfo.locale,
// which the desktop app decides (OS locale, overridden by the setting).
/// <reference types="vite/client" />
import { FluentBundle, FluentResource, type FluentVariable } from "@fluent/bundle";

export type Locale = "en" | "nb";
export const LOCALES: Locale[] = ["en", "nb"];

/** locales/<lang>/<file>.ftl → its text, picked up at build time. */
export const FTL_FILES: Record<string, string> = import.meta.glob<string>("../../locales/*/*.ftl", {
  query: "?raw", import: "default", eager: true,
});

/** The BCP 47 tag Intl formats with: nb-NO has the 24-hour clock. */
export const INTL_TAG: Record<Locale, string> = { en: "en", nb: "nb-NO" };

const bundles = new Map<Locale, FluentBundle>();

function bundle(l: Locale): FluentBundle {
  let b = bundles.get(l);
  if (b) return b;
  // No bidi isolation marks: both languages are left to right, and the
  // marks would end up in copied text and in the tests' comparisons.
  b = new FluentBundle(INTL_TAG[l], { useIsolating: false });
  for (const [path, text] of Object.entries(FTL_FILES)) {
    if (path.split("/").slice(-2)[0] !== l) continue;
    const errors = b.addResource(new FluentResource(text));
    for (const e of errors) console.error(`${path}: ${e}`);
  }
  bundles.set(l, b);
  return b;
}

let current: Locale = "en";

/** "nb", "no", "nn" and their regions → nb; anything else → en. */
export function toLocale(tag: string | null | undefined): Locale {
  return /^(nb|no|nn)\b/i.test(tag ?? "") ? "nb" : "en";
}

export function locale(): Locale { return current; }
export function intlTag(): string { return INTL_TAG[current]; }

export function setLocale(tag: string | null | undefined, doc: Document | null = typeof document === "undefined" ? null : document) {
  current = toLocale(tag);
  if (doc) doc.documentElement.lang = current;
}

export type Args = Record<string, FluentVariable>;

/** The message `id` (or `id.attribute`) in the current language; English
 * if the current one lacks it; the id itself if neither has it. */
export function t(id: string, args?: Args): string {
  const [msgId, attr] = id.split(".", 2);
  for (const l of current === "en" ? ["en" as Locale] : [current, "en" as Locale]) {
    const b = bundle(l);
    const msg = b.getMessage(msgId);
    const pattern = attr ? msg?.attributes[attr] : msg?.value;
    if (pattern) return b.formatPattern(pattern, args);
  }
  return id;
}

/** index.html's static words: `data-i18n="id"` sets the text, and
 * `data-i18n-aria-label` / `data-i18n-title` those attributes. */
export function translateStatic(root: ParentNode) {
  for (const el of root.querySelectorAll<HTMLElement>("[data-i18n]")) el.textContent = t(el.dataset.i18n!);
  for (const attr of ["aria-label", "title"]) {
    for (const el of root.querySelectorAll<HTMLElement>(`[data-i18n-${attr}]`)) {
      el.setAttribute(attr, t(el.getAttribute(`data-i18n-${attr}`)!));
    }
  }
}
