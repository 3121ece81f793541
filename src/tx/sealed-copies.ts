/**
 * Where `encrypt` puts sealed foot copies (see `sealedPool`).
 */
import { BufferPool } from "../net/buffer-pool.ts";
import { processCollector } from "../net/collector.ts";
import { SEAL_OVERHEAD_BYTES } from "../protocol/keys.ts";

/**
 * Memory for sealed foot copies, reused once a copy is written.
 *
 * The cipher returns each sealed foot in fresh memory that lived until the
 * copy was written, long enough to outlive the young-generation collections,
 * so it piled up for a late full one: encrypt peaked at 235–420 MiB against
 * ~100 MiB plain. Copying it into a reused buffer at once (≈ 0.1 ms per
 * 2 MiB, against ≈ 0.7 ms to seal) leaves garbage that dies young, which the
 * collector's requests reclaim. One copy per send stays inherent: the plain
 * foot is kept for a resend on another connection, under another key.
 *
 * The buffers come from a BufferPool per foot size (one per transmitter in
 * practice), each a foot plus the seal's overhead, which any sealed foot fits.
 */
const sealedPools = new Map<number, BufferPool>();
/** Spent sealed copies kept for reuse across connections (feet go only to idle connections, so about one in flight each). */
const MAX_FREE_SEALED_BUFFERS = 32;

/** The pool for sealed copies of feet of up to `footBytes`. */
export function sealedPool(footBytes: number): BufferPool {
  let pool = sealedPools.get(footBytes);
  if (pool === undefined) sealedPools.set(footBytes, (pool = new BufferPool(footBytes + SEAL_OVERHEAD_BYTES, MAX_FREE_SEALED_BUFFERS)));
  return pool;
}

/** The sealer's pieces (nonce, ciphertext, tag) as one view of a buffer from `pool`; the pieces become garbage. */
export function gatherSealed(pieces: readonly Uint8Array[], pool: BufferPool, collector: { discarded(bytes: number): void } = processCollector): Uint8Array {
  let bytes = 0;
  for (const piece of pieces) bytes += piece.length;
  // A sealed foot always fits; anything larger gets memory of its own (the pool ignores it when given back).
  const out = bytes <= pool.bufferBytes ? pool.take().subarray(0, bytes) : new Uint8Array(bytes);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  collector.discarded(bytes);
  return out;
}
