/**
 * Keys, seals and unpacking, in process.
 *
 * Proves: the two proofs differ by role and depend on every input; a sealed
 * foot opens under its key and associated data and under nothing else (one
 * flipped byte anywhere fails); nonces never repeat on a connection; unpacking
 * refuses a decompression bomb without inflating past the header's length,
 * and refuses a seal on a plain connection.
 */
import { expect, test } from "bun:test";
import { footKey, FootSealer, keyNonce, openSealed, receiverProof, transmitterProof } from "../../src/protocol/keys.ts";
import { ChecksumKind, FOOT_FLAG_SEALED, FOOT_FLAG_ZSTD } from "../../src/protocol/xdr.generated.ts";
import { unpackFoot } from "../../src/rx/unpack.ts";

const key = crypto.getRandomValues(new Uint8Array(32));
const hello = new Uint8Array([1, 2, 3]);

test("proofs differ by role and by every input", () => {
  const [nr, nt] = [keyNonce(), keyNonce()];
  const tx = transmitterProof(key, hello, nr, nt);
  expect(tx).not.toEqual(receiverProof(key, hello, nr, nt, new Uint8Array()));
  expect(tx).not.toEqual(transmitterProof(key, hello, nt, nr));
  expect(tx).not.toEqual(transmitterProof(crypto.getRandomValues(new Uint8Array(32)), hello, nr, nt));
  expect(tx).toEqual(transmitterProof(key, hello, nr, nt));
});

test("a sealed foot opens under its key and associated data only; nonces never repeat", () => {
  const kc = footKey(key, keyNonce(), keyNonce());
  const sealer = new FootSealer(kc);
  const aad = new Uint8Array([9, 9, 9]);
  const plain = crypto.getRandomValues(new Uint8Array(5000));
  const sealed = Buffer.concat(sealer.seal(aad, plain));
  expect(openSealed(kc, aad, sealed)).toEqual(Buffer.from(plain));
  for (const at of [0, 11, 12, 2000, sealed.length - 1]) {
    const bad = Buffer.from(sealed);
    bad[at]! ^= 1;
    expect(openSealed(kc, aad, bad)).toBeUndefined();
  }
  expect(openSealed(kc, new Uint8Array([9, 9, 8]), sealed)).toBeUndefined();
  expect(openSealed(footKey(key, keyNonce(), keyNonce()), aad, sealed)).toBeUndefined();
  const nonces = new Set(Array.from({ length: 100 }, () => Buffer.from(sealer.seal(aad, plain)[0]!).toString("hex")));
  expect(nonces.size).toBe(100);
});

const header = (length: number, flags: number) => ({ footId: 1n, streamOffset: 0n, length, sum: { kind: ChecksumKind.CHECKSUM_NONE }, flags }) as never;

test("a decompression bomb is refused without inflating past the header's length", async () => {
  const bomb = Bun.zstdCompressSync(new Uint8Array(256 * 1024 * 1024), { level: 3 }); // 256 MiB of zeros
  expect(bomb.length).toBeLessThan(64 * 1024);
  const outcome = await unpackFoot({ header: header(4096, FOOT_FLAG_ZSTD), payload: bomb }, new Uint8Array(), undefined, 2 * 1024 * 1024);
  expect(outcome.kind).toBe("corrupt");
  const small = Bun.zstdCompressSync(new Uint8Array(4096).fill(7));
  const ok = await unpackFoot({ header: header(4096, FOOT_FLAG_ZSTD), payload: small }, new Uint8Array(), undefined, 2 * 1024 * 1024);
  expect(ok).toEqual({ kind: "ok", payload: Buffer.from(new Uint8Array(4096).fill(7)) });
});

test("a seal on a plain connection, or none on an encrypted one, is a violation", async () => {
  const payload = new Uint8Array(100);
  expect((await unpackFoot({ header: header(72, FOOT_FLAG_SEALED), payload }, new Uint8Array(), undefined, 4096)).kind).toBe("violation");
  expect((await unpackFoot({ header: header(100, 0), payload }, new Uint8Array(), key, 4096)).kind).toBe("violation");
});
