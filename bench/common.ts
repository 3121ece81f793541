/** What the benchmarks share: their error type, environment knobs, summary arithmetic, and the random input file. */
import { randomFillSync } from "node:crypto";
import { closeSync, existsSync, openSync, renameSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Random bytes are generated and written in blocks of this size. */
export const GENERATE_BLOCK_BYTES = 16 * 1024 * 1024;

/** A benchmark failure worth one line (a failed transfer, a bad knob), not a stack trace. */
export class BenchError extends Error {}

/** A positive integer from the environment variable `name`, or `fallback` when unset. */
export function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) throw new BenchError(`${name}=${raw}: expected a positive integer`);
  return value;
}

/**
 * Runs a bench's `main` and exits with its status; a BenchError is one line on
 * stderr, anything else its stack (a bug in the bench), both exit 1.
 */
export async function runBench(main: () => Promise<number>): Promise<never> {
  try {
    process.exit(await main());
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof BenchError ? error.message : (error as Error).stack}\n`);
    process.exit(1);
  }
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** A cached file of `bytes` random bytes in os.tmpdir(); created through a temp name and a rename. */
export function inputFile(bytes: number): { path: string; created: boolean } {
  const path = join(tmpdir(), `viamillipede-bench-${bytes}.bin`);
  if (existsSync(path) && statSync(path).size === bytes) return { path, created: false };
  const partial = `${path}.${process.pid}.partial`;
  const block = Buffer.allocUnsafe(Math.min(GENERATE_BLOCK_BYTES, bytes));
  const fd = openSync(partial, "w");
  try {
    for (let left = bytes; left > 0; left -= block.length) {
      randomFillSync(block);
      writeSync(fd, block, 0, Math.min(block.length, left));
    }
  } finally {
    closeSync(fd);
  }
  renameSync(partial, path);
  return { path, created: true };
}

export async function sha256(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
  return hasher.digest("hex");
}
