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
  CAP_NONE,
  CAP_PRODUCER_FAILED,
  CAP_VERDICT,
  ConsumerState,
  FootHeader,
  Frame,
  FrameKind,
  Hello,
  HelloReply,
  HelloV2,
  KeyProof,
  MAX_CONTROL_RECORD_BYTES,
  MAX_FOOT_BYTES,
  MAX_FOOT_PAYLOAD_BYTES,
  MAX_HELLO_RECORD_BYTES,
  MAX_LABEL_BYTES,
  MAX_SIGNAL_NAME_BYTES,
  MAX_STDERR_TAIL_BYTES,
  MAX_TEXT_BYTES,
  MIN_FOOT_BYTES,
  RefuseReason,
  VM_MAGIC,
  VM_PROTOCOL_VERSION,
  VM_PROTOCOL_VERSION_2,
  type ConsumerStatus,
  type ConsumerVerdict,
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
  producerFailed: AbortCode.ABORT_PRODUCER_FAILED,
  // The receiving command went away or failed: to the transmitter, its output closed (the verdict says how).
  consumerFailed: AbortCode.ABORT_OUTPUT_CLOSED,
};

/**
 * Abort codes a peer knows only when its welcome carried a capability, and the
 * code of version 1 it is told instead: an older peer cannot decode a code it
 * does not know (the whole frame would be malformed), but it knows this one.
 */
const NEWER_ABORT_CODES: ReadonlyMap<AbortCode, { capability: number; instead: AbortCode }> = new Map([
  [AbortCode.ABORT_PRODUCER_FAILED, { capability: CAP_PRODUCER_FAILED, instead: AbortCode.ABORT_INPUT }],
]);

/**
 * An abort notice for a peer that negotiated `capabilities` (the welcome's
 * bits on that connection): `code`, or the older code it stands for when the
 * peer did not negotiate it.
 */
export function abortNotice(code: AbortCode, text: string, capabilities: number): ControlFrame {
  const newer = NEWER_ABORT_CODES.get(code);
  const spoken = newer === undefined || (capabilities & newer.capability) !== 0 ? code : newer.instead;
  return { kind: FrameKind.FRAME_ABORT, abort: { code: spoken, text: wireText(text) } };
}

/** The frame that tells the peer (which negotiated `capabilities`) this end stops because of `error`. */
export function abortFrame(error: VmError, capabilities: number = CAP_NONE): ControlFrame {
  return abortNotice(ABORT_CODES[error.code] ?? AbortCode.ABORT_PROTOCOL, error.message, capabilities);
}

// ---- handshake ---------------------------------------------------------------

/**
 * A hello of either version as the roles see it: version 1's fields, and the
 * label that makes it a version 2 hello. `protocolVersion` is set by the
 * encoder from the label, and is the version read when decoded.
 */
export type AnyHello = Hello & { label?: string };

/** A label is 1..MAX_LABEL_BYTES of these: safe in a file name, a log line and an environment variable. */
const LABEL = new RegExp(`^[A-Za-z0-9._:-]{1,${MAX_LABEL_BYTES}}$`);

/** Why `label` is not a valid label, or undefined when it is. */
export function labelProblem(label: string): string | undefined {
  if (LABEL.test(label)) return undefined;
  if (label.length === 0) return "a label cannot be empty";
  if (label.length > MAX_LABEL_BYTES) return `a label is at most ${MAX_LABEL_BYTES} bytes`;
  return "a label may hold only letters, digits and . _ : -";
}

/**
 * The hello's XDR bytes: a version 1 `hello` without a label (byte for byte
 * what version 1 peers send), a `hello_v2` with one. The key proof covers them.
 */
export function helloBytes(hello: AnyHello): Uint8Array {
  const { label, ...fields } = hello;
  if (label === undefined) return Hello.encode({ ...fields, protocolVersion: VM_PROTOCOL_VERSION });
  const problem = labelProblem(label);
  if (problem !== undefined) throw new VmError("usage", `label '${label}': ${problem}`);
  return HelloV2.encode({ base: { ...fields, protocolVersion: VM_PROTOCOL_VERSION_2 }, label: new TextEncoder().encode(label) });
}

export function encodeHello(hello: AnyHello): Uint8Array {
  return toRecord(helloBytes(hello));
}

export type HelloResult =
  | { ok: true; hello: AnyHello }
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
  if (version !== VM_PROTOCOL_VERSION && version !== VM_PROTOCOL_VERSION_2) {
    return {
      ok: false,
      reason: RefuseReason.REFUSE_VERSION,
      text: `protocol version ${version} is not supported; this receiver speaks versions ${VM_PROTOCOL_VERSION} and ${VM_PROTOCOL_VERSION_2}`,
    };
  }
  let hello: AnyHello;
  try {
    if (version === VM_PROTOCOL_VERSION) hello = Hello.decode(record);
    else {
      const decoded = HelloV2.decode(record);
      const label = new TextDecoder("utf-8", { fatal: false }).decode(decoded.label);
      // Checked on the bytes: a label that is not ASCII is refused, not repaired.
      const problem = decoded.label.length === label.length ? labelProblem(label) : "a label may hold only letters, digits and . _ : -";
      if (problem !== undefined) return { ok: false, reason: RefuseReason.REFUSE_BAD_MAGIC, text: `malformed hello: ${problem}` };
      hello = { ...decoded.base, label };
    }
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

// ---- the receiving command's verdict -------------------------------------------

export type { ConsumerStatus, ConsumerVerdict };

/** A signal's name as the verdict carries it (SIGPIPE, SIGRTMIN+3). */
const SIGNAL_NAME = new RegExp(`^[A-Z0-9+]{1,${MAX_SIGNAL_NAME_BYTES}}$`);

/** The last MAX_STDERR_TAIL_BYTES of a command's stderr: its final message is what the user needs. */
export function stderrTail(stderr: Uint8Array): Uint8Array {
  return stderr.length <= MAX_STDERR_TAIL_BYTES ? stderr : stderr.subarray(stderr.length - MAX_STDERR_TAIL_BYTES);
}

/**
 * The verdict frame on how the receiving `command` ended: `exitCode`, or the
 * `signal` that killed it, or neither (it never ran). The command is cut to
 * MAX_TEXT_BYTES and the stderr to its last MAX_STDERR_TAIL_BYTES.
 */
export function verdictFrame(command: string, ended: { exitCode: number } | { signal: string } | "not run", stderr: Uint8Array): ControlFrame {
  let consumer: ConsumerStatus;
  if (ended === "not run") consumer = { state: ConsumerState.CONSUMER_NONE };
  else if ("exitCode" in ended) consumer = { state: ConsumerState.CONSUMER_EXITED, exitCode: ended.exitCode >>> 0 };
  else {
    if (!SIGNAL_NAME.test(ended.signal)) throw new VmError("internal", `internal error: '${ended.signal}' is not a signal's name`);
    consumer = { state: ConsumerState.CONSUMER_SIGNALLED, signalName: new TextEncoder().encode(ended.signal) };
  }
  return { kind: FrameKind.FRAME_VERDICT, verdict: { command: wireText(command), consumer, stderrTail: stderrTail(stderr) } };
}

/**
 * The frames that end a session on a connection that negotiated
 * `capabilities`: with CAP_VERDICT and a verdict, the verdict goes first;
 * otherwise `final` alone, as version 1 peers expect.
 */
export function closingFrames(final: ControlFrame, capabilities: number, verdict: ControlFrame | undefined): ControlFrame[] {
  return verdict !== undefined && (capabilities & CAP_VERDICT) !== 0 ? [verdict, final] : [final];
}

/** True when the receiving command succeeded: it exited 0. */
export function consumerSucceeded(verdict: ConsumerVerdict): boolean {
  return verdict.consumer.state === ConsumerState.CONSUMER_EXITED && verdict.consumer.exitCode === 0;
}

/**
 * One line on how the command ended, for the transmitter's user:
 * `'zfs recv -F pool/ds' exited 1: cannot receive new filesystem stream: destination has been modified`
 * (the last non-empty line of its stderr; control characters shown as U+FFFD).
 */
export function describeVerdict(verdict: ConsumerVerdict): string {
  const command = `'${readText(verdict.command)}'`;
  const { consumer } = verdict;
  const ended =
    consumer.state === ConsumerState.CONSUMER_EXITED
      ? `exited ${consumer.exitCode}`
      : consumer.state === ConsumerState.CONSUMER_SIGNALLED
        ? `was killed by ${readText(consumer.signalName)}`
        : "could not be started";
  const last = readText(verdict.stderrTail).split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== "").at(-1);
  // The peer chose these bytes: nothing in them may steer the user's terminal.
  return (last === undefined ? `${command} ${ended}` : `${command} ${ended}: ${last}`).replace(/[\u0000-\u001f\u007f-\u009f]/g, "\uFFFD");
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
  let frame: Frame;
  try {
    frame = Frame.decode(record);
  } catch (error) {
    throw protocolError("malformed frame", error);
  }
  if (frame.kind === FrameKind.FRAME_VERDICT && frame.verdict.consumer.state === ConsumerState.CONSUMER_SIGNALLED) {
    const name = frame.verdict.consumer.signalName;
    if (!SIGNAL_NAME.test(readText(name)) || readText(name).length !== name.length) throw protocolError("malformed verdict: not a signal's name");
  }
  return frame;
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
