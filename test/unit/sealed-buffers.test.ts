// The transmitter's sealed-copy buffers: pieces gathered into reused memory, the fresh pieces counted as garbage.
import { expect, test } from "bun:test";
import { SealedBuffers } from "../../src/tx/connection.ts";

const counter = () => {
  const seen = { bytes: 0, discarded: (n: number) => void (seen.bytes += n) };
  return seen;
};

test("gather joins the pieces in order and counts them as garbage", () => {
  const garbage = counter();
  const buffers = new SealedBuffers(2, garbage);
  const out = buffers.gather([Uint8Array.of(1, 2), Uint8Array.of(3), Uint8Array.of(4, 5, 6)]);
  expect([...out]).toEqual([1, 2, 3, 4, 5, 6]);
  expect(garbage.bytes).toBe(6);
});

test("a spent buffer is reused for the next copy that fits, and given once only", () => {
  const buffers = new SealedBuffers(2, counter());
  const first = buffers.gather([new Uint8Array(8).fill(7)]);
  buffers.give(first);
  buffers.give(first);
  expect(buffers.freeCount).toBe(1);
  const second = buffers.gather([Uint8Array.of(9, 9, 9)]);
  expect(second.buffer).toBe(first.buffer);
  expect([...second]).toEqual([9, 9, 9]);
  expect(buffers.freeCount).toBe(0);
});

test("at most maxFree are kept, and a too-small one makes way for a bigger copy", () => {
  const buffers = new SealedBuffers(2, counter());
  for (const view of [buffers.gather([new Uint8Array(4)]), buffers.gather([new Uint8Array(4)]), buffers.gather([new Uint8Array(4)])]) buffers.give(view);
  expect(buffers.freeCount).toBe(2);
  const big = buffers.gather([new Uint8Array(16)]);
  expect(big.length).toBe(16);
  expect(buffers.freeCount).toBe(1);
});
