/**
 * How long a "busy" receiver is waited for. Pure: time comes in as an argument.
 *
 * A receiver refuses a transmitter of another session while it holds one,
 * but gives up a session that has been abandoned for its `timeout` (no
 * connection, or no foot since its hello; see src/rx/takeover.ts). The
 * transmitter re-run after a kill -9 therefore waits instead of exiting 11
 * at once: the old session's connections may take up to `timeout` to be
 * declared dead (a silent path), and then `timeout` more to be given up, so
 * the wait is three times `timeout` (15 s by default), never beyond
 * `patience`. A receiver still busy after that is busy with a live transfer.
 */

/** The wait is this many times `timeout`: dead connections declared, then the session given up, plus slack. */
const BUSY_WAIT_TIMEOUTS = 3;
/** Between two dials to a busy receiver. */
export const BUSY_RETRY_MS = 1_000;

/** How long to keep dialling a busy receiver before giving up (exit 11). */
export function busyWaitMs(timeoutS: number, patienceS: number): number {
  const waitMs = BUSY_WAIT_TIMEOUTS * timeoutS * 1000;
  return patienceS === 0 ? waitMs : Math.min(waitMs, patienceS * 1000);
}

/** One episode of busy refusals: from the first one until a connection gets in. */
export class BusyWait {
  private sinceMs: number | undefined;

  constructor(readonly limitMs: number) {}

  /**
   * A busy refusal at `nowMs`: "first" opens the wait (say so once),
   * "waiting" goes on, "over" means the wait is used up.
   */
  refused(nowMs: number): "first" | "waiting" | "over" {
    if (this.sinceMs === undefined) {
      this.sinceMs = nowMs;
      return "first";
    }
    return nowMs - this.sinceMs >= this.limitMs ? "over" : "waiting";
  }

  /** A connection got in: the episode is over. */
  reset(): void {
    this.sinceMs = undefined;
  }
}
