// The messages: both languages have the same ids and attributes (over every
// .ftl file, the desktop's too), the page's own ids avoid the desktop's
// prefixes, every id the page uses exists, and switching the language
// switches the words and the clock.
import { FluentResource } from "@fluent/bundle";
import { afterEach, describe, expect, it } from "vitest";
import { clock, inFuture, number, problemWords } from "../src/format";
import { FTL_FILES, LOCALES, locale, setLocale, t } from "../src/i18n";
import INDEX_HTML from "../index.html?raw";

// Read through Vite, like the page: no Node types in the project.
const LOCALE_FILES = import.meta.glob<string>("../../locales/**/*", { query: "?raw", import: "default", eager: true });
const SRC_FILES = import.meta.glob<string>("../src/**/*.ts", { query: "?raw", import: "default", eager: true });

/** lang → file name → text, for every file under locales/. */
function tree(): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  for (const [path, text] of Object.entries(LOCALE_FILES)) {
    const [lang, file] = path.split("/").slice(-2);
    if (!out.has(lang)) out.set(lang, new Map());
    out.get(lang)!.set(file, text);
  }
  return out;
}

/** id → attribute names, for every message and term of a language's files. */
function messages(lang: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [file, text] of tree().get(lang) ?? []) {
    if (!file.endsWith(".ftl")) continue;
    const res = new FluentResource(text);
    const ids = new Set<string>();
    for (const m of res.body) {
      expect(out.has(m.id), `${lang}/${file}: ${m.id} is defined twice`).toBe(false);
      out.set(m.id, Object.keys(m.attributes).sort());
      ids.add(m.id);
    }
    // A message the parser skipped (a syntax error) would go missing silently.
    for (const line of text.split("\n")) {
      const m = /^(-?[a-zA-Z][\w-]*)\s*=/.exec(line);
      if (m) expect(ids.has(m[1].replace(/^-/, "")) || ids.has(m[1]), `${lang}/${file}: ${m[1]} did not parse`).toBe(true);
    }
  }
  return out;
}

afterEach(() => setLocale("en"));

describe("messages", () => {
  it("every language has the same message ids and attributes, in every file", () => {
    const langs = [...tree().keys()].sort();
    expect(langs).toEqual(["en", "nb"]);
    const en = messages("en");
    expect(en.size).toBeGreaterThan(150);
    for (const lang of langs.slice(1)) {
      const other = messages(lang);
      const missing = [...en.keys()].filter((id) => !other.has(id));
      const extra = [...other.keys()].filter((id) => !en.has(id));
      expect({ lang, missing, extra }).toEqual({ lang, missing: [], extra: [] });
      for (const [id, attrs] of en) expect(other.get(id), `${lang}: attributes of ${id}`).toEqual(attrs);
    }
  });

  it("the page's file uses none of the desktop's prefixes", () => {
    for (const lang of LOCALES) {
      const res = new FluentResource(tree().get(lang)!.get("window.ftl")!);
      const bad = res.body.map((m) => m.id).filter((id) => /^(tray|notify)-/.test(id));
      expect(bad).toEqual([]);
    }
  });

  it("the page loads every .ftl file there is", () => {
    const onDisk = LOCALES.flatMap((l) => [...tree().get(l)!.keys()].filter((f) => f.endsWith(".ftl")).map((f) => `${l}/${f}`)).sort();
    const loaded = Object.keys(FTL_FILES).map((p) => p.split("/").slice(-2).join("/")).sort();
    expect(loaded).toEqual(onDisk);
  });

  it("every id the page uses exists in English", () => {
    const en = messages("en");
    const used = new Set<string>();
    expect(Object.keys(SRC_FILES).length).toBeGreaterThan(10);
    for (const text of Object.values(SRC_FILES)) {
      for (const m of text.matchAll(/\bt\(\s*"([a-z0-9-]+(?:\.[a-z0-9-]+)?)"/g)) used.add(m[1]);
      // Ternaries: t(x ? "a" : "b").
      for (const m of text.matchAll(/\bt\(\s*[\w.]+\s*\?\s*"([a-z0-9-]+)"\s*:\s*"([a-z0-9-]+)"/g)) { used.add(m[1]); used.add(m[2]); }
    }
    for (const m of INDEX_HTML.matchAll(/data-i18n(?:-[a-z-]+)?="([a-z0-9-]+)"/g)) used.add(m[1]);
    // Ids built from a value: every value they can take.
    const built = [
      ...["idle", "syncing", "offline", "paused", "error", "stalled", "needs-sign-in"].map((s) => `state-${s}`),
      ...["unreachable", "server-error", "rate-limited", "untrusted-certificate", "sign-in-needed", "bad-answer", "refused", "local-data", "other"]
        .flatMap((p) => [`problem-${p}`, `problem-${p}-next`]),
      ...["pending", "in-flight", "failed", "conflict"].map((s) => `queue-state-${s}`),
      ...["upsert", "delete"].map((s) => `queue-op-${s}`),
      ...["state", "record", "change", "tries", "edited", "note"].map((s) => `queue-col-${s}`),
      ...["lww", "server-wins", "client-wins", "merge", "manual"].map((s) => `policy-${s}`),
      ...["finished", "took", "uploaded", "downloaded", "failed", "conflicts", "result"].map((s) => `history-col-${s}`),
      ...["local", "remote", "merged", "other"].map((s) => `history-winner-${s}`),
      ...["system", "nb", "en"].map((s) => `settings-language-${s}`),
      "conflict-pick-mine", "conflict-pick-theirs",
    ];
    for (const id of built) used.add(id);
    expect(used.size).toBeGreaterThan(150);
    const missing = [...used].filter((id) => { const [m, a] = id.split("."); return !en.has(m) || (a && !en.get(m)!.includes(a)); });
    expect(missing).toEqual([]);
  });
});

describe("the language", () => {
  it("follows AppInfo.locale, sets <html lang> and switches the words", () => {
    setLocale("nb");
    expect(locale()).toBe("nb");
    expect(document.documentElement.lang).toBe("nb");
    expect(t("nav-queue")).toBe("Kø");
    expect(t("conflict-keep-mine")).toBe("Behold min");
    setLocale("en");
    expect(document.documentElement.lang).toBe("en");
    expect(t("nav-queue")).toBe("Queue");
    // Anything but Norwegian is English.
    setLocale("de");
    expect(locale()).toBe("en");
  });

  it("formats times on the 24-hour clock and numbers the Norwegian way in nb", () => {
    const at = new Date(2026, 2, 4, 15, 7, 9).getTime();
    setLocale("nb");
    expect(clock(at, new Date(at))).toBe("15:07:09");
    expect(number(1234567).replace(/\s/g, " ")).toBe("1 234 567");
    expect(inFuture(4000)).toBe("om 4 s");
    setLocale("en");
    expect(clock(at, new Date(at))).toMatch(/^03:07:09\sPM$/);
    expect(number(1234567)).toBe("1,234,567");
    expect(inFuture(4000)).toBe("in 4 s");
  });

  it("says a problem in plain words with what Ferry does next", () => {
    const now = 1_000_000;
    setLocale("nb");
    expect(problemWords("unreachable", now + 4000, now)).toBe("Kan ikke nå serveren. Ferry prøver igjen om 4 s.");
    setLocale("en");
    expect(problemWords("unreachable", now + 4000, now)).toBe("Can't reach the server. Ferry tries again in 4 s.");
    // Not retried by itself: what the user can do instead.
    expect(problemWords("sign-in-needed", now + 4000, now)).toBe("You need to sign in again. Your changes are kept. Sign in under Settings to go on syncing.");
    expect(problemWords(null, null, now)).toContain("Something went wrong");
  });
});
