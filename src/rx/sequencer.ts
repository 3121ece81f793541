/**
 * The reorder buffer: feet arrive in any order on any connection and leave
 * in id order. Pure bookkeeping; the receiver does the I/O.
 *
 * Memory is bounded by the window: a foot is accepted only when its id lies
 * in [deliveredBelow, deliveredBelow + windowFeet). Feet handed out for
 * writing still count against the window until `written` is called, so the
 * transmitter can never have more than `windowFeet` feet outstanding. The
 * window may grow (`grow`), never shrink: credit granted stays granted.
 */

export interface SequencedFoot {
  id: bigint;
  /** Stream position the transmitter says the payload starts at. */
  offset: bigint;
  payload: Uint8Array;
  /** XXH3 of the payload, already computed by whoever verified it. */
  checksum: bigint;
  /** Connection it arrived on, so credit can go back the same way. */
  connectionId: number;
}

export type AcceptResult = "accepted" | "duplicate" | "outside-window";

export class Sequencer {
  private readonly held = new Map<bigint, SequencedFoot>();
  /** Every foot below this id has been written out. */
  private delivered = 0n;
  /** Every foot below this id has been handed out for writing. */
  private released = 0n;

  constructor(private feet: number) {}

  /** Feet the transmitter may have outstanding. */
  get windowFeet(): number {
    return this.feet;
  }

  /** Widens the window to `feet` (a smaller value changes nothing). */
  grow(feet: number): void {
    this.feet = Math.max(this.feet, feet);
  }

  get deliveredBelow(): bigint {
    return this.delivered;
  }

  /** The transmitter may send feet with ids below this. */
  get windowEnd(): bigint {
    return this.delivered + BigInt(this.feet);
  }

  /** Feet held and waiting for an earlier one. */
  get heldCount(): number {
    return this.held.size;
  }

  accept(foot: SequencedFoot): AcceptResult {
    if (foot.id < this.released || this.held.has(foot.id)) return "duplicate";
    if (foot.id >= this.windowEnd) return "outside-window";
    this.held.set(foot.id, foot);
    return "accepted";
  }

  /** The next foot in order, if it is here; it is then the caller's to write. */
  takeNext(): SequencedFoot | undefined {
    const foot = this.held.get(this.released);
    if (foot === undefined) return undefined;
    this.held.delete(this.released);
    this.released++;
    return foot;
  }

  /** The caller finished writing the oldest released foot. */
  written(): void {
    if (this.delivered >= this.released) throw new Error("written() without a released foot");
    this.delivered++;
  }

  /** Feet handed out but not yet written. */
  get writingCount(): number {
    return Number(this.released - this.delivered);
  }
}
