// prbs: the stream of a seed is fixed (golden bytes, an independent per-byte
// reference), the same however it is read, different for every seed and
// every foot; the receiver's check passes it, and names the foot and byte of
// the first difference.
import { describe, expect, test } from "bun:test";
import { VmError } from "../../src/errors.ts";
import { prbsCheckSink } from "../../src/rx/prbs-check.ts";
import { memorySink } from "../../src/rx/stdout.ts";
import { PRBS_PERIOD_BYTES, prbsPattern, prbsSource, prbsState } from "../../src/tx/prbs.ts";

/** The definition, written out plainly: xorshift32 words, little-endian, the period repeated. */
function reference(seed: number, bytes: number): Buffer {
  const period = Buffer.alloc(PRBS_PERIOD_BYTES + 4);
  let x = prbsState(seed);
  for (let at = 0; at < PRBS_PERIOD_BYTES; at += 4) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    period[at] = x & 0xff;
    period[at + 1] = (x >>> 8) & 0xff;
    period[at + 2] = (x >>> 16) & 0xff;
    period[at + 3] = x >>> 24;
  }
  const out = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) out[i] = period[i % PRBS_PERIOD_BYTES]!;
  return out;
}

async function readAll(seed: number, bytes: number, readSizes: number[]): Promise<Buffer> {
  const source = prbsSource(seed);
  const out = Buffer.alloc(bytes);
  for (let at = 0, turn = 0; at < bytes; turn++) {
    const n = await source.read(out.subarray(at, Math.min(bytes, at + readSizes[turn % readSizes.length]!)));
    expect(n).toBeGreaterThan(0);
    at += n;
  }
  return out;
}

const FOOT = 2 * 1024 * 1024;

describe("prbs stream", () => {
  test("known first bytes (golden)", () => {
    const first = (seed: number) => {
      const bytes = Buffer.alloc(16);
      prbsPattern(seed).fill(bytes, 0);
      return bytes.toString("hex");
    };
    expect(prbsState(0x1234)).toBe(0xa80aa3a5);
    expect(first(0x0000)).toBe("11472d5136652cc013eddaddcf68618f");
    expect(first(0x1234)).toBe("daceb1730fd63f07f05637420452c9b5");
    expect(first(0xffff)).toBe("d8b7946f8fa696d42c93af0869a787a3");
  });

  test("matches the per-byte reference across the period's wrap", async () => {
    const bytes = PRBS_PERIOD_BYTES * 2 + 12345;
    expect((await readAll(0x1234, bytes, [bytes])).equals(reference(0x1234, bytes))).toBe(true);
  });

  test("deterministic: the same bytes however the reads are sized", async () => {
    const bytes = 3 * FOOT + 17;
    const whole = await readAll(7, bytes, [FOOT]);
    for (const sizes of [[1, 7, 65536], [PRBS_PERIOD_BYTES + 1], [bytes]]) {
      expect((await readAll(7, bytes, sizes)).equals(whole)).toBe(true);
    }
  });

  test("every seed its own stream; every foot different from the next", async () => {
    const heads = new Set<string>();
    for (let seed = 0; seed <= 0xffff; seed += 0x1111) heads.add((await readAll(seed, 32, [32])).toString("hex"));
    expect(heads.size).toBe(16);
    const feet = await readAll(1, 4 * FOOT, [FOOT]);
    for (let k = 1; k < 4; k++) expect(feet.subarray(0, FOOT).equals(feet.subarray(k * FOOT, (k + 1) * FOOT))).toBe(false);
  });
});

describe("prbs check on the receiver", () => {
  test("passes the stream on unchanged, in any write sizes", async () => {
    const stream = await readAll(0x1234, 2 * FOOT + 99, [FOOT]);
    const inner = memorySink();
    const check = prbsCheckSink(0x1234, FOOT, inner);
    for (const [from, to] of [[0, FOOT], [FOOT, FOOT + 5], [FOOT + 5, stream.length]] as const) await check.write(stream.subarray(from, to));
    expect(Buffer.from(inner.bytes()).equals(stream)).toBe(true);
    expect(check.checkedBytes()).toBe(stream.length);
  });

  test("a flipped byte: integrity error naming prbs, the foot and the byte; the foot is still written", async () => {
    const stream = await readAll(0x1234, 3 * FOOT, [FOOT]);
    stream[2 * FOOT + 1000]! ^= 0x40;
    const inner = memorySink();
    const check = prbsCheckSink(0x1234, FOOT, inner);
    await check.write(stream.subarray(0, FOOT));
    await check.write(stream.subarray(FOOT, 2 * FOOT));
    const failure = await check.write(stream.subarray(2 * FOOT)).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(VmError);
    expect((failure as VmError).code).toBe("integrity");
    expect((failure as VmError).message).toBe(
      `prbs mismatch in foot 2 at byte ${2 * FOOT + 1000}: the stream is not prbs 0x1234; give both ends the same 'prbs SEED'`,
    );
    expect(inner.bytes().length).toBe(3 * FOOT);
  });

  test("another seed fails at foot 0, byte 0", async () => {
    const check = prbsCheckSink(0x1234, FOOT, memorySink());
    const failure = (await check.write(await readAll(0x1235, 4096, [4096])).catch((error: unknown) => error)) as VmError;
    expect(failure.message).toStartWith("prbs mismatch in foot 0 at byte 0:");
  });
});
