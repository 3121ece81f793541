// The per-foot checksum binds header and payload; the stream digest binds
// content, length and order.
import { describe, expect, test } from "bun:test";
import { footChecksum, StreamDigest } from "../../src/protocol/digest.ts";

describe("integrity arithmetic", () => {
  test("the checksum is XXH3-64 of the payload seeded with XXH3-64 of id, offset, length", () => {
    const header = new DataView(new ArrayBuffer(24));
    header.setBigUint64(0, 3n);
    header.setBigUint64(8, 6144n);
    header.setBigUint64(16, 0n);
    // XXH3-64 of nothing with seed 0 is the reference vector 2d06800538d394c2.
    expect(Bun.hash.xxHash3(new Uint8Array(0))).toBe(0x2d06800538d394c2n);
    expect(footChecksum(3n, 6144n, new Uint8Array(0))).toBe(Bun.hash.xxHash3(new Uint8Array(0), Bun.hash.xxHash3(header)));
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
