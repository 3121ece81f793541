/**
 * An in-memory Network for pipeline tests: the same transmitter and receiver
 * code as over TCP, with no sockets, deterministic delivery in odd-sized
 * pieces, bounded per-direction buffers (so partial writes and drain happen),
 * and fault hooks (reset a connection, corrupt a byte in flight).
 */
import type { Channel, ChannelHandlers, Listening, Network } from "../../src/net/channel.ts";

/** Bytes a direction holds before write() starts taking less than offered. */
const DIRECTION_CAPACITY = 256 * 1024;
/** Delivery piece sizes, cycled: exercises decoding across arbitrary boundaries. */
const PIECE_SIZES = [65536, 1, 7000, 131072, 3, 40000];

class Direction {
  queue: Uint8Array[] = [];
  buffered = 0;
  piece = 0;
  /** Bytes carried so far (fault hooks count on it). */
  carried = 0;
}

class MemoryEnd implements Channel {
  peer!: MemoryEnd;
  handlers!: ChannelHandlers;
  readonly inbound = new Direction();
  paused = false;
  closed = false;
  blockedWriter = false;
  scheduled = false;

  constructor(
    readonly remoteAddress: string,
    private readonly faults: ConnectionFaults,
  ) {}

  write(bytes: Uint8Array): number {
    if (this.closed || this.peer.closed) return 0;
    if (this.faults.blackholed) {
      this.blockedWriter = true;
      return 0; // a dead path: the send buffer is full and never drains
    }
    const room = DIRECTION_CAPACITY - this.peer.inbound.buffered;
    const n = Math.min(room, bytes.length);
    if (n < bytes.length) this.blockedWriter = true;
    if (n === 0) return 0;
    const copy = new Uint8Array(bytes.subarray(0, n)); // a real copy (Buffer.slice would be a view)
    this.peer.inbound.queue.push(copy);
    this.peer.inbound.buffered += n;
    this.peer.schedule();
    return n;
  }

  shutdown(): void {
    // Half-close: the peer sees the end once everything queued is delivered.
    this.faults.endAfterQueue = true;
    this.peer.schedule();
  }

  destroy(): void {
    this.reset(new Error("connection destroyed"));
  }

  /** Times reading was paused (read backpressure). */
  pauses = 0;

  pause(): void {
    this.paused = true;
    this.pauses++;
  }

  resume(): void {
    this.paused = false;
    this.schedule();
  }

  reset(error: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.peer.closed = true;
    setImmediate(() => {
      this.handlers.onClose();
      this.peer.handlers.onClose(error);
    });
  }

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.deliver();
    });
  }

  /** Hands the next piece of queued bytes to our handlers. */
  private deliver(): void {
    const inbound = this.inbound;
    if (this.closed || this.paused || this.faults.blackholed || this.peer.faults.blackholed) return;
    if (inbound.queue.length === 0) {
      if (this.peer.faults.endAfterQueue) this.reset(new Error("peer closed"));
      return;
    }
    const size = PIECE_SIZES[inbound.piece++ % PIECE_SIZES.length]!;
    const head = inbound.queue[0]!;
    const piece = head.length <= size ? head : head.subarray(0, size);
    if (piece === head) inbound.queue.shift();
    else inbound.queue[0] = head.subarray(size);
    inbound.buffered -= piece.length;
    const before = inbound.carried;
    inbound.carried += piece.length;
    this.peer.faults.apply(this.peer, piece, before);
    if (this.closed) return;
    this.handlers.onData(piece);
    if (this.peer.blockedWriter && !this.peer.closed) {
      this.peer.blockedWriter = false;
      this.peer.handlers.onDrain();
    }
    this.schedule();
  }
}

/** Faults on what one end sends. */
export class ConnectionFaults {
  endAfterQueue = false;
  /** Reset the connection once this many bytes have been carried. */
  resetAfterBytes: number | undefined;
  /** Flip one byte at this stream position. */
  corruptAtByte: number | undefined;
  /** Stop carrying anything either way once this many bytes have been carried (the socket stays open). */
  stallAfterBytes: number | undefined;
  blackholed = false;

  apply(sender: MemoryEnd, piece: Uint8Array, startByte: number): void {
    const end = startByte + piece.length;
    if (this.corruptAtByte !== undefined && this.corruptAtByte >= startByte && this.corruptAtByte < end) {
      piece[this.corruptAtByte - startByte]! ^= 0xff;
      this.corruptAtByte = undefined;
    }
    if (this.stallAfterBytes !== undefined && end >= this.stallAfterBytes) {
      this.stallAfterBytes = undefined;
      this.blackholed = true;
    }
    if (this.resetAfterBytes !== undefined && end >= this.resetAfterBytes) {
      this.resetAfterBytes = undefined;
      sender.reset(new Error("connection reset by fault injection"));
    }
  }
}

export class MemoryNetwork implements Network {
  private readonly listeners = new Map<number, (channel: Channel) => ChannelHandlers>();
  private nextPort = 40000;
  /** Faults for the next dialled connections' transmit direction, in dial order. */
  readonly dialFaults: Partial<Pick<ConnectionFaults, "resetAfterBytes" | "corruptAtByte" | "stallAfterBytes">>[] = [];
  dials = 0;
  /** The receiving ends of every connection, in dial order. */
  readonly accepted: { readonly pauses: number }[] = [];

  async dial(host: string, port: number, handlers: ChannelHandlers): Promise<Channel> {
    await Promise.resolve();
    const accept = this.listeners.get(port);
    if (accept === undefined) throw new Error(`cannot connect to ${host}:${port}: ECONNREFUSED`);
    const faults = Object.assign(new ConnectionFaults(), this.dialFaults[this.dials++] ?? {});
    const client = new MemoryEnd(`${host}:${port}`, faults);
    const server = new MemoryEnd(`memory-client:${this.dials}`, new ConnectionFaults());
    client.peer = server;
    server.peer = client;
    client.handlers = handlers;
    server.handlers = accept(server);
    this.accepted.push(server);
    return client;
  }

  async listen(_bind: string | undefined, port: number, accept: (channel: Channel) => ChannelHandlers): Promise<Listening> {
    const chosen = port === 0 ? this.nextPort++ : port;
    if (this.listeners.has(chosen)) throw Object.assign(new Error("address in use"), { code: "EADDRINUSE" });
    this.listeners.set(chosen, accept);
    return { port: chosen, close: () => this.listeners.delete(chosen) };
  }
}
