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
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import type { Socket } from "bun";
import { readFileSync } from "node:fs";
import { footChecksum } from "../../src/protocol/digest.ts";
import { decodeHelloReply, encodeFootRecord, encodeHello } from "../../src/protocol/messages.ts";
import { RecordDecoder } from "../../src/protocol/records.ts";
import {
  CAP_NONE,
  ChecksumKind,
  HelloStatus,
  MAX_FOOT_BYTES,
  MAX_HELLO_RECORD_BYTES,
  VM_MAGIC,
  VM_PROTOCOL_VERSION,
} from "../../src/protocol/xdr.generated.ts";
import { MAX_THREADS } from "../../src/options.ts";
import { killLeftovers, startReceiver, within } from "../support/spawn.ts";
import { MIB } from "../support/sizes.ts";

const HOST = "127.0.0.1";
/** What a receiver at default settings may peak at, whatever its peer does. */
const RX_PEAK_LIMIT_BYTES = 256 * MIB;
/** How far short of its end each partial record stops. */
const PARTIAL_SHORT_BYTES = 4096;

afterEach(killLeftovers);

/** One adversary connection: writes whatever the kernel takes, in order, and notes replies and the close. */
class Attacker {
  private socket!: Socket<unknown>;
  private readonly queue: Uint8Array[] = [];
  private readonly decoder = new RecordDecoder(MAX_HELLO_RECORD_BYTES);
  private answered = false;
  private replied!: (record: Uint8Array) => void;
  readonly reply = new Promise<Uint8Array>((resolve) => (this.replied = resolve));
  private gone!: () => void;
  readonly closed = new Promise<void>((resolve) => (this.gone = resolve));

  static async open(port: number): Promise<Attacker> {
    const attacker = new Attacker();
    attacker.socket = await Bun.connect<unknown>({
      hostname: HOST,
      port,
      socket: {
        data: (_, bytes) => {
          // Only the hello reply, the first record, matters; acks and pings after it are ignored.
          if (attacker.answered) return;
          const [record] = attacker.decoder.push(bytes);
          if (record === undefined) return;
          attacker.answered = true;
          attacker.replied(record);
        },
        drain: () => attacker.flush(),
        close: () => attacker.gone(),
        error: () => attacker.gone(),
      },
    });
    return attacker;
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

test.skipIf(process.platform !== "linux")(
  "64 connections holding partial 16 MiB feet behind a full window keep the receiver under 256 MiB",
  async () => {
    // timeout 1: connections that sit silent on a partial record are dropped after a second, so the run is short.
    const receiver = await startReceiver(["rx", "0", "bind", HOST, "timeout", "1"]);
    const sessionId = 0x5eedn;
    const hello = (connectionId: number) =>
      encodeHello({
        magic: VM_MAGIC,
        protocolVersion: VM_PROTOCOL_VERSION,
        sessionId,
        checkphrase: new Uint8Array(),
        footBytes: MAX_FOOT_BYTES,
        capabilities: CAP_NONE,
        connectionId,
      });
    const attackers = await Promise.all(Array.from({ length: MAX_THREADS }, () => Attacker.open(receiver.port)));
    // The first hello creates the session; the others join it.
    attackers[0]!.send([hello(0)]);
    const first = decodeHelloReply(await within(10_000, "the first hello's reply", attackers[0]!.reply));
    if (first.status !== HelloStatus.HELLO_ACCEPT) throw new Error(`the receiver refused the session: ${JSON.stringify(first)}`);
    attackers.slice(1).forEach((attacker, i) => attacker.send([hello(i + 1)]));
    const replies = await within(10_000, "every hello's reply", Promise.all(attackers.map((a) => a.reply)));
    expect(replies.map((r) => decodeHelloReply(r).status)).toEqual(attackers.map(() => HelloStatus.HELLO_ACCEPT));

    const foot = (id: bigint, bytes: number) =>
      encodeFootRecord(
        {
          footId: id,
          streamOffset: id * BigInt(MAX_FOOT_BYTES),
          length: MAX_FOOT_BYTES,
          sum: { kind: ChecksumKind.CHECKSUM_XXH3_64, xxh3: footChecksum(id, id * BigInt(MAX_FOOT_BYTES), payload) },
          flags: 0,
        },
        payload,
      ).flatMap((piece) => (piece === payload ? [payload.subarray(0, bytes)] : [piece]));
    // Every foot the window allows except the first, whole: they wait in the reorder buffer for foot 0.
    const windowEnd = Number(first.accepted.windowEnd);
    for (let id = 1; id < windowEnd; id++) attackers[id % attackers.length]!.send(foot(BigInt(id), MAX_FOOT_BYTES));
    // Then on every connection a record of a whole foot that stops just short of its end.
    for (const attacker of attackers) attacker.send(foot(0n, MAX_FOOT_BYTES - PARTIAL_SHORT_BYTES).slice(0, 2));

    await within(120_000, "the receiver dropping every silent connection", Promise.all(attackers.map((a) => a.closed)));
    const peak = peakRssBytes(receiver.proc.pid);
    expect(receiver.proc.exitCode).toBeNull(); // still serving
    receiver.proc.kill();
    await receiver.done();
    console.error(`receiver peak RSS under the adversary: ${(peak / MIB).toFixed(0)} MiB`);
    expect(peak).toBeLessThanOrEqual(RX_PEAK_LIMIT_BYTES);
  },
  180_000,
);
