// RFC 5531 record marking: any chunking decodes to the same records, a
// record spanning chunks is copied as it arrives (no chunk is referenced once
// push returns), and a fragment longer than the limit is refused before
// anything is allocated for it. When memory is refused, decoding waits where
// the record needed it and goes on, losing nothing, once it is retried.
import { describe, expect, test } from "bun:test";
import { VmError } from "../../src/errors.ts";
import { RecordDecoder, toRecord, type RecordMemory } from "../../src/protocol/records.ts";

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

/** A fragment: its mark (top bit when last) and body. */
function fragment(body: Uint8Array, last: boolean): Uint8Array {
  const bytes = new Uint8Array(4 + body.length);
  new DataView(bytes.buffer).setUint32(0, ((last ? 0x8000_0000 : 0) | body.length) >>> 0);
  bytes.set(body, 4);
  return bytes;
}

/** `body` as a multi-fragment record cut at `cuts` (offsets into body), as xdrrec sends it. */
function fragmented(body: Uint8Array, cuts: number[]): Uint8Array {
  const edges = [0, ...cuts, body.length];
  return Buffer.concat(edges.slice(1).map((end, i) => fragment(body.subarray(edges[i]!, end), i === edges.length - 2)));
}

/** Record memory that remembers what it handed out and got back, and refuses while `refusing` is set. */
function spyAllocator(): RecordMemory & { sizes: number[]; buffers: ArrayBufferLike[]; released: ArrayBufferLike[]; refusing: boolean } {
  const spy = {
    sizes: [] as number[],
    buffers: [] as ArrayBufferLike[],
    released: [] as ArrayBufferLike[],
    refusing: false,
    allocate(bytes: number) {
      if (spy.refusing) return undefined;
      const buffer = new Uint8Array(bytes);
      spy.sizes.push(bytes);
      spy.buffers.push(buffer.buffer);
      return buffer;
    },
    release(buffer: Uint8Array) {
      spy.released.push(buffer.buffer);
    },
  };
  return spy;
}

describe("assembly across chunks", () => {
  const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
  const bodies = [random(1), new Uint8Array(0), random(5), random(300), random(4096), random(70_000), random(3), random(2000)];
  // The 2000-byte record goes as four fragments, one of them empty.
  const stream = Buffer.concat([...bodies.slice(0, -1).map(toRecord), fragmented(bodies.at(-1)!, [700, 700, 1999])]);

  /**
   * Feeds `stream` in fresh chunks of the given sizes (cycled), takes a copy of
   * each record at once, then scribbles over the chunk as a reused buffer
   * would be: a record still being assembled must not notice.
   */
  function decodeScribbled(sizes: number[]): string[] {
    const decoder = new RecordDecoder(1 << 20);
    const out: string[] = [];
    let at = 0;
    for (let turn = 0; at < stream.length; turn++) {
      const chunk = new Uint8Array(stream.subarray(at, at + sizes[turn % sizes.length]!)); // a fresh copy, as Bun reads
      out.push(...decoder.push(chunk).map(hex));
      chunk.fill(0xee);
      at += chunk.length;
    }
    expect(decoder.pendingBytes).toBe(0);
    return out;
  }

  test("every chunking gives the same records, and no chunk is kept after push returns", () => {
    const expected = bodies.map(hex);
    for (const sizes of [[1], [2], [3], [4], [5], [7], [4096], [65_536], [stream.length], [1, 70_003, 2, 9]]) {
      expect(decodeScribbled(sizes)).toEqual(expected);
    }
    for (let trial = 0; trial < 20; trial++) {
      const sizes = Array.from({ length: 16 }, () => 1 + Math.floor(Math.random() * 9000));
      expect(decodeScribbled(sizes)).toEqual(expected);
    }
  });

  test("several records inside one chunk are all views of it", () => {
    const chunk = Buffer.concat([toRecord(Uint8Array.of(1)), toRecord(Uint8Array.of(2, 2)), toRecord(Uint8Array.of(3, 3, 3))]);
    const spy = spyAllocator();
    const decoder = new RecordDecoder(64);
    decoder.memory = spy;
    const records = decoder.push(chunk);
    expect(records.map(hex)).toEqual(["01", "0202", "030303"]);
    for (const record of records) expect(record.buffer).toBe(chunk.buffer);
    expect(spy.sizes).toEqual([]);
  });

  test("a fragment spanning chunks is copied into one buffer of exactly its length", () => {
    const body = random(1000);
    const stream = toRecord(body);
    const spy = spyAllocator();
    const decoder = new RecordDecoder(4096);
    decoder.memory = spy;
    const records: Uint8Array[] = [];
    for (let at = 0; at < stream.length; at += 3) records.push(...decoder.push(stream.slice(at, at + 3)));
    expect(records.map(hex)).toEqual([hex(body)]);
    expect(spy.sizes).toEqual([1000]);
    expect(records[0]!.buffer).toBe(spy.buffers[0]!);
  });

  test("a mark alone allocates nothing; the first byte after it does", () => {
    const spy = spyAllocator();
    const decoder = new RecordDecoder(4096);
    decoder.memory = spy;
    expect(decoder.push(Buffer.from("800003e8", "hex"))).toEqual([]); // 1000 bytes announced
    expect(spy.sizes).toEqual([]);
    expect(decoder.pendingBytes).toBe(0);
    decoder.push(Uint8Array.of(1));
    expect(spy.sizes).toEqual([1000]);
    expect(decoder.pendingBytes).toBe(1);
  });

  test("a length over the limit is refused before anything is allocated", () => {
    const spy = spyAllocator();
    const decoder = new RecordDecoder(1024);
    decoder.memory = spy;
    expect(() => decoder.push(Buffer.from("80000401" + "00", "hex"))).toThrow(/exceeds the limit of 1024/);
    expect(spy.sizes).toEqual([]);
  });

  test("multi-fragment records from a conforming peer: any chunking, one buffer of the limit", () => {
    const body = random(5000);
    // 64-byte fragments and odd ones, an empty one in the middle, as libtirpc's xdrrec may cut them.
    const stream = fragmented(body, [64, 128, 128, 1000, 4999]);
    for (const size of [1, 2, 3, 63, 64, 65, 1000, stream.length]) {
      const spy = spyAllocator();
      const decoder = new RecordDecoder(8192);
      decoder.memory = spy;
      const records: Uint8Array[] = [];
      for (let at = 0; at < stream.length; at += size) records.push(...decoder.push(stream.slice(at, at + size)));
      expect(records.map(hex)).toEqual([hex(body)]);
      // Its total is unknown until the last fragment: the limit (checked on every mark) bounds it.
      expect(spy.sizes).toEqual([8192]);
      expect(records[0]!.buffer).toBe(spy.buffers[0]!);
    }
  });

  test("a multi-fragment record inside one chunk is still joined", () => {
    const chunk = fragmented(Uint8Array.of(1, 2, 3, 4), [2]);
    expect(new RecordDecoder(64).push(chunk).map(hex)).toEqual(["01020304"]);
  });

  test("a limit raised mid-record keeps the bytes already assembled", () => {
    const body = random(50);
    const stream = fragmented(body, [8]);
    const decoder = new RecordDecoder(10);
    expect(decoder.push(stream.subarray(0, 12))).toEqual([]); // the first fragment, in a buffer of 10
    decoder.maxRecordBytes = 100;
    expect(decoder.push(stream.subarray(12)).map(hex)).toEqual([hex(body)]);
  });

  test("empty records, in one fragment or several, allocate nothing", () => {
    const spy = spyAllocator();
    const decoder = new RecordDecoder(64);
    decoder.memory = spy;
    expect(decoder.push(Buffer.from("80000000" + "00000000" + "80000000", "hex")).map(hex)).toEqual(["", ""]);
    expect(spy.sizes).toEqual([]);
  });
});

describe("when memory is refused", () => {
  const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));

  test("decoding waits at the record that needs a buffer, keeps what follows, and resumes in order on retry", () => {
    const small = random(10);
    const big = random(3000);
    const after = random(20);
    const stream = Buffer.concat([toRecord(small), toRecord(big), toRecord(after)]);
    const spy = spyAllocator();
    spy.refusing = true;
    const decoder = new RecordDecoder(4096);
    decoder.memory = spy;
    // The small record lies wholly in the first chunk (a view, no memory needed); the big one spans chunks.
    const first = decoder.push(stream.subarray(0, 100));
    expect(first.map(hex)).toEqual([hex(small)]);
    expect(decoder.waiting).toBe(true);
    expect(decoder.push(stream.subarray(100, 2000))).toEqual([]);
    expect(decoder.push(stream.subarray(2000))).toEqual([]);
    expect(decoder.unreadBytes).toBe(stream.length - 14 - 4); // all but the first record and the big one's mark
    expect(decoder.retry()).toEqual([]); // still refused: still waiting, nothing lost
    expect(decoder.waiting).toBe(true);
    spy.refusing = false;
    expect(decoder.retry().map(hex)).toEqual([hex(big), hex(after)]);
    expect(decoder.waiting).toBe(false);
    expect(spy.sizes).toEqual([3000]);
  });

  test("a refusal in the middle of a growing multi-fragment record keeps the bytes already assembled", () => {
    const body = random(50);
    const stream = fragmented(body, [8]);
    const spy = spyAllocator();
    const decoder = new RecordDecoder(10);
    decoder.memory = spy;
    expect(decoder.push(stream.subarray(0, 12))).toEqual([]); // the first fragment, in a buffer of 10
    decoder.maxRecordBytes = 100;
    spy.refusing = true;
    expect(decoder.push(stream.subarray(12))).toEqual([]);
    spy.refusing = false;
    expect(decoder.retry().map(hex)).toEqual([hex(body)]);
    expect(spy.released).toEqual([spy.buffers[0]!]); // the outgrown buffer went back
  });

  test("discard gives the unfinished record's buffer back and forgets what waited", () => {
    const spy = spyAllocator();
    const decoder = new RecordDecoder(4096);
    decoder.memory = spy;
    decoder.push(toRecord(random(1000)).subarray(0, 500));
    expect(spy.buffers).toHaveLength(1);
    decoder.discard();
    expect(spy.released).toEqual([spy.buffers[0]!]);
    expect(decoder.pendingBytes).toBe(0);
  });
});
