/**
 * The transmitter on virtual time (test/support/virtual-clock.ts) over the
 * in-memory network: its patience and its outage handling, which take
 * minutes of its clock, run in milliseconds of wall time. The receiver runs
 * on the wall clock here with timeouts far beyond the test's wall time, so
 * everything time-dependent that happens is the transmitter's.
 */
import { describe, expect, test } from "bun:test";
import type { VmError } from "../../src/errors.ts";
import type { Channel, ChannelHandlers, Network } from "../../src/net/channel.ts";
import type { TransmitterOptions } from "../../src/options.ts";
import { receive } from "../../src/rx/receiver.ts";
import { memorySink } from "../../src/rx/stdout.ts";
import type { ByteSource } from "../../src/tx/stdin.ts";
import { transmit } from "../../src/tx/transmitter.ts";
import { memorySource } from "../support/memory-source.ts";
import { VirtualClock } from "../support/virtual-clock.ts";
import { MemoryNetwork } from "./memory-network.ts";
import { FINAL_FLUSH_MS } from "../../src/constants.ts";
import { decodeFrame } from "../../src/protocol/messages.ts";
import { RecordDecoder } from "../../src/protocol/records.ts";
import { FrameKind } from "../../src/protocol/xdr.generated.ts";

const FOOT = 64 * 1024;
const common = { verbose: 0, checkphrase: "", chaosEvery: 0, footBytes: FOOT };

function pattern(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 2654435761) >>> 24;
  return bytes;
}

/** `network`, except that dials fail (ECONNREFUSED) while `refusing()` says so: the receiver out of reach. */
function withOutage(network: Network, refusing: () => boolean): Network {
  return {
    dial(host: string, port: number, handlers: ChannelHandlers): Promise<Channel> {
      if (refusing()) return Promise.reject(new Error(`cannot connect to ${host}:${port}: ECONNREFUSED (outage)`));
      return network.dial(host, port, handlers);
    },
    listen: network.listen.bind(network),
  };
}

/**
 * `network`, with the transmitter's one connection let through until
 * `roomBytes` are taken, then none until `release`: a socket buffer the
 * peer does not empty. `wire` holds what the transport took.
 */
function tightening(network: Network, roomBytes: number) {
  let room = roomBytes;
  let handlers: ChannelHandlers | undefined;
  let filled!: () => void;
  const wire: Uint8Array[] = [];
  const full = new Promise<void>((resolve) => (filled = resolve));
  const tight: Network = {
    async dial(host, port, given) {
      handlers = given;
      const inner = await network.dial(host, port, given);
      return {
        remoteAddress: inner.remoteAddress,
        write(bytes) {
          const taken = inner.write(bytes.subarray(0, Math.min(room, bytes.length)));
          room -= taken;
          wire.push(bytes.slice(0, taken));
          if (room === 0) filled();
          return taken;
        },
        shutdown: () => inner.shutdown(),
        destroy: () => inner.destroy(),
        pause: () => inner.pause(),
        resume: () => inner.resume(),
      };
    },
    listen: network.listen.bind(network),
  };
  const release = () => {
    room = Infinity;
    handlers?.onDrain();
  };
  /** The frames the transport took, after the hello. */
  const frames = () => {
    const decoder = new RecordDecoder(4 * FOOT);
    return wire.flatMap((chunk) => decoder.push(chunk)).slice(1).map(decodeFrame);
  };
  return { network: tight, full, release, frames };
}

/**
 * A receiver (wall clock, `rxPatienceS`) and a transmitter (virtual clock, one
 * connection) sending 16 feet through `tightening` (one foot and a half of
 * room), stopped by `stop`; `full` once the second foot is half taken.
 */
async function stuckMidFoot(rxPatienceS: number) {
  const clock = new VirtualClock();
  const memory = new MemoryNetwork();
  const tight = tightening(memory, FOOT + FOOT / 2);
  let listening!: (port: number) => void;
  const ready = new Promise<number>((resolve) => (listening = resolve));
  const rx = receive(
    { ...common, port: 0, bind: undefined, windowFeet: 8, patienceS: rxPatienceS, timeoutS: 600 },
    { network: memory, sink: memorySink(), onListening: listening },
  ).then(() => undefined, (e: unknown) => e as VmError);
  const port = await ready;
  const stop = new AbortController();
  const options: TransmitterOptions = { ...common, patienceS: 60, timeoutS: 600, targets: [{ host: "memory", port }], threads: 1 };
  const tx = transmit(options, { network: tight.network, source: memorySource(pattern(16 * FOOT)), clock, signal: stop.signal }).then(
    () => undefined,
    (e: unknown) => e as VmError,
  );
  return { ...tight, clock, rx, tx, stop };
}

describe("the transmitter on virtual time", () => {
  test("no receiver: patience 300 s gives up with 'unreachable' after 300 s of its clock, in wall milliseconds", async () => {
    const clock = new VirtualClock();
    const options: TransmitterOptions = { ...common, patienceS: 300, timeoutS: 5, targets: [{ host: "memory", port: 1 }], threads: 2 };
    const wallStarted = performance.now();
    const outcome = transmit(options, { network: new MemoryNetwork(), source: memorySource(pattern(10)), clock });
    const error = (await clock.until(outcome.then(() => undefined, (e: unknown) => e), 400_000)) as VmError;
    expect(error.code).toBe("unreachable");
    expect(error.message).toContain("not reachable within 300s");
    // Given up at the first watchdog tick after 300 s (ticks are 250 ms apart).
    expect(clock.now()).toBeGreaterThanOrEqual(300_000);
    expect(clock.now()).toBeLessThanOrEqual(300_250);
    expect(performance.now() - wallStarted).toBeLessThan(10_000);
  });

  test("the first feet are read while the connections dial: the 4 every receiver's first window holds, and no more", async () => {
    const clock = new VirtualClock();
    const source = memorySource(pattern(10 * FOOT));
    let read = 0;
    const counting: ByteSource = {
      async read(into) {
        const n = await source.read(into);
        read += n;
        return n;
      },
    };
    // Nobody listens: no welcome ever grants a window.
    const options: TransmitterOptions = { ...common, patienceS: 2, timeoutS: 5, targets: [{ host: "memory", port: 1 }], threads: 2 };
    const outcome = transmit(options, { network: new MemoryNetwork(), source: counting, clock });
    const error = (await clock.until(outcome.then(() => undefined, (e: unknown) => e), 10_000)) as VmError;
    expect(error.code).toBe("unreachable");
    expect(read).toBe(4 * FOOT);
  });

  test("an outage longer than the timeout: the silent connection is declared dead, dials fail, and the transfer resumes once the receiver is back", async () => {
    const clock = new VirtualClock();
    const memory = new MemoryNetwork();
    // The one connection goes silent after a few feet; new dials are refused until 20 s (four timeouts) have passed.
    memory.dialFaults.push({ stallAfterBytes: 3 * FOOT });
    const OUTAGE_END_MS = 20_000;
    let dials = 0;
    const network = withOutage(memory, () => ++dials > 1 && clock.now() < OUTAGE_END_MS);
    const sink = memorySink();
    let listening!: (port: number) => void;
    const ready = new Promise<number>((resolve) => (listening = resolve));
    // The receiver's own timeouts are on the wall clock: far beyond this test.
    const rx = receive(
      { ...common, port: 0, bind: undefined, windowFeet: 8, patienceS: 600, timeoutS: 600 },
      { network: memory, sink, onListening: listening },
    );
    const port = await ready;
    const input = pattern(12 * FOOT + 5);
    const options: TransmitterOptions = { ...common, patienceS: 60, timeoutS: 5, targets: [{ host: "memory", port }], threads: 1 };
    const wallStarted = performance.now();
    const summary = await clock.until(transmit(options, { network, source: memorySource(input), clock }), 120_000);
    expect(summary.bytes).toBe(BigInt(input.length));
    await rx;
    expect(Buffer.from(sink.bytes()).equals(Buffer.from(input))).toBe(true);
    // Resumed only after the outage, and only by dialling again.
    expect(clock.now()).toBeGreaterThanOrEqual(OUTAGE_END_MS);
    expect(dials).toBeGreaterThan(2);
    expect(memory.dials).toBe(2);
    expect(performance.now() - wallStarted).toBeLessThan(10_000);
  });

  test("a failing transmitter settles once its abort is with the transport: the receiver hears why, not a connection ended mid-foot", async () => {
    // The process exits when the transmitter settles: what its connections still queue then is lost.
    const { clock, full, release, frames, rx, tx, stop } = await stuckMidFoot(600);
    let settled = false;
    const outcome = tx.finally(() => (settled = true));
    await full;
    stop.abort("SIGTERM");
    await clock.advance(FINAL_FLUSH_MS / 2);
    expect(settled).toBe(false); // the abort waits behind the rest of the foot under way
    release();
    const error = await clock.until(outcome, FINAL_FLUSH_MS / 2);
    expect(error?.code).toBe("interrupted");
    // On the wire: two whole feet, then the abort; the feet queued behind them were dropped.
    expect(frames().map((frame) => frame.kind)).toEqual([FrameKind.FRAME_FOOT, FrameKind.FRAME_FOOT, FrameKind.FRAME_ABORT]);
    expect((await rx)?.message).toContain("SIGTERM");
  });

  test("an abort the transport never takes: the transmitter settles after FINAL_FLUSH_MS all the same", async () => {
    const { clock, full, rx, tx, stop } = await stuckMidFoot(1);
    await full;
    const abortedMs = clock.now();
    stop.abort("SIGTERM");
    const error = await clock.until(tx, 2 * FINAL_FLUSH_MS);
    expect(error?.code).toBe("interrupted");
    expect(clock.now() - abortedMs).toBe(FINAL_FLUSH_MS);
    // ...and drops the connection, as the process's exit would: the receiver sees it end.
    expect((await rx)?.code).toBe("peerLost");
  });
});
