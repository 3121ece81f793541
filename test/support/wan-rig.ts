/**
 * A wide-area test rig: network namespaces `tx` and `rx` joined by emulated
 * long, fat, lossy links. The kernels here have neither netem nor fq, so the
 * delay comes from a user-space forwarder (test/support/wan-link.c, built
 * with gcc into build/wan-link/ on first use): per link two TUN devices, one
 * moved into each namespace as a point-to-point pair, and per direction it
 * holds each packet for half the round trip, serialises it at the link's
 * rate behind a byte-limited queue, and drops packets at random with a
 * seeded PRNG. Link i is 10.78.i.1 (device `wan<i>` in tx) ↔ 10.78.i.2
 * (`wan<i>` in rx). Nothing here can reach any other host.
 *
 * Per link, optionally, the congestion control of both ends' routes
 * (`ip route ... congctl ALG`: a namespace cannot change its
 * `tcp_congestion_control` sysctl while the host's default differs, a route
 * can). Per rig, optionally, the namespaces' `tcp_rmem`/`tcp_wmem` maxima
 * (`net.core.rmem_max` is not per namespace; autotuning does not need it).
 *
 * Needs root, `ip`, `gcc` and /dev/net/tun; `wanRigUnavailable()` says why
 * not when it cannot run. `destroy()` ends the forwarder (its devices go with
 * it) and removes both namespaces; a rig a crashed run left behind is removed
 * by the next run (the forwarder exits by itself when the process that
 * started it is gone: its stdin closes).
 */
import { existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { addNamespace, deleteNamespace, must, onPath, removeStaleNamespaces, run } from "./netns-rig.ts";

const ROOT = join(import.meta.dir, "../..");
const SOURCE = join(ROOT, "test/support/wan-link.c");
const BINARY = join(ROOT, "build/wan-link/wan-link");
const PREFIX = "vmwan";
/**
 * TUN devices' transmit queue, in packets: the kernel queues here until the
 * forwarder reads. The default of 500 drops slow-start bursts whenever the
 * forwarder is off the CPU for a moment (2 cores, shared); this queue is not
 * the emulated bottleneck, which is the forwarder's own.
 */
const TUN_TXQUEUELEN_PACKETS = 10_000;
/** Added to the bandwidth-delay product in the default queue: a burst the kernel cuts from one 64 KiB GSO packet. */
const QUEUE_MARGIN_BYTES = 64 * 1024;
/** How long the forwarder may take to create its devices or answer SIGUSR1. */
const FORWARDER_REPLY_MS = 5_000;
/** How often `waitForListener` looks: netcat and iperf3 print no line to wait for. */
const LISTEN_POLL_MS = 20;

export interface WanLinkSpec {
  /** Bottleneck rate each way, in Mbit/s (10^6 bits). */
  mbit: number;
  /** Round-trip time the link adds, in ms: each direction holds packets for half of it. */
  rttMs: number;
  /** Probability that a packet is lost, per packet and per direction (0.01 = 1 %). */
  loss?: number;
  /** Bottleneck queue per direction, in bytes; default `defaultQueueBytes(mbit, rttMs)`. */
  queueBytes?: number;
  /** Congestion control for both ends' routes over this link (`cubic`, `bbr`); default the namespace's. */
  congestion?: string;
}

export interface WanLink extends Required<Omit<WanLinkSpec, "congestion">> {
  /** 1-based, the order the links were given in. */
  number: number;
  congestion: string | undefined;
  txAddress: string;
  rxAddress: string;
  /** The device's name in each namespace. */
  device: string;
  bytesPerSecond: number;
}

/** What the forwarder counted for one direction of one link. */
export interface DirectionCounters {
  link: number;
  /** forward: tx namespace → rx namespace. */
  direction: "forward" | "reverse";
  packets: number;
  bytes: number;
  deliveredPackets: number;
  deliveredBytes: number;
  /** Random loss. */
  lost: number;
  /** Tail drops: the bottleneck queue was full. */
  queueDrops: number;
  /** The forwarder had no room left in its buffer (never expected). */
  overflowDrops: number;
  writeErrors: number;
  maxQueueBytes: number;
}

export interface WanRigOptions {
  /** Seeds the loss PRNGs (each direction of each link draws its own sequence from it). Default 1. */
  seed?: number;
  /** When set, the maximum of both namespaces' tcp_rmem and tcp_wmem, in bytes; default the kernel's. */
  tcpBufferBytes?: number;
}

export interface WanRig {
  txNamespace: string;
  rxNamespace: string;
  links: WanLink[];
  /** Sum of the links' rates, in bytes per second. */
  totalBytesPerSecond: number;
  /** The namespaces' TCP buffer sysctls as they are (`min default max`), for a report. */
  tcpMemory: { rmem: string; wmem: string };
  /** The forwarder's counters now, per link and direction. */
  counters(): Promise<DirectionCounters[]>;
  destroy(): void;
}

/** One bandwidth-delay product plus a GSO burst (bench/wan.md says why). */
export function defaultQueueBytes(mbit: number, rttMs: number): number {
  return Math.round(((mbit * 1e6) / 8) * (rttMs / 1000)) + QUEUE_MARGIN_BYTES;
}

let unavailable: string | undefined | null = null;

/** Why the rig cannot be built here, or undefined when it can. */
export function wanRigUnavailable(): string | undefined {
  if (unavailable !== null) return unavailable;
  unavailable = probe();
  return unavailable;
}

function probe(): string | undefined {
  if (process.getuid?.() !== 0) return "not root (network namespaces and TUN devices need root)";
  if (!onPath("ip")) return "'ip' not found (Debian: iproute2)";
  if (!existsSync("/dev/net/tun")) return "/dev/net/tun is missing (no TUN support in this kernel or container)";
  const built = buildForwarder();
  if (built !== undefined) return built;
  // A forwarder with one link and stdin at its end: it creates both devices, reports, and exits.
  const tried = run(["sh", "-c", `true | "${BINARY}" 1000000,0,0,100000`]);
  if (!tried.ok) return `the link forwarder cannot create TUN devices: ${tried.err}`;
  return undefined;
}

/** Compiles the forwarder when it is missing or older than its source; the reason it failed, or undefined. */
function buildForwarder(): string | undefined {
  if (existsSync(BINARY) && statSync(BINARY).mtimeMs >= statSync(SOURCE).mtimeMs) return undefined;
  if (!onPath("gcc")) return "'gcc' not found (Debian: gcc, libc6-dev): it builds the link forwarder";
  mkdirSync(join(ROOT, "build/wan-link"), { recursive: true });
  // Through a private name and a rename: two runs building at once both end with a whole binary.
  const partial = `${BINARY}.${process.pid}`;
  const compiled = run(["gcc", "-O2", "-Wall", "-o", partial, SOURCE]);
  if (!compiled.ok) return `the link forwarder does not compile: ${compiled.err}`;
  renameSync(partial, BINARY);
  return undefined;
}

/** Lines of a child's stdout, handed out in order to whoever awaits the next one. */
class LineReader {
  private buffered: string[] = [];
  private waiting: Array<(line: string | undefined) => void> = [];
  private ended = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    void this.pump(stream);
  }

  private async pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let partial = "";
    for await (const chunk of stream) {
      partial += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = partial.indexOf("\n")) >= 0) {
        this.deliver(partial.slice(0, newline));
        partial = partial.slice(newline + 1);
      }
    }
    this.ended = true;
    for (const waiter of this.waiting.splice(0)) waiter(undefined);
  }

  private deliver(line: string): void {
    const waiter = this.waiting.shift();
    if (waiter) waiter(line);
    else this.buffered.push(line);
  }

  /** The next line, or undefined once the stream has ended; rejects after `timeoutMs`. */
  next(timeoutMs: number, what: string): Promise<string | undefined> {
    const line = this.buffered.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = this.waiting.filter((waiter) => waiter !== settle);
        reject(new Error(`wan-link: no ${what} after ${timeoutMs} ms`));
      }, timeoutMs);
      const settle = (value: string | undefined): void => {
        clearTimeout(timer);
        resolve(value);
      };
      this.waiting.push(settle);
    });
  }
}

let created = 0;

/** Builds the rig: one emulated link per spec, in that order. */
export async function createWanRig(specs: readonly WanLinkSpec[], options: WanRigOptions = {}): Promise<WanRig> {
  const reason = wanRigUnavailable();
  if (reason !== undefined) throw new Error(`WAN rig unavailable: ${reason}`);
  if (specs.length === 0 || specs.length > 16) throw new Error("a WAN rig has 1 to 16 links");
  removeStaleNamespaces(PREFIX);
  const id = `${PREFIX}-${process.pid}-${++created}`;
  const txNamespace = `${id}-tx`;
  const rxNamespace = `${id}-rx`;
  const links: WanLink[] = specs.map((spec, i) => {
    const number = i + 1;
    return {
      number,
      mbit: spec.mbit,
      rttMs: spec.rttMs,
      loss: spec.loss ?? 0,
      queueBytes: spec.queueBytes ?? defaultQueueBytes(spec.mbit, spec.rttMs),
      congestion: spec.congestion,
      txAddress: `10.78.${number}.1`,
      rxAddress: `10.78.${number}.2`,
      device: `wan${number}`,
      bytesPerSecond: (spec.mbit * 1e6) / 8,
    };
  });
  const linkArgs = links.map((link) => [Math.round(link.mbit * 1e6), Math.round((link.rttMs * 1000) / 2), link.loss, link.queueBytes].join(","));
  // Ahead of other work on a shared machine: a forwarder off the CPU is delay the link did not ask for.
  const forwarder = Bun.spawn(["nice", "-n", "-10", BINARY, "--seed", String(options.seed ?? 1), ...linkArgs], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  const lines = new LineReader(forwarder.stdout);
  let destroyed = false;
  const destroy = (): void => {
    if (destroyed) return;
    destroyed = true;
    if (forwarder.exitCode === null && forwarder.signalCode === null) forwarder.kill("SIGTERM");
    for (const name of [txNamespace, rxNamespace]) deleteNamespace(name);
  };
  try {
    const ready = await lines.next(FORWARDER_REPLY_MS, "ready line");
    if (ready === undefined) {
      await forwarder.exited;
      throw new Error(`wan-link exited ${forwarder.exitCode}: ${(await new Response(forwarder.stderr).text()).trim()}`);
    }
    const devices = (JSON.parse(ready) as { ready: Array<[string, string]> }).ready;
    for (const name of [txNamespace, rxNamespace]) addNamespace(name);
    for (const link of links) {
      const [txDevice, rxDevice] = devices[link.number - 1]!;
      must(["ip", "link", "set", txDevice, "netns", txNamespace]);
      must(["ip", "link", "set", rxDevice, "netns", rxNamespace]);
      configureEnd(txNamespace, txDevice, link, link.txAddress, link.rxAddress);
      configureEnd(rxNamespace, rxDevice, link, link.rxAddress, link.txAddress);
    }
    if (options.tcpBufferBytes !== undefined) {
      for (const name of [txNamespace, rxNamespace]) {
        const max = options.tcpBufferBytes;
        must(["ip", "netns", "exec", name, "sh", "-c", `echo "4096 131072 ${max}" > /proc/sys/net/ipv4/tcp_rmem && echo "4096 16384 ${max}" > /proc/sys/net/ipv4/tcp_wmem`]);
      }
    }
  } catch (error) {
    destroy();
    throw error;
  }
  const sysctl = (key: string): string =>
    must(["ip", "netns", "exec", txNamespace, "cat", `/proc/sys/net/ipv4/${key}`])
      .trim()
      .replace(/\s+/g, " ");
  return {
    txNamespace,
    rxNamespace,
    links,
    totalBytesPerSecond: links.reduce((sum, link) => sum + link.bytesPerSecond, 0),
    tcpMemory: { rmem: sysctl("tcp_rmem"), wmem: sysctl("tcp_wmem") },
    async counters() {
      if (destroyed) throw new Error("wan-link: the rig is destroyed");
      forwarder.kill("SIGUSR1");
      for (;;) {
        const line = await lines.next(FORWARDER_REPLY_MS, "counters");
        if (line === undefined) throw new Error(`wan-link exited ${forwarder.exitCode}`);
        const parsed = JSON.parse(line) as { counters?: DirectionCounters[] };
        if (parsed.counters) return parsed.counters;
      }
    },
    destroy,
  };
}

/** Names, addresses and routes one end of a link inside its namespace. */
function configureEnd(namespace: string, device: string, link: WanLink, local: string, peer: string): void {
  // No IPv6 on the link: router solicitations and the like would be packets the tests did not send.
  run(["ip", "netns", "exec", namespace, "sh", "-c", `echo 1 > /proc/sys/net/ipv6/conf/${device}/disable_ipv6`]);
  const commands = [
    `link set ${device} name ${link.device}`,
    `link set ${link.device} txqueuelen ${TUN_TXQUEUELEN_PACKETS} up`,
    `addr add ${local} peer ${peer}/32 dev ${link.device}`,
  ];
  if (link.congestion !== undefined) {
    commands.push(`route replace ${peer}/32 dev ${link.device} proto kernel scope link src ${local} congctl ${link.congestion}`);
  }
  must(["ip", "-n", namespace, "-batch", "-"], `${commands.join("\n")}\n`);
}

/** Resolves once a TCP socket listens on `port` in `namespace` (by `ss`); rejects after `timeoutMs`. */
export async function waitForListener(namespace: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (run(["ip", "netns", "exec", namespace, "ss", "-Hltn", `sport = :${port}`]).out.trim() === "") {
    if (performance.now() > deadline) throw new Error(`nothing listens on port ${port} in ${namespace} after ${timeoutMs} ms`);
    await Bun.sleep(LISTEN_POLL_MS);
  }
}
