/** What both benchmarks share: their error type, environment knobs, and summary arithmetic. */

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

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
