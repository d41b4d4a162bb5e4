import { describe, expect, it } from "vitest";
import { fieldRows, isDeleteConflict, keep, resolutionFromPicks } from "../src/conflict";
import { ago, headline, picture } from "../src/format";
import { KeysetPager, visibleRange } from "../src/pager";
import type { Status } from "../src/bindings/Status";
import { conflict, outbox, status } from "./fixtures";
import pictureCases from "./pictures.json";

describe("keyset pager", () => {
  it("pages by the last seq, never by offset", async () => {
    const box = outbox(100_000);
    const p = new KeysetPager(box.page as never, null, 500);
    await p.loadMore();
    await p.loadMore();
    expect(p.items).toHaveLength(1000);
    expect(box.calls.map((c) => c.after)).toEqual([null, 500]);
    await p.ensure(5_000);
    expect(p.items[4_999].seq).toBe(5_000);
    expect(box.calls.every((c) => c.limit === 500)).toBe(true);
  });

  it("shares one request between concurrent calls and stops at the end", async () => {
    const box = outbox(700);
    const p = new KeysetPager(box.page as never, null, 500);
    await Promise.all([p.loadMore(), p.loadMore(), p.loadMore()]);
    expect(box.calls).toHaveLength(1);
    await p.ensure(10_000);
    expect(p.items).toHaveLength(700);
    expect(p.done).toBe(true);
    await p.loadMore();
    expect(box.calls).toHaveLength(2);
  });

  it("drops a page that arrives after a reset", async () => {
    const box = outbox(1000);
    const p = new KeysetPager(box.page as never, null, 500);
    const first = p.loadMore();
    p.reset("failed");
    await first;
    expect(p.items).toHaveLength(0);
    await p.loadMore();
    expect(box.calls[1]).toMatchObject({ filter: "failed", after: null });
  });

  it("computes the visible window with overscan", () => {
    expect(visibleRange(0, 340, 34, 100_000, 8)).toEqual({ first: 0, last: 18 });
    expect(visibleRange(34 * 50_000, 340, 34, 100_000, 8)).toEqual({ first: 49_992, last: 50_018 });
    expect(visibleRange(34 * 99_999, 340, 34, 100_000, 8).last).toBe(100_000);
  });
});

describe("conflict logic", () => {
  it("lists differing fields first and marks who changed what", () => {
    const rows = fieldRows(conflict());
    expect(rows.map((r) => r.field)).toEqual(["hours", "notes", "title", "mentor"]);
    const hours = rows[0];
    expect(hours).toMatchObject({ differs: true, changedHere: true, changedThere: true });
    expect(rows.find((r) => r.field === "notes")).toMatchObject({ changedHere: true, changedThere: false });
    expect(rows.find((r) => r.field === "mentor")!.differs).toBe(false);
  });

  it("needs a pick for every differing field", () => {
    const c = conflict();
    expect(resolutionFromPicks(c, { hours: "local" })).toBeNull();
    const r = resolutionFromPicks(c, { hours: "local", notes: "local", title: "remote" });
    expect(r).toEqual({ keep: "local", fields: { hours: "local", notes: "local", title: "remote" } });
  });

  it("treats delete-vs-edit as whole-record only", () => {
    const c = conflict({ remote: null, differing_fields: [] });
    expect(isDeleteConflict(c)).toBe(true);
    expect(resolutionFromPicks(c, {})).toBeNull();
    expect(keep("remote")).toEqual({ keep: "remote", fields: {} });
  });
});

describe("status words", () => {
  it("uses the tray's precedence", () => {
    expect(picture(status())).toBe("synced");
    expect(picture(status({ state: "syncing" }))).toBe("syncing");
    expect(picture(status({ state: "offline", pending: 3, paused: true }))).toBe("offline");
    expect(picture(status({ state: "paused", paused: true }))).toBe("paused");
    expect(picture(status({ state: "offline", conflicts: 1 }))).toBe("attention");
    expect(picture(status({ state: "paused", paused: true, failed: 1 }))).toBe("attention");
    expect(picture(status({ state: "needs-sign-in" }))).toBe("attention");
    expect(picture(status({ pending: 2 }))).toBe("syncing");
  });

  it("never heads the overview 'Up to date' while anything waits or needs the user", () => {
    expect(headline(status())).toBe("Up to date");
    expect(headline(status({ pending: 1 }))).toBe("Waiting to upload");
    expect(headline(status({ in_flight: 1 }))).toBe("Waiting to upload");
    expect(headline(status({ conflicts: 2 }))).toBe("Needs your decision");
    expect(headline(status({ failed: 1, pending: 3 }))).toBe("Needs your decision");
    expect(headline(status({ paused: true }))).toBe("Paused");
    expect(headline(status({ state: "offline", conflicts: 1 }))).toBe("Offline");
  });

  it("matches the tray for every case the tray's tests wrote", () => {
    expect(pictureCases.length).toBeGreaterThan(30);
    for (const c of pictureCases) {
      expect(picture(status(c.status as Partial<Status>)), JSON.stringify(c.status)).toBe(c.picture);
    }
  });

  it("says how long ago like the engine", () => {
    expect(ago(1000)).toBe("just now");
    expect(ago(30_000)).toBe("30 s ago");
    expect(ago(125_000)).toBe("2 min ago");
    expect(ago(3 * 3600_000)).toBe("3 h ago");
  });
});
