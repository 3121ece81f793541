/** Deterministic, incompressible-looking bytes for in-process tests (xorshift32 from a seed). */
export function pattern(size: number, seed = 0): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = 0x9e3779b9 ^ seed;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}
