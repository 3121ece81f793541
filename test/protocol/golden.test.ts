/**
 * The generated codecs against hand-worked RFC 4506 bytes (golden-frames.ts), both directions,
 * plus the js-xdr behaviours the frame decoder relies on when a peer sends garbage.
 */
import { describe, expect, test } from "bun:test";
import { XdrError } from "@stellar/js-xdr";
import { Frame, MAX_TEXT_BYTES } from "../../src/protocol/xdr.generated.ts";
import { footChecksum } from "../../src/protocol/digest.ts";
import { CHECKSUM_OF_HELLO_FOOT, decodeGolden, encodeGolden, GOLDEN_FRAMES } from "./golden-frames.ts";

/** "00000001 0000abcd" → bytes; refuses anything but whole 4-byte words, as XDR has no others. */
function fromWords(hex: string): Uint8Array {
  const list = hex.split(" ");
  for (const w of list) if (!/^[0-9a-f]{8}$/.test(w)) throw new Error(`bad word "${w}" in golden hex`);
  return Uint8Array.from(Buffer.from(list.join(""), "hex"));
}

/** bytes → "00000001 0000abcd", so a mismatch shows as a word-by-word diff. */
function toWords(bytes: Uint8Array): string {
  return (Buffer.from(bytes).toString("hex").match(/.{1,8}/g) ?? []).join(" ");
}

describe("golden frames", () => {
  for (const v of GOLDEN_FRAMES) {
    test(`${v.name}: encode gives the golden bytes`, () => {
      expect(toWords(encodeGolden(v))).toBe(v.hex);
    });
    test(`${v.name}: decode gives the value`, () => {
      expect(decodeGolden(v, fromWords(v.hex))).toStrictEqual(v.value);
    });
  }

  test("the XXH3 vector carries the real checksum of its header and payload", () => {
    expect(footChecksum(7n, 7n * 4096n, new TextEncoder().encode("hello"))).toBe(CHECKSUM_OF_HELLO_FOOT);
  });

  test("every message kind has a vector", () => {
    const kinds = new Set(GOLDEN_FRAMES.flatMap((v) => (v.schema === "Frame" ? [v.value.kind] : [])));
    expect([...kinds].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});

describe("js-xdr refuses malformed input with XdrError", () => {
  const credit = fromWords("00000004 00000000 00000005");
  const tooLong = (MAX_TEXT_BYTES + 1).toString(16).padStart(8, "0");
  const cases: [string, Uint8Array][] = [
    ["an unknown union discriminant", fromWords("0000000a 00000000 00000005")],
    ["truncated input", credit.subarray(0, 10)],
    ["trailing bytes", fromWords("00000004 00000000 00000005 00000000")],
    // abort "!" with a non-zero padding byte
    ["non-zero padding", fromWords("00000009 00000001 00000001 21000001")],
    ["a string above its maximum", fromWords(`00000009 00000001 ${tooLong}`)],
  ];
  for (const [what, bytes] of cases) {
    test(what, () => {
      expect(() => Frame.decode(bytes)).toThrow(XdrError);
    });
  }
});
