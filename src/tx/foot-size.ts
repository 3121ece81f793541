/**
 * How large the feet are when `foot` is not given (`foot auto`): settled once
 * per transfer by the first connection to open, from the round trip its
 * kernel measured during the TCP handshake, before its hello (which carries
 * the size) goes out.
 *
 * Why smaller feet on a long path: a connection carries a foot at its own
 * pace, and on a long lossy path that pace is slow (cubic with 1 % loss at
 * 200 ms moves about 100 KiB/s per connection, so a 2 MiB foot spends some
 * 20 s on it). The receiver's window holds a number of feet; with one 2 MiB
 * foot per connection it is full, and every connection waits for the
 * slowest foot. Smaller feet keep several on each connection and the
 * window moving: on the WAN rig (300 Mbit/s, 200 ms, 1 % loss, cubic, 128 MiB)
 * 2 MiB feet took 64.4 and 64.5 s, 512 KiB feet 33.0 and 35.3 s, 256 KiB
 * 33.9 and 39.2 s (bench/wan.md).
 *
 * Why 2 MiB on a short one: on loopback and a LAN each connection moves a
 * foot in milliseconds, and fewer feet cost less work per byte.
 */
import { DEFAULT_FOOT_BYTES, type TransmitterOptions } from "../options.ts";

/** A first round trip at least this long is a long path's. */
export const LONG_PATH_ROUND_TRIP_MS = 5;
/** The feet of a long path. */
export const LONG_PATH_FOOT_BYTES = 512 * 1024;

/** The foot size `foot auto` settles on for a first round trip of `roundTripMs` (unknown: the default). */
export function autoFootBytes(roundTripMs: number | undefined): number {
  return roundTripMs !== undefined && roundTripMs >= LONG_PATH_ROUND_TRIP_MS ? LONG_PATH_FOOT_BYTES : DEFAULT_FOOT_BYTES;
}

/** The size the input's own stages (leglimit, delayus, ratelimit) count feet in: `foot SIZE`, else the default. */
export function nominalFootBytes(options: Pick<TransmitterOptions, "footBytes">): number {
  return options.footBytes === "auto" ? DEFAULT_FOOT_BYTES : options.footBytes;
}
