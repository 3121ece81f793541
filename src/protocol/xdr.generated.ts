// DO NOT EDIT. Generated from protocol/viamillipede.x by scripts/gen-protocol.ts; run `bun run gen:protocol`.

import { array, enumType, field, opaque, string, struct, uint32, uint64, union, unionCase, varOpaque, voidType } from "@stellar/js-xdr";
import type { Infer } from "@stellar/js-xdr";

// /*
//  * viamillipede wire protocol, versions 1 and 2.
//  *
//  * This file is the single source of truth for every byte on the wire. It is
//  * RFC 4506 XDR in the RPC-language subset that rpcgen accepts; the TypeScript
//  * codecs in src/protocol/xdr.generated.ts are generated from it.
//  *
//  * Transport: every message is one RFC 5531 section 11 record ("record
//  * marking"): a 4-byte big-endian word whose top bit marks the last fragment
//  * and whose low 31 bits give the fragment length, then the fragment bytes.
//  * A record holds exactly one XDR-encoded message.
//  *
//  * On each TCP connection the transmitter (tx) sends one `hello` record (or,
//  * to carry a label, a `hello_v2`), the receiver (rx) answers with one
//  * `hello_reply` record, and from then on both directions carry `frame`
//  * records. See protocol/README.md for the state machines, how versions and
//  * capabilities are negotiated, and what happens when a limit is exceeded.
//  */
//
// /* "VMP1": the first word of every hello; anything else is not our peer. */
// const VM_MAGIC = 0x564d5031;
export const VM_MAGIC = 0x564d5031;

// /* The second word of every hello names its layout. A receiver reads both words
//  * before the rest, and refuses a version it does not speak with REFUSE_VERSION. */
// const VM_PROTOCOL_VERSION = 1;              /* struct hello: what every transmitter without a label sends */
export const VM_PROTOCOL_VERSION = 1;

// const VM_PROTOCOL_VERSION_2 = 2;            /* struct hello_v2: hello plus a label; the newest spoken here */
export const VM_PROTOCOL_VERSION_2 = 2;

// /* Limits. Every length is checked against one of these before allocation. */
// const MIN_FOOT_BYTES = 4096;                /* smallest foot size a hello may ask for */
export const MIN_FOOT_BYTES = 4096;

// const MAX_FOOT_BYTES = 16777216;            /* 16 MiB: most stream bytes one foot carries */
export const MAX_FOOT_BYTES = 16777216;

// const MAX_FOOT_PAYLOAD_BYTES = 16777280;    /* MAX_FOOT_BYTES + 64: room for a seal's nonce and tag */
export const MAX_FOOT_PAYLOAD_BYTES = 16777280;

// /* Every string<> here (checkphrase, text, command, label, signal_name) is UTF-8 without
//  * zero bytes: rpcgen's C holds it as a NUL-terminated char *. Senders never send one. */
// const MAX_CHECKPHRASE_BYTES = 64;
export const MAX_CHECKPHRASE_BYTES = 64;

// const MAX_TEXT_BYTES = 256;                 /* human-readable reasons, a verdict's command */
export const MAX_TEXT_BYTES = 256;

// const MAX_LABEL_BYTES = 128;                /* hello_v2.label: 1..128 of [A-Za-z0-9._:-] */
export const MAX_LABEL_BYTES = 128;

// const MAX_SIGNAL_NAME_BYTES = 32;           /* consumer_status.signal_name: [A-Z0-9+], e.g. SIGPIPE */
export const MAX_SIGNAL_NAME_BYTES = 32;

// const MAX_STDERR_TAIL_BYTES = 2048;         /* consumer_verdict.stderr_tail */
export const MAX_STDERR_TAIL_BYTES = 2048;

// const MAX_ACK_IDS = 64;
export const MAX_ACK_IDS = 64;

// const MAX_RETRANSMIT_IDS = 64;
export const MAX_RETRANSMIT_IDS = 64;

// const MAX_HELLO_RECORD_BYTES = 512;         /* any hello or hello_reply record */
export const MAX_HELLO_RECORD_BYTES = 512;

// const MAX_CONTROL_RECORD_BYTES = 4096;      /* any frame other than a foot */
export const MAX_CONTROL_RECORD_BYTES = 4096;

// const FOOT_RECORD_OVERHEAD_BYTES = 128;     /* foot record = foot_bytes + this, at most */
export const FOOT_RECORD_OVERHEAD_BYTES = 128;

// /* Capability bits in hello.capabilities and welcome.capabilities. */
// const CAP_NONE = 0;
export const CAP_NONE = 0;

// const CAP_KEY = 1;                          /* tx holds a pre-shared key: challenge it (and prove rx's) */
export const CAP_KEY = 1;

// const CAP_ENCRYPT = 2;                      /* feet are sealed (AES-256-GCM); needs CAP_KEY */
export const CAP_ENCRYPT = 2;

// const CAP_COMPRESS = 4;                     /* feet may be compressed (FOOT_FLAG_ZSTD, FOOT_FLAG_GZIP) */
export const CAP_COMPRESS = 4;

// const CAP_VERDICT = 8;                      /* tx: send me FRAME_VERDICT; rx echoes it when a command consumes the stream */
export const CAP_VERDICT = 8;

// const CAP_PRODUCER_FAILED = 16;             /* tx may abort with ABORT_PRODUCER_FAILED; rx echoes it when it knows that code */
export const CAP_PRODUCER_FAILED = 16;

// /* Keys and sealing (protocol/README.md, "Keys and encryption"). */
// const KEY_NONCE_BYTES = 32;                 /* each side's random challenge, per connection */
export const KEY_NONCE_BYTES = 32;

// const KEY_PROOF_BYTES = 32;                 /* HMAC-SHA256 */
export const KEY_PROOF_BYTES = 32;

// const SEAL_NONCE_BYTES = 12;                /* AES-GCM nonce: be32(0) || be64(counter) */
export const SEAL_NONCE_BYTES = 12;

// const SEAL_TAG_BYTES = 16;                  /* AES-GCM tag */
export const SEAL_TAG_BYTES = 16;

// /* Flags in foot_header.flags. */
// const FOOT_FLAG_RETRANSMIT = 1;             /* this copy re-sends an earlier foot */
export const FOOT_FLAG_RETRANSMIT = 1;

// const FOOT_FLAG_ZSTD = 2;                   /* the stream bytes are one zstd frame */
export const FOOT_FLAG_ZSTD = 2;

// const FOOT_FLAG_GZIP = 4;                   /* the stream bytes are one gzip member */
export const FOOT_FLAG_GZIP = 4;

// const FOOT_FLAG_SEALED = 8;                 /* payload = nonce || AES-256-GCM(bytes) || tag */
export const FOOT_FLAG_SEALED = 8;

// /* ---- handshake ---------------------------------------------------------- */
//
// /* tx -> rx, first record on every connection (version 1: a hello without a label). */
// struct hello {
//     unsigned int magic;                     /* VM_MAGIC */
//     unsigned int protocol_version;          /* VM_PROTOCOL_VERSION; VM_PROTOCOL_VERSION_2 inside hello_v2 */
//     unsigned hyper session_id;              /* random per transfer, same on every connection */
//     string checkphrase<MAX_CHECKPHRASE_BYTES>;  /* must equal the receiver's; a stale-peer guard */
//     unsigned int foot_bytes;                /* payload size of every full foot */
//     unsigned int capabilities;              /* CAP_* bits the transmitter offers */
//     unsigned int connection_id;             /* transmitter's number for this connection */
// };
export const Hello = struct("Hello", {
  magic: uint32(),
  protocolVersion: uint32(),
  sessionId: uint64(),
  checkphrase: string(MAX_CHECKPHRASE_BYTES),
  footBytes: uint32(),
  capabilities: uint32(),
  connectionId: uint32(),
});
export type Hello = Infer<typeof Hello>;

// /* tx -> rx, first record on every connection of a labelled transfer: the
//  * version 1 fields with protocol_version = VM_PROTOCOL_VERSION_2, then the label.
//  * Every connection of a session carries the same label. */
// struct hello_v2 {
//     hello base;
//     string label<MAX_LABEL_BYTES>;          /* names the transfer to the receiving command */
// };
export const HelloV2 = struct("HelloV2", {
  base: Hello,
  label: string(MAX_LABEL_BYTES),
});
export type HelloV2 = Infer<typeof HelloV2>;

// enum hello_status {
//     HELLO_ACCEPT = 0,
//     HELLO_REFUSE = 1,
//     HELLO_CHALLENGE = 2,                    /* rx holds a key: tx must answer with key_proof */
//     HELLO_ACCEPT_PROVEN = 3                 /* accepted after key_proof; rx proves the key too */
// };
export const HelloStatus = enumType("HelloStatus", {
  HELLO_ACCEPT: 0,
  HELLO_REFUSE: 1,
  HELLO_CHALLENGE: 2,
  HELLO_ACCEPT_PROVEN: 3,
});
export type HelloStatus = Infer<typeof HelloStatus>;

// enum refuse_reason {
//     REFUSE_BAD_MAGIC = 1,                   /* not a viamillipede hello */
//     REFUSE_VERSION = 2,                     /* protocol version not spoken here */
//     REFUSE_CHECKPHRASE = 3,                 /* checkphrase differs from the receiver's */
//     REFUSE_SESSION_BUSY = 4,                /* another session owns this receiver */
//     REFUSE_FOOT_SIZE = 5,                   /* foot_bytes outside MIN..MAX_FOOT_BYTES */
//     REFUSE_TOO_MANY_CONNECTIONS = 6,        /* the session already has its maximum */
//     REFUSE_SESSION_OVER = 7,                /* the session has finished */
//     REFUSE_KEY = 8,                         /* key missing on one side, or a wrong proof */
//     REFUSE_CAPABILITY = 9                   /* e.g. rx requires encrypt, or encrypt without a key */
// };
export const RefuseReason = enumType("RefuseReason", {
  REFUSE_BAD_MAGIC: 1,
  REFUSE_VERSION: 2,
  REFUSE_CHECKPHRASE: 3,
  REFUSE_SESSION_BUSY: 4,
  REFUSE_FOOT_SIZE: 5,
  REFUSE_TOO_MANY_CONNECTIONS: 6,
  REFUSE_SESSION_OVER: 7,
  REFUSE_KEY: 8,
  REFUSE_CAPABILITY: 9,
});
export type RefuseReason = Infer<typeof RefuseReason>;

// /* rx -> tx: the connection joins the session. */
// struct welcome {
//     unsigned hyper receiver_nonce;          /* random per receiver session: a change means rx restarted */
//     unsigned hyper delivered_below;         /* every foot id below this is on rx's stdout */
//     unsigned hyper window_end;              /* tx may send feet with id below this */
//     unsigned int capabilities;              /* CAP_* bits both ends use */
// };
export const Welcome = struct("Welcome", {
  receiverNonce: uint64(),
  deliveredBelow: uint64(),
  windowEnd: uint64(),
  capabilities: uint32(),
});
export type Welcome = Infer<typeof Welcome>;

// /* rx -> tx: the connection is refused and will be closed. */
// struct refusal {
//     refuse_reason reason;
//     unsigned int receiver_version;          /* the newest protocol version rx speaks */
//     string text<MAX_TEXT_BYTES>;
// };
export const Refusal = struct("Refusal", {
  reason: RefuseReason,
  receiverVersion: uint32(),
  text: string(MAX_TEXT_BYTES),
});
export type Refusal = Infer<typeof Refusal>;

// /* rx -> tx: prove you hold the key (answer: key_proof). */
// struct challenge {
//     opaque receiver_nonce[KEY_NONCE_BYTES];
// };
export const Challenge = struct("Challenge", {
  receiverNonce: opaque(KEY_NONCE_BYTES),
});
export type Challenge = Infer<typeof Challenge>;

// /* tx -> rx, the second record of a keyed connection: tx's nonce and proof
//  * HMAC-SHA256(key, "viamillipede v1 tx proof" || hello || receiver_nonce || transmitter_nonce),
//  * where hello is the hello record's XDR bytes (protocol/README.md). */
// struct key_proof {
//     opaque transmitter_nonce[KEY_NONCE_BYTES];
//     opaque proof[KEY_PROOF_BYTES];
// };
export const KeyProof = struct("KeyProof", {
  transmitterNonce: opaque(KEY_NONCE_BYTES),
  proof: opaque(KEY_PROOF_BYTES),
});
export type KeyProof = Infer<typeof KeyProof>;

// /* rx -> tx: welcome plus rx's proof, which also covers the welcome's XDR bytes. */
// struct proven_welcome {
//     welcome accepted;
//     opaque proof[KEY_PROOF_BYTES];
// };
export const ProvenWelcome = struct("ProvenWelcome", {
  accepted: Welcome,
  proof: opaque(KEY_PROOF_BYTES),
});
export type ProvenWelcome = Infer<typeof ProvenWelcome>;

// /* rx -> tx, the only records rx sends before frames. ACCEPT and REFUSE are
//  * stable across versions; CHALLENGE and ACCEPT_PROVEN answer a CAP_KEY hello only. */
// union hello_reply switch (hello_status status) {
// case HELLO_ACCEPT:
//     welcome accepted;
// case HELLO_REFUSE:
//     refusal refused;
// case HELLO_CHALLENGE:
//     challenge challenged;
// case HELLO_ACCEPT_PROVEN:
//     proven_welcome proven;
// };
export const HelloReply = union("HelloReply", {
  switchOn: HelloStatus,
  switchKey: "status",
  cases: [
    unionCase("HELLO_ACCEPT", HelloStatus.HELLO_ACCEPT, field("accepted", Welcome)),
    unionCase("HELLO_REFUSE", HelloStatus.HELLO_REFUSE, field("refused", Refusal)),
    unionCase("HELLO_CHALLENGE", HelloStatus.HELLO_CHALLENGE, field("challenged", Challenge)),
    unionCase("HELLO_ACCEPT_PROVEN", HelloStatus.HELLO_ACCEPT_PROVEN, field("proven", ProvenWelcome)),
  ],
});
export type HelloReply = Infer<typeof HelloReply>;

// /* ---- data: tx -> rx ----------------------------------------------------- */
//
// /*
//  * CHECKSUM_XXH3_64 binds the header to the payload, so a corrupted foot id,
//  * offset or length is caught like a corrupted payload byte:
//  *   h    = XXH3-64(be64(foot_id) || be64(stream_offset) || be64(length)), seed 0
//  *   seed = h & 0xffffffff (the low 32 bits of h; the high 32 bits are zero)
//  *   sum  = XXH3-64(payload) with that 64-bit seed
//  * For id 7, offset 0x7000, length 5, payload "hello": h = 0x363ac19846374d18,
//  * seed = 0x46374d18, sum = 0x0f7d4b996914e29a (protocol/README.md).
//  */
// enum checksum_kind {
//     CHECKSUM_NONE = 0,
//     CHECKSUM_XXH3_64 = 1
// };
export const ChecksumKind = enumType("ChecksumKind", {
  CHECKSUM_NONE: 0,
  CHECKSUM_XXH3_64: 1,
});
export type ChecksumKind = Infer<typeof ChecksumKind>;

// union checksum switch (checksum_kind kind) {
// case CHECKSUM_NONE:
//     void;
// case CHECKSUM_XXH3_64:
//     unsigned hyper xxh3;
// };
export const Checksum = union("Checksum", {
  switchOn: ChecksumKind,
  switchKey: "kind",
  cases: [
    unionCase("CHECKSUM_NONE", ChecksumKind.CHECKSUM_NONE, voidType()),
    unionCase("CHECKSUM_XXH3_64", ChecksumKind.CHECKSUM_XXH3_64, field("xxh3", uint64())),
  ],
});
export type Checksum = Infer<typeof Checksum>;

// struct foot_header {
//     unsigned hyper foot_id;                 /* 0, 1, 2 ... in stream order */
//     unsigned hyper stream_offset;           /* position of the first byte in the stream */
//     unsigned int length;                    /* stream bytes carried; at most hello.foot_bytes */
//     checksum sum;                           /* over header fields and stream bytes, see checksum_kind;
//                                                CHECKSUM_NONE on sealed feet (the tag authenticates) */
//     unsigned int flags;                     /* FOOT_FLAG_* */
// };
export const FootHeader = struct("FootHeader", {
  footId: uint64(),
  streamOffset: uint64(),
  length: uint32(),
  sum: Checksum,
  flags: uint32(),
});
export type FootHeader = Infer<typeof FootHeader>;

// /* A numbered block of the stream. Senders encode the header with XDR and
//  * write the payload bytes (length word, bytes, zero padding) behind it. */
// struct foot {
//     foot_header header;
//     opaque payload<MAX_FOOT_PAYLOAD_BYTES>;  /* stream bytes, compressed and/or sealed per flags */
// };
export const Foot = struct("Foot", {
  header: FootHeader,
  payload: varOpaque(MAX_FOOT_PAYLOAD_BYTES),
});
export type Foot = Infer<typeof Foot>;

// enum digest_kind {
//     DIGEST_XXH3_CHAIN = 1                   /* see protocol/README.md, "Stream digest" */
// };
export const DigestKind = enumType("DigestKind", {
  DIGEST_XXH3_CHAIN: 1,
});
export type DigestKind = Infer<typeof DigestKind>;

// union stream_digest switch (digest_kind kind) {
// case DIGEST_XXH3_CHAIN:
//     unsigned hyper xxh3_chain;
// };
export const StreamDigest = union("StreamDigest", {
  switchOn: DigestKind,
  switchKey: "kind",
  cases: [
    unionCase("DIGEST_XXH3_CHAIN", DigestKind.DIGEST_XXH3_CHAIN, field("xxh3Chain", uint64())),
  ],
});
export type StreamDigest = Infer<typeof StreamDigest>;

// /* tx -> rx after the last foot: what the whole stream was. */
// struct end_of_stream {
//     unsigned hyper total_feet;
//     unsigned hyper total_bytes;
//     stream_digest digest;
// };
export const EndOfStream = struct("EndOfStream", {
  totalFeet: uint64(),
  totalBytes: uint64(),
  digest: StreamDigest,
});
export type EndOfStream = Infer<typeof EndOfStream>;

// /* ---- control: rx -> tx (the reverse channel) ---------------------------- */
//
// /* Feet rx holds: all below delivered_below (written out) plus those listed. */
// struct acknowledgement {
//     unsigned hyper delivered_below;
//     unsigned hyper received<MAX_ACK_IDS>;
// };
export const Acknowledgement = struct("Acknowledgement", {
  deliveredBelow: uint64(),
  received: array(uint64(), MAX_ACK_IDS),
});
export type Acknowledgement = Infer<typeof Acknowledgement>;

// /* tx may send feet with id below window_end. Absolute, so repeats are harmless. */
// struct window_credit {
//     unsigned hyper window_end;
// };
export const WindowCredit = struct("WindowCredit", {
  windowEnd: uint64(),
});
export type WindowCredit = Infer<typeof WindowCredit>;

// enum retransmit_reason {
//     RETRANSMIT_CHECKSUM = 1,                /* the copy received failed its checksum */
//     RETRANSMIT_MISSING = 2                  /* rx waits on these feet */
// };
export const RetransmitReason = enumType("RetransmitReason", {
  RETRANSMIT_CHECKSUM: 1,
  RETRANSMIT_MISSING: 2,
});
export type RetransmitReason = Infer<typeof RetransmitReason>;

// struct retransmit_request {
//     retransmit_reason reason;
//     unsigned hyper foot_ids<MAX_RETRANSMIT_IDS>;
// };
export const RetransmitRequest = struct("RetransmitRequest", {
  reason: RetransmitReason,
  footIds: array(uint64(), MAX_RETRANSMIT_IDS),
});
export type RetransmitRequest = Infer<typeof RetransmitRequest>;

// /* rx -> tx: every byte is on rx's stdout and matched end_of_stream. */
// struct stream_confirm {
//     unsigned hyper total_feet;
//     unsigned hyper total_bytes;
//     stream_digest digest;
// };
export const StreamConfirm = struct("StreamConfirm", {
  totalFeet: uint64(),
  totalBytes: uint64(),
  digest: StreamDigest,
});
export type StreamConfirm = Infer<typeof StreamConfirm>;

// enum consumer_state {
//     CONSUMER_NONE = 0,                      /* no command ran: it could not be started */
//     CONSUMER_EXITED = 1,
//     CONSUMER_SIGNALLED = 2
// };
export const ConsumerState = enumType("ConsumerState", {
  CONSUMER_NONE: 0,
  CONSUMER_EXITED: 1,
  CONSUMER_SIGNALLED: 2,
});
export type ConsumerState = Infer<typeof ConsumerState>;

// /* How the command that read the stream on rx ended. */
// union consumer_status switch (consumer_state state) {
// case CONSUMER_NONE:
//     void;
// case CONSUMER_EXITED:
//     unsigned int exit_code;
// case CONSUMER_SIGNALLED:
//     string signal_name<MAX_SIGNAL_NAME_BYTES>;  /* by name: signal numbers differ between systems */
// };
export const ConsumerStatus = union("ConsumerStatus", {
  switchOn: ConsumerState,
  switchKey: "state",
  cases: [
    unionCase("CONSUMER_NONE", ConsumerState.CONSUMER_NONE, voidType()),
    unionCase("CONSUMER_EXITED", ConsumerState.CONSUMER_EXITED, field("exitCode", uint32())),
    unionCase("CONSUMER_SIGNALLED", ConsumerState.CONSUMER_SIGNALLED, field("signalName", string(MAX_SIGNAL_NAME_BYTES))),
  ],
});
export type ConsumerStatus = Infer<typeof ConsumerStatus>;

// /* rx -> tx, only on a connection whose welcome carries CAP_VERDICT: sent once,
//  * before that connection's FRAME_CONFIRM (always) or FRAME_ABORT (when the
//  * command had ended by then). */
// struct consumer_verdict {
//     string command<MAX_TEXT_BYTES>;         /* the command as rx's user gave it, cut to the limit */
//     consumer_status consumer;
//     opaque stderr_tail<MAX_STDERR_TAIL_BYTES>;  /* the last bytes of its stderr, as written */
// };
export const ConsumerVerdict = struct("ConsumerVerdict", {
  command: string(MAX_TEXT_BYTES),
  consumer: ConsumerStatus,
  stderrTail: varOpaque(MAX_STDERR_TAIL_BYTES),
});
export type ConsumerVerdict = Infer<typeof ConsumerVerdict>;

// /* ---- both directions ---------------------------------------------------- */
//
// /* ping carries the sender's clock; pong echoes the ping it answers. */
// struct heartbeat {
//     unsigned hyper nonce;
//     unsigned hyper sent_us;
// };
export const Heartbeat = struct("Heartbeat", {
  nonce: uint64(),
  sentUs: uint64(),
});
export type Heartbeat = Infer<typeof Heartbeat>;

// enum abort_code {
//     ABORT_PROTOCOL = 1,                     /* peer broke the protocol */
//     ABORT_OUTPUT_CLOSED = 2,                /* rx's stdout was closed by its consumer */
//     ABORT_INTEGRITY = 3,                    /* totals or digest do not match */
//     ABORT_INPUT = 4,                        /* tx could not read its stdin */
//     ABORT_INTERRUPTED = 5,                  /* the user stopped one end */
//     ABORT_LIMIT = 6,                        /* a limit was exceeded */
//     ABORT_PRODUCER_FAILED = 7               /* tx's command failed; only to a CAP_PRODUCER_FAILED peer, else ABORT_INPUT */
// };
export const AbortCode = enumType("AbortCode", {
  ABORT_PROTOCOL: 1,
  ABORT_OUTPUT_CLOSED: 2,
  ABORT_INTEGRITY: 3,
  ABORT_INPUT: 4,
  ABORT_INTERRUPTED: 5,
  ABORT_LIMIT: 6,
  ABORT_PRODUCER_FAILED: 7,
});
export type AbortCode = Infer<typeof AbortCode>;

// /* Ends the session: the sender exits non-zero after sending it. */
// struct abort_notice {
//     abort_code code;
//     string text<MAX_TEXT_BYTES>;
// };
export const AbortNotice = struct("AbortNotice", {
  code: AbortCode,
  text: string(MAX_TEXT_BYTES),
});
export type AbortNotice = Infer<typeof AbortNotice>;

// enum frame_kind {
//     FRAME_FOOT = 1,                         /* tx -> rx */
//     FRAME_END = 2,                          /* tx -> rx */
//     FRAME_ACK = 3,                          /* rx -> tx */
//     FRAME_CREDIT = 4,                       /* rx -> tx */
//     FRAME_RETRANSMIT = 5,                   /* rx -> tx */
//     FRAME_CONFIRM = 6,                      /* rx -> tx */
//     FRAME_PING = 7,                         /* either way */
//     FRAME_PONG = 8,                         /* either way */
//     FRAME_ABORT = 9,                        /* either way */
//     FRAME_VERDICT = 10                      /* rx -> tx, with CAP_VERDICT only */
// };
export const FrameKind = enumType("FrameKind", {
  FRAME_FOOT: 1,
  FRAME_END: 2,
  FRAME_ACK: 3,
  FRAME_CREDIT: 4,
  FRAME_RETRANSMIT: 5,
  FRAME_CONFIRM: 6,
  FRAME_PING: 7,
  FRAME_PONG: 8,
  FRAME_ABORT: 9,
  FRAME_VERDICT: 10,
});
export type FrameKind = Infer<typeof FrameKind>;

// /* Every record after the handshake. */
// union frame switch (frame_kind kind) {
// case FRAME_FOOT:
//     foot foot;
// case FRAME_END:
//     end_of_stream end;
// case FRAME_ACK:
//     acknowledgement ack;
// case FRAME_CREDIT:
//     window_credit credit;
// case FRAME_RETRANSMIT:
//     retransmit_request retransmit;
// case FRAME_CONFIRM:
//     stream_confirm confirm;
// case FRAME_PING:
//     heartbeat ping;
// case FRAME_PONG:
//     heartbeat pong;
// case FRAME_ABORT:
//     abort_notice abort;
// case FRAME_VERDICT:
//     consumer_verdict verdict;
// };
export const Frame = union("Frame", {
  switchOn: FrameKind,
  switchKey: "kind",
  cases: [
    unionCase("FRAME_FOOT", FrameKind.FRAME_FOOT, field("foot", Foot)),
    unionCase("FRAME_END", FrameKind.FRAME_END, field("end", EndOfStream)),
    unionCase("FRAME_ACK", FrameKind.FRAME_ACK, field("ack", Acknowledgement)),
    unionCase("FRAME_CREDIT", FrameKind.FRAME_CREDIT, field("credit", WindowCredit)),
    unionCase("FRAME_RETRANSMIT", FrameKind.FRAME_RETRANSMIT, field("retransmit", RetransmitRequest)),
    unionCase("FRAME_CONFIRM", FrameKind.FRAME_CONFIRM, field("confirm", StreamConfirm)),
    unionCase("FRAME_PING", FrameKind.FRAME_PING, field("ping", Heartbeat)),
    unionCase("FRAME_PONG", FrameKind.FRAME_PONG, field("pong", Heartbeat)),
    unionCase("FRAME_ABORT", FrameKind.FRAME_ABORT, field("abort", AbortNotice)),
    unionCase("FRAME_VERDICT", FrameKind.FRAME_VERDICT, field("verdict", ConsumerVerdict)),
  ],
});
export type Frame = Infer<typeof Frame>;
