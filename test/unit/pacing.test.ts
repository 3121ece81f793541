// The input's pacing, on a fake clock: leglimit's byte bound, delayus's wait
// before each foot (sub-millisecond waits added up), and ratelimit's token
// bucket arithmetic and its long-run rate.
import { describe, expect, test } from "bun:test";
import { delayEachFoot, limitBytes, rateLimit, rateReadBytes, TokenBucket, type PacingClock as Clock } from "../../src/tx/pacing.ts";
import type { ByteSource } from "../../src/tx/stdin.ts";
import { memorySource } from "../support/memory-source.ts";

/** A clock that only moves when slept on (or told to), recording each sleep. */
function fakeClock(): Clock & { t: number; sleeps: number[] } {
  const clock = {
    t: 0,
    sleeps: [] as number[],
    now: () => clock.t,
    sleep: async (ms: number) => {
      clock.sleeps.push(ms);
      clock.t += ms;
    },
  };
  return clock;
}

async function drain(source: ByteSource, readBytes: number, onRead: (n: number) => void = () => {}): Promise<number> {
  const buffer = new Uint8Array(readBytes);
  let total = 0;
  for (let n = await source.read(buffer); n > 0; n = await source.read(buffer)) {
    total += n;
    onRead(n);
  }
  return total;
}

/** An endless source of zeros. */
const endless: ByteSource = { read: async (into) => into.length };

describe("leglimit: limitBytes", () => {
  test("ends an endless input at exactly the limit, whatever the read size", async () => {
    for (const readBytes of [1000, 4096, 1 << 20]) expect(await drain(limitBytes(endless, 10_000), readBytes)).toBe(10_000);
  });

  test("a shorter input ends first", async () => {
    expect(await drain(limitBytes(memorySource(new Uint8Array(300)), 10_000), 128)).toBe(300);
  });
});

describe("delayus: delayEachFoot", () => {
  test("one wait per foot, before its bytes; none after the last foot", async () => {
    const clock = fakeClock();
    const reads: [at: number, n: number][] = [];
    const source = delayEachFoot(memorySource(new Uint8Array(2500)), 1000, 5000, clock);
    await drain(source, 700, (n) => reads.push([clock.t, n]));
    // Reads stop at foot boundaries; each foot's first read comes 5 ms after the previous foot's.
    expect(reads).toEqual([[5, 700], [5, 300], [10, 700], [10, 300], [15, 500]]);
    expect(clock.sleeps).toEqual([5, 5, 5]);
  });

  test("waits shorter than a timer can sleep are added up: 250 µs × 40 feet = 10 ms in 1 ms sleeps", async () => {
    const clock = fakeClock();
    await drain(delayEachFoot(limitBytes(endless, 40 * 100), 100, 250, clock), 100);
    expect(clock.sleeps).toEqual(Array(10).fill(1));
    expect(clock.t).toBe(10);
  });

  test("oversleeping is credited", async () => {
    const clock = fakeClock();
    const late: Clock = { now: clock.now, sleep: (ms) => clock.sleep(ms * 1.5) }; // a timer that fires 50% late
    await drain(delayEachFoot(limitBytes(endless, 100 * 10), 10, 2000, late), 10);
    expect(clock.t).toBeGreaterThanOrEqual(200);
    expect(clock.t).toBeLessThanOrEqual(200 + 3); // not 300
  });
});

describe("ratelimit: TokenBucket", () => {
  test("starts empty: the first take waits for its bytes", () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(1000, 100, clock.now);
    expect(bucket.take(100)).toBe(100); // 100 bytes at 1000 B/s
  });

  test("tokens accrue with time, up to the burst", () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(1000, 100, clock.now);
    clock.t = 50;
    expect(bucket.take(50)).toBe(0); // 50 accrued
    clock.t = 10_000; // a long idle time accrues only the burst
    expect(bucket.take(100)).toBe(0);
    expect(bucket.take(100)).toBe(100);
  });

  test("debt carries over: two takes back to back wait for both", () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(2000, 100, clock.now);
    expect(bucket.take(100)).toBe(50);
    expect(bucket.take(100)).toBe(100); // nothing paid yet: 200 bytes owed
    clock.t = 100;
    expect(bucket.take(0)).toBe(0);
  });

  test("read size: 1/20 s of the rate, within 1..max", () => {
    expect([rateReadBytes(50 * 2 ** 20, 2 ** 21), rateReadBytes(1_000_000, 2 ** 21), rateReadBytes(10, 2 ** 21)]).toEqual([2 ** 21, 50_000, 1]);
  });

  test("rateLimit: 10 MB at 1 MB/s takes 10 s of clock, in steps of at most 50 ms", async () => {
    const clock = fakeClock();
    const total = await drain(rateLimit(limitBytes(endless, 10_000_000), 1_000_000, 2 ** 21, clock), 2 ** 21);
    expect(total).toBe(10_000_000);
    expect(clock.t).toBeCloseTo(10_000, 6);
    expect(Math.max(...clock.sleeps)).toBeLessThanOrEqual(50);
  });

  test("rateLimit: time spent reading counts towards the wait (the rate, not rate plus input time)", async () => {
    const clock = fakeClock();
    // An input that takes 10 ms per read (250 KB/s in 2500-byte reads), limited to 50 KB/s.
    const slow: ByteSource = {
      read: async (into) => {
        await clock.sleep(10);
        return into.length;
      },
    };
    await drain(rateLimit(limitBytes(slow, 1_000_000), 50_000, 2 ** 21, clock), 65536);
    expect(clock.t).toBeGreaterThanOrEqual(20_000);
    expect(clock.t).toBeLessThanOrEqual(20_000 + 100);
  });
});
