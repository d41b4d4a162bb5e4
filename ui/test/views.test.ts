import { clearMocks } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startApp } from "../src/main";
import { CONFLICTS_MAX, CONFLICTS_PAGE, conflicts } from "../src/views/conflicts";
import { failures } from "../src/views/failures";
import { queue } from "../src/views/queue";
import { conflict, item, outbox, status } from "./fixtures";
import { byTestId, calls, ctx, ipc, sent, settle } from "./harness";

beforeEach(() => { document.body.innerHTML = ""; });
afterEach(() => clearMocks());

describe("queue view", () => {
  it("keeps 100 000 items smooth: few DOM rows, keyset pages on scroll", async () => {
    const box = outbox(100_000);
    ipc({ queue_page: (a) => box.page(a.filter, a.after as number | null, a.limit as number) });
    const v = queue(ctx({ status: () => status({ pending: 100_000 }) }));
    document.body.append(v.el);
    await settle();
    expect(calls[0]).toMatchObject({ cmd: "queue_page", args: { filter: null, after: null, limit: 500 } });
    expect(byTestId(v.el, "queue-row").length).toBeLessThan(60);
    expect(byTestId(v.el, "queue-count")[0].textContent).toBe("100,000 in the queue");

    // Scroll near the end of the first page: the next page is asked for after seq 500.
    const scroller = byTestId(v.el, "queue-scroller")[0];
    scroller.scrollTop = 34 * 400;
    scroller.dispatchEvent(new Event("scroll"));
    await settle();
    expect(calls.some((c) => c.args.after === 500)).toBe(true);
    const rows = byTestId(v.el, "queue-row");
    expect(rows.length).toBeLessThan(60);
    expect(Number(rows[0].dataset.seq)).toBeGreaterThan(380);
  });

  it("filters by state and says when empty", async () => {
    ipc({ queue_page: (a) => (a.filter === "failed" ? [] : [item(1), item(2)]) });
    const v = queue(ctx());
    document.body.append(v.el);
    await settle();
    expect(byTestId(v.el, "queue-row")).toHaveLength(2);
    const sel = byTestId(v.el, "queue-filter")[0] as HTMLSelectElement;
    sel.value = "failed";
    sel.dispatchEvent(new Event("change"));
    await settle();
    expect(calls[calls.length - 1].args.filter).toBe("failed");
    expect(byTestId(v.el, "queue-empty")[0].classList.contains("hidden")).toBe(false);
  });
});

describe("conflicts view", () => {
  it("keep mine resolves the whole record with the local side", async () => {
    ipc({ conflicts: () => [conflict()], resolve: () => null });
    const v = conflicts(ctx());
    document.body.append(v.el);
    await settle();
    const card = byTestId(v.el, "conflict")[0];
    expect(card.querySelectorAll("tr.differs")).toHaveLength(3);
    byTestId(card, "keep-mine")[0].click();
    await settle();
    expect(calls.find((c) => c.cmd === "resolve")!.args).toEqual({ conflictId: "c1", resolution: { keep: "local", fields: {} } });
  });

  it("per-field picks are required for every differing field", async () => {
    ipc({ conflicts: () => [conflict()], resolve: () => null });
    const v = conflicts(ctx());
    document.body.append(v.el);
    await settle();
    const apply = () => byTestId(v.el, "apply-picks")[0] as HTMLButtonElement;
    expect(apply().disabled).toBe(true);
    byTestId(v.el, "pick-local-hours")[0].click();
    byTestId(v.el, "pick-remote-title")[0].click();
    expect(apply().disabled).toBe(true);
    byTestId(v.el, "pick-local-notes")[0].click();
    expect(apply().disabled).toBe(false);
    expect(byTestId(v.el, "pick-remote-title")[0].getAttribute("aria-pressed")).toBe("true");
    apply().click();
    await settle();
    expect(calls.find((c) => c.cmd === "resolve")!.args).toEqual({
      conflictId: "c1",
      resolution: { keep: "local", fields: { hours: "local", notes: "local", title: "remote" } },
    });
  });

  it("bulk keeps one side for the selected conflicts", async () => {
    ipc({ conflicts: () => [conflict(), conflict({ id: "c2", record_id: "act-002" }), conflict({ id: "c3", record_id: "act-003" })], resolve_all: () => 2 });
    const v = conflicts(ctx());
    document.body.append(v.el);
    await settle();
    const boxes = byTestId(v.el, "conflict-select") as HTMLInputElement[];
    for (const b of boxes.slice(0, 2)) { b.checked = true; b.dispatchEvent(new Event("change")); }
    expect(byTestId(v.el, "bulk-theirs")[0].textContent).toBe("Keep theirs for 2 selected");
    byTestId(v.el, "bulk-theirs")[0].click();
    await settle();
    expect(calls.find((c) => c.cmd === "resolve_all")!.args).toEqual({ keep: "remote", ids: ["c1", "c2"] });
  });
});

describe("conflicts view paging", () => {
  it("shows a page, offers the rest, and keeps all of them in bulk", async () => {
    const all = Array.from({ length: 120 }, (_, i) => conflict({ id: `c${i}`, record_id: `act-${i}` }));
    ipc({ conflicts: (a) => all.slice(0, a.limit as number), resolve_all: () => 120 });
    const v = conflicts(ctx({ status: () => status({ conflicts: 120 }) }));
    document.body.append(v.el);
    await settle();
    expect(sent("conflicts")).toEqual([{ limit: CONFLICTS_PAGE }]);
    expect(byTestId(v.el, "conflict")).toHaveLength(CONFLICTS_PAGE);
    const more = byTestId(v.el, "conflicts-more")[0];
    expect(more.classList.contains("hidden")).toBe(false);
    expect(more.textContent).toBe("Show more (70 not shown)");
    more.click();
    await settle();
    more.click();
    await settle();
    expect(byTestId(v.el, "conflict")).toHaveLength(120);
    expect(more.classList.contains("hidden")).toBe(true);
    // "all" means every open conflict, not only the ones on screen.
    expect(byTestId(v.el, "bulk-mine")[0].textContent).toBe("Keep mine for all 120");
    byTestId(v.el, "bulk-mine")[0].click();
    await settle();
    expect(sent("resolve_all")).toEqual([{ keep: "local", ids: null }]);
  });
});

describe("conflicts view at the app's limit", () => {
  it("stops offering more at the limit and says how to see the rest", async () => {
    // Delete-versus-edit cards: no field table, so 1 000 of them render fast.
    const all = Array.from({ length: 1200 }, (_, i) => conflict({ id: `c${i}`, record_id: `act-${i}`, local: null }));
    ipc({ conflicts: (a) => all.slice(0, Math.min(a.limit as number, CONFLICTS_MAX)) });
    // Pages of 400: 400, 800, then the limit.
    const v = conflicts(ctx({ status: () => status({ conflicts: 1200 }) }), 400);
    document.body.append(v.el);
    await settle();
    const more = byTestId(v.el, "conflicts-more")[0];
    while (!more.classList.contains("hidden")) { more.click(); await settle(); }
    expect(sent("conflicts")).toEqual([{ limit: 400 }, { limit: 800 }, { limit: CONFLICTS_MAX }]);
    expect(byTestId(v.el, "conflict")).toHaveLength(CONFLICTS_MAX);
    const capped = byTestId(v.el, "conflicts-capped")[0];
    expect(capped.classList.contains("hidden")).toBe(false);
    expect(capped.textContent).toContain("oldest 1,000 of 1,200");
  }, 20_000);
});

describe("failures view", () => {
  it("shows the server's reason; retry at once, discard only on a second click", async () => {
    const failed = item(7, { state: "failed", last_error: "amount must be positive", attempts: 1 });
    ipc({ queue_page: () => [failed], retry: () => null, discard: () => null });
    const v = failures(ctx());
    document.body.append(v.el);
    await settle();
    expect(calls[0].args).toMatchObject({ filter: "failed" });
    expect(byTestId(v.el, "failure-reason")[0].textContent).toBe("The server refused this change: amount must be positive");
    byTestId(v.el, "retry")[0].click();
    await settle();
    expect(calls.find((c) => c.cmd === "retry")!.args).toEqual({ mutationId: "m-7" });
    byTestId(v.el, "discard")[0].click();
    await settle();
    expect(calls.some((c) => c.cmd === "discard")).toBe(false);
    byTestId(v.el, "discard")[0].click();
    await settle();
    expect(calls.find((c) => c.cmd === "discard")!.args).toEqual({ mutationId: "m-7" });
  });
});

describe("correcting a failed change", () => {
  it("opens its fields, keeps each field's kind, and sends the correction in one step", async () => {
    const failed = item(8, {
      state: "failed", op: "upsert", attempts: 1,
      last_error: "validation: expense/e8 breaks this server's rules for expense: amount: -150 is less than or equal to the minimum of 0 (rule: exclusiveMinimum)",
      payload: { description: "Taxi", amount: -150, receipt: false, tags: ["trip"] },
    });
    ipc({ queue_page: () => [failed], correct: () => null });
    const v = failures(ctx());
    document.body.append(v.el);
    await settle();
    byTestId(v.el, "edit")[0].click();
    await settle();
    const form = byTestId(v.el, "edit-form")[0];
    const field = (k: string) => form.querySelector<HTMLInputElement>(`[data-field="${k}"]`)!;
    expect(document.activeElement).toBe(field("amount"));
    expect(field("amount").getAttribute("aria-invalid")).toBe("true");
    expect(form.querySelector(`label[for="${field("amount").id}"]`)!.textContent).toBe("amount");

    // Not a number: said next to the form, nothing sent.
    field("amount").value = "lots";
    byTestId(form, "send-corrected")[0].click();
    await settle();
    expect(byTestId(v.el, "edit-problem")[0].textContent).toContain("amount: type a number");
    expect(sent("correct")).toEqual([]);

    field("amount").value = "149,50";
    field("receipt").checked = true;
    byTestId(form, "send-corrected")[0].click();
    await settle();
    expect(sent("correct")).toEqual([
      { mutationId: "m-8", fields: { description: "Taxi", amount: 149.5, receipt: true, tags: ["trip"] } },
    ]);
  });

  it("offers no editing for a delete", async () => {
    ipc({ queue_page: () => [item(9, { state: "failed", op: "delete", payload: null })] });
    const v = failures(ctx());
    document.body.append(v.el);
    await settle();
    expect(byTestId(v.el, "edit")).toHaveLength(0);
    expect(byTestId(v.el, "retry")).toHaveLength(1);
  });
});

describe("the shell", () => {
  it("updates live from the engine's status events, without polling", async () => {
    document.body.innerHTML = `<nav id="nav"><span class="dot" id="brand-dot"></span>
      <button data-view="overview"></button><button data-view="conflicts">Conflicts <span data-count="conflicts"></span></button>
      <span data-count="waiting"></span><div id="nav-foot"></div></nav><main id="view"></main>`;
    ipc({
      app_info: () => ({ version: "0.1.0", demo: true, data_dir: "/tmp/x", locale: "en" }),
      status: () => status({ last_sync_at: Date.now() }),
    }, true);
    const app = startApp(document);
    await app.ready;
    await settle();
    expect(document.querySelector("[data-testid=state-word]")!.textContent).toBe("Up to date");
    const before = calls.length;

    await emit("ferry://status", status({ state: "syncing", pending: 1234, conflicts: 2 }));
    await settle();
    expect(document.querySelector("[data-count=waiting]")!.textContent).toBe("1,234");
    expect(document.querySelector("[data-count=conflicts]")!.textContent).toBe("2");
    expect(document.getElementById("brand-dot")!.className).toBe("dot attention");
    expect(document.querySelector("[data-testid=state-word]")!.textContent).toBe("Syncing");
    expect(document.getElementById("nav-foot")!.textContent).toBe("Syncing · demo");
    // The overview re-rendered from the event alone: no command was called.
    expect(calls.slice(before).filter((c) => !c.cmd.startsWith("plugin:event"))).toEqual([]);
  });
});
