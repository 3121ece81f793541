/**
 * What the connections' round trips, as the kernel reports them, say about
 * the path: its least round trip, and how far a queue at the bottleneck
 * stands above it. `threads auto` (thread-tuner.ts) reads them.
 */

/** One connection's round trips as the kernel reports them. */
export interface RoundTripSample {
  /** The link it runs on: each link's least round trip is its own. */
  link: number;
  roundTripMs: number;
  minRoundTripMs: number;
  /** Its congestion control, where the kernel says. */
  congestion: string | undefined;
}

/**
 * Congestion controls that fill the bottleneck's queue before they back off
 * (they take loss as the sign of congestion), so a queue standing or not says
 * whether our connections fill the link. Not bbr: it paces at the rate it
 * measured, and tens of its connections on the rig's full 100 and 200 ms
 * links kept round trips at 1.14–1.20 of their least, where cubic's read 2,
 * so with bbr counted `queueFree` took 1 % loss paths to 32 connections that
 * moved 19 MiB/s where 8 move 23 (a tall queue is another matter: 4 to 8
 * bbr connections filling a 10–100 ms link read 1.4–2.2, and that counts,
 * `roundTripInflation(samples, "any")`). Others unknown to us are left out
 * too: no round-trip rule is better than a wrong one.
 */
const QUEUE_FILLING_CONGESTION = new Set(["reno", "cubic", "bic", "htcp", "highspeed", "scalable", "hybla", "westwood"]);

/**
 * Below this least round trip a link's queue cannot be told from the hosts'
 * own scheduling (loopback: tens of microseconds that vary by several times).
 */
export const QUEUE_MIN_ROUND_TRIP_MS = 2;

/**
 * Round trips standing at least this far above their least, whatever the
 * congestion control, mean a standing queue at the bottleneck: the link is
 * full. On the rig, 4 connections filling a 10, 50 or 100 ms link read
 * 1.45–2.2 once out of slow start (cubic and bbr); on 50 ms with 0.1 % loss,
 * where cubic flows are the limit, 1.01–1.04 (1.13 in slow start).
 */
export const FULL_QUEUE_INFLATION = 1.3;

/**
 * Whether one connection's round trips say a queue stands on its path
 * (FULL_QUEUE_INFLATION); undefined where its path is too short to tell
 * (QUEUE_MIN_ROUND_TRIP_MS) or nothing was measured yet.
 */
export function queueStandsOn(figures: { roundTripMs: number; minRoundTripMs: number }): boolean | undefined {
  if (!(figures.minRoundTripMs >= QUEUE_MIN_ROUND_TRIP_MS)) return undefined;
  return figures.roundTripMs >= FULL_QUEUE_INFLATION * figures.minRoundTripMs;
}

/** The least round trip any connection has seen (0: none yet, left out); undefined before any. */
export function leastRoundTrip(samples: readonly RoundTripSample[]): number | undefined {
  const seen = samples.map((sample) => sample.minRoundTripMs).filter((ms) => ms > 0);
  return seen.length === 0 ? undefined : Math.min(...seen);
}

/**
 * The median, over connections whose congestion control fills queues
 * (QUEUE_FILLING_CONGESTION; with "any", over every connection), of each one's smoothed round trip over the
 * least any connection on its link has seen (a connection that started while
 * a queue stood never saw the empty path, its elders did). Undefined with no
 * such connection on a link long enough to tell (QUEUE_MIN_ROUND_TRIP_MS).
 */
export function roundTripInflation(allSamples: readonly RoundTripSample[], congestion: "queue-filling" | "any" = "queue-filling"): number | undefined {
  const samples = congestion === "any" ? allSamples : allSamples.filter((sample) => sample.congestion !== undefined && QUEUE_FILLING_CONGESTION.has(sample.congestion));
  const least = new Map<number, number>();
  for (const { link, minRoundTripMs } of samples) {
    if (minRoundTripMs > 0) least.set(link, Math.min(least.get(link) ?? Infinity, minRoundTripMs));
  }
  const ratios: number[] = [];
  for (const { link, roundTripMs } of samples) {
    const base = least.get(link);
    if (base !== undefined && base >= QUEUE_MIN_ROUND_TRIP_MS) ratios.push(roundTripMs / base);
  }
  if (ratios.length === 0) return undefined;
  ratios.sort((a, b) => a - b);
  return ratios[Math.floor(ratios.length / 2)];
}
