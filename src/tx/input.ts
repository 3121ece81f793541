/**
 * What the transmitter reads, built from its options:
 *
 *   stdin (or a tunnel's connection) | prbs SEED
 *     → leglimit (N feet' worth of bytes) → delayus (a wait before each foot)
 *     → ratelimit (a token bucket) → the chunker
 *
 * Every stage is a ByteSource wrapper over the one input stream, so each
 * applies to the whole transfer however many connections and links carry it.
 */
import type { TransmitterOptions } from "../options.ts";
import { nominalFootBytes } from "./foot-size.ts";
import { delayEachFoot, limitBytes, rateLimit } from "./pacing.ts";
import { prbsSource } from "./prbs.ts";
import type { ByteSource } from "./stdin.ts";

export function transmitterInput(options: TransmitterOptions, base: ByteSource): ByteSource {
  let source = options.prbsSeed === undefined ? base : prbsSource(options.prbsSeed);
  // These count feet before any connection settles `foot auto`: in feet of `foot SIZE`, else of the default.
  const footBytes = nominalFootBytes(options);
  // 2^32 feet of 16 MiB pass 2^53: past that, bytes would not count exactly (8 PiB is the limit then).
  if (options.legLimit !== undefined) source = limitBytes(source, Math.min(options.legLimit * footBytes, Number.MAX_SAFE_INTEGER));
  if (options.delayUs !== undefined && options.delayUs > 0) source = delayEachFoot(source, footBytes, options.delayUs);
  if (options.rateBytesPerS !== undefined) source = rateLimit(source, options.rateBytesPerS, footBytes);
  return source;
}
