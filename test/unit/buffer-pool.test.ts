// The foot buffer pool: reuse, and the two ways reuse could corrupt data
// (a buffer given twice, a foreign buffer) are refused; as a budget, it lends
// at most maxLent buffers and calls waiters back once one returns.
import { describe, expect, test } from "bun:test";
import { BufferPool } from "../../src/net/buffer-pool.ts";

describe("BufferPool", () => {
  test("a given-back buffer is handed out again, whole", () => {
    const pool = new BufferPool(16, 4);
    const first = pool.take();
    pool.give(first.subarray(2, 5)); // a view of it, as a short last foot is
    const again = pool.take();
    expect(again.buffer).toBe(first.buffer);
    expect(again.length).toBe(16);
  });

  test("giving the same buffer twice does not hand it to two owners", () => {
    const pool = new BufferPool(16, 4);
    const buffer = pool.take();
    pool.give(buffer);
    pool.give(buffer);
    expect(pool.freeCount).toBe(1);
    expect(pool.take().buffer).not.toBe(pool.take().buffer);
  });

  test("memory the pool did not hand out is ignored; the free list is capped", () => {
    const pool = new BufferPool(16, 1);
    pool.give(new Uint8Array(16));
    expect(pool.freeCount).toBe(0);
    const [a, b] = [pool.take(), pool.take()];
    pool.give(a);
    pool.give(b);
    expect(pool.freeCount).toBe(1);
  });

  test("as a budget: at most maxLent buffers are out, and memory never exceeds them", () => {
    const pool = new BufferPool(16, 2, 2);
    const [a, b] = [pool.tryTake(), pool.tryTake()];
    expect(a).toBeDefined();
    expect(b).toBeDefined();
    expect(pool.tryTake()).toBeUndefined();
    pool.give(a!);
    expect(pool.lentCount).toBe(1);
    const again = pool.tryTake();
    expect(again?.buffer).toBe(a!.buffer); // reused, not a third buffer
    expect(pool.tryTake()).toBeUndefined();
  });

  test("a buffer given twice returns one place to the budget, not two", () => {
    const pool = new BufferPool(16, 2, 2);
    const a = pool.tryTake()!;
    pool.tryTake();
    pool.give(a);
    pool.give(a);
    expect(pool.lentCount).toBe(1);
    expect(pool.tryTake()).toBeDefined();
    expect(pool.tryTake()).toBeUndefined();
  });

  test("waiters are called back after a buffer returns, not from inside give", async () => {
    const pool = new BufferPool(16, 1, 1);
    const a = pool.tryTake()!;
    const calls: string[] = [];
    pool.whenAvailable(() => calls.push("first"));
    pool.whenAvailable(() => calls.push("second"));
    pool.give(a);
    expect(calls).toEqual([]);
    await Promise.resolve();
    expect(calls).toEqual(["first", "second"]);
    pool.give(pool.take()); // nobody waits any more: called once only
    await Promise.resolve();
    expect(calls).toEqual(["first", "second"]);
  });
});
