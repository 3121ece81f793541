/**
 * ByteSource wrappers that bound and pace the transmitter's input. They sit
 * between the input (stdin, prbs, a tunnel) and the chunker, so they act on
 * the one stream, before it is cut and spread over connections and links:
 *
 *  1. `limitBytes`: `leglimit N` ends the input after N feet' worth of bytes.
 *  2. `delayEachFoot`: `delayus N` waits N µs before each foot's worth.
 *  3. `rateLimit`: `ratelimit RATE` lets bytes through a token bucket, so the
 *     whole transfer (every connection and link together) reads at most RATE
 *     bytes per second on average.
 *
 * The clock is injected (src/clock.ts) so the arithmetic is tested without waiting.
 */
import { systemClock } from "../clock.ts";
import type { ByteSource } from "./stdin.ts";

/** What pacing reads of a clock (a Clock is one). */
export interface PacingClock {
  now(): number;
  sleep(ms: number, name?: string): Promise<void>;
}

/** Timers cannot wait less than this; shorter waits are owed and paid together. */
const MIN_SLEEP_MS = 1;

/** Ends the input after `limit` bytes (or earlier, where the input ends). */
export function limitBytes(source: ByteSource, limit: number): ByteSource {
  let left = limit;
  return {
    async read(into) {
      if (left <= 0) return 0;
      const n = await source.read(into.length > left ? into.subarray(0, left) : into);
      left -= n;
      return n;
    },
  };
}

/**
 * Waits `delayUs` before each `footBytes` of input: a foot's first bytes
 * are handed on only after the wait. Reads never cross a foot boundary, so
 * a whole foot comes after its wait. Waits below a timer's resolution are added up and paid
 * once they reach MIN_SLEEP_MS; oversleeping is credited, so the total wait
 * over many feet is feet × delayUs.
 */
export function delayEachFoot(source: ByteSource, footBytes: number, delayUs: number, clock: PacingClock = systemClock): ByteSource {
  let intoFoot = 0;
  /** Milliseconds of waiting owed (negative: overslept, in credit). */
  let owedMs = 0;
  return {
    async read(into) {
      const room = footBytes - intoFoot;
      const n = await source.read(into.length > room ? into.subarray(0, room) : into);
      // The wait comes after the read, so the end of input is never delayed for a foot that is not there.
      if (n > 0 && intoFoot === 0) {
        owedMs += delayUs / 1000;
        if (owedMs >= MIN_SLEEP_MS) {
          const start = clock.now();
          await clock.sleep(owedMs, "delayus before a foot");
          owedMs -= clock.now() - start;
        }
      }
      intoFoot = (intoFoot + n) % footBytes;
      return n;
    },
  };
}

/**
 * A token bucket: tokens (bytes) accrue at `bytesPerSecond` up to
 * `burstBytes`; taking more than there are leaves a debt that must be
 * waited off. It starts empty, so from the start, bytes taken by time t
 * never exceed rate × t plus the last take.
 */
export class TokenBucket {
  private tokens = 0;
  private last: number;

  constructor(
    readonly bytesPerSecond: number,
    readonly burstBytes: number,
    private readonly now: () => number,
  ) {
    this.last = now();
  }

  /** Takes `bytes` and returns how many milliseconds to wait before using them (0: at once). */
  take(bytes: number): number {
    const now = this.now();
    this.tokens = Math.min(this.burstBytes, this.tokens + ((now - this.last) * this.bytesPerSecond) / 1000);
    this.last = now;
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.bytesPerSecond;
  }
}

/** Reads per second the bucket is fed in at most (so a read is at most 1/20 s of the rate). */
const RATE_READS_PER_SECOND = 20;

/** The largest read `rateLimit` makes at `bytesPerSecond`: 1/20 s of it, at least 1 byte, at most `maxBytes`. */
export function rateReadBytes(bytesPerSecond: number, maxBytes: number): number {
  return Math.max(1, Math.min(maxBytes, Math.floor(bytesPerSecond / RATE_READS_PER_SECOND)));
}

/**
 * Passes the input on at `bytesPerSecond` on average: each read is handed
 * over once the bucket has paid for it. Reads are capped at 1/20 s of the
 * rate, so the output flows in small steps rather than bursts.
 */
export function rateLimit(source: ByteSource, bytesPerSecond: number, maxReadBytes: number, clock: PacingClock = systemClock): ByteSource {
  const readBytes = rateReadBytes(bytesPerSecond, maxReadBytes);
  const bucket = new TokenBucket(bytesPerSecond, readBytes, () => clock.now());
  return {
    async read(into) {
      const n = await source.read(into.length > readBytes ? into.subarray(0, readBytes) : into);
      const waitMs = bucket.take(n);
      if (waitMs > 0) await clock.sleep(waitMs, "ratelimit tokens");
      return n;
    },
  };
}
