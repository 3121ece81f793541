// The chunker: foot boundaries depend only on the bytes, never on how the
// input arrived (short reads are merged).
import { describe, expect, test } from "bun:test";
import { Chunker } from "../../src/tx/chunker.ts";
import { memorySource } from "../../src/tx/stdin.ts";

async function cut(input: Uint8Array, footBytes: number, chunkSizes?: number[]) {
  const chunker = new Chunker(memorySource(input, chunkSizes), footBytes);
  const feet = [];
  for (let f = await chunker.next(); f !== undefined; f = await chunker.next()) feet.push(f);
  expect(await chunker.next()).toBeUndefined(); // stays ended
  return feet;
}

describe("Chunker", () => {
  const input = crypto.getRandomValues(new Uint8Array(10_000));

  test("empty input: no feet", async () => {
    expect(await cut(new Uint8Array(0), 16)).toEqual([]);
  });

  test("sizes: exact multiple, one over, one byte", async () => {
    expect((await cut(input.subarray(0, 4096), 1024)).map((f) => f.payload.length)).toEqual([1024, 1024, 1024, 1024]);
    expect((await cut(input.subarray(0, 4097), 1024)).map((f) => f.payload.length)).toEqual([1024, 1024, 1024, 1024, 1]);
    expect((await cut(input.subarray(0, 1), 1024)).map((f) => f.payload.length)).toEqual([1]);
  });

  test("odd-sized reads are merged into the same feet", async () => {
    const reference = await cut(input, 1000);
    for (const sizes of [[1], [7, 1, 3000], [999], [1001], [4096]]) {
      const feet = await cut(input, 1000, sizes);
      expect(feet.map((f) => [f.id, f.offset, Buffer.from(f.payload).toString("hex")])).toEqual(
        reference.map((f) => [f.id, f.offset, Buffer.from(f.payload).toString("hex")]),
      );
    }
  });

  test("ids and offsets count up", async () => {
    const feet = await cut(input, 3000);
    expect(feet.map((f) => [f.id, f.offset])).toEqual([[0n, 0n], [1n, 3000n], [2n, 6000n], [3n, 9000n]]);
  });
});
