/**
 * Fuzzing the frame decoder and the receiver's handshake with hostile bytes.
 *
 * Proves: 100,000 random and mutated records (of every kind, version 2's
 * labelled hello and the verdict included: bit flips, truncations,
 * extensions, forged length words, garbage) cut at random boundaries never
 * crash the record decoder or the message decoders (every failure is a
 * VmError or a refusal), never make the decoder hold more than its limit, and
 * finish in seconds; 5,000 mutated keyed handshakes against a real
 * RxConnection (over a fake channel) end in a refusal or a close, never an
 * exception, and admit nobody who lacks the key. Deterministic (seeded).
 */
import { expect, test } from "bun:test";
import { VmError } from "../../src/errors.ts";
import { log } from "../../src/log.ts";
import type { Channel, ChannelHandlers } from "../../src/net/channel.ts";
import { Chaos } from "../../src/net/chaos.ts";
import {
  decodeFrame,
  decodeHello,
  decodeHelloReply,
  decodeKeyProof,
  encodeControlFrame,
  encodeFootRecord,
  encodeHello,
  encodeHelloReply,
  encodeKeyProof,
  verdictFrame,
} from "../../src/protocol/messages.ts";
import { keyNonce, transmitterProof } from "../../src/protocol/keys.ts";
import { RecordDecoder } from "../../src/protocol/records.ts";
import {
  CAP_KEY,
  AbortCode,
  ChecksumKind,
  FrameKind,
  MAX_LABEL_BYTES,
  MAX_SIGNAL_NAME_BYTES,
  MAX_STDERR_TAIL_BYTES,
  Hello,
  HelloStatus,
  MAX_HELLO_RECORD_BYTES,
  RefuseReason,
  VM_MAGIC,
  VM_PROTOCOL_VERSION,
} from "../../src/protocol/xdr.generated.ts";
import { RxConnection } from "../../src/rx/connection.ts";
import { mulberry32 } from "../support/fault-proxy.ts";
import { VirtualClock } from "../support/virtual-clock.ts";

const FRAMES = 100_000;
const HANDSHAKES = 5_000;
/** The largest record the fuzzed decoder accepts: a small foot size's records. */
const LIMIT = 8192;

const random = mulberry32(0x5eed);
const below = (n: number): number => Math.floor(random() * n);
const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => below(256));

const hello: Hello = {
  magic: VM_MAGIC,
  protocolVersion: VM_PROTOCOL_VERSION,
  sessionId: 0x0123456789abcdefn,
  checkphrase: new TextEncoder().encode("sesame"),
  footBytes: 4096,
  capabilities: CAP_KEY,
  connectionId: 3,
};

/** Valid records (with their record marks) to mutate. */
const labelled = { ...hello, label: "host-1:tank.home" };

const SEEDS: Uint8Array[] = [
  encodeHello(hello),
  encodeHello(labelled),
  encodeHelloReply({ status: HelloStatus.HELLO_CHALLENGE, challenged: { receiverNonce: keyNonce() } }),
  encodeHelloReply({
    status: HelloStatus.HELLO_REFUSE,
    refused: { reason: RefuseReason.REFUSE_KEY, receiverVersion: 1, text: new TextEncoder().encode("wrong key") },
  }),
  encodeKeyProof({ transmitterNonce: keyNonce(), proof: bytes(32) }),
  encodeControlFrame({ kind: FrameKind.FRAME_ACK, ack: { deliveredBelow: 5n, received: [7n, 9n] } }),
  encodeControlFrame({ kind: FrameKind.FRAME_RETRANSMIT, retransmit: { reason: 1, footIds: [1n] } }),
  encodeControlFrame({ kind: FrameKind.FRAME_ABORT, abort: { code: 1, text: new TextEncoder().encode("stop") } }),
  encodeControlFrame({ kind: FrameKind.FRAME_ABORT, abort: { code: AbortCode.ABORT_PRODUCER_FAILED, text: new TextEncoder().encode("'tar c' exited 2") } }),
  encodeControlFrame(verdictFrame("zfs recv", { exitCode: 1 }, new TextEncoder().encode("cannot receive\n"))),
  encodeControlFrame(verdictFrame("tar x", { signal: "SIGPIPE" }, bytes(300))),
  Buffer.concat(
    encodeFootRecord(
      { footId: 7n, streamOffset: 0x7000n, length: 5, sum: { kind: ChecksumKind.CHECKSUM_XXH3_64, xxh3: 1n }, flags: 0 },
      new TextEncoder().encode("hello"),
    ),
  ),
  new TextEncoder().encode("GET / HTTP/1.1\r\nHost: example\r\n\r\n"),
];

/** One hostile input: a mutation of a seed, or garbage. */
function hostile(): Uint8Array {
  const seed = SEEDS[below(SEEDS.length)]!;
  const copy = new Uint8Array(seed);
  switch (below(6)) {
    case 0: // garbage of any length
      return bytes(below(600));
    case 1: // a few bit flips
      for (let i = 1 + below(4); i > 0; i--) copy[below(copy.length)]! ^= 1 << below(8);
      return copy;
    case 2: // truncated
      return copy.subarray(0, below(copy.length));
    case 3: // extended with junk
      return Buffer.concat([copy, bytes(1 + below(64))]);
    case 4: {
      // a forged word (record mark or length) anywhere: huge, zero, or near a limit
      const at = below(Math.max(1, copy.length - 3)) & ~3;
      const word = [0xffffffff, 0x7fffffff, 0x80000000, 0, MAX_HELLO_RECORD_BYTES + 1, LIMIT, 0x80000000 | (LIMIT + 1)][below(7)]!;
      new DataView(copy.buffer).setUint32(Math.min(at, copy.length - 4), word >>> 0);
      return copy;
    }
    default: // a valid record mark around random contents
    {
      const body = bytes(below(64));
      return Buffer.concat([new Uint8Array([0x80, 0, 0, body.length]), body]);
    }
  }
}

/** Every decoder a record may meet; each must answer or throw a VmError. */
function decodeEverywhere(record: Uint8Array): void {
  for (const decode of [decodeFrame, decodeHelloReply, decodeKeyProof]) {
    try {
      const value = decode(record);
      if ("kind" in value && value.kind === FrameKind.FRAME_VERDICT) {
        // Whatever decodes stays inside its limits.
        expect(value.verdict.stderrTail.length).toBeLessThanOrEqual(MAX_STDERR_TAIL_BYTES);
        if (value.verdict.consumer.state === 2) expect(value.verdict.consumer.signalName.length).toBeLessThanOrEqual(MAX_SIGNAL_NAME_BYTES);
      }
    } catch (error) {
      if (!(error instanceof VmError)) throw error;
    }
  }
  const hello = decodeHello(record); // never throws: a refusal reason instead
  expect(typeof hello.ok).toBe("boolean");
  if (hello.ok && hello.hello.label !== undefined) expect(hello.hello.label).toMatch(new RegExp(`^[A-Za-z0-9._:-]{1,${MAX_LABEL_BYTES}}$`));
}

test(`${FRAMES.toLocaleString("en")} random and mutated frames: no crash, no unbounded allocation`, () => {
  const started = performance.now();
  let records = 0;
  let rejected = 0;
  let decoder = new RecordDecoder(LIMIT);
  for (let i = 0; i < FRAMES; i++) {
    const input = hostile();
    // Random chunk boundaries, as TCP delivers them.
    let at = 0;
    while (at < input.length) {
      const end = Math.min(input.length, at + 1 + below(input.length));
      let out: Uint8Array[];
      try {
        out = decoder.push(input.subarray(at, end));
      } catch (error) {
        expect(error).toBeInstanceOf(VmError);
        rejected++;
        decoder = new RecordDecoder(LIMIT); // a real connection is dropped here
        break;
      }
      expect(decoder.pendingBytes).toBeLessThanOrEqual(LIMIT + 4);
      for (const record of out) {
        expect(record.length).toBeLessThanOrEqual(LIMIT);
        records++;
        decodeEverywhere(record);
      }
      at = end;
    }
    // Each input also goes straight to the decoders, as a record.
    decodeEverywhere(input);
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`fuzz: ${FRAMES} inputs, ${records} records decoded, ${rejected} streams refused by the record decoder, ${seconds.toFixed(1)} s`);
  expect(records).toBeGreaterThan(FRAMES / 10);
  expect(rejected).toBeGreaterThan(FRAMES / 100);
}, 60_000);

/** A channel that records what the connection writes and whether it closed. */
class FakeChannel implements Channel {
  readonly remoteAddress = "fuzz:1";
  written: Uint8Array[] = [];
  closed = false;
  write(bytes: Uint8Array): number {
    this.written.push(new Uint8Array(bytes));
    return bytes.length;
  }
  shutdown(): void {}
  destroy(): void {
    this.closed = true;
  }
  pause(): void {}
  resume(): void {}
}

test(`${HANDSHAKES.toLocaleString("en")} mutated keyed handshakes: refused or closed, never admitted without the key`, () => {
  const key = bytes(32);
  let admitted = 0;
  let challenged = 0;
  const level = log.level;
  log.level = -1; // 5,000 refusals would each be a warning
  // The hello deadline and refusal linger are not the subject here: their clock never moves.
  const clock = new VirtualClock();
  try {
    for (let i = 0; i < HANDSHAKES; i++) {
      const channel = new FakeChannel();
      let handlers!: ChannelHandlers;
      const connection = new RxConnection(i, channel, {
        clock,
        chaos: new Chaos(0),
        key,
        warn: () => {},
        admit: () => {
          admitted++;
          return { refuse: { status: HelloStatus.HELLO_REFUSE, refused: { reason: RefuseReason.REFUSE_SESSION_OVER, receiverVersion: 1, text: new Uint8Array() } } };
        },
        gone: () => {},
      });
      handlers = connection.channelHandlers;
      const sent = below(2) === 0 ? hello : labelled;
      const helloRecord = below(4) === 0 ? hostile() : encodeHello(sent);
      handlers.onData(helloRecord);
      const reply = channel.written.at(-1);
      if (reply !== undefined && reply.length > 8 && new DataView(reply.buffer, reply.byteOffset).getUint32(4) === HelloStatus.HELLO_CHALLENGE) {
        challenged++;
        // A proof: mutated, random, or computed with a wrong key.
        const receiverNonce = reply.subarray(8, 40);
        const transmitterNonce = keyNonce();
        const wrong = transmitterProof(bytes(32), encodeHello(sent).subarray(4), receiverNonce, transmitterNonce);
        const proof = below(2) === 0 ? encodeKeyProof({ transmitterNonce, proof: wrong }) : hostile();
        handlers.onData(proof);
      }
      handlers.onClose();
    }
  } finally {
    log.level = level;
  }
  console.log(`handshake fuzz: ${HANDSHAKES} connections, ${challenged} challenged, ${admitted} admitted`);
  expect(challenged).toBeGreaterThan(HANDSHAKES / 2);
  expect(admitted).toBe(0);
}, 60_000);
