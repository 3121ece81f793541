/**
 * An in-memory Network for pipeline tests: the same transmitter and receiver
 * code as over TCP, with no sockets, deterministic delivery in odd-sized
 * pieces, bounded per-direction buffers (so partial writes and drain happen),
 * and fault hooks (reset a connection, corrupt a byte in flight).
 *
 * Links. `new MemoryNetwork()` carries bytes at once (the next event-loop
 * turn). Given a Clock (src/clock.ts; a VirtualClock in tests) and conditions
 * for a link (the host a connection dials), it behaves like a path with a
 * one-way delay, a bottleneck rate and a loss rate, in virtual time:
 *
 * 1. Dialling costs one round trip (SYN, SYN-ACK), refused or not.
 * 2. A write is serialised onto the link's bottleneck behind whatever every
 *    connection on that link sent before it (one FIFO per direction), then
 *    arrives `delayMs` later, in pieces of at most ARRIVAL_PIECE_BYTES.
 * 3. Loss is decided per segment (SEGMENT_BYTES) by a seeded PRNG. A reliable
 *    stream does not lose bytes: a lost segment arrives one retransmission
 *    timeout later (doubling each time the retransmission is lost too), and
 *    every byte behind it on that connection waits for it (head-of-line
 *    blocking). Bytes are never dropped or reordered.
 * 4. A connection holds at most `windowBytes` written but not yet acknowledged;
 *    an acknowledgement travels back `delayMs` after the receiving end has
 *    read the bytes, so a window-bound connection moves a window per round trip.
 * 5. With `initialWindowBytes`, a new connection's window starts there and
 *    grows by every byte acknowledged, up to `windowBytes`: it doubles per
 *    round trip, as TCP's slow start, so a new connection is slow at first.
 *
 * Owns: the listeners, each connection's two ends and their queues, each
 * link's bottleneck clock.
 */
import { systemClock, type Clock } from "../../src/clock.ts";
import type { Channel, ChannelHandlers, Listening, Network } from "../../src/net/channel.ts";
import { MIB } from "../support/sizes.ts";

/** Bytes a direction holds before write() starts taking less than offered, on an unconditioned link. */
const DIRECTION_CAPACITY = 256 * 1024;
/** Delivery piece sizes, cycled: exercises decoding across arbitrary boundaries. */
const PIECE_SIZES = [65536, 1, 7000, 131072, 3, 40000];
/** A conditioned link's default window: about what Linux autotunes a socket to (tcp_wmem's 4 MiB). */
const CONDITIONED_WINDOW_BYTES = 4 * MIB;
/** What loss is decided on: one Ethernet MSS with TCP timestamps. */
export const SEGMENT_BYTES = 1448;
/** The largest piece a conditioned link delivers at one instant (whole segments, about 64 KiB): later bytes of a write trickle in after it. */
export const ARRIVAL_PIECE_BYTES = 45 * SEGMENT_BYTES;
/** Linux's minimum retransmission timeout (TCP_RTO_MIN); a link's default RTO is this plus its round trip. */
const RTO_MIN_MS = 200;

/** How a link (a host dialled) carries bytes; every field is per direction. */
export interface LinkConditions {
  /** One-way delay, ms. */
  delayMs?: number;
  /** The bottleneck's rate, bytes per second, shared by every connection on the link (default unlimited). */
  bytesPerSecond?: number;
  /** The probability that a segment is lost (0 ≤ lossRate < 1). */
  lossRate?: number;
  /** Bytes a connection may have written and not yet acknowledged (default 4 MiB). */
  windowBytes?: number;
  /** The retransmission timeout of a lost segment, ms (default 200 ms + the round trip). */
  retransmitMs?: number;
  /** A new connection's window, growing by each byte acknowledged up to `windowBytes` (slow start); default `windowBytes`. */
  initialWindowBytes?: number;
}

export interface MemoryNetworkOptions {
  /** The time the links run on (default the wall clock, used only by conditioned links). */
  clock?: Clock;
  /** Conditions per host dialled; a host not named here carries bytes at once. */
  links?: Record<string, LinkConditions>;
  /** Seeds the loss PRNG (default 1): the same seed and the same traffic lose the same segments. */
  seed?: number;
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** One link's fixed conditions and its two bottlenecks. */
class Link {
  readonly delayMs: number;
  readonly bytesPerSecond: number;
  readonly lossRate: number;
  readonly windowBytes: number;
  readonly retransmitMs: number;
  readonly initialWindowBytes: number;
  /** When each direction's bottleneck is free again (0: towards the listener, 1: back). */
  readonly busyUntil = [0, 0];

  constructor(
    readonly host: string,
    conditions: LinkConditions,
  ) {
    this.delayMs = conditions.delayMs ?? 0;
    this.bytesPerSecond = conditions.bytesPerSecond ?? Infinity;
    this.lossRate = conditions.lossRate ?? 0;
    this.windowBytes = conditions.windowBytes ?? CONDITIONED_WINDOW_BYTES;
    this.retransmitMs = conditions.retransmitMs ?? RTO_MIN_MS + 2 * this.delayMs;
    this.initialWindowBytes = Math.min(conditions.initialWindowBytes ?? this.windowBytes, this.windowBytes);
    if (!(this.delayMs >= 0 && this.bytesPerSecond > 0 && this.lossRate >= 0 && this.lossRate < 1 && this.windowBytes > 0 && this.initialWindowBytes > 0)) {
      throw new Error(`link ${host}: impossible conditions ${JSON.stringify(conditions)}`);
    }
  }

  /**
   * Puts `length` bytes on direction `way` at `nowMs`: returns when each piece
   * of them arrives (pieces end where a lost segment starts, or every
   * ARRIVAL_PIECE_BYTES), before the connection's own ordering is applied.
   */
  carry(way: 0 | 1, length: number, nowMs: number, random: () => number, onLoss: () => void): { end: number; atMs: number }[] {
    const start = Math.max(nowMs, this.busyUntil[way]!);
    const sentBy = (offset: number) => start + (offset / this.bytesPerSecond) * 1000;
    this.busyUntil[way] = sentBy(length);
    const pieces: { end: number; atMs: number }[] = [];
    let pieceStart = 0;
    let heldUntil = 0; // a lost segment in this piece arrives no sooner than this
    const close = (end: number) => {
      if (end > pieceStart) pieces.push({ end, atMs: Math.max(sentBy(end) + this.delayMs, heldUntil) });
      pieceStart = end;
      heldUntil = 0;
    };
    for (let segment = 0; segment < length; segment += SEGMENT_BYTES) {
      if (segment - pieceStart >= ARRIVAL_PIECE_BYTES) close(segment);
      if (this.lossRate === 0 || random() >= this.lossRate) continue;
      onLoss();
      let penaltyMs = this.retransmitMs;
      for (let timeout = this.retransmitMs; random() < this.lossRate; ) penaltyMs += timeout *= 2;
      close(segment);
      heldUntil = sentBy(Math.min(segment + SEGMENT_BYTES, length)) + this.delayMs + penaltyMs;
    }
    close(length);
    return pieces;
  }
}

/** What every end of one network shares: its clock, its PRNG, how it defers work. */
interface Wire {
  clock: Clock;
  /** Runs `work` soon: on the clock when the network was given one, else on the next event-loop turn. */
  defer(work: () => void): void;
  random(): number;
  lost(): void;
}

class Direction {
  queue: Uint8Array[] = [];
  /** Bytes written towards this end and not yet acknowledged (in flight, queued, or read but unacknowledged). */
  buffered = 0;
  piece = 0;
  /** Bytes carried so far (fault hooks count on it). */
  carried = 0;
  /** Pieces on their way over a conditioned link. */
  inFlight = 0;
}

class MemoryEnd implements Channel {
  peer!: MemoryEnd;
  handlers!: ChannelHandlers;
  readonly inbound = new Direction();
  paused = false;
  closed = false;
  blockedWriter = false;
  scheduled = false;
  /** When the last piece this end sent arrives: nothing it sends later may arrive before. */
  private lastArrivalMs = 0;
  /** Nothing this end sends over a conditioned link arrives before this (ConnectionFaults.holdAfterBytes). */
  private heldUntilMs = 0;
  /** Bytes put on a conditioned link so far. */
  private sentBytes = 0;
  /** Bytes this end may have unacknowledged on a conditioned link (grows in slow start). */
  private windowBytes: number;

  constructor(
    readonly remoteAddress: string,
    private readonly faults: ConnectionFaults,
    private readonly wire: Wire,
    /** The link this end sends over, and which way, when the link is conditioned. */
    private readonly path: { link: Link; way: 0 | 1 } | undefined,
  ) {
    this.windowBytes = path?.link.initialWindowBytes ?? DIRECTION_CAPACITY;
  }

  /** `bytes` this end sent were acknowledged: in slow start the window grows by as many. */
  grow(bytes: number): void {
    if (this.path !== undefined) this.windowBytes = Math.min(this.path.link.windowBytes, this.windowBytes + bytes);
  }

  write(bytes: Uint8Array): number {
    if (this.closed || this.peer.closed) return 0;
    if (this.faults.blackholed) {
      this.blockedWriter = true;
      return 0; // a dead path: the send buffer is full and never drains
    }
    const room = this.windowBytes - this.peer.inbound.buffered;
    const n = Math.max(0, Math.min(room, bytes.length));
    if (n < bytes.length) this.blockedWriter = true;
    if (n === 0) return 0;
    const copy = new Uint8Array(bytes.subarray(0, n)); // a real copy (Buffer.slice would be a view)
    this.peer.inbound.buffered += n;
    if (this.path === undefined) {
      this.peer.inbound.queue.push(copy);
      this.peer.schedule();
    } else this.send(copy, this.path);
    return n;
  }

  /** Puts bytes on the conditioned link; each piece joins the peer's queue when it arrives. */
  private send(bytes: Uint8Array, path: { link: Link; way: 0 | 1 }): void {
    const now = this.wire.clock.now();
    const hold = this.faults.holdAfterBytes;
    if (hold !== undefined && this.sentBytes < hold && this.sentBytes + bytes.length > hold) this.heldUntilMs = now + this.faults.holdMs;
    this.sentBytes += bytes.length;
    let from = 0;
    for (const { end, atMs } of path.link.carry(path.way, bytes.length, now, this.wire.random, this.wire.lost)) {
      const piece = bytes.subarray(from, end);
      from = end;
      this.lastArrivalMs = Math.max(this.lastArrivalMs, atMs, this.heldUntilMs);
      this.peer.inbound.inFlight++;
      this.wire.clock.after(this.lastArrivalMs - now, `memory link ${path.link.host}: arrival`, () => {
        this.peer.inbound.inFlight--;
        if (this.closed || this.peer.closed) return;
        this.peer.inbound.queue.push(piece);
        this.peer.schedule();
      });
    }
  }

  shutdown(): void {
    // Half-close: the peer sees the end once everything queued is delivered (the FIN travels behind the data).
    if (this.path === undefined) {
      this.faults.endAfterQueue = true;
      this.peer.schedule();
      return;
    }
    const now = this.wire.clock.now();
    this.lastArrivalMs = Math.max(this.lastArrivalMs, now + this.path.link.delayMs);
    this.wire.clock.after(this.lastArrivalMs - now, `memory link ${this.path.link.host}: FIN`, () => {
      this.faults.endAfterQueue = true;
      this.peer.schedule();
    });
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
    this.wire.defer(() => {
      this.handlers.onClose();
      this.peer.handlers.onClose(error);
    });
  }

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.wire.defer(() => {
      this.scheduled = false;
      this.deliver();
    });
  }

  /** Nothing queued for this end will reach its handlers without something else happening first. */
  atRest(): boolean {
    const held = this.closed || this.paused || this.faults.blackholed || this.peer.faults.blackholed;
    return !this.scheduled && this.inbound.inFlight === 0 && (held || this.inbound.queue.length === 0);
  }

  /** Hands the next piece of queued bytes to our handlers. */
  private deliver(): void {
    const inbound = this.inbound;
    if (this.closed || this.paused || this.faults.blackholed || this.peer.faults.blackholed) return;
    if (inbound.queue.length === 0) {
      if (this.peer.faults.endAfterQueue && inbound.inFlight === 0) this.reset(new Error("peer closed"));
      return;
    }
    const size = PIECE_SIZES[inbound.piece++ % PIECE_SIZES.length]!;
    const head = inbound.queue[0]!;
    const piece = head.length <= size ? head : head.subarray(0, size);
    if (piece === head) inbound.queue.shift();
    else inbound.queue[0] = head.subarray(size);
    const before = inbound.carried;
    inbound.carried += piece.length;
    this.peer.faults.apply(this.peer, piece, before);
    if (this.closed) return;
    this.handlers.onData(piece);
    this.acknowledge(piece.length);
    this.schedule();
  }

  /** Frees window for the sender: at once, or one-way delay later over a conditioned link. */
  private acknowledge(bytes: number): void {
    const freed = () => {
      this.inbound.buffered -= bytes;
      this.peer.grow(bytes);
      if (this.peer.blockedWriter && !this.peer.closed) {
        this.peer.blockedWriter = false;
        this.peer.handlers.onDrain();
      }
    };
    const delayMs = this.peer.path?.link.delayMs ?? 0;
    if (delayMs === 0) freed();
    else this.wire.clock.after(delayMs, `memory link ${this.peer.path!.link.host}: acknowledgement`, freed);
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
  /**
   * Over a conditioned link, once this end has sent `holdAfterBytes` (say, its
   * handshake), what it sends next arrives no sooner than `holdMs` later: a new
   * connection whose first flights of data were lost at a full bottleneck
   * queue waits on retransmission timeouts.
   */
  holdAfterBytes: number | undefined;
  holdMs = 0;
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
  private readonly links = new Map<string, Link>();
  private readonly wire: Wire;
  /** Faults for the next dialled connections' transmit direction, in dial order. */
  readonly dialFaults: Partial<Pick<ConnectionFaults, "resetAfterBytes" | "corruptAtByte" | "stallAfterBytes" | "holdAfterBytes" | "holdMs">>[] = [];
  dials = 0;
  /** The receiving ends of every connection, in dial order. */
  readonly accepted: { readonly pauses: number }[] = [];
  /** Segments lost on conditioned links so far (each arrived late, none went missing). */
  lostSegments = 0;
  /** Both ends of every connection, in dial order. */
  private readonly ends: MemoryEnd[] = [];

  constructor(options: MemoryNetworkOptions = {}) {
    const clock = options.clock;
    const random = seededRandom(options.seed ?? 1);
    this.wire = {
      clock: clock ?? systemClock,
      defer: clock === undefined ? (work) => void setImmediate(work) : (work) => void clock.after(0, "memory network: delivery", work),
      random,
      lost: () => void this.lostSegments++,
    };
    for (const [host, conditions] of Object.entries(options.links ?? {})) this.condition(host, conditions);
  }

  /**
   * Resolves once every byte written so far has been handed to its reader
   * (or waits at an end that is paused, stalled or closed), and what the
   * readers did with it has run: a test can then assert that something did
   * not happen. Unconditioned links only (a clock's test settles the clock).
   */
  async delivered(): Promise<void> {
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      if (this.ends.every((end) => end.atRest())) return;
    }
  }

  /** Sets the conditions of the link to `host`, for connections dialled from now on. */
  condition(host: string, conditions: LinkConditions): void {
    this.links.set(host, new Link(host, conditions));
  }

  async dial(host: string, port: number, handlers: ChannelHandlers): Promise<Channel> {
    const link = this.links.get(host);
    if (link === undefined) await Promise.resolve();
    else await this.wire.clock.sleep(2 * link.delayMs, `memory link ${host}: dial handshake`);
    const accept = this.listeners.get(port);
    if (accept === undefined) throw new Error(`cannot connect to ${host}:${port}: ECONNREFUSED`);
    const faults = Object.assign(new ConnectionFaults(), this.dialFaults[this.dials++] ?? {});
    const client = new MemoryEnd(`${host}:${port}`, faults, this.wire, link && { link, way: 0 });
    const server = new MemoryEnd(`memory-client:${this.dials}`, new ConnectionFaults(), this.wire, link && { link, way: 1 });
    client.peer = server;
    server.peer = client;
    client.handlers = handlers;
    server.handlers = accept(server);
    this.accepted.push(server);
    this.ends.push(client, server);
    return client;
  }

  async listen(_bind: string | undefined, port: number, accept: (channel: Channel) => ChannelHandlers): Promise<Listening> {
    const chosen = port === 0 ? this.nextPort++ : port;
    if (this.listeners.has(chosen)) throw Object.assign(new Error("address in use"), { code: "EADDRINUSE" });
    this.listeners.set(chosen, accept);
    return { port: chosen, close: () => this.listeners.delete(chosen) };
  }
}
