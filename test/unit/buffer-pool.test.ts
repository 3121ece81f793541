// The foot buffer pool: reuse, and the two ways reuse could corrupt data
// (a buffer given twice, a foreign buffer) are refused.
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
});
