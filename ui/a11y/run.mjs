#!/usr/bin/env node
// Accessibility check of the window, in a real browser.
//
//   cd ui && npm run a11y                    # axe-core, every view, en + nb, light + dark
//   cd ui && npm run a11y -- --screenshots   # also writes docs/screenshots/{en,nb}/<view>.png
//
// Needs: `npm ci` in ui/ (puppeteer-core and axe-core are devDependencies;
// puppeteer-core never downloads a browser) and a system Chromium
// (Debian: `apt-get install chromium`; another binary: CHROMIUM=/path).
//
// It serves the page with Vite (index.html itself, its script swapped for
// a11y/main.ts: the real shell and views with the Tauri commands mocked by
// a11y/fixtures.ts: queued items, a failure
// the server's schema refused, two conflicts, a restorable history entry,
// a failed sync run, settings) on a free loopback port, visits every view
// in each language and colour scheme, also with a History row opened, a
// conflict's per-field pick chosen, a failed change's correction form and
// the overview's Details open, and runs axe-core with the WCAG 2.0/2.1 A
// and AA rules. It prints every violation and exits 1 if any is serious
// or critical (2 if the page could not be checked at all).
import { readFileSync, mkdirSync } from "node:fs";
import { createServer as netServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import puppeteer from "puppeteer-core";
import { createServer } from "vite";

const UI = join(dirname(fileURLToPath(import.meta.url)), "..");
const SHOTS = join(UI, "..", "docs", "screenshots");
const screenshots = process.argv.includes("--screenshots");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
// The window's size (src-tauri/src/window.rs).
const VIEWPORT = { width: 1000, height: 680 };
const VIEWS = ["overview", "queue", "failures", "conflicts", "history", "settings"];
const TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

function freePort() {
  return new Promise((resolve, reject) => {
    const s = netServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// index.html as the window loads it, with the mock started before the shell.
const SHELL = 'src="/src/main.ts"';
const withMock = {
  name: "ferry-a11y-mock",
  transformIndexHtml(html) {
    if (!html.includes(SHELL)) throw new Error(`index.html no longer loads the shell with ${SHELL}; update a11y/run.mjs`);
    return html.replace(SHELL, 'src="/a11y/main.ts"');
  },
};

const port = await freePort();
const vite = await createServer({
  root: UI, configFile: join(UI, "vite.config.ts"), logLevel: "warn", clearScreen: false,
  plugins: [withMock],
  server: { host: "127.0.0.1", port, strictPort: true, hmr: false, fs: { allow: [join(UI, "..")] } },
});
await vite.listen();
const base = `http://127.0.0.1:${port}/index.html`;

const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: true, // the new headless mode
  args: [...(process.getuid?.() === 0 ? ["--no-sandbox"] : []), "--headless=new", "--disable-gpu", "--font-render-hinting=none"],
});

const found = []; // { lang, scheme, where, id, impact, help, nodes }
let failedToCheck = false;

async function axe(page, lang, scheme, where) {
  const result = await page.evaluate(async (tags) => {
    const r = await window.axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => `${n.target.join(" ")}${n.any[0]?.message ? ` — ${n.any[0].message}` : ""}`),
    }));
  }, TAGS);
  for (const v of result) found.push({ lang, scheme, where, ...v });
  return result.length;
}

const settle = (page) => page.evaluate(() => new Promise((r) => setTimeout(r, 250)));

async function go(page, view) {
  await page.click(`[data-testid="nav-${view}"]`);
  await page.waitForSelector(`[data-testid="view-${view}"]`);
  await settle(page);
}

try {
  for (const lang of ["en", "nb"]) {
    for (const scheme of ["light", "dark"]) {
      const page = await browser.newPage();
      await page.setViewport(VIEWPORT);
      await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: scheme }]);
      const errors = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${base}?lang=${lang}`, { waitUntil: "networkidle0" });
      await page.waitForSelector('[data-testid="view-overview"] h1');
      await page.addScriptTag({ content: axeSource });
      const htmlLang = await page.evaluate(() => document.documentElement.lang);
      if (htmlLang !== lang) { console.error(`${lang}: <html lang> is ${htmlLang}`); failedToCheck = true; }
      let n = 0;
      for (const view of VIEWS) {
        await go(page, view);
        if (screenshots && scheme === "light") {
          mkdirSync(join(SHOTS, lang), { recursive: true });
          await page.screenshot({ path: join(SHOTS, lang, `${view}.png`) });
        }
        n += await axe(page, lang, scheme, view);
        // The states a person opens, checked too.
        if (view === "overview") {
          await page.click('[data-testid="last-error"] summary');
          n += await axe(page, lang, scheme, "overview, Details open");
        }
        if (view === "history") {
          await page.click('[data-testid="resolution"] summary');
          await page.click('[data-testid="sync-runs"] [data-testid="run-problem"] summary');
          n += await axe(page, lang, scheme, "history, a row and a run's Details open");
        }
        if (view === "conflicts") {
          const card = '[data-testid="conflict"][data-record="act-001"]';
          for (const pick of ["pick-local-hours", "pick-remote-title", "pick-local-notes"]) await page.click(`${card} [data-testid="${pick}"]`);
          if (screenshots && scheme === "light") await page.screenshot({ path: join(SHOTS, lang, "conflict-picks.png") });
          await page.click('[data-testid="conflict-select"]');
          n += await axe(page, lang, scheme, "conflicts, picks chosen and one selected");
        }
        if (view === "failures") {
          await page.click('[data-testid="edit"]');
          await page.waitForSelector('[data-testid="edit-form"]');
          n += await axe(page, lang, scheme, "failures, correcting");
        }
      }
      if (errors.length) { console.error(`${lang}/${scheme}: page errors:\n  ${errors.join("\n  ")}`); failedToCheck = true; }
      const bad = found.filter((v) => v.lang === lang && v.scheme === scheme && (v.impact === "serious" || v.impact === "critical")).length;
      console.log(`${lang} ${scheme}: ${n} violation(s), ${bad} serious or critical`);
      await page.close();
    }
  }
} catch (e) {
  console.error(e);
  failedToCheck = true;
} finally {
  await browser.close();
  await vite.close();
}

for (const v of found) {
  console.log(`\n[${v.impact}] ${v.lang}/${v.scheme} ${v.where}: ${v.id} — ${v.help}`);
  for (const node of v.nodes) console.log(`    ${node}`);
}
const serious = found.filter((v) => v.impact === "serious" || v.impact === "critical");
if (screenshots) console.log(`\nscreenshots in ${SHOTS}/{en,nb}/`);
if (failedToCheck) process.exit(2);
if (serious.length) {
  console.log(`\n${serious.length} serious or critical violation(s).`);
  process.exit(1);
}
console.log("\nNo serious or critical violations.");
