/**
 * Rate-limited warnings (src/log-limiter.ts) on an injected clock: the first
 * of a kind in full, the rest of its interval as one summary line, kinds
 * apart, and a quiet interval closing without a line.
 */
import { expect, test } from "bun:test";
import { formatCount, WarningLimiter, type Summarize } from "../../src/log-limiter.ts";
import { VirtualClock } from "../support/virtual-clock.ts";

const dropped: Summarize = (count, seconds) => `dropped ${formatCount(count)} more pending handshakes in the last ${seconds} s`;
const refused: Summarize = (count, seconds, last) => `refused ${formatCount(count)} more in the last ${seconds} s (the latest: ${last})`;

/** A limiter on a virtual clock, and a way to move that clock to `ms` (no timers: nothing else runs). */
function limiterAt(intervalMs: number): { limiter: WarningLimiter; at: (ms: number) => Promise<void> } {
  const clock = new VirtualClock();
  return { limiter: new WarningLimiter(intervalMs, clock), at: (ms) => clock.advance(ms - clock.now()) };
}

test("a flood of one kind: the first line, then one summary per interval", async () => {
  const { limiter, at } = limiterAt(10_000);
  const printed: string[] = [];
  // 12,346 warnings over 9.99 s, then 5 more after the interval ended.
  for (let i = 0; i <= 12_345; i++) {
    await at(i * 0.8);
    printed.push(...limiter.offer("evicted", `dropping connection ${i}`, dropped));
  }
  expect(printed).toEqual(["dropping connection 0"]);
  await at(9_999);
  expect(limiter.due()).toEqual([]);
  await at(10_000);
  expect(limiter.due()).toEqual(["dropped 12,345 more pending handshakes in the last 10 s"]);
  // The flood goes on: counted into the next interval, summed up when it ends.
  for (let i = 0; i < 5; i++) {
    await at(12_000 + i);
    printed.push(...limiter.offer("evicted", `dropping more ${i}`, dropped));
  }
  expect(printed).toHaveLength(1);
  await at(20_000);
  expect(limiter.due()).toEqual(["dropped 5 more pending handshakes in the last 10 s"]);
  // A quiet interval closes without a line; the next warning is printed in full.
  await at(30_000);
  expect(limiter.due()).toEqual([]);
  await at(31_000);
  expect(limiter.offer("evicted", "dropping again", dropped)).toEqual(["dropping again"]);
});

test("a warning after its interval ended brings the summary out first, even without a tick", async () => {
  const { limiter, at } = limiterAt(10_000);
  expect(limiter.offer("refused", "refused a", refused)).toEqual(["refused a"]);
  await at(1);
  expect(limiter.offer("refused", "refused b", refused)).toEqual([]);
  await at(2);
  expect(limiter.offer("refused", "refused c", refused)).toEqual([]);
  await at(12_400);
  expect(limiter.offer("refused", "refused d", refused)).toEqual(["refused 2 more in the last 12 s (the latest: refused c)"]);
  await at(22_400);
  expect(limiter.due()).toEqual(["refused 1 more in the last 10 s (the latest: refused d)"]);
});

test("kinds are limited apart", async () => {
  const { limiter, at } = limiterAt(1_000);
  expect(limiter.offer("a", "a1", dropped)).toEqual(["a1"]);
  expect(limiter.offer("b", "b1", refused)).toEqual(["b1"]);
  await at(1);
  expect(limiter.offer("a", "a2", dropped)).toEqual([]);
  await at(1_000);
  expect(limiter.due()).toEqual(["dropped 1 more pending handshakes in the last 1 s"]);
});

test("a warning that never repeats costs one line and nothing after", async () => {
  const { limiter, at } = limiterAt(10_000);
  await at(5);
  expect(limiter.offer("once", "only once", dropped)).toEqual(["only once"]);
  await at(1_000_000);
  expect(limiter.due()).toEqual([]);
  expect(formatCount(1234567)).toBe("1,234,567");
});

test("flush owes every summary at once, intervals over or not (the program ends)", async () => {
  const { limiter, at } = limiterAt(10_000);
  limiter.offer("a", "a1", dropped);
  limiter.offer("b", "b1", dropped);
  await at(1);
  limiter.offer("a", "a2", dropped);
  await at(2);
  limiter.offer("a", "a3", dropped);
  await at(3_000);
  expect(limiter.flush()).toEqual(["dropped 2 more pending handshakes in the last 3 s"]);
  await at(3_001);
  expect(limiter.flush()).toEqual([]);
});
