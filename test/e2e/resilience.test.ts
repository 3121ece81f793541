/**
 * End to end, resilience: the real CLI as separate processes over loopback,
 * with the fault proxy (test/support/fault-proxy.ts) between them:
 * tx → proxy → rx. Every transfer compares the
 * sha256 of input and of rx's stdout and both exit codes, under a deadline.
 *
 * 1. 300 MiB, threads 4, every connection reset after 8–12 MiB: identical, 0/0.
 * 2. One connection in three blackholed, 100 MiB, timeout 2: identical, 0/0;
 *    the time is compared with a clean run through the same proxy. With
 *    timeout 8, the feet the blackholed connections swallowed are hedged
 *    (protocol/README "Stragglers"): tx has its confirmation within 4 s.
 * 3. A 20 s outage (every connection dropped, new ones refused) after 50 MiB
 *    of 150 MiB, default patience: identical, 0/0, took ≥ 20 s, tx warned of
 *    lost connections, and neither end's peak RSS (VmHWM) passed 600 MiB.
 * 4. A byte flipped every ~5 MiB of 100 MiB: checksums catch the flips, the
 *    corrupted feet are fetched again: identical, 0/0.
 * 5. rx SIGKILLed after ~30 MiB reached its stdout: tx (patience 3) exits 10
 *    within 3–8 s with one `viamillipede:` line, no hang. Through a clean
 *    proxy, so tx's re-dials connect and are then reset (the proxy cannot
 *    reach rx), the harder case for a transmitter to give up on.
 * 6. `chaos 7` on tx, then on rx, timeout 1 both ends, 64 MiB: identical, 0/0.
 *    The processes inject the faults themselves; the proxy adds none.
 * 7. A blackholed connection (threads 1, frozen after 5 MiB, timeout 2) is
 *    given up within timeout + 1 s + backoff: measured from the proxy's
 *    blackhole event to its next accept (the re-dial), in process so that
 *    both events carry the test's own timestamps.
 *
 * Faults leave warnings on both stderrs; a success must leave no
 * `viamillipede:` error line and no stack trace.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { EXIT_CODES } from "../../src/errors.ts";
import { spawnFaultProxy, type FaultProxyProcess } from "../support/fault-proxy-cli.ts";
import { startFaultProxy, type FaultEvent, type FaultProxyStats } from "../support/fault-proxy.ts";
import { expectOneLineError } from "../support/e2e.ts";
import {
  errorLines,
  killLeftovers,
  makeInput,
  makeTempDir,
  peakRssSampler,
  STACK_LINE,
  startReceiver,
  startTransmitter,
  within,
  type CliOutcome,
  type Input,
  type ReceiverOutcome,
} from "../support/spawn.ts";
import { MIB } from "../support/sizes.ts";

const HOST = "127.0.0.1";
/** Loose bound on either end's peak RSS: the window is 64 MiB, the rest is Bun and socket buffers. */
const RSS_LIMIT_BYTES = 600 * MIB;

let temp: ReturnType<typeof makeTempDir>;
let large: Input; // 300 MiB
let medium: Input; // 150 MiB
let hundred: Input; // 100 MiB
let small: Input; // 64 MiB
beforeAll(async () => {
  temp = makeTempDir("e2e-resilience");
  large = await makeInput(temp.path, 300 * MIB, "resilience large");
  medium = await makeInput(temp.path, 150 * MIB + 12_345, "resilience outage");
  hundred = await makeInput(temp.path, 100 * MIB + 777, "resilience hundred");
  small = await makeInput(temp.path, 64 * MIB + 3, "resilience small");
}, 60_000);
afterAll(() => temp.remove());

let proxies: FaultProxyProcess[] = [];
afterEach(async () => {
  await killLeftovers();
  // A failed test may leave its proxy running: stop it (by its own pid, SIGTERM).
  await Promise.all(proxies.map((proxy) => proxy.stop()));
  proxies = [];
});

// ---- steps -------------------------------------------------------------------------------

interface Run {
  rx: ReceiverOutcome;
  tx: CliOutcome;
  /** The proxy's final counters (null if it printed none). */
  proxy: FaultProxyStats | null;
  /** From the transmitter's spawn until both ends have exited. */
  elapsedMs: number;
  /** Peak RSS (VmHWM) of each end, bytes; null where /proc is unavailable. */
  rxPeakRss: number | null;
  txPeakRss: number | null;
}

interface RunOptions {
  input: Input;
  /** Fault proxy CLI flags (`--target` is added). */
  proxy: readonly string[];
  rxArgs?: readonly string[];
  txArgs?: readonly string[];
  deadlineMs: number;
}

/** rx on port 0, the CLI fault proxy in front of it, tx from the input file to the proxy. */
async function run(options: RunOptions): Promise<Run> {
  const receiver = await startReceiver(["rx", "0", "bind", HOST, ...(options.rxArgs ?? [])]);
  const proxy = await spawnFaultProxy(["--target", `${HOST}:${receiver.port}`, ...options.proxy]);
  proxies.push(proxy);
  const started = performance.now();
  const transmitter = startTransmitter(["tx", HOST, `${proxy.port}`, ...(options.txArgs ?? [])], { file: options.input.path });
  const rxRss = peakRssSampler(receiver.proc);
  const txRss = peakRssSampler(transmitter.proc);
  const [tx, rx] = await within(options.deadlineMs, `transfer (tx ${(options.txArgs ?? []).join(" ")}; proxy ${options.proxy.join(" ")})`, Promise.all([transmitter.done(), receiver.done()]));
  const elapsedMs = performance.now() - started;
  const rxPeakRss = rxRss.stop();
  const txPeakRss = txRss.stop();
  const { stats } = await proxy.stop();
  proxies = proxies.filter((p) => p !== proxy);
  return { rx, tx, proxy: stats, elapsedMs, rxPeakRss, txPeakRss };
}

/** The last lines of a stderr, for failure messages. */
function tail(text: string, lines = 15): string {
  return text.split("\n").slice(-lines).join("\n");
}

/** Identical output, both exit 0, nothing on tx's stdout, no error line or stack trace on either stderr. */
function expectIdentical(outcome: Pick<Run, "rx" | "tx">, input: Input): void {
  const { rx, tx } = outcome;
  expect(
    {
      rxExit: rx.exitCode,
      rxSignal: rx.signalCode,
      rxStdoutBytes: rx.stdoutBytes,
      rxStdoutSha256: rx.stdoutSha256,
      txExit: tx.exitCode,
      txSignal: tx.signalCode,
      txStdout: tx.stdout,
      rxErrors: errorLines(rx.stderr),
      txErrors: errorLines(tx.stderr),
    },
    `tx stderr:\n${tail(tx.stderr)}\nrx stderr:\n${tail(rx.stderr)}`,
  ).toEqual({
    rxExit: 0,
    rxSignal: null,
    rxStdoutBytes: input.bytes,
    rxStdoutSha256: input.sha256,
    txExit: 0,
    txSignal: null,
    txStdout: "",
    rxErrors: [],
    txErrors: [],
  });
  expect(rx.stderr).not.toMatch(STACK_LINE);
  expect(tx.stderr).not.toMatch(STACK_LINE);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

function mib(bytes: number | null): string {
  return bytes === null ? "n/a" : `${Math.round(bytes / MIB)} MiB`;
}

/** Warnings about connections, counted, for the log. */
function lostLines(stderr: string): number {
  return stderr.split("\n").filter((line) => /lost|dropped|declared dead/.test(line)).length;
}

// ---- 1. resets ---------------------------------------------------------------------------

test(
  "300 MiB, threads 4, every connection reset after 8–12 MiB: identical, both exit 0",
  async () => {
    const outcome = await run({
      input: large,
      proxy: ["--seed", "1", "--reset-min", `${8 * MIB}`, "--reset-max", `${12 * MIB}`],
      txArgs: ["threads", "4"],
      deadlineMs: 90_000,
    });
    expectIdentical(outcome, large);
    // The resets really happened, many times over: 300 MiB in pieces of at most 12 MiB.
    expect(outcome.proxy?.resets ?? 0).toBeGreaterThanOrEqual(20);
    console.log(`resets: 300 MiB in ${seconds(outcome.elapsedMs)}, ${outcome.proxy?.resets} resets, ${outcome.proxy?.connectionsAccepted} connections`);
  },
  100_000,
);

// ---- 2. blackholes -----------------------------------------------------------------------

test(
  "100 MiB with one connection in three blackholed, timeout 2: identical, both exit 0",
  async () => {
    const clean = await run({ input: hundred, proxy: ["--seed", "2"], rxArgs: ["timeout", "2"], txArgs: ["timeout", "2"], deadlineMs: 30_000 });
    expectIdentical(clean, hundred);
    const holed = await run({
      input: hundred,
      proxy: ["--seed", "2", "--blackhole-every", "3"],
      rxArgs: ["timeout", "2"],
      txArgs: ["timeout", "2"],
      deadlineMs: 60_000,
    });
    expectIdentical(holed, hundred);
    // On loopback tx keeps its feet on its first few connections: often only index 2 reaches its blackhole.
    expect(holed.proxy?.blackholed ?? 0).toBeGreaterThanOrEqual(1);
    console.log(
      `blackholes: clean ${seconds(clean.elapsedMs)}, one in three blackholed ${seconds(holed.elapsedMs)} ` +
        `(${(holed.elapsedMs / clean.elapsedMs).toFixed(2)}x; tx exited after ${seconds(holed.tx.elapsedMs)}; ` +
        `${holed.proxy?.blackholed} blackholed of ${holed.proxy?.connectionsAccepted})`,
    );
    // Dead paths cost a few timeouts at most, not one per blackholed connection in series.
    expect(holed.elapsedMs).toBeLessThan(clean.elapsedMs + 20_000);
  },
  100_000,
);

test(
  "feet stuck on blackholed connections are hedged, not waited out: 100 MiB, one in three blackholed, timeout 8, confirmed within 4 s",
  async () => {
    // protocol/README "Stragglers": once the foot at the receiver's delivered_below
    // has been out for 4 foot round trips (capped at timeout) and a connection is
    // idle, another copy goes out there. So the feet a blackholed connection
    // swallowed cost round trips, not timeouts: the stream must be confirmed
    // before any timeout-driven recovery (the receiver's missing-foot request
    // after timeout/2, the connection declared dead after timeout) could help.
    const TIMEOUT_S = 8;
    const outcome = await run({
      input: hundred,
      proxy: ["--seed", "2", "--blackhole-every", "3"],
      rxArgs: ["timeout", `${TIMEOUT_S}`],
      txArgs: ["timeout", `${TIMEOUT_S}`],
      deadlineMs: 60_000,
    });
    expectIdentical(outcome, hundred);
    expect(outcome.proxy?.blackholed ?? 0).toBeGreaterThanOrEqual(1);
    console.log(`hedging: 100 MiB, one in three blackholed, timeout ${TIMEOUT_S}: tx confirmed and exited after ${seconds(outcome.tx.elapsedMs)}`);
    // tx exits once rx has confirmed the whole stream on its stdout. (rx itself
    // then lingers up to 5 s for a blackholed connection to close: by design.)
    expect(outcome.tx.elapsedMs, `tx stderr:\n${tail(outcome.tx.stderr)}\nrx stderr:\n${tail(outcome.rx.stderr)}`).toBeLessThan((TIMEOUT_S / 2) * 1000);
  },
  70_000,
);

// ---- 3. an outage ------------------------------------------------------------------------

const OUTAGE_MS = 20_000;

test(
  "a 20 s outage (all connections dropped, new ones refused) after 50 MiB of 150 MiB: identical, both exit 0, memory bounded",
  async () => {
    const outcome = await run({
      input: medium,
      proxy: ["--seed", "3", "--outage-after-bytes", `${50 * MIB}`, "--outage-ms", `${OUTAGE_MS}`, "--outage-mode", "refuse"],
      deadlineMs: 110_000,
    });
    expectIdentical(outcome, medium);
    expect(outcome.proxy).toMatchObject({ outages: 1 });
    expect(outcome.proxy?.outageDrops ?? 0).toBeGreaterThanOrEqual(1);
    // The outage really happened and the ends waited it out.
    expect(outcome.elapsedMs).toBeGreaterThanOrEqual(OUTAGE_MS);
    // tx said so (a warning; the wording is its own).
    expect(outcome.tx.stderr).toMatch(/lost|unreachable|refused|retrying/i);
    console.log(
      `outage: 150 MiB with a ${OUTAGE_MS / 1000} s outage in ${seconds(outcome.elapsedMs)}; ` +
        `peak RSS rx ${mib(outcome.rxPeakRss)}, tx ${mib(outcome.txPeakRss)}; tx warned ${lostLines(outcome.tx.stderr)} lines`,
    );
    if (outcome.rxPeakRss !== null) expect(outcome.rxPeakRss).toBeLessThan(RSS_LIMIT_BYTES);
    if (outcome.txPeakRss !== null) expect(outcome.txPeakRss).toBeLessThan(RSS_LIMIT_BYTES);
  },
  120_000,
);

// ---- 4. flipped bytes --------------------------------------------------------------------

test(
  "100 MiB with a byte flipped every ~5 MiB: checksums catch them, feet are fetched again: identical, both exit 0",
  async () => {
    const outcome = await run({ input: hundred, proxy: ["--seed", "4", "--flip-every", `${5 * MIB}`], deadlineMs: 60_000 });
    expectIdentical(outcome, hundred);
    expect(outcome.proxy?.flips ?? 0).toBeGreaterThanOrEqual(10);
    // Caught by the per-foot checksums (flips in headers may close a connection instead).
    expect(outcome.rx.stderr).toMatch(/checksum/);
    console.log(`flips: 100 MiB in ${seconds(outcome.elapsedMs)}, ${outcome.proxy?.flips} bytes flipped, ${outcome.proxy?.connectionsAccepted} connections`);
  },
  70_000,
);

// ---- 5. the receiver killed --------------------------------------------------------------

test(
  "rx SIGKILLed after ~30 MiB: tx (patience 3) exits 10 (peerLost) within 3–8 s with one line, no hang",
  async () => {
    const receiver = await startReceiver(["rx", "0", "bind", HOST]);
    // Throttled (16 MiB/s per connection) so that the stream is still flowing, far from its end, when rx dies.
    const proxy = await spawnFaultProxy(["--target", `${HOST}:${receiver.port}`, "--throttle", `${16 * MIB}`]);
    proxies.push(proxy);
    const transmitter = startTransmitter(["tx", HOST, `${proxy.port}`, "patience", "3"], { file: large.path });
    // Kill rx by its own pid once ~30 MiB reached its stdout.
    await within(
      20_000,
      "30 MiB on rx's stdout",
      receiver.stdout.untilBytes(30 * MIB).catch(() => Promise.reject(new Error(`rx exited early:\n${receiver.stderrSoFar()}`))),
    );
    receiver.proc.kill("SIGKILL");
    const killedAt = performance.now();
    const rx = await within(5_000, "rx after SIGKILL", receiver.done());
    const tx = await within(15_000, "tx after rx was killed", transmitter.done());
    const exitedAfterMs = performance.now() - killedAt;
    console.log(`rx killed after ${mib(rx.stdoutBytes)}: tx exited ${tx.exitCode} ${seconds(exitedAfterMs)} later: ${errorLines(tx.stderr).join(" / ")}`);
    expect({ rxSignal: rx.signalCode, txExit: tx.exitCode, txSignal: tx.signalCode, txStdout: tx.stdout }).toEqual({
      rxSignal: "SIGKILL",
      txExit: EXIT_CODES.peerLost,
      txSignal: null,
      txStdout: "",
    });
    expect(rx.stdoutBytes).toBeGreaterThanOrEqual(30 * MIB);
    expect(rx.stdoutBytes).toBeLessThan(large.bytes / 2);
    expectOneLineError(tx.stderr, /receiver|connection/);
    expect(exitedAfterMs).toBeGreaterThanOrEqual(2_900);
    expect(exitedAfterMs).toBeLessThan(8_000);
  },
  30_000,
);

// ---- 6. chaos ----------------------------------------------------------------------------

for (const side of ["tx", "rx"] as const) {
  test(
    `chaos 7 on ${side}, timeout 1 on both ends, 64 MiB: identical, both exit 0`,
    async () => {
      const chaos = ["chaos", "7"];
      const outcome = await run({
        input: small,
        proxy: ["--seed", "6"],
        rxArgs: ["timeout", "1", ...(side === "rx" ? chaos : [])],
        txArgs: ["timeout", "1", ...(side === "tx" ? chaos : [])],
        deadlineMs: 45_000,
      });
      expectIdentical(outcome, small);
      // The faults were injected (each is logged as a warning by the side that injects it).
      const stderr = side === "tx" ? outcome.tx.stderr : outcome.rx.stderr;
      const injected = stderr.split("\n").filter((line) => line.includes("chaos:")).length;
      expect(injected, stderr).toBeGreaterThanOrEqual(3);
      console.log(`chaos on ${side}: 64 MiB in ${seconds(outcome.elapsedMs)}, ${injected} faults injected`);
    },
    50_000,
  );
}

// ---- 7. blackhole detection time -----------------------------------------------------------

test(
  "a blackholed connection (threads 1, frozen after 5 MiB, timeout 2) is given up and re-dialled within 3.5 s",
  async () => {
    const TIMEOUT_S = 2;
    const input = await makeInput(temp.path, 8 * MIB, "resilience detect");
    const receiver = await startReceiver(["rx", "0", "bind", HOST, "timeout", `${TIMEOUT_S}`]);
    const events: Array<FaultEvent & { atMs: number }> = [];
    // In process: each event is timestamped here as it happens. Every connection
    // freezes after 5 MiB; the re-dial needs to carry only the 2 feet rx lacks.
    const proxy = await startFaultProxy({
      target: { host: HOST, port: receiver.port },
      seed: 7,
      blackholeEvery: 1,
      blackholeAfterBytes: 5 * MIB,
      onEvent: (event) => events.push({ ...event, atMs: performance.now() }),
    });
    try {
      const transmitter = startTransmitter(["tx", HOST, `${proxy.port}`, "threads", "1", "timeout", `${TIMEOUT_S}`], { file: input.path });
      const [tx, rx] = await within(30_000, "transfer through a blackhole", Promise.all([transmitter.done(), receiver.done()]));
      expectIdentical({ rx, tx }, input);
      const hole = events.find((event) => event.type === "blackhole" && event.index === 0);
      const redial = events.find((event) => event.type === "accept" && event.index === 1);
      expect(hole, JSON.stringify(events)).toBeDefined();
      expect(redial, JSON.stringify(events)).toBeDefined();
      const detectedMs = redial!.atMs - hole!.atMs;
      console.log(`blackhole detection, timeout ${TIMEOUT_S}: re-dialled ${seconds(detectedMs)} after the blackhole; ${proxy.stats().blackholed} blackholed`);
      // Heartbeats go 4 times per timeout, so the silence began at most timeout/4 before the freeze.
      expect(detectedMs).toBeGreaterThanOrEqual(TIMEOUT_S * 750);
      // timeout + watchdog tick + re-dial backoff, with room for a busy machine.
      expect(detectedMs).toBeLessThanOrEqual(3_500);
    } finally {
      proxy.close();
    }
  },
  40_000,
);
