import { defineConfig } from "vitest/config";

// Tauri serves the built files from ui/dist; the dev server is only for `tauri dev`.
export default defineConfig({
  clearScreen: false,
  // locales/ lives beside ui/: the dev server may read it.
  server: { port: 5173, strictPort: true, fs: { allow: [".."] } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2021",
    // WebKitGTK: keep the output plain; no inline scripts (strict CSP).
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  test: {
    environment: "jsdom",
    include: ["test/**/*.test.ts"],
    setupFiles: ["test/setup.ts"],
    globals: true,
  },
});
