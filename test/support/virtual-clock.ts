/**
 * A virtual Clock for tests (src/clock.ts): time moves only when the test
 * says so, and jumps from one timer to the next, so a 300 s patience or a
 * 200 ms round trip costs no wall time.
 *
 * - `advance(ms)` runs, in time order, every timer due within `ms`, letting
 *   the promises each one starts settle before the next (`settle`).
 * - `until(promise, limitMs)` jumps to the next timer until `promise`
 *   settles, and fails, naming the timers still pending, when virtual time
 *   passes `limitMs` first (a stalled test says what it was waiting for).
 *
 * "Settle" means: let the event loop turn a few times (setImmediate), so
 * promise chains and in-memory I/O scheduled with setImmediate run to rest
 * before time moves on. Real asynchronous work (the thread pool: file I/O,
 * zstd) is not waited for; tests that need it keep the wall clock.
 */
import type { Clock, Timer } from "../../src/clock.ts";

/** Event-loop turns that count as "at rest" when nothing new happened. */
const SETTLE_TURNS = 4;

interface Pending {
  at: number;
  order: number;
  name: string;
  fire: () => void;
  /** Set for `every`: the period to re-arm with. */
  periodMs?: number;
  cancelled: boolean;
}

export class VirtualClock implements Clock {
  private time = 0;
  private order = 0;
  private readonly pending: Pending[] = [];

  now(): number {
    return this.time;
  }

  after(ms: number, name: string, fire: () => void): Timer {
    return this.schedule({ at: this.time + Math.max(0, ms), order: this.order++, name, fire, cancelled: false });
  }

  every(ms: number, name: string, fire: () => void): Timer {
    if (!(ms > 0)) throw new Error(`every(${ms}): the period must be positive`);
    return this.schedule({ at: this.time + ms, order: this.order++, name, fire, periodMs: ms, cancelled: false });
  }

  sleep(ms: number, name: string): Promise<void> {
    return new Promise((resolve) => this.after(ms, name, resolve));
  }

  /** The names of the timers still pending, soonest first (for a stalled test's message). */
  pendingNames(): string[] {
    return this.live().map((timer) => `${timer.name} at ${timer.at} ms`);
  }

  /** Lets the event loop run until in-memory work is at rest. */
  async settle(): Promise<void> {
    for (let turn = 0; turn < SETTLE_TURNS; turn++) await new Promise((resolve) => setImmediate(resolve));
  }

  /** Moves time forward by `ms`, running every timer due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    await this.settle();
    for (;;) {
      const next = this.live()[0];
      if (next === undefined || next.at > end) break;
      this.fire(next);
      await this.settle();
    }
    this.time = end;
  }

  /**
   * Jumps from timer to timer until `promise` settles; rejects when virtual
   * time would pass `limitMs` from now, or no timer is left, first.
   */
  async until<T>(promise: Promise<T>, limitMs: number): Promise<T> {
    let outcome: { value: T } | { error: unknown } | undefined;
    promise.then(
      (value) => (outcome = { value }),
      (error: unknown) => (outcome = { error }),
    );
    const limit = this.time + limitMs;
    await this.settle();
    while (outcome === undefined) {
      const next = this.live()[0];
      if (next === undefined || next.at > limit) {
        const waiting = this.pendingNames().slice(0, 8).join(", ") || "no timers";
        throw new Error(`not settled after ${limitMs} ms of virtual time (now ${this.time} ms; pending: ${waiting})`);
      }
      this.fire(next);
      await this.settle();
    }
    if ("error" in outcome) throw outcome.error;
    return outcome.value;
  }

  private schedule(timer: Pending): Timer {
    this.pending.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  private live(): Pending[] {
    for (let i = this.pending.length - 1; i >= 0; i--) if (this.pending[i]!.cancelled) this.pending.splice(i, 1);
    return this.pending.sort((a, b) => a.at - b.at || a.order - b.order);
  }

  private fire(timer: Pending): void {
    this.time = Math.max(this.time, timer.at);
    if (timer.periodMs === undefined) timer.cancelled = true;
    else {
      timer.at += timer.periodMs;
      timer.order = this.order++;
    }
    timer.fire();
  }
}
