// Keep src/main.ts from booting on import, and give jsdom a frame clock.
(window as unknown as { __FERRY_TEST__: boolean }).__FERRY_TEST__ = true;
if (!window.requestAnimationFrame) {
  window.requestAnimationFrame = (f: FrameRequestCallback) => setTimeout(() => f(performance.now()), 0) as unknown as number;
  window.cancelAnimationFrame = (id: number) => clearTimeout(id);
}
