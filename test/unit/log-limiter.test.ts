/**
 * Rate-limited warnings (src/log-limiter.ts) on an injected clock: the first
 * of a kind in full, the rest of its interval as one summary line, kinds
 * apart, and a quiet interval closing without a line.
 */
import { expect, test } from "bun:test";
import { formatCount, WarningLimiter, type Summarize } from "../../src/log-limiter.ts";

const dropped: Summarize = (count, seconds) => `dropped ${formatCount(count)} more pending handshakes in the last ${seconds} s`;
const refused: Summarize = (count, seconds, last) => `refused ${formatCount(count)} more in the last ${seconds} s (the latest: ${last})`;

test("a flood of one kind: the first line, then one summary per interval", () => {
  const limiter = new WarningLimiter(10_000);
  const printed: string[] = [];
  // 12,346 warnings over 9.99 s, then 5 more after the interval ended.
  for (let i = 0; i <= 12_345; i++) printed.push(...limiter.offer("evicted", i * 0.8, `dropping connection ${i}`, dropped));
  expect(printed).toEqual(["dropping connection 0"]);
  expect(limiter.due(9_999)).toEqual([]);
  expect(limiter.due(10_000)).toEqual(["dropped 12,345 more pending handshakes in the last 10 s"]);
  // The flood goes on: counted into the next interval, summed up when it ends.
  for (let i = 0; i < 5; i++) printed.push(...limiter.offer("evicted", 12_000 + i, `dropping more ${i}`, dropped));
  expect(printed).toHaveLength(1);
  expect(limiter.due(20_000)).toEqual(["dropped 5 more pending handshakes in the last 10 s"]);
  // A quiet interval closes without a line; the next warning is printed in full.
  expect(limiter.due(30_000)).toEqual([]);
  expect(limiter.offer("evicted", 31_000, "dropping again", dropped)).toEqual(["dropping again"]);
});

test("a warning after its interval ended brings the summary out first, even without a tick", () => {
  const limiter = new WarningLimiter(10_000);
  expect(limiter.offer("refused", 0, "refused a", refused)).toEqual(["refused a"]);
  expect(limiter.offer("refused", 1, "refused b", refused)).toEqual([]);
  expect(limiter.offer("refused", 2, "refused c", refused)).toEqual([]);
  expect(limiter.offer("refused", 12_400, "refused d", refused)).toEqual(["refused 2 more in the last 12 s (the latest: refused c)"]);
  expect(limiter.due(22_400)).toEqual(["refused 1 more in the last 10 s (the latest: refused d)"]);
});

test("kinds are limited apart", () => {
  const limiter = new WarningLimiter(1_000);
  expect(limiter.offer("a", 0, "a1", dropped)).toEqual(["a1"]);
  expect(limiter.offer("b", 0, "b1", refused)).toEqual(["b1"]);
  expect(limiter.offer("a", 1, "a2", dropped)).toEqual([]);
  expect(limiter.due(1_000)).toEqual(["dropped 1 more pending handshakes in the last 1 s"]);
});

test("a warning that never repeats costs one line and nothing after", () => {
  const limiter = new WarningLimiter(10_000);
  expect(limiter.offer("once", 5, "only once", dropped)).toEqual(["only once"]);
  expect(limiter.due(1_000_000)).toEqual([]);
  expect(formatCount(1234567)).toBe("1,234,567");
});

test("flush owes every summary at once, intervals over or not (the program ends)", () => {
  const limiter = new WarningLimiter(10_000);
  limiter.offer("a", 0, "a1", dropped);
  limiter.offer("a", 1, "a2", dropped);
  limiter.offer("a", 2, "a3", dropped);
  limiter.offer("b", 0, "b1", dropped);
  expect(limiter.flush(3_000)).toEqual(["dropped 2 more pending handshakes in the last 3 s"]);
  expect(limiter.flush(3_001)).toEqual([]);
});
