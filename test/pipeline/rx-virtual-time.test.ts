// The receiver's timings on a virtual clock (test/support/virtual-clock.ts):
// patience, the silent-connection timeout, the request for a missing foot and
// the takeover rule, each at its real settings (300 s, 5 s) in milliseconds
// of wall time. The receiver is the real code over the in-memory network;
// the transmitter is written by hand, so each test says exactly what it sends.
import { describe, expect, test } from "bun:test";
import type { VmError } from "../../src/errors.ts";
import { decodeFrame, decodeHelloReply, encodeControlFrame, encodeFootRecord, encodeHello } from "../../src/protocol/messages.ts";
import { footChecksum } from "../../src/protocol/digest.ts";
import { RecordDecoder } from "../../src/protocol/records.ts";
import {
  CAP_NONE,
  ChecksumKind,
  FOOT_RECORD_OVERHEAD_BYTES,
  FrameKind,
  HelloStatus,
  RefuseReason,
  RetransmitReason,
  VM_MAGIC,
  VM_PROTOCOL_VERSION,
  type Frame,
  type Hello,
  type HelloReply,
} from "../../src/protocol/xdr.generated.ts";
import { receive, type ReceiveSummary } from "../../src/rx/receiver.ts";
import { memorySink } from "../../src/rx/stdout.ts";
import { VirtualClock } from "../support/virtual-clock.ts";
import { MemoryNetwork } from "./memory-network.ts";

const FOOT = 64 * 1024;
const PATIENCE_S = 300;
const TIMEOUT_S = 5;
/** How often the receiver's watchdog looks (src/rx/receiver.ts): its checks land at most this late. */
const WATCHDOG_MS = 250;
/** In-memory delivery runs on setImmediate: this many settles always see a reply through. */
const REST_SETTLES = 50;

interface Rig {
  clock: VirtualClock;
  network: MemoryNetwork;
  port: number;
  rx: Promise<ReceiveSummary>;
}

async function rig(): Promise<Rig> {
  const clock = new VirtualClock();
  const network = new MemoryNetwork();
  let listening!: (port: number) => void;
  const ready = new Promise<number>((resolve) => (listening = resolve));
  const rx = receive(
    { verbose: 0, checkphrase: "", patienceS: PATIENCE_S, timeoutS: TIMEOUT_S, chaosEvery: 0, port: 0, bind: undefined, windowFeet: 8 },
    { network, sink: memorySink(), clock, onListening: listening },
  );
  rx.catch(() => {}); // observed by the tests that expect it to fail
  return { clock, network, port: await ready, rx };
}

/** Lets in-memory traffic run to rest without moving time; `promise` must have settled by then. */
async function rest<T>(clock: VirtualClock, promise: Promise<T>): Promise<T> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < REST_SETTLES && !done; i++) await clock.settle();
  if (!done) throw new Error(`not settled without moving time (now ${clock.now()} ms)`);
  return promise;
}

function helloFor(sessionId: bigint): Hello {
  return { magic: VM_MAGIC, protocolVersion: VM_PROTOCOL_VERSION, sessionId, checkphrase: new Uint8Array(), footBytes: FOOT, capabilities: CAP_NONE, connectionId: 0 };
}

/**
 * A transmitter's connection written by hand: says hello, records the reply
 * and every frame after it with the virtual time it came, answers nothing.
 */
async function handConnection(r: Rig, hello: Hello) {
  const decoder = new RecordDecoder(FOOT_RECORD_OVERHEAD_BYTES + 4096);
  const frames: { frame: Frame; atMs: number }[] = [];
  let replied!: (reply: HelloReply) => void;
  const reply = new Promise<HelloReply>((resolve) => (replied = resolve));
  let gone!: (atMs: number) => void;
  const closed = new Promise<number>((resolve) => (gone = resolve));
  let heard = false;
  const channel = await r.network.dial("memory", r.port, {
    onData(bytes) {
      for (const record of decoder.push(bytes)) {
        if (heard) frames.push({ frame: decodeFrame(record), atMs: r.clock.now() });
        else replied(decodeHelloReply(record));
        heard = true;
      }
    },
    onDrain() {},
    onClose: () => gone(r.clock.now()),
  });
  channel.write(encodeHello(hello));
  return {
    reply: await rest(r.clock, reply),
    frames,
    closed,
    /** Writes whole records (small enough for the in-memory network to take at once). */
    send: (...pieces: Uint8Array[]) => pieces.forEach((piece) => expect(channel.write(piece)).toBe(piece.length)),
    close: () => channel.destroy(),
  };
}

/** A foot record with its checksum. */
function foot(id: number, payload: Uint8Array): Uint8Array[] {
  const sum = { kind: ChecksumKind.CHECKSUM_XXH3_64, xxh3: footChecksum(BigInt(id), BigInt(id * FOOT), payload) } as const;
  return encodeFootRecord({ footId: BigInt(id), streamOffset: BigInt(id * FOOT), length: payload.length, sum, flags: 0 }, payload);
}

describe("the receiver on virtual time", () => {
  test(`patience: a session left with no connection fails after ${PATIENCE_S} s, not before`, async () => {
    const r = await rig();
    const wallStart = performance.now();
    const connection = await handConnection(r, helloFor(0x1n));
    expect(connection.reply.status).toBe(HelloStatus.HELLO_ACCEPT);
    connection.close();
    const aloneAt = await rest(r.clock, connection.closed);
    let settled = false;
    r.rx.then(
      () => (settled = true),
      () => (settled = true),
    );
    await r.clock.advance(PATIENCE_S * 1000 - WATCHDOG_MS);
    expect(settled).toBe(false);
    const error = (await r.clock.until(r.rx, 2 * WATCHDOG_MS).catch((e) => e)) as VmError;
    expect(error.code).toBe("peerLost");
    expect(error.message).toBe(`the transmitter vanished: no connection for ${PATIENCE_S}s`);
    expect(r.clock.now() - aloneAt).toBeGreaterThanOrEqual(PATIENCE_S * 1000);
    expect(r.clock.now() - aloneAt).toBeLessThanOrEqual(PATIENCE_S * 1000 + WATCHDOG_MS);
    expect(performance.now() - wallStart).toBeLessThan(10_000);
  });

  test(`a joined connection that stays silent is pinged, then declared dead after ${TIMEOUT_S} s`, async () => {
    const r = await rig();
    const connection = await handConnection(r, helloFor(0x2n));
    const joinedAt = r.clock.now();
    const droppedAt = await r.clock.until(connection.closed, 2 * TIMEOUT_S * 1000);
    expect(droppedAt - joinedAt).toBeGreaterThan(TIMEOUT_S * 1000);
    expect(droppedAt - joinedAt).toBeLessThanOrEqual(TIMEOUT_S * 1000 + WATCHDOG_MS);
    // It was pinged a few times per timeout before that.
    const pings = connection.frames.filter(({ frame }) => frame.kind === FrameKind.FRAME_PING);
    expect(pings.length).toBeGreaterThanOrEqual(3);
    expect(pings.every(({ atMs }) => atMs < droppedAt)).toBe(true);
  });

  test(`the foot the output waits on is asked for again after timeout/2 (${TIMEOUT_S / 2} s), on a connection still heard`, async () => {
    const r = await rig();
    const connection = await handConnection(r, helloFor(0x3n));
    const startedAt = r.clock.now();
    connection.send(...foot(1, new Uint8Array(FOOT).fill(1))); // foot 0 never comes
    const missing = () => connection.frames.filter(({ frame }) => frame.kind === FrameKind.FRAME_RETRANSMIT);
    await r.clock.advance(TIMEOUT_S * 500 - WATCHDOG_MS);
    expect(missing()).toEqual([]);
    await r.clock.advance(2 * WATCHDOG_MS);
    const requests = missing();
    expect(requests).toHaveLength(1);
    const { frame, atMs } = requests[0]!;
    expect(frame.kind === FrameKind.FRAME_RETRANSMIT && frame.retransmit).toEqual({ reason: RetransmitReason.RETRANSMIT_MISSING, footIds: [0n] });
    expect(atMs - startedAt).toBeGreaterThanOrEqual(TIMEOUT_S * 500);
    // Foot 1 itself was acknowledged at once.
    expect(connection.frames.some(({ frame }) => frame.kind === FrameKind.FRAME_ACK && frame.ack.received[0] === 1n)).toBe(true);
  });

  test(`takeover: another transmitter is busy until the session has had no connection for ${TIMEOUT_S} s, then takes over`, async () => {
    const r = await rig();
    const first = await handConnection(r, helloFor(0x4n));
    first.close();
    const aloneAt = await rest(r.clock, first.closed);
    await r.clock.advance(TIMEOUT_S * 1000 - 100);
    const early = await handConnection(r, helloFor(0x5n));
    expect(early.reply.status).toBe(HelloStatus.HELLO_REFUSE);
    expect(early.reply.status === HelloStatus.HELLO_REFUSE && early.reply.refused.reason).toBe(RefuseReason.REFUSE_SESSION_BUSY);
    await r.clock.advance(aloneAt + TIMEOUT_S * 1000 - r.clock.now());
    const late = await handConnection(r, helloFor(0x5n));
    expect(late.reply.status).toBe(HelloStatus.HELLO_ACCEPT);
    // The first transmitter, should it come back, hears that its session is over.
    const back = await handConnection(r, helloFor(0x4n));
    expect(back.reply.status === HelloStatus.HELLO_REFUSE && back.reply.refused.reason).toBe(RefuseReason.REFUSE_SESSION_OVER);
  });

  test(`takeover: a session that got a hello and no foot is given up after ${TIMEOUT_S} s even while its connection answers`, async () => {
    const r = await rig();
    const squatter = await handConnection(r, helloFor(0x6n));
    const joinedAt = r.clock.now();
    // It sends a ping every second: never silent for a timeout, so never declared dead.
    for (let nonce = 1n; r.clock.now() < joinedAt + TIMEOUT_S * 1000 - 1000; nonce++) {
      squatter.send(encodeControlFrame({ kind: FrameKind.FRAME_PING, ping: { nonce, sentUs: 0n } }));
      await r.clock.advance(1000);
    }
    await r.clock.advance(joinedAt + TIMEOUT_S * 1000 - 100 - r.clock.now());
    const early = await handConnection(r, helloFor(0x7n));
    expect(early.reply.status === HelloStatus.HELLO_REFUSE && early.reply.refused.reason).toBe(RefuseReason.REFUSE_SESSION_BUSY);
    await r.clock.advance(joinedAt + TIMEOUT_S * 1000 - r.clock.now());
    const late = await handConnection(r, helloFor(0x7n));
    expect(late.reply.status).toBe(HelloStatus.HELLO_ACCEPT);
    expect(await rest(r.clock, squatter.closed)).toBe(r.clock.now());
  });
});
