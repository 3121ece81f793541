/**
 * `prbs SEED` on the receiver: a ByteSink wrapper that checks the stream
 * against the prbs stream of the seed (src/tx/prbs.ts), then passes it on
 * unchanged. The first difference fails the transfer with
 * VmError("integrity") naming prbs, the foot (offset / foot size) and the
 * byte; the bytes that differ are still written, like the rest.
 *
 * Checking is a Buffer comparison per slice of the period; only after a
 * mismatch is found does a loop look for its first byte.
 */
import { VmError } from "../errors.ts";
import { formatSeed, PRBS_PERIOD_BYTES, prbsPattern } from "../tx/prbs.ts";
import type { ByteSink } from "./stdout.ts";

export function prbsCheckSink(seed: number, footBytes: number, inner: ByteSink): ByteSink & { checkedBytes(): number } {
  const pattern = prbsPattern(seed);
  /** Stream offset of the next byte; a JS number is exact up to 8 PiB. */
  let offset = 0;
  return {
    checkedBytes: () => offset,
    async write(bytes) {
      const mismatch = firstMismatch(bytes, offset);
      const at = offset;
      offset += bytes.length;
      await inner.write(bytes);
      if (mismatch === undefined) return;
      const where = at + mismatch;
      throw new VmError(
        "integrity",
        `prbs mismatch in foot ${Math.floor(where / footBytes)} at byte ${where}: the stream is not prbs ${formatSeed(seed)}; give both ends the same 'prbs SEED'`,
      );
    },
  };

  /** Index in `bytes` of the first byte that differs from the stream at `start`, or undefined. */
  function firstMismatch(bytes: Uint8Array, start: number): number | undefined {
    const actual = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    for (let done = 0; done < actual.length; ) {
      const n = Math.min(actual.length - done, PRBS_PERIOD_BYTES);
      const expected = pattern.slice(start + done, n);
      const got = actual.subarray(done, done + n);
      if (!got.equals(expected)) {
        for (let i = 0; i < n; i++) if (got[i] !== expected[i]) return done + i;
      }
      done += n;
    }
    return undefined;
  }
}
