/**
 * Which foot goes out next, and which feet must be kept. Pure bookkeeping:
 * the transmitter does the I/O and calls in here on every event.
 *
 * Invariants:
 * - every foot read is held until the receiver acknowledges it, so a
 *   connection that dies loses nothing: its feet go back in the queue;
 * - new feet are read only below the receiver's window end (or the few read
 *   ahead before the first window, `readAhead`), so at most
 *   `windowEnd - deliveredBelow` feet are held (memory bounded by the window),
 *   and feet go out only below it;
 * - re-sends go before new feet, so the receiver's gap closes first.
 */
import { systemClock } from "../clock.ts";

export interface OutboundFoot {
  id: bigint;
  offset: bigint;
  /** What goes on the wire: the stream bytes, or their compressed form (see `encoding`). */
  payload: Uint8Array;
  checksum: bigint;
  /** Stream bytes this foot carries, when `payload` is compressed. */
  streamLength?: number;
  /** FOOT_FLAG_ZSTD or FOOT_FLAG_GZIP when `payload` is compressed. */
  encoding?: number;
  /** Times this foot has been handed to a connection. */
  sends: number;
  /** Connection carrying the latest copy, until acknowledged. */
  connectionId: number | undefined;
  /** Copies sitting in connections' write queues (the payload is referenced there). */
  copiesQueued: number;
  acknowledged: boolean;
  /** When the latest copy was handed to a connection (ms, scheduler clock). */
  lastSentMs: number;
  /** Extra copies sent because this foot held up the receiver's output. */
  hedges: number;
}

/** Weight of a new sample in the foot round-trip average. */
const ROUND_TRIP_WEIGHT = 0.125;

export class SendScheduler {
  private readonly held = new Map<bigint, OutboundFoot>();
  /** Ids waiting for a connection: re-sends first, then new feet in order. */
  private resend: bigint[] = [];
  private fresh: bigint[] = [];
  private window = 0n;
  /** Feet below this id may be read before a window covers them (they are sent only once one does). */
  private readAheadEnd = 0n;
  private acknowledgedBelow = 0n;
  private nextRead = 0n;
  /** Per connection, how many unacknowledged feet it carries. */
  private readonly carried = new Map<number, number>();

  /** Average time from handing a foot to a connection to its acknowledgement. */
  private roundTripMs: number | undefined;

  /**
   * `onAcknowledged` learns of each foot the receiver now holds (the
   * transmitter may recycle it), with the connection that carried its latest
   * copy and, for a direct acknowledgement, the round trip it took.
   */
  constructor(
    private readonly onAcknowledged: (foot: OutboundFoot, carrier: number | undefined, roundTripMs: number | undefined) => void = () => {},
    /** The transmitter's clock (src/clock.ts), in milliseconds. */
    private readonly now: () => number = systemClock.now,
  ) {}

  /** Smoothed send-to-acknowledgement time of a foot, once one has been measured. */
  get footRoundTripMs(): number | undefined {
    return this.roundTripMs;
  }

  /** The transmitter may read and send feet with ids below this. */
  get windowEnd(): bigint {
    return this.window;
  }

  /** Every foot below this id is on the receiver's stdout. */
  get deliveredBelow(): bigint {
    return this.acknowledgedBelow;
  }

  /** Feet read and not yet acknowledged. */
  get heldCount(): number {
    return this.held.size;
  }

  /** Every foot held has been handed to a connection: none waits to go out. */
  get allSent(): boolean {
    return this.waitingCount === 0;
  }

  /** Feet waiting for a connection: re-sends and new feet. */
  get waitingCount(): number {
    return this.resend.filter((id) => this.held.has(id)).length + this.fresh.filter((id) => id < this.window).length;
  }

  /** True when the next foot to read fits in the window, `ahead` feet being read but not yet added. */
  canRead(ahead = 0): boolean {
    const end = this.window > this.readAheadEnd ? this.window : this.readAheadEnd;
    return this.nextRead + BigInt(ahead) < end;
  }

  /** Lets the first `feet` be read before any window is granted; they still go out only within one. */
  readAhead(feet: number): void {
    this.readAheadEnd = BigInt(feet);
  }

  /** Window credit from the receiver; absolute, so stale or repeated grants are harmless. */
  credit(windowEnd: bigint): boolean {
    if (windowEnd <= this.window) return false;
    this.window = windowEnd;
    return true;
  }

  /** A foot just read from the input. */
  add(foot: OutboundFoot): void {
    if (foot.id !== this.nextRead) throw new Error(`foot ${foot.id} read out of order (expected ${this.nextRead})`);
    this.held.set(foot.id, foot);
    this.fresh.push(foot.id);
    this.nextRead++;
  }

  /** The next foot to send on connection `connectionId`, if any is waiting. */
  next(connectionId: number): OutboundFoot | undefined {
    const foot = this.take(this.resend) ?? (this.fresh.length > 0 && this.fresh[0]! < this.window ? this.take(this.fresh) : undefined);
    if (foot === undefined) return undefined;
    this.assign(foot, connectionId);
    return foot;
  }

  /**
   * The foot the receiver's output waits on, if it was sent and has not been
   * acknowledged for `afterMs`: a straggler worth a second copy.
   */
  straggler(afterMs: number): OutboundFoot | undefined {
    // `held` keeps read order, so its first foot is the oldest unacknowledged one:
    // the one the receiver's output waits on (feet it holds were acknowledged).
    const foot = this.held.values().next().value;
    if (foot === undefined || foot.sends === 0) return undefined;
    return this.now() - foot.lastSentMs >= afterMs ? foot : undefined;
  }

  /** Records an extra copy of `foot` going out on `connectionId` (the first copy to arrive wins). */
  hedge(foot: OutboundFoot, connectionId: number): void {
    foot.hedges++;
    this.assign(foot, connectionId);
  }

  private assign(foot: OutboundFoot, connectionId: number): void {
    this.moveCarrier(foot, connectionId);
    foot.sends++;
    foot.lastSentMs = this.now();
  }

  /** Unacknowledged feet whose latest copy went out on `connectionId`. */
  carriedBy(connectionId: number): number {
    return this.carried.get(connectionId) ?? 0;
  }

  /** Keeps the per-connection counts in step with `foot.connectionId`. */
  private moveCarrier(foot: OutboundFoot, connectionId: number | undefined): void {
    if (foot.connectionId !== undefined) this.carried.set(foot.connectionId, this.carriedBy(foot.connectionId) - 1);
    foot.connectionId = connectionId;
    if (connectionId !== undefined) this.carried.set(connectionId, this.carriedBy(connectionId) + 1);
  }

  /** The receiver holds `received` and has written everything below `deliveredBelow`. */
  acknowledge(deliveredBelow: bigint, received: readonly bigint[]): void {
    if (deliveredBelow > this.acknowledgedBelow) {
      for (let id = this.acknowledgedBelow; id < deliveredBelow; id++) this.release(id, false);
      this.acknowledgedBelow = deliveredBelow;
    }
    for (const id of received) this.release(id, true);
  }

  /** Drops a foot the receiver holds; a direct acknowledgement also times its round trip. */
  private release(id: bigint, timed: boolean): void {
    const foot = this.held.get(id);
    if (foot === undefined) return;
    this.held.delete(id);
    const carrier = foot.connectionId;
    this.moveCarrier(foot, undefined);
    foot.acknowledged = true;
    let sample: number | undefined;
    if (timed && foot.sends > 0) {
      sample = this.now() - foot.lastSentMs;
      this.roundTripMs = this.roundTripMs === undefined ? sample : this.roundTripMs + ROUND_TRIP_WEIGHT * (sample - this.roundTripMs);
    }
    this.onAcknowledged(foot, carrier, sample);
  }

  /** Re-queues the unacknowledged feet a lost connection carried. Returns how many. */
  connectionLost(connectionId: number): number {
    const lost: bigint[] = [];
    for (const foot of this.held.values()) {
      if (foot.connectionId === connectionId) {
        this.moveCarrier(foot, undefined);
        lost.push(foot.id);
      }
    }
    this.queueResend(lost);
    return lost.length;
  }

  /** The receiver asks for these feet again (failed checksum, or missing). */
  retransmit(ids: readonly bigint[]): number {
    // A foot not sent yet is already queued; asking for it changes nothing.
    const wanted = ids.filter((id) => (this.held.get(id)?.sends ?? 0) > 0);
    this.queueResend(wanted);
    return wanted.length;
  }

  /** Nothing is held: every foot read has been acknowledged. */
  get allAcknowledged(): boolean {
    return this.held.size === 0;
  }

  private queueResend(ids: bigint[]): void {
    if (ids.length === 0) return;
    const merged = new Set([...this.resend, ...ids]);
    this.resend = [...merged].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Pops the first id of `queue` whose foot is still held (acknowledged ones are skipped). */
  private take(queue: bigint[]): OutboundFoot | undefined {
    while (queue.length > 0) {
      const foot = this.held.get(queue.shift()!);
      if (foot !== undefined) return foot;
    }
    return undefined;
  }
}
