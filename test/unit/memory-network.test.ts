/**
 * The in-memory network's conditioned links, on a virtual clock: a delay, a
 * bottleneck rate, a window and loss give the arrival times a TCP path would,
 * worked out by hand below, and loss delays bytes but never drops or
 * reorders them. Unconditioned links are covered by the pipeline tests.
 */
import { describe, expect, test } from "bun:test";
import type { Channel } from "../../src/net/channel.ts";
import { MemoryNetwork, type LinkConditions } from "../pipeline/memory-network.ts";
import { MIB } from "../support/sizes.ts";
import { VirtualClock } from "../support/virtual-clock.ts";
import { pattern } from "../support/pattern.ts";


/** A listener on `network` that keeps what each connection receives, with the virtual time of each arrival. */
async function sink(network: MemoryNetwork, clock: VirtualClock) {
  const received: { chunks: Uint8Array[]; atMs: number[]; closed: boolean }[] = [];
  const waiters: { met: () => boolean; resolve: () => void }[] = [];
  const changed = () => {
    for (const waiter of [...waiters]) if (waiter.met()) waiters.splice(waiters.indexOf(waiter), 1) && waiter.resolve();
  };
  const { port } = await network.listen(undefined, 0, () => {
    const connection = { chunks: [] as Uint8Array[], atMs: [] as number[], closed: false };
    received.push(connection);
    return {
      onData: (bytes) => {
        connection.chunks.push(bytes.slice());
        connection.atMs.push(clock.now());
        changed();
      },
      onDrain() {},
      onClose: () => {
        connection.closed = true;
        changed();
      },
    };
  });
  /** Runs the clock until `met` holds (checked on each arrival or close). */
  const until = (met: () => boolean, limitMs = 60_000) =>
    clock.until(met() ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ met, resolve })), limitMs);
  /** Runs the clock until `count` connections have `bytes` bytes each. */
  const untilReceived = (count: number, bytes: number) => until(() => received.length >= count && received.every((r) => total(r.chunks) >= bytes));
  return { port, received, until, untilReceived };
}

/** Writes all of `bytes` to `channel`, continuing on each drain; resolves once the last byte was taken. */
function writeAll(channel: Channel, bytes: Uint8Array, drained: { next?: () => void }): Promise<void> {
  return new Promise((resolve) => {
    let offset = 0;
    const push = () => {
      offset += channel.write(bytes.subarray(offset));
      if (offset === bytes.length) resolve();
      else drained.next = push;
    };
    push();
  });
}

/** Dials `host` and returns the channel, with a hook its drains call. */
async function dial(network: MemoryNetwork, clock: VirtualClock, host: string, port: number) {
  const drained: { next?: () => void } = {};
  const channel = await clock.until(
    network.dial(host, port, { onData() {}, onDrain: () => drained.next?.(), onClose() {} }),
    10_000,
  );
  return { channel, drained };
}

const total = (chunks: Uint8Array[]) => chunks.reduce((sum, chunk) => sum + chunk.length, 0);

describe("MemoryNetwork on virtual time", () => {
  const rtt100ms: LinkConditions = { delayMs: 50, bytesPerSecond: 10_000_000 };

  test("dialling costs one round trip, refused or not", async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, links: { far: rtt100ms } });
    const { port } = await sink(network, clock);
    await dial(network, clock, "far", port);
    expect(clock.now()).toBe(100);
    const refused = await clock.until(network.dial("far", port + 1, { onData() {}, onDrain() {}, onClose() {} }).catch((e: Error) => e), 1_000);
    expect((refused as Error).message).toBe(`cannot connect to far:${port + 1}: ECONNREFUSED`);
    expect(clock.now()).toBe(200);
  });

  test("1 MB over a 100 ms round trip at 10 MB/s: the first 45 segments after 50 ms + 6.5 ms, the last byte after 50 ms + 100 ms", async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, links: { far: rtt100ms } });
    const { port, received, untilReceived } = await sink(network, clock);
    const { channel } = await dial(network, clock, "far", port);
    const sentAt = clock.now();
    const input = pattern(1_000_000);
    expect(channel.write(input)).toBe(input.length); // within the 4 MiB window: taken at once
    await untilReceived(1, input.length);
    const [connection] = received;
    // Serialised at 10 MB/s (the first piece, 45 segments of 1448 B = 65160 B, in 6.516 ms; 1 MB in 100 ms), then 50 ms on the way.
    expect(connection!.atMs[0]! - sentAt).toBeCloseTo(50 + 6.516, 6);
    expect(connection!.atMs.at(-1)! - sentAt).toBeCloseTo(150, 6);
    expect(Buffer.concat(connection!.chunks).equals(Buffer.from(input))).toBe(true);
  });

  test("connections on one link share its bottleneck: two 1 MB writes at once finish after 200 ms of serialisation", async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, links: { far: rtt100ms } });
    const { port, received, untilReceived } = await sink(network, clock);
    const a = await dial(network, clock, "far", port);
    const b = await dial(network, clock, "far", port);
    const sentAt = clock.now();
    a.channel.write(pattern(1_000_000, 1));
    b.channel.write(pattern(1_000_000, 2));
    await untilReceived(2, 1_000_000);
    expect(received[0]!.atMs.at(-1)! - sentAt).toBeCloseTo(150, 6);
    expect(received[1]!.atMs.at(-1)! - sentAt).toBeCloseTo(250, 6);
  });

  test("a window-bound connection moves one window per round trip: 1 MiB through 256 KiB at 100 ms RTT takes 3.5 RTTs", async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, links: { far: { delayMs: 50, windowBytes: 256 * 1024 } } });
    const { port, received, untilReceived } = await sink(network, clock);
    const { channel, drained } = await dial(network, clock, "far", port);
    const sentAt = clock.now();
    const input = pattern(MIB);
    const written = writeAll(channel, input, drained);
    await untilReceived(1, input.length);
    await written;
    // Windows leave at 0, 100, 200 and 300 ms (each acknowledged 50 ms after it arrived) and arrive 50 ms later.
    expect(received[0]!.atMs.at(-1)! - sentAt).toBe(350);
    expect(Buffer.concat(received[0]!.chunks).equals(Buffer.from(input))).toBe(true);
  });

  test("slow start: a new connection's window starts at initialWindowBytes and doubles per round trip up to windowBytes", async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, links: { far: { delayMs: 50, windowBytes: MIB, initialWindowBytes: 64 * 1024 } } });
    const { port, received, untilReceived } = await sink(network, clock);
    const first = await dial(network, clock, "far", port);
    const sentAt = clock.now();
    const input = pattern(MIB);
    const written = writeAll(first.channel, input, first.drained);
    await untilReceived(1, input.length);
    await written;
    // 64, 128, 256 and 512 KiB leave at 0, 100, 200 and 300 ms; the last 64 KiB at 400 ms, arriving 50 ms later.
    expect(received[0]!.atMs.at(-1)! - sentAt).toBe(450);
    // The window stays grown: another MiB on the same connection goes out whole once the last
    // acknowledgement is back (50 ms after the last arrival) and arrives 50 ms later.
    const again = clock.now();
    const more = writeAll(first.channel, pattern(MIB, 2), first.drained);
    await untilReceived(1, 2 * MIB);
    await more;
    expect(received[0]!.atMs.at(-1)! - again).toBe(100);
    // A new connection starts small again.
    const second = await dial(network, clock, "far", port);
    const secondAt = clock.now();
    const secondWritten = writeAll(second.channel, input, second.drained);
    await untilReceived(2, input.length);
    await secondWritten;
    expect(received[1]!.atMs.at(-1)! - secondAt).toBe(450);
  });

  test("loss delays bytes by retransmission timeouts but never drops or reorders them; the same seed loses the same segments", async () => {
    const lossy = async (seed: number) => {
      const clock = new VirtualClock();
      const network = new MemoryNetwork({ clock, seed, links: { far: { delayMs: 10, bytesPerSecond: 100_000_000, lossRate: 0.01 } } });
      const { port, received, untilReceived } = await sink(network, clock);
      const inputs = [pattern(2 * MIB, 1), pattern(2 * MIB, 2)];
      const ends = [await dial(network, clock, "far", port), await dial(network, clock, "far", port)];
      const sentAt = clock.now();
      const written = Promise.all(ends.map(({ channel, drained }, i) => writeAll(channel, inputs[i]!, drained)));
      await untilReceived(2, 2 * MIB);
      await clock.until(written, 1_000);
      for (const [i, connection] of received.entries()) expect(Buffer.concat(connection.chunks).equals(Buffer.from(inputs[i]!))).toBe(true);
      return { lost: network.lostSegments, lastMs: Math.max(...received.map((r) => r.atMs.at(-1)!)) - sentAt };
    };
    const first = await lossy(7);
    // 4 MiB is 2897 segments: at 1 % about 29 are lost, each costing at least a 220 ms timeout.
    expect(first.lost).toBeGreaterThan(10);
    // Without loss: 4 MiB at 100 MB/s is 41.9 ms, plus 10 ms on the way.
    expect(first.lastMs).toBeGreaterThan(41.95 + 10 + 220);
    expect(await lossy(7)).toEqual(first);
    expect((await lossy(8)).lost).not.toBe(first.lost);
  });

  test("a half-close reaches the peer after the data, never before it", async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, links: { far: rtt100ms } });
    const { port, received, until, untilReceived } = await sink(network, clock);
    const { channel } = await dial(network, clock, "far", port);
    channel.write(pattern(1000));
    channel.shutdown();
    await untilReceived(1, 1000);
    expect(received[0]!.closed).toBe(false);
    await until(() => received[0]!.closed, 1_000);
    expect(total(received[0]!.chunks)).toBe(1000);
  });
});
