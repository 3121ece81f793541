/**
 * Integrity arithmetic shared by both ends: the per-foot checksum and the
 * whole-stream digest. Pure (Bun.hash is a computation, not I/O).
 *
 * Stream digest (DIGEST_XXH3_CHAIN): d0 = 0; for each foot in id order,
 * d(n+1) = XXH3-64( be64(d(n)) || be64(checksum n) || be64(length n) ),
 * where checksum n is the foot's CHECKSUM_XXH3_64 value.
 * It binds every foot's content, length and position at the cost of one
 * 24-byte hash per foot, so it never limits throughput the way a
 * cryptographic hash over every byte would.
 */

const headerWords = new DataView(new ArrayBuffer(24));

/** The checksum seed is the low 32 bits of the header hash (viamillipede.x). */
const SEED_MASK = 0xffffffffn;

/**
 * CHECKSUM_XXH3_64 of a foot: XXH3-64 of the payload, seeded with the low 32
 * bits of XXH3-64 of its id, offset and length, so a corrupted header field
 * fails the check just as a corrupted payload byte does (see viamillipede.x).
 * The receiver passes the header's `length`, so a corrupted length word is
 * caught too.
 *
 * The mask is the protocol's definition, not a workaround: Bun.hash.xxHash3
 * keeps only the low 32 bits of a seed anyway (Bun 1.4.5, oven-sh/bun#32833),
 * and masking here means our checksums never depend on that, so they stay the
 * same if a later Bun honours 64-bit seeds.
 */
export function footChecksum(footId: bigint, streamOffset: bigint, payload: Uint8Array, length = payload.length): bigint {
  headerWords.setBigUint64(0, footId);
  headerWords.setBigUint64(8, streamOffset);
  headerWords.setBigUint64(16, BigInt(length));
  const seed = Bun.hash.xxHash3(headerWords) & SEED_MASK;
  return Bun.hash.xxHash3(payload, seed);
}

export class StreamDigest {
  private readonly link = new DataView(new ArrayBuffer(24));
  private current = 0n;
  private feet = 0n;
  private bytes = 0n;

  /** Folds in the next foot (callers add feet in id order). */
  add(footHash: bigint, length: number): void {
    this.link.setBigUint64(0, this.current);
    this.link.setBigUint64(8, footHash);
    this.link.setBigUint64(16, BigInt(length));
    this.current = Bun.hash.xxHash3(new Uint8Array(this.link.buffer));
    this.feet += 1n;
    this.bytes += BigInt(length);
  }

  get value(): bigint {
    return this.current;
  }
  get totalFeet(): bigint {
    return this.feet;
  }
  get totalBytes(): bigint {
    return this.bytes;
  }
}
