// What the view tests share: a mocked IPC that records every call, a
// context, and ways to wait and to find elements.
import { mockIPC } from "@tauri-apps/api/mocks";
import { vi } from "vitest";
import type { Ctx } from "../src/ctx";
import { status } from "./fixtures";

export type Call = { cmd: string; args: Record<string, unknown> };
export const calls: Call[] = [];

/** Answers commands with `handlers`; any other command fails the test. */
export function ipc(handlers: Record<string, (args: Record<string, unknown>) => unknown>, events = false) {
  calls.length = 0;
  mockIPC((cmd, args) => {
    calls.push({ cmd, args: (args ?? {}) as Record<string, unknown> });
    const f = handlers[cmd];
    if (!f) throw new Error(`unexpected command ${cmd}`);
    return f((args ?? {}) as Record<string, unknown>);
  }, { shouldMockEvents: events });
}

/** The arguments of every call of `cmd`, in order. */
export const sent = (cmd: string) => calls.filter((c) => c.cmd === cmd).map((c) => c.args);

export function ctx(over: Partial<Ctx> = {}): Ctx {
  return { status: () => status(), info: () => null, go: vi.fn(), toast: vi.fn(), ...over };
}

const tick = () => new Promise((r) => setTimeout(r, 5));
export async function settle() { for (let i = 0; i < 6; i++) await tick(); }
export const byTestId = (root: ParentNode, id: string) => [...root.querySelectorAll<HTMLElement>(`[data-testid="${id}"]`)];
