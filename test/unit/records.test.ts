// RFC 5531 record marking: any chunking decodes to the same records, and a
// fragment longer than the limit is refused before any of it is kept.
import { describe, expect, test } from "bun:test";
import { VmError } from "../../src/errors.ts";
import { RecordDecoder, toRecord } from "../../src/protocol/records.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** Feeds `stream` to a fresh decoder in pieces of the given sizes (cycled). */
function decodeInPieces(stream: Uint8Array, sizes: number[], limit = 1 << 20): Uint8Array[] {
  const decoder = new RecordDecoder(limit);
  const out: Uint8Array[] = [];
  let at = 0;
  for (let turn = 0; at < stream.length; turn++) {
    const n = sizes[turn % sizes.length]!;
    out.push(...decoder.push(stream.subarray(at, at + n)).map((r) => r.slice()));
    at += n;
  }
  expect(decoder.pendingBytes).toBe(0);
  return out;
}

describe("record marking", () => {
  test("a single-fragment record: last-fragment bit and length", () => {
    expect(hex(toRecord(Uint8Array.of(1, 2, 3)))).toBe("80000003" + "010203");
    expect(hex(toRecord(new Uint8Array(0)))).toBe("80000000");
  });

  test("every chunking of a stream yields the same records", () => {
    const bodies = [Uint8Array.of(9), new Uint8Array(0), crypto.getRandomValues(new Uint8Array(1000)), Uint8Array.of(1, 2, 3, 4)];
    const stream = Buffer.concat(bodies.map(toRecord));
    for (const sizes of [[stream.length], [1], [2], [3], [5, 1, 700], [4], [1003, 1]]) {
      expect(decodeInPieces(stream, sizes).map(hex)).toEqual(bodies.map(hex));
    }
  });

  test("multi-fragment records (as libtirpc's xdrrec sends them) are joined", () => {
    // "abc" in fragments of 1 and 2 bytes: 00000001 'a', 80000002 'bc'
    const stream = Buffer.from("00000001" + "61" + "80000002" + "6263", "hex");
    for (const sizes of [[stream.length], [1], [3]]) {
      expect(decodeInPieces(stream, sizes).map(hex)).toEqual(["616263"]);
    }
  });

  test("a record inside one chunk is returned as a view, not a copy", () => {
    const chunk = toRecord(Uint8Array.of(7, 7, 7, 7));
    const [record] = new RecordDecoder(64).push(chunk);
    expect(record!.buffer).toBe(chunk.buffer);
  });

  test("a fragment over the limit is refused from its mark alone", () => {
    const decoder = new RecordDecoder(1024);
    // Only the 4-byte mark arrives, announcing 2 GiB - 1: refused before any payload.
    expect(() => decoder.push(Buffer.from("ffffffff", "hex"))).toThrow(VmError);
  });

  test("fragments that together exceed the limit are refused", () => {
    const decoder = new RecordDecoder(10);
    decoder.push(Buffer.from("00000006" + "000000000000", "hex"));
    expect(() => decoder.push(Buffer.from("80000006", "hex"))).toThrow(/exceeds the limit of 10/);
  });

  test("garbage that looks like text is refused, not buffered", () => {
    const decoder = new RecordDecoder(512);
    expect(() => decoder.push(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"))).toThrow(/exceeds the limit/);
  });
});
