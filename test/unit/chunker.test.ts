// The chunker: foot boundaries depend only on the bytes, never on how the
// input arrived (short reads are merged); in charmode, a pause in the input
// sends what it has, and input that keeps coming still fills whole feet.
import { describe, expect, test } from "bun:test";
import { Chunker, type Cut } from "../../src/tx/chunker.ts";
import type { ByteSource } from "../../src/tx/stdin.ts";
import { memorySource } from "../support/memory-source.ts";

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

/** A source that replays `script`: chunks of bytes, with waits (ms) between them, then the end. */
function scripted(script: (Uint8Array | number)[]): ByteSource {
  const steps = [...script];
  let leftover: Uint8Array | undefined;
  return {
    async read(into) {
      for (;;) {
        const step = leftover ?? steps.shift();
        leftover = undefined;
        if (step === undefined) return 0;
        if (typeof step === "number") {
          await Bun.sleep(step);
          continue;
        }
        const n = Math.min(into.length, step.length);
        into.set(step.subarray(0, n));
        if (n < step.length) leftover = step.subarray(n);
        return n;
      }
    },
  };
}

const text = (s: string) => new TextEncoder().encode(s);

describe("Chunker in charmode", () => {
  test("a pause in the input sends what came before it, at once; the read that waited on starts the next foot", async () => {
    const chunker = new Chunker(scripted([text("hello\n"), 80, text("world\n")]), 1024, undefined, true);
    const started = performance.now();
    const first = await chunker.next();
    const firstMs = performance.now() - started;
    const second = await chunker.next();
    expect(await chunker.next()).toBeUndefined();
    expect(new TextDecoder().decode(first?.payload)).toBe("hello\n");
    expect(firstMs).toBeLessThan(50); // well before the second line
    expect([second?.id, second?.offset, new TextDecoder().decode(second?.payload)]).toEqual([1n, 6n, "world\n"]);
  });

  test("input that keeps coming fills whole feet, as without charmode", async () => {
    const input = crypto.getRandomValues(new Uint8Array(10_000));
    const chunker = new Chunker(memorySource(input, [7, 300, 1]), 1000, undefined, true);
    const feet = [];
    for (let f = await chunker.next(); f !== undefined; f = await chunker.next()) feet.push(f);
    expect(feet.map((f) => f.payload.length)).toEqual(Array(10).fill(1000));
    expect(Buffer.concat(feet.map((f) => f.payload)).equals(input)).toBe(true);
  });

  test("a trickle that never pauses long still leaves once the first byte has waited holdMs", async () => {
    const script: (Uint8Array | number)[] = [];
    for (let i = 0; i < 40; i++) script.push(text(String.fromCharCode(65 + (i % 26))), 1);
    const chunker = new Chunker(scripted(script), 1024, undefined, true, { quietMs: 20, holdMs: 15 });
    const feet: Cut[] = [];
    for (let f = await chunker.next(); f !== undefined; f = await chunker.next()) feet.push(f);
    expect(feet.length).toBeGreaterThan(1);
    expect(feet.map((f) => f.offset)).toEqual(feet.map((_, i) => BigInt(feet.slice(0, i).reduce((sum, f) => sum + f.payload.length, 0))));
    expect(new TextDecoder().decode(Buffer.concat(feet.map((f) => f.payload)))).toBe(
      Array.from({ length: 40 }, (_, i) => String.fromCharCode(65 + (i % 26))).join(""),
    );
  });

  test("a read failure is the chunker's failure", async () => {
    const failing: ByteSource = {
      read: async () => {
        throw new Error("EIO");
      },
    };
    await expect(new Chunker(failing, 1024, undefined, true).next()).rejects.toThrow("EIO");
  });
});
