// Keyset paging over the outbox: each page asks for items after the last
// `seq` seen, so page 200 costs the same as page 1, and the UI only ever
// holds what the user scrolled past.
import type { MutationState } from "./bindings/MutationState";
import type { QueueItem } from "./bindings/QueueItem";

export type PageFn = (filter: MutationState | null, after: number | null, limit: number) => Promise<QueueItem[]>;

export class KeysetPager {
  items: QueueItem[] = [];
  done = false;
  private inflight: Promise<void> | null = null;
  private generation = 0;

  constructor(
    private readonly fetchPage: PageFn,
    public filter: MutationState | null = null,
    public readonly pageSize = 500,
  ) {}

  /** Loads the next page unless everything is loaded; concurrent calls share one request. */
  loadMore(): Promise<void> {
    if (this.done) return Promise.resolve();
    if (this.inflight) return this.inflight;
    const gen = this.generation;
    const after = this.items.length ? this.items[this.items.length - 1].seq : null;
    this.inflight = this.fetchPage(this.filter, after, this.pageSize)
      .then((page) => {
        if (gen !== this.generation) return; // reset while loading: drop it
        this.items.push(...page);
        if (page.length < this.pageSize) this.done = true;
      })
      .finally(() => {
        if (gen === this.generation) this.inflight = null;
      });
    return this.inflight;
  }

  /** Loads pages until at least `count` items are there (or all are). */
  async ensure(count: number): Promise<void> {
    while (!this.done && this.items.length < count) {
      await this.loadMore();
    }
  }

  /** Starts over (a new filter, or the queue changed under us). */
  reset(filter: MutationState | null = this.filter) {
    this.generation++;
    this.filter = filter;
    this.items = [];
    this.done = false;
    this.inflight = null;
  }
}

/** Which rows a window of `height` px scrolled to `scrollTop` shows, with overscan. */
export function visibleRange(scrollTop: number, height: number, rowHeight: number, total: number, overscan = 8) {
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(total, Math.ceil((scrollTop + height) / rowHeight) + overscan);
  return { first, last };
}
