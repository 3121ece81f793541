/**
 * The last feet of a stream go where they finish first. Pure: numbers in,
 * a yes or no out; dispatch.ts asks it once the input has ended.
 *
 * Mid-stream it does not matter which connection carries a foot: every one
 * is busy, the link is full, and the receiver puts the feet in order. At the
 * end it does: the stream is done when its last foot arrives, and
 * connections sharing a bottleneck move at very different rates (50 ms,
 * 300 Mbit/s, cubic, 8 connections: one carried 58 of 128 feet, a foot in
 * 350 ms; the four opened later took 860–1300 ms a foot). Handed to whichever
 * connection was idle, the last foot went to a slow one at 7.33 s and arrived
 * at 8.19 s, while the fastest sat idle from 7.55 s.
 *
 * So, once the input has ended, an idle connection takes one of the `waiting`
 * feet only if the others, each finishing what it holds first, would not
 * finish all of them before it finishes one: the greedy plan that gives each
 * foot to the connection finishing it first, asked only whether the
 * candidate has a place in it. A connection left out stays idle and the
 * faster ones take the feet as they free up.
 *
 * The same estimate says when the foot the whole transfer waits on (every
 * foot out, the window full) is better copied at once (`fasterCopy`): an
 * idle connection that would deliver a whole copy sooner than its carrier
 * delivers the rest of it.
 */

/** A connection as the plan sees it: what it still has to deliver, and how fast it delivers. */
export interface Carrier {
  /** Bytes handed to it that its peer's TCP has not acknowledged yet. */
  backlogBytes: number;
  bytesPerSecond: number;
}

/**
 * The others must finish that much sooner to leave a candidate out: rates
 * are estimates, and a connection the others outpace by less would still
 * have finished close to them.
 */
export const FINISH_MARGIN = 0.1;

/** Milliseconds until `carrier` has delivered its backlog and `feet` more feet of `footBytes`. */
export function finishMs(carrier: Carrier, feet: number, footBytes: number): number {
  return ((carrier.backlogBytes + feet * footBytes) * 1000) / carrier.bytesPerSecond;
}

/**
 * Whether `candidate` takes one of the `waiting` last feet now: false when
 * `others` (each after its backlog, one foot after another) would finish all
 * `waiting` feet more than FINISH_MARGIN sooner than it finishes one.
 */
export function takesLastFoot(candidate: Carrier, others: Iterable<Carrier>, waiting: number, footBytes: number): boolean {
  if (!(candidate.bytesPerSecond > 0)) return true;
  const deadlineMs = finishMs(candidate, 1, footBytes) / (1 + FINISH_MARGIN);
  let sooner = 0;
  for (const other of others) {
    if (!(other.bytesPerSecond > 0)) continue;
    // feet j ≥ 1 with (backlog + j·footBytes) / rate < deadline
    const reach = ((deadlineMs / 1000) * other.bytesPerSecond - other.backlogBytes) / footBytes;
    if (reach > 1) sooner += Math.ceil(reach) - 1;
    if (sooner >= waiting) return false;
  }
  return true;
}

/**
 * Of the `idle` connections, the one to carry a copy of a foot of
 * `footBytes` that `holder` is carrying at the front of its backlog, if it
 * would deliver the whole copy more than FINISH_MARGIN sooner than `holder`
 * delivers the rest of the foot (at most its backlog); else undefined. A
 * holder that delivers nothing (a retransmission timeout) finishes never.
 */
export function fasterCopy(holder: Carrier, idle: readonly Carrier[], footBytes: number): number | undefined {
  const holderMs = holder.bytesPerSecond > 0 ? (Math.min(holder.backlogBytes, footBytes) * 1000) / holder.bytesPerSecond : Infinity;
  let best: number | undefined;
  let bestMs = Infinity;
  idle.forEach((carrier, index) => {
    if (!(carrier.bytesPerSecond > 0)) return;
    const copyMs = finishMs(carrier, 1, footBytes);
    if (copyMs < bestMs) {
      best = index;
      bestMs = copyMs;
    }
  });
  return best !== undefined && bestMs * (1 + FINISH_MARGIN) < holderMs ? best : undefined;
}
