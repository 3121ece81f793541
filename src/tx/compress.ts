/**
 * Compresses feet off the main thread: zstd with Bun.zstdCompress and gzip
 * with node:zlib's asynchronous gzip both run on the runtime's thread pool,
 * several at once, so compression scales with cores while the main thread
 * keeps reading, sending and sealing. (Measured on Bun 1.4.5: these need no
 * Worker and no copy beyond the compressed output itself.)
 *
 * A foot that does not shrink is sent raw: the result says so.
 */
import type { Compression } from "../options.ts";
import { FOOT_FLAG_GZIP, FOOT_FLAG_ZSTD } from "../protocol/xdr.generated.ts";

export interface Compressed {
  bytes: Uint8Array;
  /** FOOT_FLAG_ZSTD or FOOT_FLAG_GZIP. */
  flag: number;
}

/** The compressed form of `plain`, or undefined when it is not smaller. */
export async function compressFoot(plain: Uint8Array, compression: Compression): Promise<Compressed | undefined> {
  const bytes =
    compression.kind === "zstd"
      ? await Bun.zstdCompress(plain, { level: compression.level })
      : await gzipped(plain, compression.level);
  if (bytes.length >= plain.length) return undefined;
  return { bytes, flag: compression.kind === "zstd" ? FOOT_FLAG_ZSTD : FOOT_FLAG_GZIP };
}

/** node:zlib is loaded on first use: it adds about 9 ms to every start, and few transfers compress. */
async function gzipped(plain: Uint8Array, level: number): Promise<Uint8Array> {
  const { gzip } = await import("node:zlib");
  return new Promise((resolve, reject) => gzip(plain, { level }, (error, out) => (error ? reject(error) : resolve(out))));
}
