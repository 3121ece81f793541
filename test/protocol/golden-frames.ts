/**
 * Golden vectors: one value per message shape and the exact bytes RFC 4506 says it encodes to.
 *
 * The hex was worked out by hand, not produced by the encoder, so the codec is checked against
 * the RFC rather than against itself. Reading rules: every item is big-endian in 4-byte words;
 * an unsigned hyper is two words (high, low); an enum is one word; a union is its discriminant
 * word then its arm (a void arm adds nothing); a string or variable opaque is a length word,
 * the bytes, then zero bytes up to a multiple of 4; a variable array is a count word then the
 * elements. Words are separated by spaces. Padding of 0, 1, 2 and 3 bytes each appears below.
 */
import {
  AbortCode,
  CAP_NONE,
  CAP_PRODUCER_FAILED,
  CAP_VERDICT,
  ChecksumKind,
  ConsumerState,
  DigestKind,
  FOOT_FLAG_RETRANSMIT,
  FrameKind,
  HelloStatus,
  RefuseReason,
  RetransmitReason,
  VM_MAGIC,
  VM_PROTOCOL_VERSION,
  VM_PROTOCOL_VERSION_2,
} from "../../src/protocol/xdr.generated.ts";
import { Frame, Hello, HelloReply, HelloV2 } from "../../src/protocol/xdr.generated.ts";

export type GoldenFrame =
  | { name: string; schema: "Hello"; value: Hello; hex: string }
  | { name: string; schema: "HelloV2"; value: HelloV2; hex: string }
  | { name: string; schema: "HelloReply"; value: HelloReply; hex: string }
  | { name: string; schema: "Frame"; value: Frame; hex: string };

/** A golden frame's value, encoded with its schema's codec. */
export function encodeGolden(v: GoldenFrame): Uint8Array {
  switch (v.schema) {
    case "Hello":
      return Hello.encode(v.value);
    case "HelloV2":
      return HelloV2.encode(v.value);
    case "HelloReply":
      return HelloReply.encode(v.value);
    case "Frame":
      return Frame.encode(v.value);
  }
}

/** Bytes decoded with a golden frame's schema's codec. */
export function decodeGolden(v: GoldenFrame, bytes: Uint8Array): unknown {
  return { Hello, HelloV2, HelloReply, Frame }[v.schema].decode(bytes);
}

const ascii = (text: string) => new TextEncoder().encode(text);
const words = (...groups: string[]) => groups.join(" ");

/**
 * CHECKSUM_XXH3_64 of the golden foot: id 7, offset 0x7000, payload "hello", and its seed, the low
 * 32 bits of XXH3-64 of the header words (protocol/README.md's worked example; the unit test and
 * the conformance run's C peer recheck both).
 */
export const CHECKSUM_OF_HELLO_FOOT = 0x0f7d4b996914e29an;
export const SEED_OF_HELLO_FOOT = 0x46374d18n;

const digest = { kind: DigestKind.DIGEST_XXH3_CHAIN, xxh3Chain: 0x0011223344556677n } as const;
const heartbeat = { nonce: 0x8000000000000001n, sentUs: 1_000_000n };

export const GOLDEN_FRAMES: GoldenFrame[] = [
  {
    name: "hello",
    schema: "Hello",
    value: {
      magic: VM_MAGIC,
      protocolVersion: VM_PROTOCOL_VERSION,
      sessionId: 0x0123456789abcdefn,
      checkphrase: ascii("secret"),
      footBytes: 2 * 1024 * 1024,
      capabilities: CAP_NONE,
      connectionId: 3,
    },
    hex: words(
      "564d5031", // magic: "VMP1"
      "00000001", // protocol_version 1
      "01234567 89abcdef", // session_id: high word, low word
      "00000006", // checkphrase: length 6
      "73656372 65740000", // "secr" "et" + 2 bytes of padding
      "00200000", // foot_bytes 2 MiB = 0x200000
      "00000000", // capabilities CAP_NONE
      "00000003", // connection_id 3
    ),
  },
  {
    name: "hello_v2 with a 16-byte label (no padding), offering CAP_VERDICT and CAP_PRODUCER_FAILED",
    schema: "HelloV2",
    value: {
      base: {
        magic: VM_MAGIC,
        protocolVersion: VM_PROTOCOL_VERSION_2,
        sessionId: 0x0123456789abcdefn,
        checkphrase: ascii(""),
        footBytes: 2 * 1024 * 1024,
        capabilities: CAP_VERDICT | CAP_PRODUCER_FAILED,
        connectionId: 0,
      },
      label: ascii("host-1:tank.home"),
    },
    hex: words(
      "564d5031", // base.magic: "VMP1"
      "00000002", // base.protocol_version 2: this layout
      "01234567 89abcdef", // base.session_id
      "00000000", // base.checkphrase: length 0, no bytes
      "00200000", // base.foot_bytes 2 MiB
      "00000018", // base.capabilities CAP_VERDICT (8) | CAP_PRODUCER_FAILED (16) = 0x18
      "00000000", // base.connection_id 0
      "00000010", // label: length 16
      "686f7374 2d313a74 616e6b2e 686f6d65", // "host" "-1:t" "ank." "home": no padding
    ),
  },
  {
    name: "hello_v2 with a 5-byte label",
    schema: "HelloV2",
    value: {
      base: {
        magic: VM_MAGIC,
        protocolVersion: VM_PROTOCOL_VERSION_2,
        sessionId: 1n,
        checkphrase: ascii("k"),
        footBytes: 4096,
        capabilities: CAP_NONE,
        connectionId: 9,
      },
      label: ascii("daily"),
    },
    hex: words(
      "564d5031", // base.magic
      "00000002", // base.protocol_version 2
      "00000000 00000001", // base.session_id 1
      "00000001", // base.checkphrase: length 1
      "6b000000", // "k" + 3 bytes of padding
      "00001000", // base.foot_bytes 4096
      "00000000", // base.capabilities CAP_NONE
      "00000009", // base.connection_id 9
      "00000005", // label: length 5
      "6461696c 79000000", // "dail" "y" + 3 bytes of padding
    ),
  },
  {
    name: "hello_reply accept",
    schema: "HelloReply",
    value: {
      status: HelloStatus.HELLO_ACCEPT,
      accepted: { receiverNonce: 0xfedcba9876543210n, deliveredBelow: (1n << 32n) + 2n, windowEnd: (1n << 32n) + 66n, capabilities: 0 },
    },
    hex: words(
      "00000000", // status HELLO_ACCEPT
      "fedcba98 76543210", // accepted.receiver_nonce
      "00000001 00000002", // accepted.delivered_below 2^32 + 2: the high word is used
      "00000001 00000042", // accepted.window_end 2^32 + 66
      "00000000", // accepted.capabilities
    ),
  },
  {
    name: "hello_reply accept, echoing CAP_VERDICT",
    schema: "HelloReply",
    value: {
      status: HelloStatus.HELLO_ACCEPT,
      accepted: { receiverNonce: 1n, deliveredBelow: 0n, windowEnd: 32n, capabilities: CAP_VERDICT | CAP_PRODUCER_FAILED },
    },
    hex: words(
      "00000000", // status HELLO_ACCEPT
      "00000000 00000001", // accepted.receiver_nonce
      "00000000 00000000", // accepted.delivered_below 0
      "00000000 00000020", // accepted.window_end 32
      "00000018", // accepted.capabilities CAP_VERDICT | CAP_PRODUCER_FAILED
    ),
  },
  {
    name: "hello_reply refuse, text padded by 3",
    schema: "HelloReply",
    value: {
      status: HelloStatus.HELLO_REFUSE,
      refused: { reason: RefuseReason.REFUSE_SESSION_BUSY, receiverVersion: 1, text: ascii("busy!") },
    },
    hex: words(
      "00000001", // status HELLO_REFUSE
      "00000004", // refused.reason REFUSE_SESSION_BUSY
      "00000001", // refused.receiver_version 1
      "00000005", // refused.text: length 5
      "62757379 21000000", // "busy" "!" + 3 bytes of padding
    ),
  },
  {
    name: "foot, 5-byte payload, XXH3 checksum",
    schema: "Frame",
    value: {
      kind: FrameKind.FRAME_FOOT,
      foot: {
        header: {
          footId: 7n,
          streamOffset: 7n * 4096n,
          length: 5,
          sum: { kind: ChecksumKind.CHECKSUM_XXH3_64, xxh3: CHECKSUM_OF_HELLO_FOOT },
          flags: 0,
        },
        payload: ascii("hello"),
      },
    },
    hex: words(
      "00000001", // kind FRAME_FOOT
      "00000000 00000007", // header.foot_id 7
      "00000000 00007000", // header.stream_offset 7 * 4096 = 0x7000
      "00000005", // header.length 5
      "00000001", // header.sum.kind CHECKSUM_XXH3_64
      "0f7d4b99 6914e29a", // header.sum.xxh3 (header-seeded, see viamillipede.x)
      "00000000", // header.flags
      "00000005", // payload: length 5
      "68656c6c 6f000000", // "hell" "o" + 3 bytes of padding
    ),
  },
  {
    name: "foot, CHECKSUM_NONE, retransmitted, 4-byte payload",
    schema: "Frame",
    value: {
      kind: FrameKind.FRAME_FOOT,
      foot: {
        header: {
          footId: 1n << 32n,
          streamOffset: 1n << 44n,
          length: 4,
          sum: { kind: ChecksumKind.CHECKSUM_NONE },
          flags: FOOT_FLAG_RETRANSMIT,
        },
        payload: Uint8Array.of(0x00, 0xff, 0x10, 0x80),
      },
    },
    hex: words(
      "00000001", // kind FRAME_FOOT
      "00000001 00000000", // header.foot_id 2^32
      "00001000 00000000", // header.stream_offset 2^44: high word 2^12
      "00000004", // header.length 4
      "00000000", // header.sum.kind CHECKSUM_NONE; the void arm adds nothing
      "00000001", // header.flags FOOT_FLAG_RETRANSMIT
      "00000004", // payload: length 4
      "00ff1080", // the 4 bytes; no padding
    ),
  },
  {
    name: "end",
    schema: "Frame",
    value: { kind: FrameKind.FRAME_END, end: { totalFeet: 8n, totalBytes: 28677n, digest } },
    hex: words(
      "00000002", // kind FRAME_END
      "00000000 00000008", // total_feet 8
      "00000000 00007005", // total_bytes 7 * 4096 + 5 = 28677 = 0x7005
      "00000001", // digest.kind DIGEST_XXH3_CHAIN
      "00112233 44556677", // digest.xxh3_chain
    ),
  },
  {
    name: "ack with two ids",
    schema: "Frame",
    value: { kind: FrameKind.FRAME_ACK, ack: { deliveredBelow: 5n, received: [7n, 9n] } },
    hex: words(
      "00000003", // kind FRAME_ACK
      "00000000 00000005", // delivered_below 5
      "00000002", // received: count 2
      "00000000 00000007", // received[0] 7
      "00000000 00000009", // received[1] 9
    ),
  },
  {
    name: "credit",
    schema: "Frame",
    value: { kind: FrameKind.FRAME_CREDIT, credit: { windowEnd: (1n << 64n) - 1n } },
    hex: words(
      "00000004", // kind FRAME_CREDIT
      "ffffffff ffffffff", // window_end 2^64 - 1, the largest unsigned hyper
    ),
  },
  {
    name: "retransmit",
    schema: "Frame",
    value: {
      kind: FrameKind.FRAME_RETRANSMIT,
      retransmit: { reason: RetransmitReason.RETRANSMIT_CHECKSUM, footIds: [6n] },
    },
    hex: words(
      "00000005", // kind FRAME_RETRANSMIT
      "00000001", // reason RETRANSMIT_CHECKSUM
      "00000001", // foot_ids: count 1
      "00000000 00000006", // foot_ids[0] 6
    ),
  },
  {
    name: "confirm",
    schema: "Frame",
    value: { kind: FrameKind.FRAME_CONFIRM, confirm: { totalFeet: 8n, totalBytes: 28677n, digest } },
    hex: words(
      "00000006", // kind FRAME_CONFIRM
      "00000000 00000008", // total_feet 8
      "00000000 00007005", // total_bytes 28677
      "00000001", // digest.kind DIGEST_XXH3_CHAIN
      "00112233 44556677", // digest.xxh3_chain
    ),
  },
  {
    name: "ping",
    schema: "Frame",
    value: { kind: FrameKind.FRAME_PING, ping: heartbeat },
    hex: words(
      "00000007", // kind FRAME_PING
      "80000000 00000001", // nonce with the top bit set: unsigned, not negative
      "00000000 000f4240", // sent_us 1 s = 1,000,000 = 0xf4240
    ),
  },
  {
    name: "pong",
    schema: "Frame",
    value: { kind: FrameKind.FRAME_PONG, pong: heartbeat },
    hex: words(
      "00000008", // kind FRAME_PONG
      "80000000 00000001", // nonce, echoed
      "00000000 000f4240", // sent_us, echoed
    ),
  },
  {
    name: "abort with text padded by 1",
    schema: "Frame",
    value: {
      kind: FrameKind.FRAME_ABORT,
      abort: { code: AbortCode.ABORT_OUTPUT_CLOSED, text: ascii("EPIPE on stdout") },
    },
    hex: words(
      "00000009", // kind FRAME_ABORT
      "00000002", // code ABORT_OUTPUT_CLOSED
      "0000000f", // text: length 15
      "45504950 45206f6e 20737464 6f757400", // "EPIP" "E on" " std" "out" + 1 byte of padding
    ),
  },
  {
    name: "abort, producer failed, text padded by 2",
    schema: "Frame",
    value: {
      kind: FrameKind.FRAME_ABORT,
      abort: { code: AbortCode.ABORT_PRODUCER_FAILED, text: ascii("'tar c .' exited 2") },
    },
    hex: words(
      "00000009", // kind FRAME_ABORT
      "00000007", // code ABORT_PRODUCER_FAILED
      "00000012", // text: length 18
      "27746172 2063202e 27206578 69746564 20320000", // "'tar" " c ." "' ex" "ited" " 2" + 2 bytes of padding
    ),
  },
  {
    name: "verdict: exited 1, stderr tail padded by 3",
    schema: "Frame",
    value: {
      kind: FrameKind.FRAME_VERDICT,
      verdict: {
        command: ascii("zfs recv"),
        consumer: { state: ConsumerState.CONSUMER_EXITED, exitCode: 1 },
        stderrTail: ascii("no space\n"),
      },
    },
    hex: words(
      "0000000a", // kind FRAME_VERDICT
      "00000008", // command: length 8
      "7a667320 72656376", // "zfs " "recv": no padding
      "00000001", // consumer.state CONSUMER_EXITED
      "00000001", // consumer.exit_code 1
      "00000009", // stderr_tail: length 9
      "6e6f2073 70616365 0a000000", // "no s" "pace" "\n" + 3 bytes of padding
    ),
  },
  {
    name: "verdict: killed by SIGPIPE, empty tail",
    schema: "Frame",
    value: {
      kind: FrameKind.FRAME_VERDICT,
      verdict: {
        command: ascii("tar x"),
        consumer: { state: ConsumerState.CONSUMER_SIGNALLED, signalName: ascii("SIGPIPE") },
        stderrTail: ascii(""),
      },
    },
    hex: words(
      "0000000a", // kind FRAME_VERDICT
      "00000005", // command: length 5
      "74617220 78000000", // "tar " "x" + 3 bytes of padding
      "00000002", // consumer.state CONSUMER_SIGNALLED
      "00000007", // consumer.signal_name: length 7
      "53494750 49504500", // "SIGP" "IPE" + 1 byte of padding
      "00000000", // stderr_tail: length 0
    ),
  },
  {
    name: "verdict: the command could not be started",
    schema: "Frame",
    value: {
      kind: FrameKind.FRAME_VERDICT,
      verdict: { command: ascii("nope"), consumer: { state: ConsumerState.CONSUMER_NONE }, stderrTail: ascii("ENOENT") },
    },
    hex: words(
      "0000000a", // kind FRAME_VERDICT
      "00000004", // command: length 4
      "6e6f7065", // "nope": no padding
      "00000000", // consumer.state CONSUMER_NONE; the void arm adds nothing
      "00000006", // stderr_tail: length 6
      "454e4f45 4e540000", // "ENOE" "NT" + 2 bytes of padding
    ),
  },
  {
    name: "abort with empty text",
    schema: "Frame",
    value: { kind: FrameKind.FRAME_ABORT, abort: { code: AbortCode.ABORT_PROTOCOL, text: ascii("") } },
    hex: words(
      "00000009", // kind FRAME_ABORT
      "00000001", // code ABORT_PROTOCOL
      "00000000", // text: length 0, no bytes, no padding
    ),
  },
];
