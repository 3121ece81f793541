/**
 * A sliding-window rate: bytes counted as they happen, the window advanced by
 * the caller's clock ticks. Pure; the transmitter (link rates), the receiver
 * (per-address rates) and the status board (current rate) tick it.
 */

/** Ticks the rate looks back over (with 250 ms ticks: two seconds). */
const DEFAULT_SPAN_TICKS = 8;

export class RateMeter {
  private readonly bytes: number[];
  private readonly spans: number[];
  private slot = 0;
  private pending = 0;
  private total = 0;

  constructor(spanTicks = DEFAULT_SPAN_TICKS) {
    this.bytes = new Array<number>(spanTicks).fill(0);
    this.spans = new Array<number>(spanTicks).fill(0);
  }

  /** Counts bytes moved now. */
  add(bytes: number): void {
    this.pending += bytes;
    this.total += bytes;
  }

  /** Counts up to a running total kept elsewhere (a counter that only grows). */
  advanceTo(totalBytes: number): void {
    this.add(totalBytes - this.total);
  }

  /** Every byte ever counted. */
  get totalBytes(): number {
    return this.total;
  }

  /** Closes the current tick, which lasted `elapsedMs`. */
  tick(elapsedMs: number): void {
    this.bytes[this.slot] = this.pending;
    this.spans[this.slot] = elapsedMs;
    this.slot = (this.slot + 1) % this.bytes.length;
    this.pending = 0;
  }

  /** Bytes per second over the last ticks (0 before the first tick). */
  get bytesPerSecond(): number {
    let bytes = 0;
    let ms = 0;
    for (let i = 0; i < this.bytes.length; i++) {
      bytes += this.bytes[i] ?? 0;
      ms += this.spans[i] ?? 0;
    }
    return ms > 0 ? (bytes * 1000) / ms : 0;
  }
}
