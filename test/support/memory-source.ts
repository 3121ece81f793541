/**
 * A ByteSource over bytes in memory, for tests: the transmitter reads it
 * like stdin, in the given chunk sizes (cycled), so foot cutting is tested
 * against arbitrary read boundaries.
 */
import type { ByteSource } from "../../src/tx/stdin.ts";

/** A source over bytes in memory, delivered in the given chunk sizes (cycled). */
export function memorySource(bytes: Uint8Array, chunkSizes: readonly number[] = [bytes.length]): ByteSource {
  let at = 0;
  let turn = 0;
  return {
    async read(into) {
      const wanted = chunkSizes[turn++ % chunkSizes.length] || 1;
      const n = Math.min(wanted, into.length, bytes.length - at);
      into.set(bytes.subarray(at, at + n));
      at += n;
      return n;
    },
  };
}
