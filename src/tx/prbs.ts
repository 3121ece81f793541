/**
 * `prbs SEED`: the original's test pattern, a deterministic pseudorandom
 * stream that the transmitter sends instead of stdin and the receiver checks
 * (src/rx/prbs-check.ts).
 *
 * The stream of a 16-bit seed is one period of PRBS_PERIOD_BYTES repeated
 * without end. The period is the little-endian output of xorshift32 (a
 * linear feedback shift register over 32-bit words) started from the mixed
 * seed. It is generated once per process; after that, generating and
 * checking are slice copies and comparisons, never a loop per byte.
 *
 * The period is odd, so it never divides the foot size: foot k starts at
 * (k × foot) mod period, a different place for every k below the period,
 * and a foot delivered out of place does not match.
 */
import type { ByteSource } from "./stdin.ts";

/** 1 MiB plus 1021 bytes (odd): long enough to be cheap to copy, never a divisor of a foot. */
export const PRBS_PERIOD_BYTES = (1 << 20) + 1021;
export const MAX_PRBS_SEED = 0xffff;

/** xorshift32's state for a seed: never 0 (a fixed point), different for every 16-bit seed. */
export function prbsState(seed: number): number {
  // seed + 1 is in 1..65536 and the multiplier is odd, so the product mod 2^32 is never 0.
  return Math.imul(seed + 1, 0x9e3779b1) >>> 0;
}

/**
 * The period, followed by a copy of itself so that any slice of up to one
 * period, starting anywhere in the first, is contiguous.
 */
export class PrbsPattern {
  /** The period twice (and 4 spare bytes for the last word's spill). */
  private readonly doubled: Buffer;

  constructor(readonly seed: number) {
    this.doubled = Buffer.allocUnsafe(2 * PRBS_PERIOD_BYTES + 4);
    const view = new DataView(this.doubled.buffer, this.doubled.byteOffset, this.doubled.length);
    let x = prbsState(seed);
    for (let at = 0; at < PRBS_PERIOD_BYTES; at += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      view.setUint32(at, x, true); // the last word may spill past the period: overwritten below
    }
    this.doubled.copyWithin(PRBS_PERIOD_BYTES, 0, PRBS_PERIOD_BYTES);
  }

  /** The stream's bytes from `offset` on, `length` ≤ PRBS_PERIOD_BYTES of them (a view, not a copy). */
  slice(offset: number, length: number): Buffer {
    const start = offset % PRBS_PERIOD_BYTES;
    return this.doubled.subarray(start, start + length);
  }

  /** Copies the stream's bytes from `offset` into `into`, filling it. */
  fill(into: Uint8Array, offset: number): void {
    for (let done = 0; done < into.length; ) {
      const n = Math.min(into.length - done, PRBS_PERIOD_BYTES);
      into.set(this.slice(offset + done, n), done);
      done += n;
    }
  }
}

/** The last pattern made (2 MiB): both ends of one process share it. */
let latest: PrbsPattern | undefined;

export function prbsPattern(seed: number): PrbsPattern {
  if (latest?.seed !== seed) latest = new PrbsPattern(seed);
  return latest;
}

/** The prbs stream of `seed` as an endless source: every read fills its buffer. */
export function prbsSource(seed: number): ByteSource {
  const pattern = prbsPattern(seed);
  let offset = 0;
  return {
    async read(into) {
      pattern.fill(into, offset);
      // Kept below the period so the number stays small and exact however long the run.
      offset = (offset + into.length) % PRBS_PERIOD_BYTES;
      return into.length;
    },
  };
}

/** `0x1234` in messages. */
export function formatSeed(seed: number): string {
  return `0x${seed.toString(16).padStart(4, "0")}`;
}
