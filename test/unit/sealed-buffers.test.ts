// The transmitter's sealed copies: pieces gathered into pooled memory, the fresh pieces counted as garbage.
import { expect, test } from "bun:test";
import { BufferPool } from "../../src/net/buffer-pool.ts";
import { SEAL_OVERHEAD_BYTES } from "../../src/protocol/keys.ts";
import { gatherSealed, sealedPool } from "../../src/tx/sealed-copies.ts";

const counter = () => {
  const seen = { bytes: 0, discarded: (n: number) => void (seen.bytes += n) };
  return seen;
};

test("gather joins the pieces in order and counts them as garbage", () => {
  const garbage = counter();
  const out = gatherSealed([Uint8Array.of(1, 2), Uint8Array.of(3), Uint8Array.of(4, 5, 6)], new BufferPool(8, 2), garbage);
  expect([...out]).toEqual([1, 2, 3, 4, 5, 6]);
  expect(garbage.bytes).toBe(6);
});

test("a spent buffer is reused for the next copy, and given once only", () => {
  const pool = new BufferPool(8, 2);
  const first = gatherSealed([new Uint8Array(8).fill(7)], pool, counter());
  pool.give(first);
  pool.give(first);
  expect(pool.freeCount).toBe(1);
  const second = gatherSealed([Uint8Array.of(9, 9, 9)], pool, counter());
  expect(second.buffer).toBe(first.buffer);
  expect([...second]).toEqual([9, 9, 9]);
  expect(pool.freeCount).toBe(0);
});

test("at most maxFree are kept, and a copy larger than the pool's buffers gets its own memory", () => {
  const pool = new BufferPool(8, 2);
  for (const view of [0, 1, 2].map(() => gatherSealed([new Uint8Array(4)], pool, counter()))) pool.give(view);
  expect(pool.freeCount).toBe(2);
  const big = gatherSealed([new Uint8Array(16)], pool, counter());
  expect(big.length).toBe(16);
  expect(pool.freeCount).toBe(2);
  pool.give(big); // not the pool's: ignored
  expect(pool.freeCount).toBe(2);
});

test("one pool per foot size, its buffers a foot plus the seal's overhead", () => {
  expect(sealedPool(1024)).toBe(sealedPool(1024));
  expect(sealedPool(1024).bufferBytes).toBe(1024 + SEAL_OVERHEAD_BYTES);
  expect(sealedPool(2048)).not.toBe(sealedPool(1024));
});
