/**
 * Messages on the wire: the generated XDR codecs plus record marking, and a
 * fast path for feet so a 2 MiB payload is never copied through js-xdr's
 * generic opaque codec. The bytes are identical either way (a test proves it).
 *
 * Pure: bytes in, values out.
 */
import { Reader, Writer } from "@stellar/js-xdr";
import { VmError } from "../errors.ts";
import { RECORD_MARK_BYTES, toRecord, writeRecordMark } from "./records.ts";
import {
  AbortCode,
  FootHeader,
  Frame,
  FrameKind,
  Hello,
  HelloReply,
  KeyProof,
  MAX_CONTROL_RECORD_BYTES,
  MAX_FOOT_BYTES,
  MAX_FOOT_PAYLOAD_BYTES,
  MAX_HELLO_RECORD_BYTES,
  MAX_TEXT_BYTES,
  MIN_FOOT_BYTES,
  RefuseReason,
  VM_MAGIC,
  VM_PROTOCOL_VERSION,
} from "./xdr.generated.ts";

export type FootFrame = Extract<Frame, { kind: typeof FrameKind.FRAME_FOOT }>;
export type ControlFrame = Exclude<Frame, FootFrame>;

const ZERO_PADDING = new Uint8Array(3);

/** XDR pads opaque data to a multiple of four bytes. */
export function paddingFor(length: number): number {
  return (4 - (length & 3)) & 3;
}

function protocolError(what: string, cause?: unknown): VmError {
  const detail = cause instanceof Error ? `: ${cause.message}` : "";
  return new VmError("protocol", `${what}${detail}`);
}

/**
 * UTF-8 text for a `string<MAX_TEXT_BYTES>` field, cut to the limit. Wire strings
 * carry no zero bytes (protocol/README.md; rpcgen peers read them as C strings),
 * so each NUL becomes U+FFFD.
 */
export function wireText(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text.replaceAll("\0", "\uFFFD"));
  return bytes.length <= MAX_TEXT_BYTES ? bytes : bytes.subarray(0, MAX_TEXT_BYTES);
}

export function readText(bytes: Uint8Array): string {
  return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
}

/** Which abort code tells the peer about `error`. */
const ABORT_CODES: Partial<Record<VmError["code"], AbortCode>> = {
  outputClosed: AbortCode.ABORT_OUTPUT_CLOSED,
  integrity: AbortCode.ABORT_INTEGRITY,
  input: AbortCode.ABORT_INPUT,
  interrupted: AbortCode.ABORT_INTERRUPTED,
};

/** The frame that tells the peer this end stops because of `error`. */
export function abortFrame(error: VmError): ControlFrame {
  return {
    kind: FrameKind.FRAME_ABORT,
    abort: { code: ABORT_CODES[error.code] ?? AbortCode.ABORT_PROTOCOL, text: wireText(error.message) },
  };
}

// ---- handshake ---------------------------------------------------------------

export function encodeHello(hello: Hello): Uint8Array {
  return toRecord(Hello.encode(hello));
}

export type HelloResult =
  | { ok: true; hello: Hello }
  | { ok: false; reason: RefuseReason; text: string };

/**
 * Decodes the first record of a connection. Magic and version are read
 * before anything else so that a future version's hello, whose body may
 * differ, is refused with the right reason rather than as garbage.
 */
export function decodeHello(record: Uint8Array): HelloResult {
  if (record.length < 8) {
    return { ok: false, reason: RefuseReason.REFUSE_BAD_MAGIC, text: "not a viamillipede hello" };
  }
  const view = new DataView(record.buffer, record.byteOffset, 8);
  if (view.getUint32(0) !== VM_MAGIC) {
    return { ok: false, reason: RefuseReason.REFUSE_BAD_MAGIC, text: "not a viamillipede hello" };
  }
  const version = view.getUint32(4);
  if (version !== VM_PROTOCOL_VERSION) {
    return {
      ok: false,
      reason: RefuseReason.REFUSE_VERSION,
      text: `protocol version ${version} is not supported; this receiver speaks version ${VM_PROTOCOL_VERSION}`,
    };
  }
  let hello: Hello;
  try {
    hello = Hello.decode(record);
  } catch (error) {
    return { ok: false, reason: RefuseReason.REFUSE_BAD_MAGIC, text: `malformed hello: ${(error as Error).message}` };
  }
  if (hello.footBytes < MIN_FOOT_BYTES || hello.footBytes > MAX_FOOT_BYTES) {
    return {
      ok: false,
      reason: RefuseReason.REFUSE_FOOT_SIZE,
      text: `foot size ${hello.footBytes} is outside ${MIN_FOOT_BYTES}..${MAX_FOOT_BYTES}`,
    };
  }
  return { ok: true, hello };
}

export function encodeHelloReply(reply: HelloReply): Uint8Array {
  return toRecord(HelloReply.encode(reply));
}

/** The transmitter's answer to a challenge: the second record of a keyed connection. */
export function encodeKeyProof(proof: KeyProof): Uint8Array {
  return toRecord(KeyProof.encode(proof));
}

export function decodeKeyProof(record: Uint8Array): KeyProof {
  if (record.length > MAX_HELLO_RECORD_BYTES) throw protocolError("oversized key proof");
  try {
    return KeyProof.decode(record);
  } catch (error) {
    throw protocolError("malformed key proof", error);
  }
}

export function decodeHelloReply(record: Uint8Array): HelloReply {
  if (record.length > MAX_HELLO_RECORD_BYTES) throw protocolError("oversized hello reply");
  try {
    return HelloReply.decode(record);
  } catch (error) {
    throw protocolError("malformed hello reply", error);
  }
}

// ---- frames ------------------------------------------------------------------

/** A control frame (anything but a foot) as one record. */
export function encodeControlFrame(frame: ControlFrame): Uint8Array {
  return toRecord(Frame.encode(frame));
}

/** Seals a foot's bytes: given the associated data and the plain bytes, the payload's pieces. */
export interface FootSeal {
  overheadBytes: number;
  seal(aad: Uint8Array, plain: Uint8Array): Uint8Array[];
}

/**
 * A foot as the pieces to write in order: [record mark + kind + header +
 * payload length word, payload, zero padding (when needed)]. The payload is
 * passed through by reference, never copied. With `seal` the payload is
 * sealed (FOOT_FLAG_SEALED) and everything before it in the record (kind,
 * header, length word) is its associated data.
 */
export function encodeFootRecord(header: FootHeader, payload: Uint8Array, seal?: FootSeal): Uint8Array[] {
  const wireLength = payload.length + (seal?.overheadBytes ?? 0);
  const writer = new Writer();
  writer.writeUint32(FrameKind.FRAME_FOOT);
  FootHeader._write(header, writer, "foot.header");
  writer.writeUint32(wireLength);
  const body = writer.toUint8Array();
  const padding = paddingFor(wireLength);
  const prefix = new Uint8Array(RECORD_MARK_BYTES + body.length);
  writeRecordMark(prefix, 0, body.length + wireLength + padding);
  prefix.set(body, RECORD_MARK_BYTES);
  const pieces = seal === undefined ? [payload] : seal.seal(prefix.subarray(RECORD_MARK_BYTES), payload);
  return padding === 0 ? [prefix, ...pieces] : [prefix, ...pieces, ZERO_PADDING.subarray(0, padding)];
}

/** A decoded foot's associated data: its record's bytes before the payload (see encodeFootRecord). */
export function footAssociatedData(record: Uint8Array, payload: Uint8Array): Uint8Array {
  return record.subarray(0, payload.byteOffset - record.byteOffset);
}

/**
 * Decodes one frame record. Feet take the fast path: the payload returned is
 * a view of `record`, not a copy. Control frames are limited to
 * MAX_CONTROL_RECORD_BYTES; feet to what the record decoder allowed.
 */
export function decodeFrame(record: Uint8Array): Frame {
  if (record.length < 4) throw protocolError("frame record shorter than its kind word");
  const kind = new DataView(record.buffer, record.byteOffset, 4).getUint32(0);
  if (kind === FrameKind.FRAME_FOOT) return decodeFootRecord(record);
  if (record.length > MAX_CONTROL_RECORD_BYTES) {
    throw protocolError(`control frame of ${record.length} bytes exceeds ${MAX_CONTROL_RECORD_BYTES}`);
  }
  try {
    return Frame.decode(record);
  } catch (error) {
    throw protocolError("malformed frame", error);
  }
}

function decodeFootRecord(record: Uint8Array): FootFrame {
  let header: FootHeader;
  let start: number;
  let length: number;
  try {
    const reader = new Reader(record);
    reader.readUint32("frame.kind");
    header = FootHeader._read(reader, "foot.header");
    length = reader.readUint32("foot.payload");
    start = reader.offset;
  } catch (error) {
    throw protocolError("malformed foot header", error);
  }
  if (length > MAX_FOOT_PAYLOAD_BYTES) throw protocolError(`foot payload of ${length} bytes exceeds ${MAX_FOOT_PAYLOAD_BYTES}`);
  const end = start + length;
  const padding = paddingFor(length);
  if (end + padding !== record.length) {
    throw protocolError(`foot record is ${record.length} bytes but its payload needs ${end + padding}`);
  }
  for (let i = end; i < record.length; i++) {
    if (record[i] !== 0) throw protocolError("non-zero XDR padding after a foot payload");
  }
  return { kind: FrameKind.FRAME_FOOT, foot: { header, payload: record.subarray(start, end) } } as FootFrame;
}
