/**
 * The WAN rig (test/support/wan-rig.ts, its forwarder test/support/wan-link.c) does what it is
 * set to, and viamillipede crosses a long, lossy path whole.
 *
 * 1. Round trip: ping over a 20 ms and a 150 ms link; the median is the set RTT ± 1 ms.
 * 2. Rate: iperf3 -P 16 over a clean 300 Mbit/s, 20 ms link reaches ≥ 0.9 of the set rate.
 * 3. Queue: a UDP sender at 5 × a 10 Mbit/s link's rate: what arrives comes at the link's rate,
 *    the queue never holds more than its limit, and the rest is dropped there.
 * 4. Loss: 3000 pings over a link set to 2 % loss; the forwarder's counters show 1–3 % lost,
 *    per direction.
 * 5. viamillipede default settings over 100 ms and 1 % loss (cubic): output identical, both ends
 *    exit 0, and at least netcat's rate, netcat measured over the same link in the same test
 *    (capped: it moves well under 1 MiB/s there); `foot auto` cut the long path's smaller feet.
 *
 * Needs root, ip, gcc, /dev/net/tun, and for some tests ping, iperf3 or OpenBSD netcat: each test
 * skips with the reason printed when what it needs is missing.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createWanRig, waitForListener, wanRigUnavailable, type DirectionCounters, type WanRig, type WanLinkSpec } from "../support/wan-rig.ts";
import { LONG_PATH_FOOT_BYTES } from "../../src/tx/foot-size.ts";
import { errorLines, killLeftovers, makeInput, makeTempDir, STACK_LINE, startReceiver, startTransmitter, within, type Input } from "../support/spawn.ts";

const MIB = 1024 * 1024;
const unavailable = wanRigUnavailable();
if (unavailable !== undefined) console.log(`skipping the WAN rig tests: ${unavailable}`);

function missing(tool: string, debianPackage: string): string | undefined {
  if (unavailable !== undefined) return unavailable;
  return Bun.which(tool) === null ? `'${tool}' not found (Debian: ${debianPackage})` : undefined;
}
function netcatMissing(): string | undefined {
  const reason = missing("nc", "netcat-openbsd");
  if (reason !== undefined) return reason;
  const help = Bun.spawnSync(["nc", "-h"], { stdout: "pipe", stderr: "pipe" });
  return `${help.stdout}${help.stderr}`.includes("OpenBSD") ? undefined : "nc is not OpenBSD netcat (Debian: netcat-openbsd)";
}
const noPing = missing("ping", "iputils-ping");
const noIperf = missing("iperf3", "iperf3");
const noNetcat = netcatMissing();
for (const [what, reason] of [
  ["ping", noPing],
  ["iperf3", noIperf],
  ["netcat", noNetcat],
] as const) {
  if (reason !== undefined && unavailable === undefined) console.log(`skipping the WAN rig tests that need ${what}: ${reason}`);
}

let rigs: WanRig[] = [];
afterEach(async () => {
  await killLeftovers();
  for (const rig of rigs) rig.destroy();
  rigs = [];
});

async function rig(specs: WanLinkSpec[]): Promise<WanRig> {
  const built = await createWanRig(specs);
  rigs.push(built);
  return built;
}

/** Runs a command in a namespace to its end; its stdout, or a thrown error with its stderr. */
async function inNamespace(namespace: string, cmd: string[]): Promise<string> {
  const proc = Bun.spawn(["ip", "netns", "exec", namespace, ...cmd], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}: ${err.trim()}`);
  return out;
}

function direction(counters: DirectionCounters[], link: number, which: "forward" | "reverse"): DirectionCounters {
  return counters.find((c) => c.link === link && c.direction === which)!;
}

describe.skipIf(unavailable !== undefined)("the WAN rig", () => {
  test.skipIf(noPing !== undefined)("ping's round trip is the set RTT ± 1 ms, per link", async () => {
    const net = await rig([
      { mbit: 300, rttMs: 20 },
      { mbit: 100, rttMs: 150 },
    ]);
    for (const link of net.links) {
      const out = await inNamespace(net.txNamespace, ["ping", "-n", "-c", "10", "-i", "0.05", link.rxAddress]);
      const times = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
      const median = times[times.length >> 1]!;
      console.log(`link ${link.number}: set ${link.rttMs} ms, ping median ${median} ms (${times.join(", ")})`);
      expect(times.length).toBe(10);
      expect(Math.abs(median - link.rttMs)).toBeLessThanOrEqual(1);
    }
  }, 30_000);

  test.skipIf(noIperf !== undefined)("iperf3 -P 16 over a clean 300 Mbit/s link reaches ≥ 0.9 of its rate", async () => {
    const net = await rig([{ mbit: 300, rttMs: 20 }]);
    const link = net.links[0]!;
    const server = Bun.spawn(["ip", "netns", "exec", net.rxNamespace, "iperf3", "-s", "-1", "-p", "5201"], { stdout: "ignore", stderr: "pipe" });
    try {
      await waitForListener(net.rxNamespace, 5201, 10_000);
      // 1 s omitted: slow start is not the rate the link was set to.
      const out = await inNamespace(net.txNamespace, ["iperf3", "-c", link.rxAddress, "-p", "5201", "-P", "16", "-t", "4", "-O", "1", "--json"]);
      const received = (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
      console.log(`iperf3 -P 16: ${(received / 1e6).toFixed(1)} Mbit/s received of ${link.mbit} (${((100 * received) / (link.mbit * 1e6)).toFixed(1)}%)`);
      expect(received / (link.mbit * 1e6)).toBeGreaterThanOrEqual(0.9);
    } finally {
      server.kill();
    }
  }, 30_000);

  test.skipIf(noIperf !== undefined)("a sender faster than the link: delivered at the link's rate, the queue held to its limit, the rest dropped", async () => {
    const queueBytes = 128 * 1024;
    const net = await rig([{ mbit: 10, rttMs: 10, queueBytes }]);
    const link = net.links[0]!;
    const server = Bun.spawn(["ip", "netns", "exec", net.rxNamespace, "iperf3", "-s", "-1", "-p", "5201"], { stdout: "ignore", stderr: "pipe" });
    try {
      await waitForListener(net.rxNamespace, 5201, 10_000);
      const out = await inNamespace(net.txNamespace, ["iperf3", "-c", link.rxAddress, "-p", "5201", "-u", "-b", "50M", "-l", "1400", "-t", "2", "--json"]);
      const sum = (JSON.parse(out) as { end: { sum: { bits_per_second: number; lost_percent: number } } }).end.sum;
      const forward = direction(await net.counters(), 1, "forward");
      console.log(
        `UDP at 50 Mbit/s into 10: ${forward.queueDrops} queue drops of ${forward.packets} packets, deepest queue ${forward.maxQueueBytes} bytes; ` +
          `iperf3 says ${sum.lost_percent.toFixed(1)}% lost`,
      );
      expect(forward.queueDrops).toBeGreaterThan(forward.packets * 0.6);
      expect(forward.maxQueueBytes).toBeLessThanOrEqual(queueBytes);
      expect(forward.maxQueueBytes).toBeGreaterThan(queueBytes - 1500);
      expect(forward.lost + forward.overflowDrops + forward.writeErrors).toBe(0);
      // What got through: the link's rate while the sender ran, plus the full queue drained after
      // it stopped (iperf3 counts UDP payload, 1400 of each 1428-byte packet, over the sender's time).
      const payloadShare = 1400 / 1428;
      const seconds = 2;
      const expected = (link.mbit * 1e6 + (queueBytes * 8) / seconds) * payloadShare;
      const delivered = sum.bits_per_second * (1 - sum.lost_percent / 100);
      console.log(`delivered ${(delivered / 1e6).toFixed(2)} Mbit/s of UDP payload, expected ${(expected / 1e6).toFixed(2)}`);
      expect(delivered / expected).toBeGreaterThan(0.95);
      expect(delivered / expected).toBeLessThan(1.05);
    } finally {
      server.kill();
    }
  }, 30_000);

  test.skipIf(noPing !== undefined)("a loss setting is seen in the forwarder's counters, per direction", async () => {
    const net = await rig([{ mbit: 100, rttMs: 2, loss: 0.02 }]);
    const link = net.links[0]!;
    // -l 8: up to 8 in flight, so 3000 take about 3 s on a loaded machine. ping exits 1 when
    // replies are missing, as they are meant to be here.
    const proc = Bun.spawn(["ip", "netns", "exec", net.txNamespace, "ping", "-n", "-q", "-c", "3000", "-i", "0.001", "-l", "8", "-W", "1", link.rxAddress], { stdout: "pipe", stderr: "pipe" });
    await proc.exited;
    const counters = await net.counters();
    for (const which of ["forward", "reverse"] as const) {
      const c = direction(counters, 1, which);
      const share = c.lost / c.packets;
      console.log(`${which}: ${c.lost} of ${c.packets} packets lost (${(100 * share).toFixed(2)}%, set 2%)`);
      expect(c.packets).toBeGreaterThan(2800);
      expect(share).toBeGreaterThan(0.01);
      expect(share).toBeLessThan(0.03);
      expect(c.deliveredPackets).toBe(c.packets - c.lost);
    }
  }, 30_000);
});

describe.skipIf(unavailable !== undefined)("viamillipede over the WAN rig", () => {
  const TRANSFER_BYTES = 10 * MIB;
  /** netcat's run is cut here: at 100 ms and 1 % loss it moves well under 1 MiB/s. */
  const NETCAT_CAP_MS = 5_000;
  let temp: ReturnType<typeof makeTempDir>;
  let input: Input;

  beforeAll(async () => {
    if (unavailable !== undefined) return;
    temp = makeTempDir("wan");
    input = await makeInput(temp.path, TRANSFER_BYTES, "wan");
  });
  afterAll(() => temp?.remove());

  test.skipIf(noNetcat !== undefined)("100 ms, 1 % loss, cubic: output identical, both ends exit 0, at least netcat's rate", async () => {
    const net = await rig([{ mbit: 300, rttMs: 100, loss: 0.01, congestion: "cubic" }]);
    const link = net.links[0]!;

    // netcat first: its rate from what arrived by the cap.
    const port = 9000;
    const ncReceiver = Bun.spawn(["ip", "netns", "exec", net.rxNamespace, "nc", "-l", "-N", "-n", "-s", link.rxAddress, "-p", String(port)], {
      stdout: "pipe",
      stderr: "pipe",
    });
    let ncBytes = 0;
    const counted = (async () => {
      for await (const chunk of ncReceiver.stdout) ncBytes += chunk.length;
    })();
    await waitForListener(net.rxNamespace, port, 10_000);
    const ncStarted = performance.now();
    const ncSender = Bun.spawn(["ip", "netns", "exec", net.txNamespace, "nc", "-N", link.rxAddress, String(port)], { stdin: Bun.file(input.path), stdout: "ignore", stderr: "pipe" });
    const ncDone = Promise.all([ncSender.exited, ncReceiver.exited]);
    const ncFinished = await Promise.race([ncDone.then(() => true), Bun.sleep(NETCAT_CAP_MS).then(() => false)]);
    const ncSeconds = (performance.now() - ncStarted) / 1000;
    const ncRate = ncBytes / ncSeconds;
    ncSender.kill();
    ncReceiver.kill();
    await counted;

    // verbose 1: the receiver says which foot size the hello asked for.
    const receiver = await startReceiver(["rx", "0", "verbose", "1"], { netns: net.rxNamespace });
    const started = performance.now();
    const transmitter = startTransmitter(["tx", link.rxAddress, String(receiver.port)], { file: input.path }, { netns: net.txNamespace });
    const [tx, rx] = await within(60_000, "viamillipede over 100 ms, 1 % loss", Promise.all([transmitter.done(), receiver.done()]));
    const rate = input.bytes / ((performance.now() - started) / 1000);
    const forward = direction(await net.counters(), 1, "forward");
    console.log(
      `100 ms, 1% loss, cubic: viamillipede ${(rate / MIB).toFixed(2)} MiB/s, netcat ${(ncRate / MIB).toFixed(2)} MiB/s` +
        `${ncFinished ? "" : ` (cut at ${NETCAT_CAP_MS / 1000} s)`} = ${(rate / ncRate).toFixed(1)}x; ` +
        `forwarder: ${((100 * forward.lost) / forward.packets).toFixed(2)}% of ${forward.packets} packets lost`,
    );

    expect({
      txExit: tx.exitCode,
      rxExit: rx.exitCode,
      bytes: rx.stdoutBytes,
      sha256: rx.stdoutSha256,
      errors: [...errorLines(tx.stderr), ...errorLines(rx.stderr)],
    }).toEqual({ txExit: 0, rxExit: 0, bytes: input.bytes, sha256: input.sha256, errors: [] });
    expect(tx.stderr).not.toMatch(STACK_LINE);
    expect(rx.stderr).not.toMatch(STACK_LINE);
    expect(rx.stderr).toContain(`foot size ${LONG_PATH_FOOT_BYTES}\n`);
    expect(ncBytes).toBeGreaterThan(0);
    // Loose on purpose (viamillipede is several times faster here): never slower than one TCP connection.
    expect(rate).toBeGreaterThanOrEqual(ncRate);
  }, 90_000);
});
