// The per-foot checksum binds header and payload; the stream digest binds
// content, length and order.
import { describe, expect, test } from "bun:test";
import { footChecksum, StreamDigest } from "../../src/protocol/digest.ts";

describe("integrity arithmetic", () => {
  test("the checksum is XXH3-64 of the payload seeded with the low 32 bits of XXH3-64 of id, offset, length", () => {
    const header = new DataView(new ArrayBuffer(24));
    header.setBigUint64(0, 3n);
    header.setBigUint64(8, 6144n);
    header.setBigUint64(16, 0n);
    // XXH3-64 of nothing with seed 0 is the reference vector 2d06800538d394c2.
    expect(Bun.hash.xxHash3(new Uint8Array(0))).toBe(0x2d06800538d394c2n);
    const seed = Bun.hash.xxHash3(header) & 0xffffffffn;
    expect(footChecksum(3n, 6144n, new Uint8Array(0))).toBe(Bun.hash.xxHash3(new Uint8Array(0), seed));
  });

  test("the worked example of protocol/README.md: id 7, offset 0x7000, payload \"hello\"", () => {
    const header = Buffer.from("0000000000000007" + "0000000000007000" + "0000000000000005", "hex");
    expect(Bun.hash.xxHash3(header)).toBe(0x363ac19846374d18n);
    // 0xa80491cd749c7749 would be the value with the whole 64-bit hash as seed; the spec takes 0x46374d18.
    expect(Bun.hash.xxHash3(Buffer.from("hello"), 0x46374d18n)).toBe(0x0f7d4b996914e29an);
    expect(footChecksum(7n, 0x7000n, Buffer.from("hello"))).toBe(0x0f7d4b996914e29an);
  });

  test("a change to id, offset or payload changes the checksum", () => {
    const payload = Uint8Array.of(1, 2, 3);
    const base = footChecksum(1n, 100n, payload);
    expect(footChecksum(2n, 100n, payload)).not.toBe(base);
    expect(footChecksum(1n, 101n, payload)).not.toBe(base);
    expect(footChecksum(1n, 100n, Uint8Array.of(1, 2, 4))).not.toBe(base);
    expect(footChecksum(1n, 100n, Uint8Array.of(1, 2))).not.toBe(base);
    expect(footChecksum(1n, 100n, payload)).toBe(base);
  });

  test("the stream digest depends on order and lengths", () => {
    const a = footChecksum(0n, 0n, Uint8Array.of(1));
    const b = footChecksum(1n, 1n, Uint8Array.of(2));
    const digest = (feet: [bigint, number][]) => {
      const d = new StreamDigest();
      for (const [hash, length] of feet) d.add(hash, length);
      return d;
    };
    const ab = digest([[a, 1], [b, 1]]);
    expect(ab.value).not.toBe(digest([[b, 1], [a, 1]]).value);
    expect(ab.value).not.toBe(digest([[a, 1], [b, 2]]).value);
    expect(ab.value).toBe(digest([[a, 1], [b, 1]]).value);
    expect([ab.totalFeet, ab.totalBytes]).toEqual([2n, 2n]);
  });
});
