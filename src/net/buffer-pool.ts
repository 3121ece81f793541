/**
 * A free list of equal-sized buffers. Feet are 2 MiB; allocating a fresh one
 * per foot leaves the garbage collector hundreds of MiB behind the window
 * (README, Performance). Reusing them keeps memory where the window says it is.
 *
 * With `maxLent` the pool is also a budget: at most that many buffers are
 * out at once, so the pool never holds more than `maxLent × bufferBytes`
 * (lent plus free). `tryTake` then says "not now" instead of allocating, and
 * `whenAvailable` calls back once a buffer has come back.
 */
export class BufferPool {
  private readonly free: Uint8Array[] = [];
  /** Buffers handed out and not yet given back: only these are taken back, once each. */
  private readonly lent = new Set<ArrayBufferLike>();
  private waiters: (() => void)[] = [];

  constructor(
    readonly bufferBytes: number,
    /** Buffers kept for reuse at most; more are left to the collector. */
    private readonly maxFree: number,
    /** Buffers out at once at most (`tryTake`); `take` ignores it. */
    private lendLimit = Number.POSITIVE_INFINITY,
  ) {}

  /** Buffers out at once at most (`tryTake`). */
  get maxLent(): number {
    return this.lendLimit;
  }

  /** Raises `maxLent` (never lowers it); those waiting for a buffer try again. */
  raiseMaxLent(maxLent: number): void {
    if (maxLent <= this.lendLimit) return;
    this.lendLimit = maxLent;
    this.wakeWaiters();
  }

  /** Buffers waiting for reuse. */
  get freeCount(): number {
    return this.free.length;
  }

  /** Buffers handed out and not given back. */
  get lentCount(): number {
    return this.lent.size;
  }

  /** Whether `view` lies in a buffer this pool has lent out. */
  lends(view: Uint8Array): boolean {
    return this.lent.has(view.buffer);
  }

  /** A buffer of `bufferBytes` (contents undefined). */
  take(): Uint8Array {
    const buffer = this.free.pop() ?? new Uint8Array(new ArrayBuffer(this.bufferBytes));
    this.lent.add(buffer.buffer);
    return buffer;
  }

  /** A buffer, or undefined while `maxLent` buffers are out. */
  tryTake(): Uint8Array | undefined {
    return this.lent.size < this.lendLimit ? this.take() : undefined;
  }

  /**
   * Calls `retry` (once, from a microtask) after the next buffer comes back.
   * Every waiter is called then; one that still finds none asks again.
   */
  whenAvailable(retry: () => void): void {
    this.waiters.push(retry);
  }

  /**
   * Returns the buffer behind `view` for reuse. Views of memory the pool did
   * not hand out, or gave back already, are ignored, so callers may pass any
   * payload.
   */
  give(view: Uint8Array): void {
    const buffer = view.buffer;
    if (!this.lent.delete(buffer)) return;
    if (this.free.length < this.maxFree) this.free.push(new Uint8Array(buffer, 0, this.bufferBytes));
    this.wakeWaiters();
  }

  private wakeWaiters(): void {
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    // Not from inside give: the giver may be in the middle of handling a record.
    queueMicrotask(() => {
      for (const retry of waiters) retry();
    });
  }
}
