// Message layer: the foot fast path puts exactly the bytes a full XDR encode
// of the frame would, decoding takes any foot back as a view, and every
// malformed or oversized message is refused with a reason.
import { describe, expect, test } from "bun:test";
import { VmError } from "../../src/errors.ts";
import {
  abortFrame,
  abortNotice,
  closingFrames,
  consumerSucceeded,
  decodeFrame,
  decodeHello,
  describeVerdict,
  encodeControlFrame,
  encodeFootRecord,
  encodeHello,
  helloBytes,
  labelProblem,
  readText,
  stderrTail,
  verdictFrame,
  wireText,
  type ControlFrame,
} from "../../src/protocol/messages.ts";
import { RecordDecoder, toRecord } from "../../src/protocol/records.ts";
import {
  AbortCode,
  CAP_NONE,
  CAP_PRODUCER_FAILED,
  CAP_VERDICT,
  ChecksumKind,
  ConsumerState,
  Frame,
  FrameKind,
  MAX_CONTROL_RECORD_BYTES,
  MAX_LABEL_BYTES,
  MAX_STDERR_TAIL_BYTES,
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

describe("labels and the version 2 hello", () => {
  const words = (...w: string[]) => Buffer.from(w.join(""), "hex");
  /** A version 2 hello with `label` as raw bytes (length word, bytes, padding): the encoder would refuse a bad one. */
  const v2 = (label: Uint8Array, declared = label.length) =>
    Buffer.concat([
      Hello.encode({ ...hello, protocolVersion: 2 }),
      words(declared.toString(16).padStart(8, "0")),
      label,
      Buffer.alloc((4 - (label.length % 4)) % 4),
    ]);

  test("without a label the hello is version 1, byte for byte what Hello.encode makes", () => {
    expect(Buffer.from(helloBytes(hello)).equals(Buffer.from(Hello.encode(hello)))).toBe(true);
    expect(decodeHello(helloBytes(hello))).toEqual({ ok: true, hello });
  });

  test("with a label it is version 2, and decodes to the same fields plus the label", () => {
    const bytes = encodeHello({ ...hello, label: "a.b_c:d-9" }).subarray(4);
    expect(new DataView(bytes.buffer, bytes.byteOffset).getUint32(4)).toBe(2);
    expect(decodeHello(bytes)).toEqual({ ok: true, hello: { ...hello, protocolVersion: 2, label: "a.b_c:d-9" } });
  });

  test(`a label of MAX_LABEL_BYTES (${MAX_LABEL_BYTES}) passes; one byte more is refused at decode, before its bytes are read`, () => {
    const longest = "L".repeat(MAX_LABEL_BYTES);
    expect(decodeHello(v2(new TextEncoder().encode(longest)))).toMatchObject({ ok: true, hello: { label: longest } });
    const over = decodeHello(v2(new TextEncoder().encode("L".repeat(MAX_LABEL_BYTES + 1))));
    expect(over).toMatchObject({ ok: false, reason: RefuseReason.REFUSE_BAD_MAGIC });
    // A length word of 2^31 with no bytes behind it: refused by the limit, not by running out of input.
    const huge = decodeHello(v2(new Uint8Array(), 0x80000000));
    expect(huge).toMatchObject({ ok: false, reason: RefuseReason.REFUSE_BAD_MAGIC });
    expect((huge as { text: string }).text).toContain("exceeds");
  });

  test("an empty label, one with a character outside [A-Za-z0-9._:-], or one that is not ASCII is refused at decode", () => {
    for (const bad of ["", "a b", "a/b", "$(reboot)", "a\nb", "é"]) {
      const decoded = decodeHello(v2(new TextEncoder().encode(bad)));
      expect(decoded).toMatchObject({ ok: false, reason: RefuseReason.REFUSE_BAD_MAGIC });
    }
    expect(decodeHello(v2(Uint8Array.of(0x61, 0xff)))).toMatchObject({ ok: false, reason: RefuseReason.REFUSE_BAD_MAGIC });
  });

  test("the encoder refuses a bad label as a usage error, naming the rule", () => {
    expect(labelProblem("ok-label")).toBeUndefined();
    expect(labelProblem("")).toBe("a label cannot be empty");
    expect(labelProblem("x".repeat(MAX_LABEL_BYTES + 1))).toBe(`a label is at most ${MAX_LABEL_BYTES} bytes`);
    expect(() => helloBytes({ ...hello, label: "no spaces" })).toThrow(VmError);
    expect(() => helloBytes({ ...hello, label: "no spaces" })).toThrow("label 'no spaces': a label may hold only letters, digits and . _ : -");
  });
});

describe("the receiving command's verdict", () => {
  const roundTrip = (frame: ControlFrame) => decodeFrame(encodeControlFrame(frame).subarray(4));

  test("exited, signalled, not run: each round-trips", () => {
    for (const ended of [{ exitCode: 0 }, { exitCode: 255 }, { signal: "SIGPIPE" }, { signal: "SIGRTMIN+3" }, "not run"] as const) {
      const frame = verdictFrame("zfs recv pool/ds", ended, new TextEncoder().encode("tail\n"));
      expect(roundTrip(frame)).toEqual(frame);
    }
  });

  test(`the stderr tail keeps the last MAX_STDERR_TAIL_BYTES (${MAX_STDERR_TAIL_BYTES}) bytes; the whole frame fits a control record`, () => {
    const stderr = new TextEncoder().encode("a".repeat(5000) + "\nthe final message\n");
    const tail = stderrTail(stderr);
    expect(tail).toHaveLength(MAX_STDERR_TAIL_BYTES);
    expect(readText(tail).endsWith("the final message\n")).toBe(true);
    const biggest = verdictFrame("c".repeat(1000), { signal: "S".repeat(32) }, stderr);
    expect(encodeControlFrame(biggest).length).toBeLessThan(MAX_CONTROL_RECORD_BYTES);
    expect(roundTrip(biggest)).toEqual(biggest);
  });

  test("a tail above MAX_STDERR_TAIL_BYTES or a bad signal name is refused at decode", () => {
    const record = (tailLength: number, signal = "SIGKILL") => {
      const name = new TextEncoder().encode(signal);
      const padded = (bytes: Uint8Array) => Buffer.concat([bytes, Buffer.alloc((4 - (bytes.length % 4)) % 4)]);
      const word = (n: number) => Buffer.from(n.toString(16).padStart(8, "0"), "hex");
      return Buffer.concat([word(FrameKind.FRAME_VERDICT), word(1), padded(Uint8Array.of(0x78)), word(ConsumerState.CONSUMER_SIGNALLED), word(name.length), padded(name), word(tailLength), padded(new Uint8Array(Math.min(tailLength, 3000)))]);
    };
    expect(() => decodeFrame(record(MAX_STDERR_TAIL_BYTES))).not.toThrow();
    expect(() => decodeFrame(record(MAX_STDERR_TAIL_BYTES + 1))).toThrow(/exceeds maximum 2048/);
    expect(() => decodeFrame(record(0, "SIG\u001b[2J"))).toThrow(/not a signal's name/);
    expect(() => decodeFrame(record(0, "S".repeat(33)))).toThrow(/malformed frame/);
  });

  test("the verdict goes before the final frame only where CAP_VERDICT was negotiated", () => {
    const confirm = { kind: FrameKind.FRAME_CONFIRM, confirm: { totalFeet: 0n, totalBytes: 0n, digest: { kind: 1, xxh3Chain: 0n } } } as ControlFrame;
    const verdict = verdictFrame("x", { exitCode: 0 }, new Uint8Array());
    expect(closingFrames(confirm, CAP_VERDICT, verdict)).toEqual([verdict, confirm]);
    expect(closingFrames(confirm, CAP_NONE, verdict)).toEqual([confirm]);
    expect(closingFrames(confirm, CAP_VERDICT, undefined)).toEqual([confirm]);
  });

  test("success is an exit status of 0, nothing else; the description is one line with no control characters", () => {
    const verdict = (frame: ControlFrame) => (frame.kind === FrameKind.FRAME_VERDICT ? frame.verdict : undefined)!;
    expect(consumerSucceeded(verdict(verdictFrame("x", { exitCode: 0 }, new Uint8Array())))).toBe(true);
    expect(consumerSucceeded(verdict(verdictFrame("x", { exitCode: 1 }, new Uint8Array())))).toBe(false);
    expect(consumerSucceeded(verdict(verdictFrame("x", "not run", new Uint8Array())))).toBe(false);
    const hostile = verdict(verdictFrame("rm\u001b[2J", { exitCode: 2 }, new TextEncoder().encode("first\r\n\u001b]0;owned\u0007last words\n\n")));
    expect(describeVerdict(hostile)).toBe("'rm\uFFFD[2J' exited 2: \uFFFD]0;owned\uFFFDlast words");
    expect(describeVerdict(verdict(verdictFrame("true", "not run", new Uint8Array())))).toBe("'true' could not be started");
  });
});

describe("abort codes a peer must have negotiated", () => {
  test("ABORT_PRODUCER_FAILED goes to a peer that echoed CAP_PRODUCER_FAILED; any other peer hears ABORT_INPUT, which version 1 knows", () => {
    const told = (capabilities: number) => abortNotice(AbortCode.ABORT_PRODUCER_FAILED, "'zfs send' exited 1", capabilities);
    expect(told(CAP_PRODUCER_FAILED)).toMatchObject({ abort: { code: AbortCode.ABORT_PRODUCER_FAILED } });
    expect(told(CAP_NONE)).toMatchObject({ abort: { code: AbortCode.ABORT_INPUT } });
    expect(readText((told(CAP_NONE) as { abort: { text: Uint8Array } }).abort.text)).toBe("'zfs send' exited 1");
    // Codes of version 1 go to everyone as they are.
    expect(abortFrame(new VmError("input", "stdin: EIO"), CAP_NONE)).toMatchObject({ abort: { code: AbortCode.ABORT_INPUT } });
    expect(abortNotice(AbortCode.ABORT_INTEGRITY, "x", CAP_NONE)).toMatchObject({ abort: { code: AbortCode.ABORT_INTEGRITY } });
  });
});
