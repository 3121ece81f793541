// Message layer: the foot fast path puts exactly the bytes a full XDR encode
// of the frame would, decoding takes any foot back as a view, and every
// malformed or oversized message is refused with a reason.
import { describe, expect, test } from "bun:test";
import {
  decodeFrame,
  decodeHello,
  encodeControlFrame,
  encodeFootRecord,
  encodeHello,
  readText,
  wireText,
  type ControlFrame,
} from "../../src/protocol/messages.ts";
import { RecordDecoder, toRecord } from "../../src/protocol/records.ts";
import {
  ChecksumKind,
  Frame,
  FrameKind,
  MAX_CONTROL_RECORD_BYTES,
  MAX_TEXT_BYTES,
  RefuseReason,
  VM_MAGIC,
  VM_PROTOCOL_VERSION,
  Hello,
  type FootHeader,
} from "../../src/protocol/xdr.generated.ts";

const header = (length: number): FootHeader => ({
  footId: 7n,
  streamOffset: 14680064n,
  length,
  sum: { kind: ChecksumKind.CHECKSUM_XXH3_64, xxh3: 0x0123456789abcdefn },
  flags: 1,
});

const hello: Hello = {
  magic: VM_MAGIC,
  protocolVersion: VM_PROTOCOL_VERSION,
  sessionId: 0xfeedn,
  checkphrase: new TextEncoder().encode("sesame"),
  footBytes: 2 * 1024 * 1024,
  capabilities: 0,
  connectionId: 3,
};

describe("foot fast path", () => {
  for (const length of [0, 1, 2, 3, 4, 5, 1000, 2 * 1024 * 1024]) {
    test(`${length}-byte payload: same bytes as encoding the whole frame with XDR`, () => {
      const payload = crypto.getRandomValues(new Uint8Array(Math.min(length, 65536)));
      const full = length > 65536 ? Buffer.alloc(length, 0xa5) : payload;
      const pieces = encodeFootRecord(header(full.length), full);
      expect(pieces[1]).toBe(full); // the payload itself goes to the socket: no copy
      const viaXdr = toRecord(Frame.encode({ kind: FrameKind.FRAME_FOOT, foot: { header: header(full.length), payload: full } }));
      expect(Buffer.concat(pieces).equals(Buffer.from(viaXdr))).toBe(true);
    });
  }

  test("decoding a foot returns its payload as a view of the record", () => {
    const payload = Uint8Array.of(1, 2, 3, 4, 5);
    const stream = Buffer.concat(encodeFootRecord(header(5), payload));
    const [record] = new RecordDecoder(1024).push(stream);
    const frame = decodeFrame(record!);
    if (frame.kind !== FrameKind.FRAME_FOOT) throw new Error("not a foot");
    expect(frame.foot.header).toEqual(header(5));
    expect([...frame.foot.payload]).toEqual([1, 2, 3, 4, 5]);
    expect(frame.foot.payload.buffer).toBe(record!.buffer);
    // ...and agrees with the generic decoder.
    expect(Frame.decode(record!)).toEqual(frame);
  });

  test("a foot whose payload length disagrees with the record is refused", () => {
    const body = Buffer.concat(encodeFootRecord(header(5), Uint8Array.of(1, 2, 3, 4, 5))).subarray(4);
    expect(() => decodeFrame(body.subarray(0, body.length - 4))).toThrow(/payload needs/);
    expect(() => decodeFrame(Buffer.concat([body, Buffer.alloc(4)]))).toThrow(/payload needs/);
  });

  test("non-zero padding after a payload is refused", () => {
    const body = Buffer.concat(encodeFootRecord(header(5), Uint8Array.of(1, 2, 3, 4, 5))).subarray(4);
    body[body.length - 1] = 1;
    expect(() => decodeFrame(body)).toThrow(/padding/);
  });
});

describe("control frames", () => {
  test("round trip", () => {
    const frame = { kind: FrameKind.FRAME_ACK, ack: { deliveredBelow: 5n, received: [9n, 7n] } } as ControlFrame;
    const [record] = new RecordDecoder(4096).push(encodeControlFrame(frame));
    expect(decodeFrame(record!)).toEqual(frame);
  });

  test("an oversized control frame is refused before decoding", () => {
    const record = new Uint8Array(MAX_CONTROL_RECORD_BYTES + 4);
    new DataView(record.buffer).setUint32(0, FrameKind.FRAME_ACK);
    expect(() => decodeFrame(record)).toThrow(/exceeds/);
  });

  test("an unknown frame kind or truncated frame is refused with a reason", () => {
    expect(() => decodeFrame(Buffer.from("00000063", "hex"))).toThrow(/malformed frame/);
    expect(() => decodeFrame(Buffer.from("00000004", "hex"))).toThrow(/malformed frame/);
    expect(() => decodeFrame(Buffer.from("0000", "hex"))).toThrow(/shorter/);
  });
});
describe("wire text", () => {
  test("never carries a zero byte: each NUL becomes U+FFFD", () => {
    const bytes = wireText("a\0b\0");
    expect(bytes.includes(0)).toBe(false);
    expect(readText(bytes)).toBe("a\uFFFDb\uFFFD");
    expect(wireText("\0".repeat(1000)).includes(0)).toBe(false);
  });

  test("is cut to MAX_TEXT_BYTES", () => {
    expect(wireText("x".repeat(MAX_TEXT_BYTES + 10))).toHaveLength(MAX_TEXT_BYTES);
    expect(readText(wireText("reason"))).toBe("reason");
  });
});

describe("hello", () => {
  const body = (h: Hello) => encodeHello(h).subarray(4);

  test("a good hello decodes", () => {
    expect(decodeHello(body(hello))).toEqual({ ok: true, hello });
  });

  test("wrong magic, other version, bad foot size, garbage: refused with the right reason", () => {
    expect(decodeHello(body({ ...hello, magic: 0x47455420 }))).toMatchObject({ ok: false, reason: RefuseReason.REFUSE_BAD_MAGIC });
    const future = Hello.encode({ ...hello, protocolVersion: 3 });
    expect(decodeHello(future)).toMatchObject({ ok: false, reason: RefuseReason.REFUSE_VERSION, text: "protocol version 3 is not supported; this receiver speaks versions 1 and 2" });
    // A future version's body may differ: only magic and version are read.
    expect(decodeHello(Buffer.from("564d5031" + "00000003" + "ff", "hex"))).toMatchObject({ ok: false, reason: RefuseReason.REFUSE_VERSION });
    expect(decodeHello(body({ ...hello, footBytes: 100 }))).toMatchObject({ ok: false, reason: RefuseReason.REFUSE_FOOT_SIZE });
    expect(decodeHello(body({ ...hello, footBytes: 64 * 1024 * 1024 }))).toMatchObject({ ok: false, reason: RefuseReason.REFUSE_FOOT_SIZE });
    expect(decodeHello(Uint8Array.of(1, 2))).toMatchObject({ ok: false, reason: RefuseReason.REFUSE_BAD_MAGIC });
    expect(decodeHello(body(hello).subarray(0, 20))).toMatchObject({ ok: false, reason: RefuseReason.REFUSE_BAD_MAGIC });
  });
});
