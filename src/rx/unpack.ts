/**
 * A foot's payload back to its stream bytes: open the seal (FOOT_FLAG_SEALED),
 * then inflate (FOOT_FLAG_ZSTD or FOOT_FLAG_GZIP). Inflating runs on the
 * runtime's thread pool and never produces more than the header's `length`
 * (itself at most the session's foot size), so a decompression bomb costs
 * nothing but its own bytes.
 *
 * The outcome is the stream bytes, "corrupt" (authentication or inflation
 * failed, or the size is wrong: asked for again like a checksum failure), or
 * "violation" (a flag this connection cannot carry: the connection is dropped).
 */
import { openSealed } from "../protocol/keys.ts";
import { FOOT_FLAG_GZIP, FOOT_FLAG_SEALED, FOOT_FLAG_ZSTD, type Foot } from "../protocol/xdr.generated.ts";

export type Unpacked = { kind: "ok"; payload: Uint8Array } | { kind: "corrupt"; reason: string } | { kind: "violation"; reason: string };

/** Whether a foot needs unpacking on a connection with (or without) a foot key. */
export function needsUnpacking(flags: number, footKey: Uint8Array | undefined): boolean {
  return footKey !== undefined || (flags & (FOOT_FLAG_SEALED | FOOT_FLAG_ZSTD | FOOT_FLAG_GZIP)) !== 0;
}

async function inflate(kind: "zstd" | "gzip", bytes: Uint8Array, maxOutputLength: number): Promise<Uint8Array> {
  // Loaded on the first compressed foot: node:zlib adds about 9 ms to every start.
  const { constants: zlibConstants, gunzip, zstdDecompress } = await import("node:zlib");
  // One output buffer the size of the foot: with the default 16 KiB chunks a
  // foot came out in 128 pieces and was then joined, a copy and a pile of
  // garbage per foot (half the receiver's CPU: README, Performance).
  const options = { maxOutputLength, chunkSize: Math.max(zlibConstants.Z_MIN_CHUNK, maxOutputLength) };
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, out: Buffer): void => (error ? reject(error) : resolve(out));
    if (kind === "zstd") zstdDecompress(bytes, options, done);
    else gunzip(bytes, options, done);
  });
}

/**
 * `aad` is the record's bytes before the payload; `footKey` the connection's
 * key when its feet are sealed; `footBytes` the session's foot size. A foot
 * that was only sealed comes back in its own payload's memory (overwritten);
 * an inflated one in fresh memory.
 */
export async function unpackFoot(foot: Foot, aad: Uint8Array, footKey: Uint8Array | undefined, footBytes: number): Promise<Unpacked> {
  const { flags, length } = foot.header;
  const sealed = (flags & FOOT_FLAG_SEALED) !== 0;
  if (sealed !== (footKey !== undefined)) {
    return { kind: "violation", reason: sealed ? "a sealed foot on a connection without encrypt" : "an unsealed foot on an encrypted connection" };
  }
  if (length === 0 || length > footBytes) return { kind: "violation", reason: `foot length ${length} is outside 1..${footBytes}` };
  let bytes: Uint8Array = foot.payload;
  if (footKey !== undefined) {
    const opened = openSealed(footKey, aad, bytes);
    if (opened === undefined) return { kind: "corrupt", reason: "failed authentication" };
    bytes = opened;
  }
  const zstd = (flags & FOOT_FLAG_ZSTD) !== 0;
  const gzip = (flags & FOOT_FLAG_GZIP) !== 0;
  if (zstd && gzip) return { kind: "corrupt", reason: "claims two compressions" };
  if (zstd || gzip) {
    try {
      bytes = await inflate(zstd ? "zstd" : "gzip", bytes, length);
    } catch (error) {
      return { kind: "corrupt", reason: `does not inflate (${(error as Error).message})` };
    }
  }
  if (bytes.length !== length) return { kind: "corrupt", reason: `carries ${bytes.length} stream bytes, not ${length}` };
  if (sealed && !zstd && !gzip) {
    // Opened only: the stream bytes go back over the spent sealed ones, so the
    // foot keeps its record's pooled buffer and the fresh copy dies young.
    // Kept until written, those copies piled up for the collector (README, Performance).
    foot.payload.set(bytes);
    bytes = foot.payload.subarray(0, length);
  }
  return { kind: "ok", payload: bytes };
}
