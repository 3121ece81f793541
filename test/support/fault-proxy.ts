/**
 * A deterministic fault-injecting TCP proxy for tests: put it between a
 * transmitter and a receiver (tx → proxy → rx) and it breaks the path the
 * way real networks do, reproducibly from a seed.
 *
 * 1. `startFaultProxy(options)` listens on 127.0.0.1 port 0 (loopback only).
 *    Each accepted client connection gets an index in accept order and a
 *    fault plan drawn from PRNG streams keyed by (seed, index, purpose), so
 *    the same seed and the same connection order give the same faults, however
 *    the bytes happen to be chunked or interleaved between connections.
 * 2. The proxy dials `options.target` and moves bytes through two pipes per
 *    connection: up (client → server) and down (server → client).
 * 3. Up-stream bytes pass the fault checks at the offset where they sit in
 *    that connection's stream: flips, the reset point, the blackhole point,
 *    the automatic outage point (counted over all connections).
 * 4. A pipe queues chunks with their release time (`delayMs`) and writes the
 *    due ones as its token bucket (`throttleBytesPerSec`) allows; a partial
 *    write keeps the rest for `drain`.
 * 5. Backpressure: a pipe pauses its source while it holds more than
 *    `bufferBytes` and resumes it below half of that.
 * 6. Closes: a FIN is forwarded with shutdown() once the queue is written
 *    (never end(), which can drop accepted bytes); a reset or error on one
 *    side terminates the other.
 *
 * Faults:
 * - reset (`resetAfterBytes`): once byte R of the up stream (R drawn from
 *   [min, max]) has been queued, both sides are terminated (RST, SO_LINGER 0)
 *   at once. As with a real RST, bytes still in flight may be lost: the
 *   server receives at most the first R bytes.
 * - blackhole (`blackholeEvery: N`): connections whose index % N === N - 1
 *   freeze once B up-stream bytes (`blackholeAfterBytes`) were queued. The B
 *   bytes already queued are still written; after that nothing moves in
 *   either direction, both sockets are paused (the senders' kernel buffers
 *   fill up) and stay open: no FIN, no RST, and a close on one side is not
 *   passed to the other (it is a dead path). Only `close()` or an outage
 *   ends them.
 * - outage (`startOutage()` / `endOutage()`, or `outage: { afterBytes,
 *   durationMs }` once): every open connection is reset. With the default
 *   `outageMode: "refuse"` the listening socket is closed, so new connections
 *   are refused by the kernel (ECONNREFUSED); `endOutage()` listens on the
 *   same port again (retrying for a while should someone else hold it).
 *   With `"reset"` the proxy keeps listening and resets every connection it
 *   accepts during the outage (counted in `refusedDuringOutage`; in
 *   "refuse" mode the kernel refuses, and the proxy cannot count those).
 *   Connections refused or reset during an outage take no index.
 * - flips (`flipBytes`): one byte at a time is xored with 0xff in the up
 *   stream, at gaps drawn uniformly from [1, 2E - 1] (`everyBytes: E`) or
 *   geometrically (`probability: p` per byte); offsets are recorded.
 * - delay and throttle apply to both directions, per connection.
 */
import type { Socket, SocketHandler, TCPSocketListener } from "bun";

/** Loopback only: a test proxy must never be reachable from elsewhere. */
export const PROXY_HOST = "127.0.0.1";
/** A pipe pauses its source above this many queued bytes, and resumes it below half. */
export const DEFAULT_BUFFER_BYTES = 4 * 1024 * 1024;
/** Where a blackhole starts when `blackholeAfterBytes` is not given. */
export const DEFAULT_BLACKHOLE_AFTER_BYTES: ByteRange = { min: 0, max: 4 * 1024 * 1024 };
/** A token bucket holds this many seconds' worth of bytes (at least `MIN_THROTTLE_BURST_BYTES`). */
const THROTTLE_BURST_S = 0.02;
const MIN_THROTTLE_BURST_BYTES = 1024;
/** Re-listening after an outage: attempts and the pause between them. */
const RELISTEN_ATTEMPTS = 60;
const RELISTEN_RETRY_MS = 50;
/** Flip offsets recorded per connection (the count goes on). */
const FLIP_RECORD_LIMIT = 10_000;

export interface ByteRange {
  min: number;
  max: number;
}

export interface FaultProxyOptions {
  target: { host: string; port: number };
  /** Seed of every random choice (default 1). */
  seed?: number;
  /** Reset each connection after a number of up-stream bytes drawn from [min, max]. */
  resetAfterBytes?: ByteRange;
  /** Blackhole the connections whose index % N === N - 1. */
  blackholeEvery?: number;
  /** Where in the up stream a blackholed connection freezes (default 0–4 MiB, drawn). */
  blackholeAfterBytes?: number | ByteRange;
  /** Latency added to every chunk, each direction, order kept. */
  delayMs?: number;
  /** Rate limit per connection and direction (token bucket). */
  throttleBytesPerSec?: number;
  /** Flip (xor 0xff) single bytes of the up stream, about every E bytes or with probability p per byte. */
  flipBytes?: { everyBytes: number } | { probability: number };
  /** Start an outage once, after this many up-stream bytes over all connections, for durationMs. */
  outage?: { afterBytes: number; durationMs: number };
  /** "refuse" (default): stop listening during an outage; "reset": accept and reset. */
  outageMode?: "refuse" | "reset";
  /** Queued bytes per pipe above which its source is paused (default 4 MiB). */
  bufferBytes?: number;
  /** Told of every fault and of every connection's end, synchronously. */
  onEvent?: (event: FaultEvent) => void;
}

/** The faults one connection will meet, fixed at accept from the seed and its index. */
export interface ConnectionPlan {
  /** Up-stream offset at which the connection is reset, or null. */
  resetAtByte: number | null;
  /** Up-stream offset at which the connection is blackholed, or null. */
  blackholeAtByte: number | null;
}

export type ConnectionFate =
  /** Dialling the target. */
  | "connecting"
  /** Forwarding. */
  | "open"
  /** Frozen by a blackhole, sockets still open. */
  | "blackholed"
  /** Reset by `resetAfterBytes`. */
  | "reset"
  /** Reset because an outage began. */
  | "dropped"
  /** One side reset or failed; the other was reset. */
  | "peer-reset"
  /** Both sides closed cleanly. */
  | "closed"
  /** The target refused or could not be reached. */
  | "target-failed"
  /** Ended by `close()`. */
  | "proxy-closed";

export interface ConnectionRecord {
  index: number;
  plan: ConnectionPlan;
  fate: ConnectionFate;
  /** Bytes read from the client and queued toward the server (the up-stream offset reached). */
  bytesFromClient: number;
  bytesToServer: number;
  bytesToClient: number;
  /** Bytes the proxy holds toward each side right now. */
  queuedToServer: number;
  queuedToClient: number;
  flips: number;
  /** Up-stream offsets flipped, the first FLIP_RECORD_LIMIT. */
  flipOffsets: number[];
}

export interface FaultProxyStats {
  connectionsAccepted: number;
  /** Connections reset by `resetAfterBytes`. */
  resets: number;
  blackholed: number;
  /** Bytes written toward servers / toward clients. */
  bytesUp: number;
  bytesDown: number;
  flips: number;
  /** Connections accepted and reset during an outage ("reset" mode only). */
  refusedDuringOutage: number;
  outages: number;
  /** Open connections reset because an outage began. */
  outageDrops: number;
  /** Connections ended because one side reset or failed. */
  peerResets: number;
  targetFailures: number;
  /** Connections not yet ended (blackholed ones included). */
  live: number;
}

export type FaultEvent =
  | { type: "accept"; index: number; plan: ConnectionPlan }
  | { type: "reset"; index: number; atByte: number }
  | { type: "blackhole"; index: number; atByte: number }
  | { type: "end"; index: number; fate: ConnectionFate }
  | { type: "outage-start"; dropped: number }
  | { type: "outage-end"; port: number }
  /** The automatic outage could not listen again (`endOutage()` rejects with the same). */
  | { type: "error"; message: string };

export interface FaultProxy {
  /** The port clients connect to (the same across outages). */
  readonly port: number;
  readonly outageActive: boolean;
  stats(): FaultProxyStats;
  /** A snapshot of every connection accepted so far, in accept order. */
  connections(): ConnectionRecord[];
  /** Resets every open connection and refuses (or resets) new ones until `endOutage()`, or for `durationMs`. */
  startOutage(durationMs?: number): void;
  /** Accepts connections again; in "refuse" mode resolves once listening on the same port. */
  endOutage(): Promise<void>;
  /** Terminates every socket and stops listening. */
  close(): void;
}

// ---- randomness ----------------------------------------------------------------------

/** mulberry32: a tiny 32-bit PRNG, uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Folds words into one 32-bit seed (murmur3's finaliser after each word). */
function mixSeed(...words: number[]): number {
  let h = 0x9747b28c;
  for (const word of words) {
    h = Math.imul(h ^ (word >>> 0), 0x5bd1e995);
    h ^= h >>> 15;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** Independent streams per purpose, so adding one fault never moves another. */
const PURPOSE = { reset: 1, blackhole: 2, flip: 3 } as const;

function streamFor(seed: number, index: number, purpose: keyof typeof PURPOSE): () => number {
  return mulberry32(mixSeed(seed, index, PURPOSE[purpose]));
}

/** An integer in [min, max] from `random`. */
function drawInRange(random: () => number, range: ByteRange): number {
  const lo = Math.ceil(Math.min(range.min, range.max));
  const hi = Math.floor(Math.max(range.min, range.max));
  return lo + Math.floor(random() * (hi - lo + 1));
}

/** The plan of connection `index` (pure: the same options and index give the same plan). */
export function planConnection(options: Pick<FaultProxyOptions, "seed" | "resetAfterBytes" | "blackholeEvery" | "blackholeAfterBytes">, index: number): ConnectionPlan {
  const seed = options.seed ?? 1;
  const resetAtByte = options.resetAfterBytes ? drawInRange(streamFor(seed, index, "reset"), options.resetAfterBytes) : null;
  const every = options.blackholeEvery ?? 0;
  let blackholeAtByte: number | null = null;
  if (every >= 1 && index % every === every - 1) {
    const after = options.blackholeAfterBytes ?? DEFAULT_BLACKHOLE_AFTER_BYTES;
    blackholeAtByte = typeof after === "number" ? after : drawInRange(streamFor(seed, index, "blackhole"), after);
  }
  return { resetAtByte, blackholeAtByte };
}

/** Gaps between flipped bytes (each at least 1) for connection `index`, or null without flips. */
function flipGaps(options: FaultProxyOptions, index: number): (() => number) | null {
  const flip = options.flipBytes;
  if (!flip) return null;
  const random = streamFor(options.seed ?? 1, index, "flip");
  if ("everyBytes" in flip) {
    const every = Math.max(1, flip.everyBytes);
    return () => drawInRange(random, { min: 1, max: 2 * every - 1 });
  }
  const p = flip.probability;
  if (!(p > 0)) return () => Infinity;
  if (p >= 1) return () => 1;
  const logQ = Math.log1p(-p);
  return () => 1 + Math.floor(Math.log(1 - random()) / logQ);
}

// ---- pipes ---------------------------------------------------------------------------

type Role = "client" | "server";
interface Side {
  conn: Connection;
  role: Role;
}
type ProxySocket = Socket<Side>;

interface Chunk {
  bytes: Uint8Array;
  offset: number;
  releaseAt: number;
}

/** One direction of a connection: a queue from `source` to `dest` with delay, throttle and backpressure. */
class Pipe {
  private queue: Chunk[] = [];
  private head = 0;
  /** Bytes queued and not yet written. */
  queuedBytes = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAt = Infinity;
  private tokens: number;
  private refilledAt = performance.now();
  private readonly burst: number;
  dest: ProxySocket | null = null;
  source: ProxySocket | null = null;
  /** Waiting for `drain` after a partial write. */
  private blocked = false;
  private sourcePaused = false;
  /** The source will never be resumed (blackhole). */
  sourceFrozen = false;
  /** Nothing more is written (blackhole, reset, or the destination is gone). */
  private stopped = false;
  /** The source sent FIN: shutdown() the destination once the queue is written. */
  private finPending = false;
  finSent = false;
  written = 0;

  constructor(
    private readonly core: ProxyCore,
    private readonly direction: "up" | "down",
  ) {
    const rate = core.options.throttleBytesPerSec ?? 0;
    this.burst = rate > 0 ? Math.max(MIN_THROTTLE_BURST_BYTES, rate * THROTTLE_BURST_S) : Infinity;
    this.tokens = this.burst;
  }

  push(bytes: Uint8Array): void {
    if (this.stopped || bytes.length === 0) return;
    const delayMs = this.core.options.delayMs ?? 0;
    this.queue.push({ bytes, offset: 0, releaseAt: delayMs > 0 ? performance.now() + delayMs : 0 });
    this.queuedBytes += bytes.length;
    if (!this.sourcePaused && this.queuedBytes > this.core.bufferBytes && this.source) {
      this.sourcePaused = true;
      this.source.pause();
    }
    this.pump();
  }

  /** The source sent FIN. */
  finish(): void {
    this.finPending = true;
    this.pump();
  }

  onDrain(): void {
    this.blocked = false;
    this.pump();
  }

  /** Stops reading the source for good (blackhole). */
  freezeSource(): void {
    this.sourceFrozen = true;
    this.sourcePaused = true;
    this.source?.pause();
  }

  /** Drops the queue and writes nothing more. */
  stop(): void {
    this.stopped = true;
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The source socket became known (the server side connects later). */
  attachSource(socket: ProxySocket): void {
    this.source = socket;
    if (this.sourcePaused) socket.pause();
  }

  pump(): void {
    if (this.stopped || this.blocked || this.dest === null) return;
    const dest = this.dest;
    const rate = this.core.options.throttleBytesPerSec ?? 0;
    let now = performance.now();
    while (this.head < this.queue.length) {
      const chunk = this.queue[this.head]!;
      if (chunk.releaseAt > now) {
        now = performance.now();
        if (chunk.releaseAt > now) {
          this.wakeAt(chunk.releaseAt);
          break;
        }
      }
      let length = chunk.bytes.length - chunk.offset;
      if (rate > 0) {
        this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) * rate) / 1000);
        this.refilledAt = now;
        const want = Math.min(length, Math.max(1, Math.floor(this.burst / 2)));
        if (this.tokens < want) {
          this.wakeAt(now + ((want - this.tokens) * 1000) / rate);
          break;
        }
        length = Math.min(length, Math.floor(this.tokens));
      }
      const written = Math.max(0, dest.write(chunk.bytes.subarray(chunk.offset, chunk.offset + length)));
      chunk.offset += written;
      this.queuedBytes -= written;
      this.written += written;
      if (rate > 0) this.tokens -= written;
      this.core.countWritten(this.direction, written);
      if (chunk.offset === chunk.bytes.length) {
        this.head++;
        if (this.head > 1024 && this.head * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
      }
      if (written < length) {
        this.blocked = true;
        break;
      }
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
    if (this.sourcePaused && !this.sourceFrozen && this.queuedBytes <= this.core.bufferBytes / 2 && this.source) {
      this.sourcePaused = false;
      this.source.resume();
    }
    if (this.finPending && !this.finSent && this.queuedBytes === 0) {
      this.finSent = true;
      dest.shutdown();
    }
  }

  private wakeAt(at: number): void {
    if (this.timer !== null) {
      if (this.timerAt <= at) return;
      clearTimeout(this.timer);
    }
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.timerAt = Infinity;
        this.pump();
      },
      Math.max(0, Math.ceil(at - performance.now())),
    );
  }
}

// ---- connections -----------------------------------------------------------------------

class Connection {
  readonly up: Pipe;
  readonly down: Pipe;
  server: ProxySocket | null = null;
  fate: ConnectionFate = "connecting";
  /** Up-stream bytes read from the client and queued (the offset reached). */
  fromClient = 0;
  flips = 0;
  readonly flipOffsets: number[] = [];
  private nextFlip = Infinity;
  private readonly flipGap: (() => number) | null;
  private clientEnded = false;
  private serverEnded = false;
  private clientClosed = false;
  private serverClosed = false;
  /** Reset, dropped or ended: events from its sockets are ignored from now on. */
  private over = false;

  constructor(
    private readonly core: ProxyCore,
    readonly index: number,
    readonly plan: ConnectionPlan,
    readonly client: ProxySocket,
  ) {
    this.up = new Pipe(core, "up");
    this.down = new Pipe(core, "down");
    this.up.attachSource(client);
    this.down.dest = client;
    this.flipGap = flipGaps(core.options, index);
    if (this.flipGap) this.nextFlip = this.flipGap() - 1;
  }

  get blackholed(): boolean {
    return this.fate === "blackholed";
  }

  record(): ConnectionRecord {
    return {
      index: this.index,
      plan: { ...this.plan },
      fate: this.fate,
      bytesFromClient: this.fromClient,
      bytesToServer: this.up.written,
      bytesToClient: this.down.written,
      queuedToServer: this.up.queuedBytes,
      queuedToClient: this.down.queuedBytes,
      flips: this.flips,
      flipOffsets: [...this.flipOffsets],
    };
  }

  /** Starts it: the zero-byte faults, then the dial. */
  start(): void {
    const target = this.core.options.target;
    if (this.plan.resetAtByte === 0) return this.reset();
    if (this.plan.blackholeAtByte === 0) this.blackhole();
    const side: Side = { conn: this, role: "server" };
    Bun.connect<Side>({
      hostname: target.host,
      port: target.port,
      data: side,
      allowHalfOpen: true,
      socket: {
        ...socketEvents,
        open: (socket) => this.onServerOpen(socket),
        connectError: () => this.onServerFailed(),
      },
    }).catch(() => this.onServerFailed());
  }

  private onServerOpen(socket: ProxySocket): void {
    if (this.over) {
      socket.terminate();
      return;
    }
    socket.setNoDelay(true);
    this.server = socket;
    this.up.dest = socket;
    this.down.attachSource(socket);
    if (this.blackholed) this.down.freezeSource();
    else this.fate = "open";
    this.up.pump();
  }

  private onServerFailed(): void {
    if (this.over || this.server !== null) return;
    this.core.stats.targetFailures++;
    this.end("target-failed");
  }

  onData(role: Role, bytes: Uint8Array): void {
    if (this.over || this.blackholed) return;
    if (role === "server") return this.down.push(bytes);
    const start = this.fromClient;
    const outageAt = this.core.outageAt(start);
    const resetAt = this.plan.resetAtByte ?? Infinity;
    const blackholeAt = this.plan.blackholeAtByte ?? Infinity;
    const cut = Math.min(outageAt, resetAt, blackholeAt);
    const forward = cut - start < bytes.length ? bytes.subarray(0, Math.max(0, cut - start)) : bytes;
    this.flip(forward, start);
    this.fromClient += forward.length;
    this.core.ingested += forward.length;
    this.up.push(forward);
    if (start + bytes.length < cut) return;
    // The cut lies in (or at the end of) this chunk: the first fault there wins.
    if (cut === outageAt) this.core.startOutage(this.core.options.outage!.durationMs, true);
    else if (cut === resetAt) this.reset();
    else this.blackhole();
  }

  private flip(bytes: Uint8Array, start: number): void {
    const end = start + bytes.length;
    while (this.nextFlip < end) {
      bytes[this.nextFlip - start]! ^= 0xff;
      this.flips++;
      this.core.stats.flips++;
      if (this.flipOffsets.length < FLIP_RECORD_LIMIT) this.flipOffsets.push(this.nextFlip);
      this.nextFlip += this.flipGap!();
    }
  }

  onDrain(role: Role): void {
    (role === "server" ? this.up : this.down).onDrain();
  }

  onEnd(role: Role): void {
    if (this.over) return;
    if (role === "client") this.clientEnded = true;
    else this.serverEnded = true;
    if (this.blackholed) return;
    (role === "client" ? this.up : this.down).finish();
  }

  onClose(role: Role, error?: Error): void {
    if (role === "client") this.clientClosed = true;
    else this.serverClosed = true;
    if (this.over) return;
    // A dead path passes nothing on, not even a close.
    if (this.blackholed) {
      if (this.clientClosed && this.serverClosed) this.end("blackholed");
      return;
    }
    const from = role === "client" ? this.up : this.down;
    const toward = role === "client" ? this.down : this.up;
    const ended = role === "client" ? this.clientEnded : this.serverEnded;
    // Bun reports a FIN that arrives after our own shutdown() as a close without `end`.
    if (error !== undefined || !(ended || toward.finSent)) {
      this.core.stats.peerResets++;
      return this.end("peer-reset");
    }
    // Both FINs are through: nothing more can reach it; what it sent still flushes, then its FIN.
    toward.stop();
    if (!ended) from.finish();
    if (this.clientClosed && this.serverClosed) this.end("closed");
  }

  reset(): void {
    this.core.stats.resets++;
    this.core.emit({ type: "reset", index: this.index, atByte: this.fromClient });
    this.end("reset");
  }

  private blackhole(): void {
    this.fate = "blackholed";
    this.core.stats.blackholed++;
    this.core.emit({ type: "blackhole", index: this.index, atByte: this.fromClient });
    // Bytes already queued up are still written; nothing else moves.
    this.up.freezeSource();
    this.down.stop();
    this.down.freezeSource();
  }

  /** Ends it: both sockets terminated (a no-op on closed ones), the pipes stopped. */
  end(fate: ConnectionFate): void {
    if (this.over) return;
    this.over = true;
    this.fate = fate;
    this.up.stop();
    this.down.stop();
    this.core.live.delete(this);
    // terminate() calls close synchronously; `over` makes those calls no-ops.
    if (!this.clientClosed) this.client.terminate();
    if (this.server !== null && !this.serverClosed) this.server.terminate();
    this.core.emit({ type: "end", index: this.index, fate });
  }
}

/** Events shared by both sides; the server side's `data` arrives with the socket. */
const socketEvents: SocketHandler<Side> = {
  data(socket, bytes) {
    socket.data?.conn.onData(socket.data.role, bytes);
  },
  drain(socket) {
    socket.data?.conn.onDrain(socket.data.role);
  },
  end(socket) {
    socket.data?.conn.onEnd(socket.data.role);
  },
  close(socket, error) {
    socket.data?.conn.onClose(socket.data.role, error);
  },
  error(socket, error) {
    socket.data?.conn.onClose(socket.data.role, error);
  },
};

// ---- the proxy ---------------------------------------------------------------------------

/** What the connections share: options, counters, the outage state. */
class ProxyCore {
  readonly stats: FaultProxyStats = {
    connectionsAccepted: 0,
    resets: 0,
    blackholed: 0,
    bytesUp: 0,
    bytesDown: 0,
    flips: 0,
    refusedDuringOutage: 0,
    outages: 0,
    outageDrops: 0,
    peerResets: 0,
    targetFailures: 0,
    live: 0,
  };
  readonly live = new Set<Connection>();
  readonly records: Connection[] = [];
  readonly bufferBytes: number;
  /** Up-stream bytes queued over all connections (the automatic outage counts these). */
  ingested = 0;
  private autoOutageDone = false;
  outageActive = false;
  private outageTimer: ReturnType<typeof setTimeout> | null = null;
  private listener: TCPSocketListener<Side> | null = null;
  port = 0;
  closed = false;

  constructor(readonly options: FaultProxyOptions) {
    this.bufferBytes = options.bufferBytes ?? DEFAULT_BUFFER_BYTES;
  }

  emit(event: FaultEvent): void {
    this.options.onEvent?.(event);
  }

  countWritten(direction: "up" | "down", bytes: number): void {
    if (direction === "up") this.stats.bytesUp += bytes;
    else this.stats.bytesDown += bytes;
  }

  /** The offset, in a stream now at `start`, where the automatic outage begins (Infinity if none). */
  outageAt(start: number): number {
    const outage = this.options.outage;
    if (!outage || this.autoOutageDone || this.outageActive) return Infinity;
    return start + Math.max(0, outage.afterBytes - this.ingested);
  }

  listen(port: number): void {
    this.listener = Bun.listen<Side>({
      hostname: PROXY_HOST,
      port,
      exclusive: true,
      allowHalfOpen: true,
      socket: { ...socketEvents, open: (socket) => this.accept(socket) },
    });
    this.port = this.listener.port;
  }

  private accept(client: ProxySocket): void {
    if (this.closed || this.outageActive) {
      if (!this.closed) this.stats.refusedDuringOutage++;
      client.terminate();
      return;
    }
    const index = this.records.length;
    const plan = planConnection(this.options, index);
    const conn = new Connection(this, index, plan, client);
    client.data = { conn, role: "client" };
    client.setNoDelay(true);
    this.records.push(conn);
    this.live.add(conn);
    this.stats.connectionsAccepted++;
    this.emit({ type: "accept", index, plan });
    conn.start();
  }

  startOutage(durationMs?: number, automatic = false): void {
    if (this.closed || this.outageActive) return;
    this.outageActive = true;
    if (automatic) this.autoOutageDone = true;
    this.stats.outages++;
    const dropped = [...this.live];
    for (const conn of dropped) conn.end("dropped");
    this.stats.outageDrops += dropped.length;
    if ((this.options.outageMode ?? "refuse") === "refuse") {
      this.listener?.stop(true);
      this.listener = null;
    }
    this.emit({ type: "outage-start", dropped: dropped.length });
    if (durationMs !== undefined) {
      this.outageTimer = setTimeout(() => {
        this.outageTimer = null;
        this.endOutage().catch((error: Error) => this.emit({ type: "error", message: error.message }));
      }, durationMs);
    }
  }

  async endOutage(): Promise<void> {
    if (this.closed || !this.outageActive) return;
    if (this.outageTimer !== null) clearTimeout(this.outageTimer);
    this.outageTimer = null;
    if (this.listener === null) {
      for (let attempt = 1; ; attempt++) {
        try {
          this.listen(this.port);
          break;
        } catch (error) {
          if (attempt >= RELISTEN_ATTEMPTS) throw new Error(`fault-proxy: cannot listen on port ${this.port} again after an outage: ${(error as Error).message}`);
        }
        await Bun.sleep(RELISTEN_RETRY_MS);
        if (this.closed) return;
      }
    }
    this.outageActive = false;
    this.emit({ type: "outage-end", port: this.port });
  }

  close(): void {
    if (this.closed) return;
    for (const conn of [...this.live]) conn.end("proxy-closed");
    this.closed = true;
    if (this.outageTimer !== null) clearTimeout(this.outageTimer);
    this.outageTimer = null;
    this.listener?.stop(true);
    this.listener = null;
  }
}

/** Starts a proxy on 127.0.0.1, port 0, forwarding to `options.target`. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const core = new ProxyCore(options);
  core.listen(0);
  return {
    get port() {
      return core.port;
    },
    get outageActive() {
      return core.outageActive;
    },
    stats: () => ({ ...core.stats, live: core.live.size }),
    connections: () => core.records.map((conn) => conn.record()),
    startOutage: (durationMs) => core.startOutage(durationMs),
    endOutage: () => core.endOutage(),
    close: () => core.close(),
  };
}
