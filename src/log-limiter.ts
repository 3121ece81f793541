/**
 * Repeated warnings, rate-limited: a flood of connections must not become a
 * flood of log lines (one warning per connection once wrote 82 MB of stderr
 * in 15 s and starved the receiver of CPU).
 *
 * Per kind of warning: the first one is printed as it is and opens an
 * interval; the ones after it within the interval are only counted, and when
 * the interval ends the count comes out as one summary line ("dropped 12,345
 * more pending handshakes in the last 10 s") and the next interval begins.
 * An interval that counted nothing closes quietly, so the next warning of
 * that kind is printed in full again.
 *
 * No I/O: time comes from the injected Clock; the caller prints what comes
 * back, calls `due` now and then (the receiver's watchdog tick) so a summary
 * does not wait for the next warning, and `flush` when it ends.
 */
import type { Clock } from "./clock.ts";

/** Makes the summary line of `count` warnings held back over `seconds`; `last` is the latest of them. */
export type Summarize = (count: number, seconds: number, last: string) => string;

interface Interval {
  startMs: number;
  held: number;
  last: string;
  summarize: Summarize;
}

export class WarningLimiter {
  private readonly open = new Map<string, Interval>();

  constructor(
    readonly intervalMs: number,
    private readonly clock: Clock,
  ) {}

  /** A warning of `kind`, now: returns the lines to print now (none while it is held back). */
  offer(kind: string, line: string, summarize: Summarize): string[] {
    const nowMs = this.clock.now();
    const out = this.close(kind, nowMs);
    const interval = this.open.get(kind);
    if (interval === undefined) {
      this.open.set(kind, { startMs: nowMs, held: 0, last: line, summarize });
      out.push(line);
    } else {
      interval.held++;
      interval.last = line;
      interval.summarize = summarize;
    }
    return out;
  }

  /** The summaries of every interval that has ended by now. */
  due(): string[] {
    const nowMs = this.clock.now();
    return [...this.open.keys()].flatMap((kind) => this.close(kind, nowMs));
  }

  /** Every summary still owed, intervals over or not (the program is ending). */
  flush(): string[] {
    const nowMs = this.clock.now();
    return [...this.open.keys()].flatMap((kind) => this.close(kind, nowMs, true));
  }

  /** Ends `kind`'s interval if its time is up (or `now`): its summary, if it held anything back. */
  private close(kind: string, nowMs: number, now = false): string[] {
    const interval = this.open.get(kind);
    if (interval === undefined || (!now && nowMs - interval.startMs < this.intervalMs)) return [];
    if (interval.held === 0) {
      this.open.delete(kind);
      return [];
    }
    const line = interval.summarize(interval.held, Math.round((nowMs - interval.startMs) / 1000), interval.last);
    this.open.set(kind, { startMs: nowMs, held: 0, last: interval.last, summarize: interval.summarize });
    return [line];
  }
}

/** 12345 → "12,345": counts in summaries are read by people. */
export function formatCount(count: number): string {
  return count.toLocaleString("en-US");
}
