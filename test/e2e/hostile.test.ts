/**
 * End to end, hostile input on the receiver's port during a real transfer.
 *
 * Proves: while a keyed, encrypted transfer runs, random garbage, HTTP
 * requests, oversized record lengths, a hello of another protocol version and
 * more silent held-open connections than the pending cap (a slowloris) hit
 * the rx port; the transfer completes byte-identical with both ends exiting 0,
 * a hello of another version is refused with a reason, and the rest is closed.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import type { Socket } from "bun";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { MAX_PENDING_CONNECTIONS } from "../../src/constants.ts";
import { expectDelivered } from "../support/e2e.ts";
import { errorLines, killLeftovers, makeInput, makeTempDir, startReceiver, startTransmitter, within } from "../support/spawn.ts";
import { MIB } from "../support/sizes.ts";

const HOST = "127.0.0.1";

let temp: ReturnType<typeof makeTempDir>;
beforeAll(() => {
  temp = makeTempDir("e2e-hostile");
});
afterAll(() => temp.remove());
afterEach(killLeftovers);

interface Attack {
  what: string;
  sent: Uint8Array | undefined;
  answered: number;
  closed: boolean;
  socket?: Socket<unknown>;
}

async function attack(port: number, what: string, sent: Uint8Array | undefined): Promise<Attack> {
  const state: Attack = { what, sent, answered: 0, closed: false };
  // A connection the receiver drops at once (the pending cap) may fail to open at all: that is being dropped too.
  state.socket = await Bun.connect<unknown>({
    hostname: HOST,
    port,
    socket: {
      data(_, bytes) {
        state.answered += bytes.length;
      },
      close() {
        state.closed = true;
      },
      error() {
        state.closed = true;
      },
    },
  }).catch(() => {
    state.closed = true;
    return undefined;
  });
  if (sent !== undefined) state.socket?.write(sent);
  return state;
}

test(
  "garbage, HTTP, oversized lengths, another version and a slowloris on the rx port change nothing about the transfer",
  async () => {
    const key = join(temp.path, "k");
    writeFileSync(key, crypto.getRandomValues(new Uint8Array(32)));
    const input = await makeInput(temp.path, 48 * MIB, "hostile");
    const receiver = await startReceiver(["rx", "0", "bind", HOST, "key", key, "encrypt"]);
    // ratelimit keeps the transfer running (about 1.5 s) while the attacks land.
    const transmitter = startTransmitter(["tx", HOST, `${receiver.port}`, "key", key, "encrypt", "threads", "4", "ratelimit", "32M"], { file: input.path });
    await receiver.stdout.untilBytes(1);

    const otherVersion = new Uint8Array([0x80, 0, 0, 8, 0x56, 0x4d, 0x50, 0x31, 0, 0, 0, 9]);
    // First the slowloris, then the rest: the oldest silent connections are the first to be pushed out.
    const silent = await Promise.all(Array.from({ length: MAX_PENDING_CONNECTIONS + 8 }, (_, i) => attack(receiver.port, `silent ${i}`, undefined)));
    const attacks = await Promise.all([
      attack(receiver.port, "garbage", crypto.getRandomValues(new Uint8Array(4096))),
      attack(receiver.port, "HTTP", new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n")),
      attack(receiver.port, "oversized length", new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3])),
      attack(receiver.port, "oversized fragment", new Uint8Array([0x7f, 0xff, 0xff, 0xf0])),
      attack(receiver.port, "version 9", otherVersion),
    ]);
    attacks.push(...silent);
    const [tx, rx] = await within(30_000, "transfer under attack", Promise.all([transmitter.done(), receiver.done()]));
    for (const a of attacks) a.socket?.terminate();

    expectDelivered({ rx, tx }, input);
    expect(errorLines(tx.stderr)).toEqual([]);
    expect(errorLines(rx.stderr)).toEqual([]);
    // A hello of another version was refused with a reason; what announced an
    // impossible record (HTTP's "GET " reads as a 1.2 GB one) was closed at once.
    const byName = new Map(attacks.map((a) => [a.what, a]));
    expect(byName.get("version 9")!.answered).toBeGreaterThan(0);
    expect(byName.get("HTTP")!.closed).toBe(true);
    expect(rx.stderr).toMatch(/version 9 is not supported/);
    expect(byName.get("oversized length")!.closed).toBe(true);
    // The slowloris pushed silent connections out (the pending cap).
    expect(rx.stderr).toMatch(/connections are in their handshake; dropping one \(silent\)/);
  },
  45_000,
);
