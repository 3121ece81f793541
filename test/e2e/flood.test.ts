/**
 * End to end, a connection flood on the receiver's port (test/support/flooder.ts
 * in its own process: thousands of connections per second over loopback,
 * 1000 of them held open and silent, the rest reset as soon as they open).
 *
 * Proves: the receiver's stderr stays a handful of lines (the first warning
 * of each kind, then one summary line per kind and interval, naming the
 * count), and a real transmitter started during the flood gets in at once and
 * completes with identical output within a bound measured here.
 *
 * And, by hand, the eviction order: a connection that has sent part of its
 * hello outlives a burst of silent connections beyond the pending cap, and is
 * admitted when the rest of its hello comes.
 */
import { afterEach, afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { MAX_PENDING_CONNECTIONS } from "../../src/constants.ts";
import { DEFAULT_FOOT_BYTES } from "../../src/options.ts";
import { decodeHelloReply, encodeHello } from "../../src/protocol/messages.ts";
import { CAP_NONE, HelloStatus, VM_MAGIC, VM_PROTOCOL_VERSION } from "../../src/protocol/xdr.generated.ts";
import { expectDelivered } from "../support/e2e.ts";
import { killLeftovers, makeInput, makeTempDir, ROOT, startReceiver, startTransmitter, within, type Input } from "../support/spawn.ts";
import { MIB } from "../support/sizes.ts";

const HOST = "127.0.0.1";
const FLOOD_SECONDS = 6;
const FLOOD_HELD = 1000;
/** Connections the flooder has opened when the transmitter starts. */
const FLOOD_BEFORE_TX = 5_000;
/**
 * The transmitter's whole run during the flood must end within this: 32 MiB
 * at `ratelimit 32M`, so that the flood goes on through the whole transfer
 * (threads auto adds connections, which must get in too): 1 s at best.
 */
const TX_UNDER_FLOOD_MS = 4_000;
/** rx's stderr during the whole test, at most: listening, one line and one summary per kind, a summary line. */
const MAX_RX_STDERR_LINES = 10;

let temp: ReturnType<typeof makeTempDir>;
let input: Input;
const flooders = new Set<Bun.Subprocess>();
beforeAll(async () => {
  temp = makeTempDir("e2e-flood");
  input = await makeInput(temp.path, 32 * MIB, "flood");
});
afterAll(() => temp.remove());
afterEach(async () => {
  for (const flooder of flooders) flooder.kill("SIGKILL");
  await Promise.all([...flooders].map((flooder) => flooder.exited));
  flooders.clear();
  await killLeftovers();
});

/** Spawns the flooder; `opened(n)` resolves once it has opened n connections, `done` with its figures. */
function startFlooder(port: number): { opened(count: number): Promise<void>; done: Promise<{ opened: number; perSecond: number; seconds: number }> } {
  const proc = Bun.spawn([process.execPath, join(ROOT, "test/support/flooder.ts"), HOST, `${port}`, `${FLOOD_SECONDS}`, `${FLOOD_HELD}`], {
    stdout: "pipe",
    stderr: "inherit",
  });
  flooders.add(proc);
  let progress = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  const done = (async () => {
    let text = "";
    const decoder = new TextDecoder();
    for await (const chunk of proc.stdout) {
      text += decoder.decode(chunk, { stream: true });
      for (const match of text.matchAll(/^opened (\d+)$/gm)) progress = Math.max(progress, Number(match[1]));
      for (const waiter of waiters.filter((w) => w.count <= progress)) waiter.resolve();
    }
    const exitCode = await proc.exited;
    const last = text.trim().split("\n").at(-1) ?? "";
    if (exitCode !== 0) throw new Error(`flooder exited ${exitCode}: ${text}`);
    return JSON.parse(last);
  })();
  const opened = (count: number) => new Promise<void>((resolve) => (count <= progress ? resolve() : waiters.push({ count, resolve })));
  return { opened, done };
}

test(
  `a flood of connections (${FLOOD_HELD} held silent): rx's stderr stays a handful of lines and a transmitter started during it completes, identical, within ${TX_UNDER_FLOOD_MS / 1000} s`,
  async () => {
    const receiver = await startReceiver(["rx", "0", "bind", HOST]);
    const flooder = startFlooder(receiver.port);
    // The transmitter arrives into a flood well under way.
    await within(10_000, `the flooder's first ${FLOOD_BEFORE_TX} connections`, flooder.opened(FLOOD_BEFORE_TX));
    const transmitter = startTransmitter(["tx", HOST, `${receiver.port}`, "ratelimit", "32M"], { file: input.path });
    const [tx, rx] = await within(20_000, "the transfer under the flood", Promise.all([transmitter.done(), receiver.done()]));
    const flood = await within(15_000, "the flooder", flooder.done);

    const lines = rx.stderr.split("\n").filter(Boolean);
    console.log(
      `flood: ${flood.opened} connections in ${flood.seconds} s (${flood.perSecond}/s); tx completed in ${(tx.elapsedMs / 1000).toFixed(2)} s; rx stderr ${lines.length} lines, ${rx.stderr.length} bytes:\n  ${lines.join("\n  ")}`,
    );
    expectDelivered({ rx, tx }, input);
    expect(tx.elapsedMs).toBeLessThan(TX_UNDER_FLOOD_MS);
    expect(lines.length, rx.stderr).toBeLessThanOrEqual(MAX_RX_STDERR_LINES);
    // The drops were counted, not hidden: a summary line names how many.
    const summed = /dropped ([\d,]+) more pending handshakes in the last \d+ s/.exec(rx.stderr);
    expect(summed, rx.stderr).not.toBeNull();
    expect(Number(summed![1]!.replaceAll(",", ""))).toBeGreaterThan(100);
    // It was a flood: far more connections than the handshake cap, hundreds a
    // second at least (3,000-18,000/s on a quiet machine; 960/s once with both
    // cores busy elsewhere, when the flood still pushed out 5,846 handshakes).
    expect(flood.perSecond).toBeGreaterThan(500);
  },
  30_000,
);

/** A client connection that keeps what it hears and whether it was closed. */
async function client(port: number) {
  const state = { heard: new Uint8Array(0), closed: false };
  const socket = await Bun.connect({
    hostname: HOST,
    port,
    socket: {
      data(_, bytes) {
        state.heard = Buffer.concat([state.heard, bytes]);
      },
      close() {
        state.closed = true;
      },
    },
  });
  return { socket, state };
}

/**
 * Resolves once the receiver has refused a garbage hello on a new connection:
 * by then its event loop has taken in everything sent before this call.
 */
async function barrier(port: number): Promise<void> {
  const probe = await client(port);
  probe.socket.write(new Uint8Array([0x80, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]));
  await within(5_000, "the receiver's refusal of a probe", (async () => {
    while (probe.state.heard.length === 0 && !probe.state.closed) await Bun.sleep(1);
  })());
  probe.socket.terminate();
}

test(
  `a connection with part of its hello outlives ${MAX_PENDING_CONNECTIONS + 16} silent ones that arrive after it, and is admitted when its hello completes`,
  async () => {
    const receiver = await startReceiver(["rx", "0", "bind", HOST]);
    const hello = encodeHello({
      magic: VM_MAGIC,
      protocolVersion: VM_PROTOCOL_VERSION,
      sessionId: 0x7e57n,
      checkphrase: new Uint8Array(),
      footBytes: DEFAULT_FOOT_BYTES,
      capabilities: CAP_NONE,
      connectionId: 0,
    });
    const slow = await client(receiver.port);
    slow.socket.write(hello.subarray(0, 10));
    await barrier(receiver.port);
    // One the receiver pushes out while its connect is still settling fails with ECONNRESET: that is a drop too.
    const silent = await Promise.all(
      Array.from({ length: MAX_PENDING_CONNECTIONS + 16 }, () =>
        client(receiver.port).catch((error: { code?: string }) => {
          if (error.code !== "ECONNRESET") throw error;
          return { socket: undefined, state: { heard: new Uint8Array(0), closed: true } };
        }),
      ),
    );
    await barrier(receiver.port);
    slow.socket.write(hello.subarray(10));
    await within(5_000, "the answer to the completed hello", (async () => {
      while (slow.state.heard.length === 0 && !slow.state.closed) await Bun.sleep(1);
    })());
    const slowClosed = slow.state.closed;
    const silentDropped = silent.filter((c) => c.state.closed).length;
    for (const c of [slow, ...silent]) c.socket?.terminate();
    receiver.proc.kill("SIGTERM");
    const rx = await receiver.done();

    expect(slowClosed).toBe(false);
    expect(decodeHelloReply(slow.state.heard.subarray(4)).status).toBe(HelloStatus.HELLO_ACCEPT);
    // The silent ones were dropped instead.
    expect(silentDropped).toBeGreaterThanOrEqual(16);
    expect(rx.stderr).toMatch(/dropping one \(silent\)/);
  },
  20_000,
);
