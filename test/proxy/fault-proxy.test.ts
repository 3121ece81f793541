/**
 * The fault proxy (test/support/fault-proxy.ts) proves each of its faults
 * against plain loopback echo and sink servers, in process, no viamillipede:
 *
 * clean forwarding is byte-identical both ways (8 connections, 50 MiB) with
 * FINs passed on; a server that does not read stalls the client while the
 * proxy holds no more than its buffer; resets land inside [min, max];
 * blackholed connections stop both ways but stay open; throttle holds its
 * rate within 15 %; delay adds at least delayMs each way; flips land at the
 * configured rate and change only the recorded bytes; an outage (refuse and
 * reset modes, manual and automatic) drops open connections, turns new ones
 * away, and then forwards again on the same port; the same seed gives the
 * same faults; and the CLI process forwards, reports stats and rejects bad
 * flags with one line.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { spawnFaultProxy, type FaultProxyProcess } from "../support/fault-proxy-cli.ts";
import { planConnection, startFaultProxy, type FaultEvent, type FaultProxy, type FaultProxyOptions } from "../support/fault-proxy.ts";
import { keystream, sha256, within } from "../support/spawn.ts";
import { MIB } from "../support/sizes.ts";

const HOST = "127.0.0.1";
/** An echo peer pauses its reading while it holds more than this toward the other side. */
const PEER_BUFFER_BYTES = 4 * MIB;

// ---- loopback peers ------------------------------------------------------------------------

type PeerMode = "client" | "echo" | "sink";

/** One end of a test connection: what it received, what the kernel took from it, how it ended. */
class Peer {
  socket!: Socket<Peer>;
  received = 0;
  /** Everything received, when asked to keep it. */
  readonly chunks: Uint8Array[] = [];
  readonly hasher = new Bun.CryptoHasher("sha256");
  firstAt = 0;
  lastAt = 0;
  /** Bytes the kernel accepted from us. */
  sent = 0;
  ended = false;
  /** undefined while open; null for a clean close; the error code otherwise. */
  closeError: string | null | undefined = undefined;
  readonly closed: Promise<string | null>;
  private resolveClosed!: (error: string | null) => void;
  private outbox: Uint8Array[] = [];
  private outboxBytes = 0;
  private shutdownWhenFlushed = false;
  private readWaiters: Array<{ bytes: number; wake: () => void }> = [];

  constructor(
    readonly mode: PeerMode,
    private readonly keep: boolean,
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  get sha256(): string {
    return this.hasher.copy().digest("hex") as string;
  }

  bytes(): Uint8Array {
    return Buffer.concat(this.chunks);
  }

  /** Queues `bytes` (written as the kernel takes them) and, with `shutdown`, a FIN after them. */
  send(bytes: Uint8Array, options: { shutdown?: boolean } = {}): void {
    if (bytes.length > 0) {
      this.outbox.push(bytes);
      this.outboxBytes += bytes.length;
    }
    if (options.shutdown) this.shutdownWhenFlushed = true;
    this.pump();
  }

  /** Resolves once at least `bytes` bytes have arrived. */
  receivedAtLeast(bytes: number): Promise<void> {
    if (this.received >= bytes) return Promise.resolve();
    return new Promise((wake) => this.readWaiters.push({ bytes, wake }));
  }

  pump(): void {
    if (this.closeError !== undefined) return;
    while (this.outbox.length > 0) {
      const head = this.outbox[0]!;
      const written = Math.max(0, this.socket.write(head));
      this.sent += written;
      this.outboxBytes -= written;
      if (written < head.length) {
        this.outbox[0] = head.subarray(written);
        return;
      }
      this.outbox.shift();
    }
    if (this.mode === "echo" && this.outboxBytes <= PEER_BUFFER_BYTES / 4) this.socket.resume();
    if (this.shutdownWhenFlushed) {
      this.shutdownWhenFlushed = false;
      this.socket.shutdown();
    }
  }

  onData(bytes: Uint8Array): void {
    const now = performance.now();
    if (this.received === 0) this.firstAt = now;
    this.lastAt = now;
    this.received += bytes.length;
    this.hasher.update(bytes);
    if (this.keep) this.chunks.push(bytes);
    this.readWaiters = this.readWaiters.filter((waiter) => (this.received >= waiter.bytes ? (waiter.wake(), false) : true));
    if (this.mode === "echo") {
      this.send(bytes);
      if (this.outboxBytes > PEER_BUFFER_BYTES) this.socket.pause();
    }
  }

  onEnd(): void {
    this.ended = true;
    if (this.mode !== "client") this.send(new Uint8Array(0), { shutdown: true });
  }

  onClose(error?: Error): void {
    if (this.closeError !== undefined) return;
    this.closeError = error ? ((error as { code?: string }).code ?? error.message) : null;
    this.resolveClosed(this.closeError);
  }
}

const peerEvents = {
  data: (socket: Socket<Peer>, bytes: Uint8Array) => socket.data.onData(bytes),
  drain: (socket: Socket<Peer>) => socket.data.pump(),
  end: (socket: Socket<Peer>) => socket.data.onEnd(),
  close: (socket: Socket<Peer>, error?: Error) => socket.data.onClose(error),
  error: (socket: Socket<Peer>, error: Error) => socket.data.onClose(error),
};

interface TestServer {
  port: number;
  /** Accepted connections, in accept order. */
  peers: Peer[];
  /** Resolves once `count` connections have been accepted. */
  accepted(count: number): Promise<Peer>;
  stop(): void;
}

const servers: TestServer[] = [];
const proxies: FaultProxy[] = [];
const clients: Peer[] = [];
const processes: FaultProxyProcess[] = [];

afterEach(async () => {
  for (const proxy of proxies.splice(0)) proxy.close();
  for (const server of servers.splice(0)) server.stop();
  for (const client of clients.splice(0)) if (client.closeError === undefined) client.socket.terminate();
  await Promise.all(processes.splice(0).map((proc) => proc.stop()));
});

/** An echo or sink server on 127.0.0.1 port 0; `paused` servers read nothing until resumed. */
function startServer(mode: "echo" | "sink", options: { keep?: boolean; paused?: boolean } = {}): TestServer {
  const peers: Peer[] = [];
  let waiters: Array<{ count: number; wake: (peer: Peer) => void }> = [];
  const listener: TCPSocketListener<Peer> = Bun.listen<Peer>({
    hostname: HOST,
    port: 0,
    allowHalfOpen: true,
    socket: {
      ...peerEvents,
      open(socket) {
        const peer = new Peer(mode, options.keep ?? false);
        peer.socket = socket;
        socket.data = peer;
        if (options.paused) socket.pause();
        peers.push(peer);
        waiters = waiters.filter((waiter) => (peers.length >= waiter.count ? (waiter.wake(peers[waiter.count - 1]!), false) : true));
      },
    },
  });
  const server: TestServer = {
    port: listener.port,
    peers,
    accepted: (count) => (peers.length >= count ? Promise.resolve(peers[count - 1]!) : new Promise((wake) => waiters.push({ count, wake }))),
    stop: () => listener.stop(true),
  };
  servers.push(server);
  return server;
}

/** Connects a client peer to `port`; rejects with the connect error (e.g. ECONNREFUSED). */
async function connectClient(port: number, keep = false): Promise<Peer> {
  const peer = new Peer("client", keep);
  await Bun.connect<Peer>({
    hostname: HOST,
    port,
    data: peer,
    allowHalfOpen: true,
    socket: {
      ...peerEvents,
      open(socket) {
        peer.socket = socket;
      },
      connectError() {},
    },
  });
  clients.push(peer);
  return peer;
}

/** A proxy to `server`, recording its events: `until(predicate)` resolves at the first event (past or future) that matches. */
async function proxyTo(server: TestServer, options: Omit<FaultProxyOptions, "target"> = {}) {
  const events: FaultEvent[] = [];
  let waiters: Array<{ match: (event: FaultEvent) => boolean; wake: (event: FaultEvent) => void }> = [];
  const proxy = await startFaultProxy({
    ...options,
    target: { host: HOST, port: server.port },
    onEvent(event) {
      events.push(event);
      waiters = waiters.filter((waiter) => (waiter.match(event) ? (waiter.wake(event), false) : true));
    },
  });
  proxies.push(proxy);
  const until = (match: (event: FaultEvent) => boolean): Promise<FaultEvent> => {
    const seen = events.find(match);
    return seen ? Promise.resolve(seen) : new Promise((wake) => waiters.push({ match, wake }));
  };
  /** The `count`th event of a type. */
  const event = <T extends FaultEvent["type"]>(type: T, count = 1): Promise<Extract<FaultEvent, { type: T }>> => {
    let seen = 0;
    return until((e) => e.type === type && ++seen === count) as Promise<Extract<FaultEvent, { type: T }>>;
  };
  return { proxy, events, event, until };
}

/** Connects `count` clients one after another, each once the server accepted the previous: client i is proxy connection i. */
async function connectInOrder(proxyPort: number, server: TestServer, count: number, keep = false): Promise<{ clients: Peer[]; servers: Peer[] }> {
  const connected: Peer[] = [];
  const accepted: Peer[] = [];
  for (let i = 0; i < count; i++) {
    const next = server.peers.length + 1;
    connected.push(await connectClient(proxyPort, keep));
    accepted.push(await within(5_000, `server accepting connection ${i}`, server.accepted(next)));
  }
  return { clients: connected, servers: accepted };
}

/** Polls `read` every 50 ms until it has not changed for `quietMs`; returns the value. */
async function settled(read: () => number, quietMs: number): Promise<number> {
  let value = read();
  let since = performance.now();
  for (;;) {
    await Bun.sleep(50);
    const now = read();
    if (now !== value) {
      value = now;
      since = performance.now();
    } else if (performance.now() - since >= quietMs) {
      return value;
    }
  }
}

// ---- the faults -------------------------------------------------------------------------------

test("clean forwarding: 8 connections, 50 MiB, byte-identical both ways, FINs passed on", async () => {
  const server = startServer("echo");
  const { proxy, event } = await proxyTo(server);
  const COUNT = 8;
  const PER = Math.ceil((50 * MIB) / COUNT);
  const { clients: peers, servers: far } = await connectInOrder(proxy.port, server, COUNT);
  const inputs = peers.map((_, i) => keystream(`clean ${i}`)(PER));
  peers.forEach((peer, i) => peer.send(inputs[i]!, { shutdown: true }));
  const closes = await within(20_000, "8 echoed transfers", Promise.all(peers.map((peer) => peer.closed)));
  expect(closes).toEqual(peers.map(() => null));
  await within(5_000, "the proxy ending 8 connections", event("end", COUNT));
  // A client's clean close after its own shutdown() means the server's FIN came through (Bun reports
  // a FIN after shutdown() as a close without `end`); the servers saw the clients' FINs as `end`.
  expect(peers.map((peer) => ({ bytes: peer.received, sha256: peer.sha256 }))).toEqual(inputs.map((input) => ({ bytes: PER, sha256: sha256(input) })));
  expect(far.map((peer) => ({ bytes: peer.received, sha256: peer.sha256, ended: peer.ended }))).toEqual(
    inputs.map((input) => ({ bytes: PER, sha256: sha256(input), ended: true })),
  );
  expect(proxy.stats()).toMatchObject({ connectionsAccepted: COUNT, bytesUp: COUNT * PER, bytesDown: COUNT * PER, resets: 0, flips: 0, live: 0 });
  expect(proxy.connections().map((c) => c.fate)).toEqual(peers.map(() => "closed"));
}, 30_000);

test("backpressure: a server that does not read stalls the client; the proxy holds about its buffer; then all arrives", async () => {
  const server = startServer("sink", { paused: true });
  const BUFFER = 2 * MIB;
  const { proxy, event } = await proxyTo(server, { bufferBytes: BUFFER });
  const client = await connectClient(proxy.port);
  const input = keystream("backpressure")(64 * MIB);
  client.send(input, { shutdown: true });
  const far = await server.accepted(1);
  await within(5_000, "the client stalling", settled(() => client.sent, 300));
  const held = proxy.connections()[0]!;
  expect(client.sent).toBeLessThan(input.length);
  // Above the buffer by at most the chunks one read delivers.
  expect(held.queuedToServer).toBeGreaterThan(0);
  expect(held.queuedToServer).toBeLessThanOrEqual(BUFFER + 2 * MIB);
  far.socket.resume();
  await within(10_000, "the rest of 64 MiB", far.receivedAtLeast(input.length));
  expect(await within(5_000, "client close", client.closed)).toBeNull();
  expect({ bytes: far.received, sha256: far.sha256 }).toEqual({ bytes: input.length, sha256: sha256(input) });
  await event("end");
}, 20_000);

test("reset after bytes: each connection is reset at its planned byte, inside [min, max]", async () => {
  const server = startServer("sink", { keep: true });
  const RANGE = { min: 1 * MIB, max: 3 * MIB };
  const { proxy, event } = await proxyTo(server, { seed: 7, resetAfterBytes: RANGE });
  const COUNT = 4;
  const { clients: peers, servers: far } = await connectInOrder(proxy.port, server, COUNT);
  const inputs = peers.map((_, i) => keystream(`reset ${i}`)(8 * MIB));
  peers.forEach((peer, i) => peer.send(inputs[i]!, { shutdown: true }));
  await within(10_000, "4 resets", event("reset", COUNT));
  const clientCloses = await within(5_000, "clients seeing the resets", Promise.all(peers.map((peer) => peer.closed)));
  const serverCloses = await within(5_000, "servers seeing the resets", Promise.all(far.map((peer) => peer.closed)));
  const records = proxy.connections();
  for (let i = 0; i < COUNT; i++) {
    const at = records[i]!.plan.resetAtByte!;
    expect(at).toBeGreaterThanOrEqual(RANGE.min);
    expect(at).toBeLessThanOrEqual(RANGE.max);
    expect(records[i]).toMatchObject({ fate: "reset", bytesFromClient: at });
    // The client got at least that far, the server no further, and what it got is the stream's prefix.
    expect(peers[i]!.sent).toBeGreaterThanOrEqual(at);
    expect(far[i]!.received).toBeLessThanOrEqual(at);
    expect(sha256(far[i]!.bytes())).toBe(sha256(inputs[i]!.subarray(0, far[i]!.received)));
  }
  // Abrupt on both sides: neither saw a clean close.
  expect(clientCloses.every((error) => error !== null)).toBe(true);
  expect(serverCloses.every((error) => error !== null)).toBe(true);
  expect(proxy.stats()).toMatchObject({ resets: COUNT, live: 0 });
}, 20_000);

test("blackhole: every 3rd connection stops both ways after its bytes but stays open; close() ends it", async () => {
  const server = startServer("echo");
  const AFTER = 1 * MIB;
  const { proxy, event } = await proxyTo(server, { blackholeEvery: 3, blackholeAfterBytes: AFTER });
  const { clients: peers, servers: far } = await connectInOrder(proxy.port, server, 3);
  const SIZE = 32 * MIB;
  const inputs = peers.map((_, i) => keystream(`blackhole ${i}`)(SIZE));
  peers.forEach((peer, i) => peer.send(inputs[i]!, { shutdown: true }));
  const hole = await within(5_000, "the blackhole", event("blackhole"));
  expect(hole).toEqual({ type: "blackhole", index: 2, atByte: AFTER });
  // Connections 0 and 1 are untouched.
  expect(await within(10_000, "connections 0 and 1", Promise.all([peers[0]!.closed, peers[1]!.closed]))).toEqual([null, null]);
  expect([peers[0]!.sha256, peers[1]!.sha256]).toEqual([sha256(inputs[0]!), sha256(inputs[1]!)]);
  // Connection 2: no close on either side for 2 s, and nothing moves through the proxy.
  const before = proxy.connections()[2]!;
  await Bun.sleep(2_000);
  const after = proxy.connections()[2]!;
  expect({ client: peers[2]!.closeError, server: far[2]!.closeError }).toEqual({ client: undefined, server: undefined });
  expect(after).toMatchObject({ fate: "blackholed", bytesFromClient: AFTER, bytesToServer: AFTER });
  expect(after.bytesToClient).toBe(before.bytesToClient);
  expect(far[2]!.received).toBe(AFTER);
  expect(peers[2]!.sent).toBeLessThan(SIZE);
  expect(proxy.stats()).toMatchObject({ blackholed: 1, live: 1 });
  proxy.close();
  expect(await within(2_000, "close() ending the blackholed client", peers[2]!.closed)).not.toBeNull();
  expect(await within(2_000, "close() ending the blackholed server side", far[2]!.closed)).not.toBeNull();
}, 20_000);

test("throttle: both directions within 15 % of the rate over ~2 s", async () => {
  const server = startServer("echo");
  const RATE = 2 * MIB;
  const { proxy } = await proxyTo(server, { throttleBytesPerSec: RATE });
  const client = await connectClient(proxy.port);
  const SIZE = 4 * MIB;
  const input = keystream("throttle")(SIZE);
  const started = performance.now();
  client.send(input, { shutdown: true });
  const far = await server.accepted(1);
  expect(await within(8_000, "the throttled echo", client.closed)).toBeNull();
  expect(client.sha256).toBe(sha256(input));
  const upRate = far.received / ((far.lastAt - started) / 1000);
  const downRate = client.received / ((client.lastAt - client.firstAt) / 1000);
  expect(Math.abs(upRate / RATE - 1)).toBeLessThan(0.15);
  expect(Math.abs(downRate / RATE - 1)).toBeLessThan(0.15);
}, 15_000);

test("delay: each direction adds at least delayMs, order and bytes kept", async () => {
  const server = startServer("echo");
  const DELAY_MS = 150;
  const { proxy } = await proxyTo(server, { delayMs: DELAY_MS });
  const client = await connectClient(proxy.port);
  const far = await server.accepted(1);
  const sent = performance.now();
  client.send(new TextEncoder().encode("ping"));
  await within(2_000, "the delayed echo", client.receivedAtLeast(4));
  expect(far.firstAt - sent).toBeGreaterThanOrEqual(DELAY_MS);
  expect(client.firstAt - far.firstAt).toBeGreaterThanOrEqual(DELAY_MS);
  expect(client.firstAt - sent).toBeLessThan(2 * DELAY_MS + 300);
  // Many chunks in flight at once stay in order.
  const input = keystream("delay")(8 * MIB);
  client.send(input, { shutdown: true });
  expect(await within(10_000, "8 MiB with delay", client.closed)).toBeNull();
  expect(client.received).toBe(4 + input.length);
  expect(far.sha256).toBe(sha256(Buffer.concat([new TextEncoder().encode("ping"), input])));
}, 15_000);

describe("flips", () => {
  for (const [name, flipBytes] of [
    ["everyBytes 64 KiB", { everyBytes: 64 * 1024 }],
    ["probability 1/64 Ki", { probability: 1 / (64 * 1024) }],
  ] as const) {
    test(`${name}: about 128 in 8 MiB, only at the recorded offsets, xor 0xff, up only`, async () => {
      const server = startServer("echo", { keep: true });
      const { proxy } = await proxyTo(server, { seed: 3, flipBytes });
      const client = await connectClient(proxy.port, true);
      const input = keystream(`flips ${name}`)(8 * MIB);
      client.send(input, { shutdown: true });
      const far = await server.accepted(1);
      expect(await within(10_000, "8 MiB with flips", client.closed)).toBeNull();
      const record = proxy.connections()[0]!;
      expect(record.flips).toBeGreaterThan(80);
      expect(record.flips).toBeLessThan(180);
      expect(proxy.stats().flips).toBe(record.flips);
      const got = far.bytes();
      expect(got.length).toBe(input.length);
      const differing: number[] = [];
      for (let i = 0; i < got.length; i++) if (got[i] !== input[i]) differing.push(i);
      expect(differing).toEqual(record.flipOffsets);
      expect(differing.every((i) => got[i] === (input[i]! ^ 0xff))).toBe(true);
      // The way back is not flipped: the client gets exactly what the server got.
      expect(client.sha256).toBe(sha256(got));
    }, 15_000);
  }
});

describe("outage", () => {
  test("refuse: open connections are reset, new ones refused, then the same port forwards again", async () => {
    const server = startServer("echo");
    const { proxy, event, until } = await proxyTo(server);
    const port = proxy.port;
    const { clients: peers } = await connectInOrder(port, server, 2);
    for (const peer of peers) peer.send(keystream("outage open")(MIB));
    await within(5_000, "echoes before the outage", Promise.all(peers.map((peer) => peer.receivedAtLeast(MIB))));
    proxy.startOutage();
    expect(proxy.outageActive).toBe(true);
    const closes = await within(2_000, "open connections dropped", Promise.all(peers.map((peer) => peer.closed)));
    expect(closes.every((error) => error !== null)).toBe(true);
    const refused = await connectClient(port).then(
      () => "connected",
      (error: { code?: string }) => error.code,
    );
    expect(refused).toBe("ECONNREFUSED");
    await proxy.endOutage();
    expect({ port: proxy.port, active: proxy.outageActive }).toEqual({ port, active: false });
    expect(await event("outage-end")).toEqual({ type: "outage-end", port });
    const again = await connectClient(port);
    const input = keystream("after the outage")(2 * MIB);
    again.send(input, { shutdown: true });
    expect(await within(5_000, "a transfer after the outage", again.closed)).toBeNull();
    expect(again.sha256).toBe(sha256(input));
    await within(2_000, "the proxy ending connection 2", until((e) => e.type === "end" && e.index === 2));
    expect(proxy.stats()).toMatchObject({ outages: 1, outageDrops: 2, connectionsAccepted: 3, refusedDuringOutage: 0 });
    expect(proxy.connections().map((c) => c.fate)).toEqual(["dropped", "dropped", "closed"]);
  }, 15_000);

  for (const mode of ["reset", "refuse"] as const) {
    test(`automatic, ${mode} mode: after N bytes for durationMs; new connections turned away; then forwarding again`, async () => {
      const server = startServer("sink", { keep: true });
      const AFTER = 2 * MIB;
      // Long enough that the connection tried "during" the outage is tried during it even with
      // both cores busy (at 500 ms it sometimes came after the outage had ended).
      const DURATION_MS = 1_500;
      const { proxy, event } = await proxyTo(server, { outage: { afterBytes: AFTER, durationMs: DURATION_MS }, outageMode: mode });
      const first = await connectClient(proxy.port);
      const input = keystream("automatic outage")(8 * MIB);
      first.send(input, { shutdown: true });
      const began = await within(5_000, "the automatic outage", event("outage-start"));
      const beganAt = performance.now();
      expect(began).toEqual({ type: "outage-start", dropped: 1 });
      // The client sees the drop end its connection; whether as a reset or a clean close depends on
      // how far it had got (it wrote all 8 MiB and shut down its side at once, and a loaded machine
      // can have the kernel take the reset for the end: seen in a CI run). The proxy's record below
      // says it was dropped, and where.
      await within(2_000, "the first connection dropped", first.closed);
      const far = server.peers[0]!;
      expect(proxy.connections()[0]).toMatchObject({ fate: "dropped", bytesFromClient: AFTER });
      expect(far.received).toBeLessThanOrEqual(AFTER);
      expect(sha256(far.bytes())).toBe(sha256(input.subarray(0, far.received)));
      // During the outage: refused by the kernel, or accepted and reset at once, never reaching the server.
      const during = await connectClient(proxy.port).then(
        (peer) => within(2_000, "a connection during the outage", peer.closed).then((error) => (error === null ? "closed cleanly" : "reset")),
        (error: { code?: string }) => error.code,
      );
      expect(during).toBe(mode === "refuse" ? "ECONNREFUSED" : "reset");
      await within(DURATION_MS + 2_000, "the end of the outage", event("outage-end"));
      expect(performance.now() - beganAt).toBeGreaterThanOrEqual(DURATION_MS - 50);
      const after = await connectClient(proxy.port);
      const rest = keystream("after automatic outage")(3 * MIB);
      after.send(rest, { shutdown: true });
      expect(await within(5_000, "a transfer after the outage", after.closed)).toBeNull();
      expect(server.peers).toHaveLength(2);
      expect(server.peers[1]!.sha256).toBe(sha256(rest));
      // Once only: the bytes after it did not start another.
      expect(proxy.stats()).toMatchObject({ outages: 1, outageDrops: 1, connectionsAccepted: 2, refusedDuringOutage: mode === "reset" ? 1 : 0 });
    }, 15_000);
  }
});

describe("determinism", () => {
  const OPTIONS = {
    resetAfterBytes: { min: 256 * 1024, max: 3 * MIB },
    blackholeEvery: 3,
    blackholeAfterBytes: { min: 0, max: 2 * MIB },
    flipBytes: { everyBytes: 100_000 },
  };

  test("plans: the same seed and index give the same plan, another seed another", () => {
    const plans = (seed: number) => Array.from({ length: 12 }, (_, i) => planConnection({ ...OPTIONS, seed }, i));
    expect(plans(42)).toEqual(plans(42));
    expect(plans(43)).not.toEqual(plans(42));
    // Only every 3rd connection is blackholed; every connection has a reset point inside the range.
    expect(plans(42).map((plan) => plan.blackholeAtByte !== null)).toEqual(Array.from({ length: 12 }, (_, i) => i % 3 === 2));
    for (const plan of plans(42)) {
      expect(plan.resetAtByte!).toBeGreaterThanOrEqual(OPTIONS.resetAfterBytes.min);
      expect(plan.resetAtByte!).toBeLessThanOrEqual(OPTIONS.resetAfterBytes.max);
    }
    // Adding a fault does not move the others.
    expect(planConnection({ seed: 42, resetAfterBytes: OPTIONS.resetAfterBytes }, 5).resetAtByte).toBe(plans(42)[5]!.resetAtByte);
  });

  test("live: two proxies with the same seed reset, blackhole and flip at the same bytes", async () => {
    const run = async (seed: number) => {
      const server = startServer("sink");
      const { proxy, until } = await proxyTo(server, { ...OPTIONS, seed });
      for (let i = 0; i < 4; i++) {
        const client = await connectClient(proxy.port);
        // Written in small pieces on purpose: chunking must not matter.
        const input = keystream(`determinism ${i}`)(4 * MIB);
        for (let at = 0; at < input.length; at += 300_000) client.send(input.subarray(at, at + 300_000));
        client.send(new Uint8Array(0), { shutdown: true });
        await within(
          5_000,
          `connection ${i} meeting its fault`,
          until((e) => (e.type === "end" || e.type === "blackhole") && e.index === i),
        );
      }
      const records = proxy.connections().map(({ index, plan, fate, bytesFromClient, flips, flipOffsets }) => ({ index, plan, fate, bytesFromClient, flips, flipOffsets }));
      proxy.close();
      return records;
    };
    const first = await run(42);
    expect(await run(42)).toEqual(first);
    expect(first.map((r) => r.fate)).toEqual(["reset", "reset", "blackholed", "reset"]);
    for (const record of first) {
      const at = record.fate === "reset" ? record.plan.resetAtByte : record.plan.blackholeAtByte;
      expect(record.bytesFromClient).toBe(at!);
      expect(record.flipOffsets.every((offset) => offset < record.bytesFromClient)).toBe(true);
    }
    expect((await run(43)).map((r) => r.plan)).not.toEqual(first.map((r) => r.plan));
  }, 20_000);
});

// ---- the CLI process ------------------------------------------------------------------------------

describe("CLI", () => {
  test("forwards, resets as told, obeys outage commands and prints its stats", async () => {
    const server = startServer("sink", { keep: true });
    const proxy = await spawnFaultProxy(["--target", `${HOST}:${server.port}`, "--seed", "5", "--reset-min", `${MIB}`, "--reset-max", `${2 * MIB}`]);
    processes.push(proxy);
    const client = await connectClient(proxy.port);
    const input = keystream("cli")(4 * MIB);
    client.send(input, { shutdown: true });
    expect(await within(5_000, "the reset through the CLI proxy", client.closed)).not.toBeNull();
    const far = await server.accepted(1);
    await far.closed;
    expect(far.received).toBeGreaterThan(0);
    expect(far.received).toBeLessThanOrEqual(2 * MIB);
    expect(sha256(far.bytes())).toBe(sha256(input.subarray(0, far.received)));
    await proxy.command("outage-start");
    expect(await connectClient(proxy.port).then(() => "connected", (error: { code?: string }) => error.code)).toBe("ECONNREFUSED");
    await proxy.command("outage-end");
    expect(await proxy.stats()).toMatchObject({ connectionsAccepted: 1, resets: 1, outages: 1 });
    const { exitCode, stats, stderr } = await proxy.stop();
    processes.length = 0;
    expect({ exitCode, stats }).toMatchObject({ exitCode: 0, stats: { connectionsAccepted: 1, resets: 1 } });
    expect(stderr).toMatch(new RegExp(`^fault-proxy: listening on port ${proxy.port}$`, "m"));
  }, 15_000);

  test("a bad flag: exit 2 with one line, nothing on stdout", async () => {
    const proc = Bun.spawn([process.execPath, `${import.meta.dir}/../support/fault-proxy-cli.ts`, "--target", "127.0.0.1:1", "--reset-min", "lots"], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const [exitCode, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    expect({ exitCode, stdout, stderr }).toEqual({ exitCode: 2, stdout: "", stderr: 'fault-proxy: --reset-min wants a non-negative number, not "lots"\n' });
  });
});
