// The per-foot checksum is standard XXH3-64 and the stream digest binds
// content, length and order.
import { describe, expect, test } from "bun:test";
import { footChecksum, StreamDigest } from "../../src/protocol/digest.ts";

describe("integrity arithmetic", () => {
  test("footChecksum is XXH3-64 with seed 0 (reference vector)", () => {
    expect(footChecksum(new Uint8Array(0))).toBe(0x2d06800538d394c2n);
  });

  test("the stream digest depends on order and lengths", () => {
    const a = footChecksum(Uint8Array.of(1));
    const b = footChecksum(Uint8Array.of(2));
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
