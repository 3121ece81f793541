/**
 * Unpacking feet: where the stream bytes end up.
 *
 * Proves: a foot that was only sealed is opened into its own payload's memory
 * (the record's pooled buffer stays the foot's; nothing fresh outlives the
 * call), a sealed and compressed one inflates into fresh memory of exactly the
 * foot's length, and a foot shorter than zlib's smallest output chunk inflates.
 * (Bombs and seal/connection mismatches: keys.test.ts.)
 */
import { expect, test } from "bun:test";
import { footKey, FootSealer, keyNonce } from "../../src/protocol/keys.ts";
import { ChecksumKind, FOOT_FLAG_GZIP, FOOT_FLAG_SEALED, FOOT_FLAG_ZSTD } from "../../src/protocol/xdr.generated.ts";
import { unpackFoot } from "../../src/rx/unpack.ts";

const header = (length: number, flags: number) => ({ footId: 1n, streamOffset: 0n, length, sum: { kind: ChecksumKind.CHECKSUM_NONE }, flags }) as never;
const kc = footKey(crypto.getRandomValues(new Uint8Array(32)), keyNonce(), keyNonce());
const aad = Uint8Array.of(4, 5, 6);

/** `bytes` sealed, inside a larger buffer as a record's payload is. */
function sealedPayload(bytes: Uint8Array): Uint8Array {
  const sealed = Buffer.concat(new FootSealer(kc).seal(aad, bytes));
  const record = new Uint8Array(16 + sealed.length + 8);
  record.set(sealed, 16);
  return record.subarray(16, 16 + sealed.length);
}

test("a foot that was only sealed is opened into its own payload's memory", async () => {
  const plain = crypto.getRandomValues(new Uint8Array(100_000));
  const payload = sealedPayload(plain);
  const outcome = await unpackFoot({ header: header(plain.length, FOOT_FLAG_SEALED), payload }, aad, kc, 1 << 21);
  if (outcome.kind !== "ok") throw new Error(`not ok: ${JSON.stringify(outcome)}`);
  expect(Buffer.from(outcome.payload).equals(plain)).toBe(true);
  expect(outcome.payload.buffer).toBe(payload.buffer);
  expect(outcome.payload.byteOffset).toBe(payload.byteOffset);
});

test("a tampered sealed foot is corrupt", async () => {
  const payload = sealedPayload(new Uint8Array(1000).fill(3));
  payload[500]! ^= 1;
  expect((await unpackFoot({ header: header(1000, FOOT_FLAG_SEALED), payload }, aad, kc, 1 << 21)).kind).toBe("corrupt");
});

test("a sealed, compressed foot inflates into fresh memory of exactly its length", async () => {
  const plain = new TextEncoder().encode("a line of log text\n".repeat(20_000));
  const payload = sealedPayload(Bun.zstdCompressSync(plain));
  const outcome = await unpackFoot({ header: header(plain.length, FOOT_FLAG_SEALED | FOOT_FLAG_ZSTD), payload }, aad, kc, 1 << 21);
  if (outcome.kind !== "ok") throw new Error(`not ok: ${JSON.stringify(outcome)}`);
  expect(Buffer.from(outcome.payload).equals(plain)).toBe(true);
  expect(outcome.payload.buffer).not.toBe(payload.buffer);
  expect(outcome.payload.length).toBe(plain.length);
});

test("a foot shorter than zlib's smallest output chunk inflates, with either compression", async () => {
  for (const [flag, packed] of [
    [FOOT_FLAG_ZSTD, Bun.zstdCompressSync(Uint8Array.of(42))],
    [FOOT_FLAG_GZIP, Bun.gzipSync(Uint8Array.of(42))],
  ] as const) {
    const outcome = await unpackFoot({ header: header(1, flag), payload: packed }, new Uint8Array(), undefined, 1 << 21);
    expect(outcome).toEqual({ kind: "ok", payload: Buffer.from([42]) });
  }
});
