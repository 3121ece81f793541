/**
 * Cuts the input into feet: blocks of exactly `footBytes`, except the last.
 * Short reads (pipes deliver whatever the producer wrote) are merged until
 * the foot is full or the input ends, so foot boundaries never depend on how
 * the bytes arrived.
 *
 * `charmode` trades that for latency: a foot is also handed over when the
 * input goes quiet (no more bytes within CHARMODE_QUIET_MS) or its first byte
 * has waited CHARMODE_HOLD_MS. A typed line leaves within milliseconds, while
 * input that keeps coming (bulk) still fills large feet. A read that was
 * still waiting when the foot left is not abandoned: it reads into a staging
 * buffer and its bytes start the next foot.
 */
import { systemClock, within, type Clock } from "../clock.ts";
import type { ByteSource } from "./stdin.ts";

/** charmode: a foot leaves when no more input arrives within this long... */
export const CHARMODE_QUIET_MS = 2;
/** ...or when its first byte has waited this long, however the input trickles. */
export const CHARMODE_HOLD_MS = 10;
/** charmode: reads that may outlive their foot land here first (at most this much at a time). */
const CHARMODE_STAGING_BYTES = 1 << 20;

export interface Cut {
  id: bigint;
  offset: bigint;
  payload: Uint8Array;
}

/** A read's outcome, caught so that a read outliving its foot can never be an unhandled rejection. */
type ReadOutcome = { n: number } | { error: unknown };

export class Chunker {
  private nextId = 0n;
  private offset = 0n;
  private ended = false;
  /** charmode: the read into `staging` still in flight, if any. */
  private pending: Promise<ReadOutcome> | undefined;
  private staging: Uint8Array | undefined;

  constructor(
    private readonly source: ByteSource,
    private readonly footBytes: number,
    /** Where foot memory comes from (a pool); `release` takes back an unused one. */
    private readonly memory: { take(): Uint8Array; give(buffer: Uint8Array): void } = {
      take: () => Buffer.allocUnsafe(footBytes),
      give: () => {},
    },
    /** `charmode`: hand over what the input has instead of waiting for a full foot. */
    private readonly charmode = false,
    /** charmode's timers; tests pass their own. */
    private readonly timing: { quietMs: number; holdMs: number } = { quietMs: CHARMODE_QUIET_MS, holdMs: CHARMODE_HOLD_MS },
    private readonly clock: Clock = systemClock,
  ) {}

  /** The next foot, or undefined once the input has ended. */
  async next(): Promise<Cut | undefined> {
    if (this.ended) return undefined;
    const buffer = this.memory.take();
    const fill = this.charmode ? await this.fillSoon(buffer) : await this.fillFull(buffer);
    if (fill === 0) {
      this.memory.give(buffer);
      return undefined;
    }
    const cut: Cut = { id: this.nextId, offset: this.offset, payload: buffer.subarray(0, fill) };
    this.nextId++;
    this.offset += BigInt(fill);
    return cut;
  }

  /** Reads until the foot is full or the input ends. */
  private async fillFull(buffer: Uint8Array): Promise<number> {
    let fill = 0;
    while (fill < this.footBytes) {
      const n = await this.source.read(buffer.subarray(fill, this.footBytes));
      if (n === 0) {
        this.ended = true;
        break;
      }
      fill += n;
    }
    return fill;
  }

  /**
   * charmode: waits as long as it takes for the first bytes, then reads on
   * while more keep coming quickly, up to a full foot.
   */
  private async fillSoon(buffer: Uint8Array): Promise<number> {
    let fill = 0;
    let deadline = Infinity;
    while (fill < this.footBytes) {
      const room = this.footBytes - fill;
      let outcome: ReadOutcome | undefined;
      if (this.pending === undefined && fill === 0) {
        // Nothing to hand over yet, so this read cannot be cut short: straight into the foot.
        outcome = await this.source.read(buffer.subarray(0, room)).then((n) => ({ n }), (error: unknown) => ({ error }));
        if ("n" in outcome && outcome.n > 0) {
          fill = outcome.n;
          deadline = this.clock.now() + this.timing.holdMs;
          continue;
        }
      } else {
        const staging = (this.staging ??= Buffer.allocUnsafe(CHARMODE_STAGING_BYTES));
        // Sized for this foot's room; a read carried over to the next foot fits its empty buffer.
        this.pending ??= this.source.read(staging.subarray(0, Math.min(room, staging.length))).then((n) => ({ n }), (error: unknown) => ({ error }));
        const waitMs = fill === 0 ? Infinity : Math.min(this.timing.quietMs, deadline - this.clock.now());
        outcome = waitMs === Infinity ? await this.pending : waitMs <= 0 ? undefined : await within(this.pending, waitMs, this.clock, "charmode foot quiet or held");
        if (outcome === undefined) break; // quiet, or held long enough: the foot leaves; the read stays pending
        this.pending = undefined;
        if ("n" in outcome && outcome.n > 0) {
          buffer.set(staging.subarray(0, outcome.n), fill);
          if (fill === 0) deadline = this.clock.now() + this.timing.holdMs;
          fill += outcome.n;
          continue;
        }
      }
      if ("error" in outcome) throw outcome.error;
      this.ended = true;
      break;
    }
    return fill;
  }
}
