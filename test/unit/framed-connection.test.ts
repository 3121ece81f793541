/**
 * FramedConnection's last record (`sendFinal`): a transmitter that fails
 * tells its receiver why, and its process exits soon after. What the
 * connection still holds then is lost, so the notice must not wait behind
 * feet that are not under way, and `flushed` says when it is with the
 * transport.
 */
import { describe, expect, test } from "bun:test";
import type { Channel, ChannelHandlers, Network } from "../../src/net/channel.ts";
import { FramedConnection } from "../../src/net/framed-connection.ts";

/** A transport that takes at most `room` bytes until given more: a full socket buffer. */
class TightChannel implements Channel {
  readonly taken: number[] = [];
  shutdowns = 0;
  handlers!: ChannelHandlers;
  readonly remoteAddress = "test:1";
  constructor(public room: number) {}
  write(bytes: Uint8Array): number {
    const n = Math.min(this.room, bytes.length);
    this.room -= n;
    for (const byte of bytes.subarray(0, n)) this.taken.push(byte);
    return n;
  }
  /** The peer read: `bytes` more fit, and the connection hears it. */
  drain(bytes: number): void {
    this.room += bytes;
    this.handlers.onDrain();
  }
  shutdown(): void {
    this.shutdowns++;
  }
  destroy(): void {}
  pause(): void {}
  resume(): void {}
}

async function connectionOver(channel: TightChannel): Promise<FramedConnection> {
  const network: Network = {
    dial: async (_host, _port, handlers) => {
      channel.handlers = handlers;
      return channel;
    },
    listen: () => Promise.reject(new Error("not used")),
  };
  return FramedConnection.dial(network, "test", 1, 1 << 20, { onRecord() {}, onIdle() {}, onClose() {} });
}

const bytes = (length: number, value: number) => new Uint8Array(length).fill(value);

describe("a connection's final record", () => {
  test("queued records not under way are dropped at once; the one under way is finished, then the notice, then the half-close", async () => {
    const channel = new TightChannel(50);
    const connection = await connectionOver(channel);
    const done: string[] = [];
    connection.send([bytes(10, 1), bytes(100, 2)], () => done.push("foot under way")); // 50 of its 110 bytes taken
    connection.send([bytes(10, 3), bytes(200, 4)], () => done.push("next foot"));
    connection.send([bytes(8, 5)], () => done.push("heartbeat"));
    let flushed = false;
    connection.sendFinal([bytes(12, 9)]);
    void connection.flushed().then(() => (flushed = true));
    expect(done).toEqual(["next foot", "heartbeat"]); // dropped: their memory may go back at once
    expect(connection.queuedBytes).toBe(60 + 12);
    expect(channel.shutdowns).toBe(0);

    channel.drain(1000);
    await Promise.resolve();
    expect(done).toEqual(["next foot", "heartbeat", "foot under way"]);
    expect(flushed).toBe(true);
    expect(channel.shutdowns).toBe(1);
    // On the wire: the whole first foot, then the notice; nothing of what was dropped.
    expect(channel.taken).toEqual([...bytes(10, 1), ...bytes(100, 2), ...bytes(12, 9)]);
  });

  test("a foot whose first piece the transport has not touched is not under way: only the notice goes out", async () => {
    const channel = new TightChannel(0);
    const connection = await connectionOver(channel);
    const done: string[] = [];
    connection.send([bytes(10, 1), bytes(100, 2)], () => done.push("foot"));
    connection.sendFinal([bytes(12, 9)]);
    expect(done).toEqual(["foot"]);
    channel.drain(1000);
    expect(channel.taken).toEqual([...bytes(12, 9)]);
    expect(channel.shutdowns).toBe(1);
  });

  test("a foot whose second piece is under way is finished whole", async () => {
    const channel = new TightChannel(15); // its 10-byte header and 5 bytes of payload
    const connection = await connectionOver(channel);
    connection.send([bytes(10, 1), bytes(100, 2)]);
    connection.sendFinal([bytes(12, 9)]);
    channel.drain(1000);
    expect(channel.taken).toEqual([...bytes(10, 1), ...bytes(100, 2), ...bytes(12, 9)]);
  });

  test("flushed: at once with nothing queued; on close with bytes still queued", async () => {
    const channel = new TightChannel(0);
    const connection = await connectionOver(channel);
    let flushed = false;
    await connection.flushed(); // nothing queued
    connection.send([bytes(10, 1)]);
    void connection.flushed().then(() => (flushed = true));
    await Promise.resolve();
    expect(flushed).toBe(false);
    connection.destroy();
    await Promise.resolve();
    expect(flushed).toBe(true);
  });
});
