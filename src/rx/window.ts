/**
 * How large the receiver's window should be: large enough that it is not what
 * limits the transfer, no larger than `buffer`. Pure: the session feeds it
 * each foot written, with the time and the connections' round trips.
 *
 * The window must hold, at once:
 * - the bandwidth-delay product: what the output moves per round trip, since
 *   credit for a foot comes back one round trip after it is granted;
 * - a foot for every connection: on a path that limits each flow (a lossy
 *   long path) a foot spends seconds on its connection, a connection with no
 *   foot to carry moves nothing, and the transmitter opens as many as raise
 *   its goodput (`threads auto`). Connections that join and send nothing
 *   (a hostile peer's) grow nothing unless feet are written too, and never
 *   past `buffer`: that is the bound, whatever the peer does.
 * Twice that, as Linux sizes a socket's receive buffer to twice what one
 * round trip moved: the feet the output waits on, and the ones behind them.
 *
 * It is measured over SAMPLE_MS of writing (several round trips on long
 * paths; acknowledgements come in bursts) and only grows: feet held cost
 * memory only while they wait, and a window that shrank would have to take
 * back credit already granted.
 */

/** Writing measured at a time before the window is reconsidered. */
export const SAMPLE_MS = 1_000;
/** The window holds this many times what one round trip and the connections' feet need. */
export const WINDOW_HEADROOM = 2;

export interface WindowGrowth {
  fromFeet: number;
  toFeet: number;
  bytesPerSecond: number;
  roundTripMs: number;
  connections: number;
}

export class ReceiveWindow {
  private sampleStartMs: number | undefined;
  private sampleBytes = 0;
  /** The shortest round trip heard: the path's, without the queues in front of it. */
  private minRoundTripMs: number | undefined;

  constructor(
    readonly footBytes: number,
    /** Feet now. */
    private feet: number,
    /** Feet at most (`buffer`). */
    readonly maxFeet: number,
  ) {}

  get windowFeet(): number {
    return this.feet;
  }

  /**
   * A foot of `bytes` was written at `nowMs`, with `connections` joined;
   * `heardRoundTripMs` is the shortest round trip a connection reports now.
   * Returns the growth, when the window grows.
   */
  written(bytes: number, nowMs: number, connections: number, heardRoundTripMs: number | undefined): WindowGrowth | undefined {
    if (heardRoundTripMs !== undefined) this.minRoundTripMs = Math.min(this.minRoundTripMs ?? heardRoundTripMs, heardRoundTripMs);
    if (this.sampleStartMs === undefined) {
      // The first foot starts the clock; what it took to come is not a rate.
      this.sampleStartMs = nowMs;
      return undefined;
    }
    this.sampleBytes += bytes;
    const elapsedMs = nowMs - this.sampleStartMs;
    if (elapsedMs < SAMPLE_MS) return undefined;
    const bytesPerSecond = (this.sampleBytes * 1000) / elapsedMs;
    this.sampleStartMs = nowMs;
    this.sampleBytes = 0;
    const roundTripMs = this.minRoundTripMs ?? 0;
    const wanted = Math.min(this.maxFeet, wantedFeet(bytesPerSecond, roundTripMs, connections, this.footBytes));
    if (wanted <= this.feet) return undefined;
    const growth = { fromFeet: this.feet, toFeet: wanted, bytesPerSecond, roundTripMs, connections };
    this.feet = wanted;
    return growth;
  }
}

/** Feet a window needs so that it does not limit `bytesPerSecond` over a `roundTripMs` path carried by `connections`. */
export function wantedFeet(bytesPerSecond: number, roundTripMs: number, connections: number, footBytes: number): number {
  const bandwidthDelayFeet = (bytesPerSecond * roundTripMs) / 1000 / footBytes;
  return Math.ceil(WINDOW_HEADROOM * (bandwidthDelayFeet + connections));
}
