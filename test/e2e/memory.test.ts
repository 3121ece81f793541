/**
 * End to end, a peer that tries to make the receiver hold memory.
 *
 * Proves: one unauthenticated peer that opens a session with the largest
 * foot size the protocol allows (16 MiB), fills the receiver's window with
 * feet that wait for a foot that never comes, and then starts a 16 MiB record
 * on each of 64 connections and stops just short of its end, cannot take the
 * real receiver past 256 MiB of peak RSS (VmHWM); the receiver reads what its
 * budget allows, leaves the rest in the kernel, drops the connections that sit
 * on partial records once they stay silent for `timeout`, and is still running
 * afterwards.
 *
 * The same peer may first make the window grow: it delivers feet in order on
 * all 64 connections, answering heartbeats, until the credit it is granted
 * (FRAME_CREDIT, one per foot written) shows the window at the most `buffer`
 * allows, and only then stalls as above. At the default `buffer` that too
 * stays under 256 MiB; with a larger `buffer` given explicitly the peak
 * follows it: at most its record budget plus the room over the budget that
 * the default leaves under 256 MiB.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import type { Socket } from "bun";
import { readFileSync } from "node:fs";
import { footChecksum } from "../../src/protocol/digest.ts";
import { decodeFrame, decodeHelloReply, encodeControlFrame, encodeFootRecord, encodeHello } from "../../src/protocol/messages.ts";
import { RecordDecoder } from "../../src/protocol/records.ts";
import {
  CAP_NONE,
  ChecksumKind,
  FrameKind,
  HelloStatus,
  MAX_FOOT_BYTES,
  MAX_HELLO_RECORD_BYTES,
  VM_MAGIC,
  VM_PROTOCOL_VERSION,
} from "../../src/protocol/xdr.generated.ts";
import { DEFAULT_BUFFER_BYTES, MAX_THREADS } from "../../src/options.ts";
import { budgetRecords, maxWindowFeet } from "../../src/rx/record-budget.ts";
import { killLeftovers, startReceiver, within, type Receiver } from "../support/spawn.ts";
import { MIB } from "../support/sizes.ts";

const HOST = "127.0.0.1";
/** What a receiver at default settings may peak at, whatever its peer does. */
const RX_PEAK_LIMIT_BYTES = 256 * MIB;
/** How far short of its end each partial record stops. */
const PARTIAL_SHORT_BYTES = 4096;
/** How long the growing peer delivers feet before it stalls: past the receiver's one-second sample. */
const GROW_MS = 2_000;
/**
 * Connections the receiver drops before a grown run ends: the peak comes
 * once the budget is full, before the first drop; a few rounds of records
 * re-assembled after drops show it does not climb.
 */
const DROPS_AFTER_GROWTH = 4;

afterEach(killLeftovers);

/** One adversary connection: writes whatever the kernel takes, in order, and reads the receiver's frames. */
class Attacker {
  private socket!: Socket<unknown>;
  private readonly queue: Uint8Array[] = [];
  private readonly decoder = new RecordDecoder(MAX_HELLO_RECORD_BYTES);
  private answered = false;
  private replied!: (record: Uint8Array) => void;
  readonly reply = new Promise<Uint8Array>((resolve) => (this.replied = resolve));
  private gone!: () => void;
  readonly closed = new Promise<void>((resolve) => (this.gone = resolve));
  /** Answer the receiver's pings (a growing peer looks alive); off once it stalls. */
  answerPings = true;
  /** Called with each credit's window end. */
  onCredit: (windowEnd: bigint) => void = () => {};

  static async open(port: number): Promise<Attacker> {
    const attacker = new Attacker();
    attacker.socket = await Bun.connect<unknown>({
      hostname: HOST,
      port,
      socket: {
        data: (_, bytes) => {
          for (const record of attacker.decoder.push(bytes)) attacker.receive(record);
        },
        drain: () => attacker.flush(),
        close: () => attacker.gone(),
        error: () => attacker.gone(),
      },
    });
    return attacker;
  }

  private receive(record: Uint8Array): void {
    if (!this.answered) {
      this.answered = true;
      this.replied(record);
      return;
    }
    const frame = decodeFrame(record);
    if (frame.kind === FrameKind.FRAME_CREDIT) this.onCredit(frame.credit.windowEnd);
    else if (frame.kind === FrameKind.FRAME_PING && this.answerPings) {
      this.send([encodeControlFrame({ kind: FrameKind.FRAME_PONG, pong: frame.ping })]);
    }
  }

  send(pieces: readonly Uint8Array[]): void {
    this.queue.push(...pieces);
    this.flush();
  }

  private flush(): void {
    while (this.queue.length > 0) {
      const piece = this.queue[0]!;
      const taken = this.socket.write(piece);
      if (taken < piece.length) {
        this.queue[0] = piece.subarray(Math.max(0, taken));
        return;
      }
      this.queue.shift();
    }
  }
}

/** VmHWM (the kernel's peak RSS) of a process, in bytes. */
function peakRssBytes(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (match === null) throw new Error(`no VmHWM for ${pid}`);
  return Number(match[1]) * 1024;
}

let payload: Uint8Array;
beforeAll(() => {
  payload = new Uint8Array(MAX_FOOT_BYTES);
  for (let at = 0; at < payload.length; at += 65536) payload.set(crypto.getRandomValues(new Uint8Array(65536)), at);
});
afterAll(() => {
  payload = new Uint8Array(0);
});

/** A whole foot record of the session's size, or its first `bytes` of payload only. */
function foot(id: bigint, footBytes: number, bytes = footBytes): Uint8Array[] {
  const whole = payload.subarray(0, footBytes);
  const offset = id * BigInt(footBytes);
  return encodeFootRecord(
    { footId: id, streamOffset: offset, length: footBytes, sum: { kind: ChecksumKind.CHECKSUM_XXH3_64, xxh3: footChecksum(id, offset, whole) }, flags: 0 },
    whole,
  ).flatMap((piece) => (piece === whole ? [whole.subarray(0, bytes)] : [piece]));
}

interface AttackOutcome {
  peakBytes: number;
  /** The window (feet) when the peer stalled. */
  windowFeet: number;
}

/**
 * Opens a session of `footBytes` feet on 64 connections; with `growToFeet`,
 * first delivers feet in order for GROW_MS and until the credit shows a
 * window of that many feet. Then fills the window behind a missing foot and
 * leaves a partial record of it on every connection, and waits for the
 * receiver to drop `dropCount` of them.
 */
async function attack(receiver: Receiver, footBytes: number, dropCount: number, growToFeet?: number): Promise<AttackOutcome> {
  const sessionId = 0x5eedn;
  const hello = (connectionId: number) =>
    encodeHello({ magic: VM_MAGIC, protocolVersion: VM_PROTOCOL_VERSION, sessionId, checkphrase: new Uint8Array(), footBytes, capabilities: CAP_NONE, connectionId });
  const attackers = await Promise.all(Array.from({ length: MAX_THREADS }, () => Attacker.open(receiver.port)));
  // The first hello creates the session; the others join it.
  attackers[0]!.send([hello(0)]);
  const first = decodeHelloReply(await within(10_000, "the first hello's reply", attackers[0]!.reply));
  if (first.status !== HelloStatus.HELLO_ACCEPT) throw new Error(`the receiver refused the session: ${JSON.stringify(first)}`);
  attackers.slice(1).forEach((attacker, i) => attacker.send([hello(i + 1)]));
  const replies = await within(10_000, "every hello's reply", Promise.all(attackers.map((a) => a.reply)));
  expect(replies.map((r) => decodeHelloReply(r).status)).toEqual(attackers.map(() => HelloStatus.HELLO_ACCEPT));

  let windowEnd = first.accepted.windowEnd;
  let next = 0n; // the next foot to send in order
  let written = 0n; // credits received: one per foot written
  if (growToFeet !== undefined) {
    // Feet in order, as fast as credit allows, round robin over every connection.
    let growing = true;
    let startedMs: number | undefined;
    let grown!: () => void;
    const done = new Promise<void>((resolve) => (grown = resolve));
    const sendAllowed = () => {
      for (; growing && next < windowEnd; next++) attackers[Number(next % BigInt(attackers.length))]!.send(foot(next, footBytes));
    };
    const credited = (end: bigint) => {
      written++;
      if (end > windowEnd) windowEnd = end;
      startedMs ??= performance.now();
      if (growing && performance.now() - startedMs >= GROW_MS && windowEnd - written >= BigInt(growToFeet)) growing = false;
      if (!growing && written === next) grown();
      sendAllowed();
    };
    for (const attacker of attackers) attacker.onCredit = credited;
    sendAllowed();
    await within(30_000, `the window growing to ${growToFeet} feet`, done);
    for (const attacker of attackers) attacker.onCredit = () => {};
  }
  const windowFeet = Number(windowEnd - next);
  for (const attacker of attackers) attacker.answerPings = false;
  // Every foot the window allows except the next, whole: they wait in the reorder buffer for it.
  const missing = next;
  for (let id = missing + 1n; id < windowEnd; id++) attackers[Number(id % BigInt(attackers.length))]!.send(foot(id, footBytes));
  // Then on every connection a record of the missing foot that stops just short of its end.
  for (const attacker of attackers) attacker.send(foot(missing, footBytes, footBytes - PARTIAL_SHORT_BYTES).slice(0, 2));

  let closed = 0;
  const dropped = new Promise<void>((resolve) => {
    for (const attacker of attackers) void attacker.closed.then(() => ++closed >= dropCount && resolve());
  });
  await within(120_000, `the receiver dropping ${dropCount} silent connections`, dropped);
  return { peakBytes: peakRssBytes(receiver.proc.pid), windowFeet };
}

async function run(args: readonly string[], footBytes: number, dropCount: number, growToFeet?: number): Promise<AttackOutcome> {
  // timeout 1: connections that sit silent on a partial record are dropped after a second, so the run is short.
  const receiver = await startReceiver(["rx", "0", "bind", HOST, "timeout", "1", ...args]);
  const outcome = await attack(receiver, footBytes, dropCount, growToFeet);
  expect(receiver.proc.exitCode).toBeNull(); // still serving
  receiver.proc.kill();
  await receiver.done();
  console.error(`receiver ${args.join(" ") || "(defaults)"}, ${footBytes / MIB} MiB feet, window ${outcome.windowFeet} feet: peak RSS ${(outcome.peakBytes / MIB).toFixed(0)} MiB`);
  return outcome;
}

const linux = test.skipIf(process.platform !== "linux");

linux(
  "64 connections holding partial 16 MiB feet behind a full window keep the receiver under 256 MiB",
  async () => {
    const { peakBytes } = await run([], MAX_FOOT_BYTES, MAX_THREADS);
    expect(peakBytes).toBeLessThanOrEqual(RX_PEAK_LIMIT_BYTES);
  },
  180_000,
);

/** Bytes of the receiver's record budget for `bufferBytes` and `footBytes` (src/rx/session.ts). */
function budgetBytes(bufferBytes: number, footBytes: number): number {
  return budgetRecords(maxWindowFeet(footBytes, bufferBytes), footBytes) * footBytes;
}

for (const [label, args, bufferBytes, footBytes] of [
  ["default buffer", [], DEFAULT_BUFFER_BYTES, MAX_FOOT_BYTES],
  ["default buffer", [], DEFAULT_BUFFER_BYTES, 2 * MIB],
  ["buffer 256M", ["buffer", "256M"], 256 * MIB, MAX_FOOT_BYTES],
] as const) {
  linux(
    `a peer that first grows the window to ${label}, ${footBytes / MIB} MiB feet, then stalls: the peak follows the budget`,
    async () => {
      const target = maxWindowFeet(footBytes, bufferBytes);
      const { peakBytes, windowFeet } = await run(args, footBytes, DROPS_AFTER_GROWTH, target);
      expect(windowFeet).toBe(target);
      // At the default, the bound; beyond it, the same room over the budget as the default leaves.
      const beyondBudget = RX_PEAK_LIMIT_BYTES - budgetBytes(DEFAULT_BUFFER_BYTES, footBytes);
      expect(peakBytes).toBeLessThanOrEqual(Math.max(RX_PEAK_LIMIT_BYTES, budgetBytes(bufferBytes, footBytes) + beyondBudget));
    },
    60_000,
  );
}
