#!/usr/bin/env bun
/**
 * Long fat, lossy paths: netcat, iperf3 with 16 parallel streams, and viamillipede with
 * default settings, side by side over the WAN rig (test/support/wan-rig.ts: two network namespaces
 * joined by emulated links with their own rate, round trip and random loss).
 *
 * 1. A file of random bytes (BENCH_WAN_BYTES, default 256 MiB), cached in os.tmpdir() like the
 *    other benches' (bench/common.ts inputFile).
 * 2. The rows (bench/wan-report.ts): RTT 10, 50, 100, 200 ms × loss 0, 0.1 %, 1 % × cubic, bbr at
 *    300 Mbit/s; then two links of 100 Mbit/s with 10 and 150 ms round trips, per congestion
 *    control. Each row builds its own rig (the congestion control is set on the links' routes).
 * 3. Per row, BENCH_WAN_RUNS rounds (default 1), each running the three tools in turn:
 *    - netcat: `nc -N ADDR PORT < FILE` → `nc -l -N` into a file; sha256 checked;
 *    - iperf3: `iperf3 -c ADDR -P 16 -n BYTES`; the bytes its server received;
 *    - viamillipede: `tx ADDR PORT` (one clause per link) → `rx 0` into a file; sha256 checked.
 *    Each is timed from the sender's spawn until the receiving end has everything (netcat,
 *    viamillipede: both ends exited 0; iperf3: its server exited), and capped at BENCH_WAN_CAP_S
 *    (default 60): a capped run counts what had arrived by the cap, over the cap, and is marked.
 * 4. The median rate per tool, the ratios (vs netcat, vs iperf3, vs the link's rate) and the WAN
 *    targets (bench/wan-report.ts judge) per row; a Markdown table on stdout that README can take
 *    as it is; progress, with the forwarder's own loss and queue counters, on stderr.
 *
 * Knobs: BENCH_WAN_ROWS=REGEX (rows whose id matches: `rtt100-`, `loss1%-cubic`, `two-links`; an
 * unknown one lists them), BENCH_WAN_BYTES, BENCH_WAN_RUNS, BENCH_WAN_CAP_S, BENCH_WAN_TCP_BUFFER
 * (bytes: raise both namespaces' tcp_rmem/tcp_wmem maxima; default the kernel's), BENCH_WAN_VM_ARGS
 * (words added to both viamillipede ends, e.g. "congestion bbr"; default none), BENCH_WAN_LOG_DIR
 * (a directory: each viamillipede run's stderr goes to ROW-rROUND-tx.log and -rx.log there, e.g. with
 * BENCH_WAN_VM_ARGS="verbose 3" to see what `threads auto` and the window did; default none).
 *
 * Exit 0 when every transfer was whole (targets missed are reported, not failed: this measures);
 * 1 when a transfer failed or an output's sha256 differed. Needs root, ip, gcc and /dev/net/tun
 * (the rig), OpenBSD netcat and iperf3; says which is missing and exits 0 without them.
 * Run: `bun run bench:wan`. bench/wan.md: the rig, the choices, a full run's table and duration.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createWanRig, waitForListener, wanRigUnavailable, type WanRig } from "../test/support/wan-rig.ts";
import { BenchError, inputFile, positiveInt, runBench, sha256 } from "./common.ts";
import { netcatUnavailable, ROOT } from "./loopback-rows.ts";
import { Measured, oneLine } from "./measured.ts";
import { judge, matrixRows, selectRows, summariseRuns, table, type RowResult, type ToolFigure, type ToolRun, type WanRow } from "./wan-report.ts";

const MIB = 1 << 20;
const ENTRY = join(ROOT, "src/cli/main.ts");
const DEFAULT_BYTES = 256 * MIB;
const DEFAULT_CAP_S = 60;
/** How long a receiver gets to listen. */
const READY_TIMEOUT_MS = 15_000;
/** Ports inside the rig's private namespaces; each run takes the next one (no TIME_WAIT to meet). */
const FIRST_PORT = 9000;
const IPERF_STREAMS = 16;

interface Config {
  bytes: number;
  runs: number;
  capMs: number;
  rows: WanRow[];
  tcpBufferBytes: number | undefined;
}

function config(): Config {
  const raw = process.env.BENCH_WAN_TCP_BUFFER;
  return {
    bytes: positiveInt("BENCH_WAN_BYTES", DEFAULT_BYTES),
    runs: positiveInt("BENCH_WAN_RUNS", 1),
    capMs: positiveInt("BENCH_WAN_CAP_S", DEFAULT_CAP_S) * 1000,
    rows: selectRows(matrixRows(), process.env.BENCH_WAN_ROWS),
    tcpBufferBytes: raw === undefined || raw === "" ? undefined : positiveInt("BENCH_WAN_TCP_BUFFER", 0),
  };
}

function missingTool(): string | undefined {
  const rig = wanRigUnavailable();
  if (rig !== undefined) return rig;
  const nc = netcatUnavailable();
  if (nc !== undefined) return `netcat: ${nc}`;
  if (Bun.which("iperf3") === null) return "iperf3 not installed (apt-get install iperf3)";
  return undefined;
}

/** Processes running now, ended by pid if the bench is interrupted. */
const live = new Set<Measured>();
let currentRig: WanRig | undefined;

function start(label: string, namespace: string, cmd: string[], stdin: "ignore" | Bun.BunFile, stdout: "ignore" | Bun.BunFile, scratch: string): Measured {
  const measured = new Measured(label, { cmd: ["ip", "netns", "exec", namespace, ...cmd], stdin, stdout }, "bun", scratch, ROOT);
  live.add(measured);
  void measured.proc.exited.then(() => live.delete(measured));
  return measured;
}

/** Resolves once `label` listens on `port` in `namespace`; a BenchError when it does not in time. */
async function listening(namespace: string, port: number, label: string): Promise<void> {
  try {
    await waitForListener(namespace, port, READY_TIMEOUT_MS);
  } catch (error) {
    throw new BenchError(`${label}: ${(error as Error).message}`);
  }
}

/** `done`'s value, or "capped" once `capMs` has passed since `startedAt`. */
async function withinCap<T>(done: Promise<T>, startedAt: number, capMs: number): Promise<T | "capped"> {
  let timer: Timer | undefined;
  const cap = new Promise<"capped">((resolve) => {
    timer = setTimeout(() => resolve("capped"), Math.max(0, startedAt + capMs - performance.now()));
  });
  try {
    return await Promise.race([done, cap]);
  } finally {
    clearTimeout(timer);
  }
}

async function endOf(processes: Measured[]): Promise<void> {
  for (const proc of processes) proc.kill();
  await Promise.all(processes.map((proc) => proc.outcome()));
}

/** A byte stream's run (netcat, viamillipede): receiver into `out`, then the sender from `file`. */
async function streamRun(
  receiver: Measured,
  spawnSender: () => Measured,
  out: string,
  expected: string,
  capMs: number,
): Promise<ToolRun> {
  const startedAt = performance.now();
  const sender = spawnSender();
  const both = Promise.all([receiver.outcome(), sender.outcome()]);
  const finished = await withinCap(both, startedAt, capMs);
  if (finished === "capped") {
    const bytes = statSync(out).size;
    await endOf([sender, receiver]);
    return { bytes, seconds: capMs / 1000, capped: true };
  }
  const seconds = (performance.now() - startedAt) / 1000;
  const [rx, tx] = finished;
  if (tx.exitCode !== 0) throw new BenchError(`${sender.label} exited ${tx.exitCode ?? tx.signal}: ${oneLine(tx.stderr)}`);
  if (rx.exitCode !== 0) throw new BenchError(`${receiver.label} exited ${rx.exitCode ?? rx.signal}: ${oneLine(rx.stderr)}`);
  const got = await sha256(out);
  if (got !== expected) throw new BenchError(`${receiver.label}: output differs from the input (${statSync(out).size} bytes, sha256 ${got})`);
  return { bytes: statSync(out).size, seconds, capped: false };
}

interface RunContext {
  rig: WanRig;
  file: string;
  expected: string;
  bytes: number;
  capMs: number;
  scratch: string;
  port: number;
  /** The row's id and the round, for BENCH_WAN_LOG_DIR's file names. */
  runName: string;
}

async function netcat(c: RunContext): Promise<ToolRun> {
  const address = c.rig.links[0]!.rxAddress;
  const out = join(c.scratch, "netcat.out");
  const receiver = start("netcat receiver", c.rig.rxNamespace, ["nc", "-l", "-N", "-n", "-s", address, "-p", String(c.port)], "ignore", Bun.file(out), c.scratch);
  try {
    await listening(c.rig.rxNamespace, c.port, "netcat receiver");
    const sender = (): Measured => start("netcat sender", c.rig.txNamespace, ["nc", "-N", address, String(c.port)], Bun.file(c.file), "ignore", c.scratch);
    return await streamRun(receiver, sender, out, c.expected, c.capMs);
  } finally {
    rmSync(out, { force: true });
  }
}

async function iperf3(c: RunContext): Promise<ToolRun> {
  const address = c.rig.links[0]!.rxAddress;
  const report = join(c.scratch, "iperf3.json");
  const server = start("iperf3 server", c.rig.rxNamespace, ["iperf3", "-s", "-1", "-p", String(c.port), "--json"], "ignore", Bun.file(report), c.scratch);
  try {
    await listening(c.rig.rxNamespace, c.port, "iperf3 server");
    const startedAt = performance.now();
    const clientArgs = ["iperf3", "-c", address, "-p", String(c.port), "-P", String(IPERF_STREAMS), "-n", String(c.bytes), "--json"];
    const client = start("iperf3 client", c.rig.txNamespace, clientArgs, "ignore", "ignore", c.scratch);
    const served = server.outcome();
    const finished = await withinCap(served, startedAt, c.capMs);
    // SIGINT: iperf3's server reports what it has received so far, then exits.
    if (finished === "capped") server.proc.kill("SIGINT");
    const outcome = await served;
    const seconds = finished === "capped" ? c.capMs / 1000 : (performance.now() - startedAt) / 1000;
    await endOf([client]);
    let parsed: { end?: { sum_received?: { bytes?: number } }; error?: string };
    try {
      parsed = JSON.parse(readFileSync(report, "utf8")) as typeof parsed;
    } catch {
      throw new BenchError(`iperf3 server exited ${outcome.exitCode} without a JSON report: ${oneLine(outcome.stderr)}`);
    }
    const bytes = parsed.end?.sum_received?.bytes;
    if (bytes === undefined || (finished !== "capped" && parsed.error !== undefined)) {
      throw new BenchError(`iperf3 failed: ${parsed.error ?? "no bytes received in its report"}`);
    }
    return { bytes, seconds, capped: finished === "capped" };
  } finally {
    rmSync(report, { force: true });
  }
}

/** BENCH_WAN_VM_ARGS: keywords for both ends of viamillipede. */
const VM_ARGS = (process.env.BENCH_WAN_VM_ARGS ?? "").split(/\s+/).filter(Boolean);
/** BENCH_WAN_LOG_DIR: where each viamillipede run's stderr is kept. */
const LOG_DIR = process.env.BENCH_WAN_LOG_DIR || undefined;

/** Keeps a viamillipede end's stderr in LOG_DIR, once it has exited. */
async function keepLog(proc: Measured | undefined, file: string): Promise<void> {
  if (LOG_DIR === undefined || proc === undefined) return;
  mkdirSync(LOG_DIR, { recursive: true });
  writeFileSync(join(LOG_DIR, file), (await proc.outcome()).stderr);
}

async function viamillipede(c: RunContext): Promise<ToolRun> {
  const out = join(c.scratch, "viamillipede.out");
  const receiver = start("viamillipede rx", c.rig.rxNamespace, [process.execPath, ENTRY, "rx", "0", ...VM_ARGS], "ignore", Bun.file(out), c.scratch);
  let transmitter: Measured | undefined;
  try {
    const match = await receiver.waitForStderr(/listening on port (\d+)/, READY_TIMEOUT_MS);
    const targets = c.rig.links.flatMap((link) => ["tx", link.rxAddress, match[1]!]);
    const sender = (): Measured => {
      transmitter = start("viamillipede tx", c.rig.txNamespace, [process.execPath, ENTRY, ...targets, ...VM_ARGS], Bun.file(c.file), "ignore", c.scratch);
      return transmitter;
    };
    return await streamRun(receiver, sender, out, c.expected, c.capMs);
  } finally {
    rmSync(out, { force: true });
    await keepLog(transmitter, `${c.runName}-tx.log`);
    await keepLog(receiver, `${c.runName}-rx.log`);
  }
}

const TOOLS = [
  ["netcat", netcat],
  ["iperf3", iperf3],
  ["viamillipede", viamillipede],
] as const;
type ToolName = (typeof TOOLS)[number][0];

function describe(run: ToolRun): string {
  return `${(run.bytes / run.seconds / MIB).toFixed(1)} MiB/s${run.capped ? ` (capped: ${(run.bytes / MIB).toFixed(0)} MiB in ${run.seconds} s)` : ""}`;
}

async function benchRow(row: WanRow, index: number, total: number, cfg: Config, file: string, expected: string, scratch: string): Promise<{ result: RowResult; failed: boolean; tcpMemory: string }> {
  const rig = await createWanRig(row.links, { tcpBufferBytes: cfg.tcpBufferBytes });
  currentRig = rig;
  const runs = new Map<ToolName, ToolRun[]>(TOOLS.map(([name]) => [name, []]));
  const failures = new Map<ToolName, string>();
  const startedAt = performance.now();
  let port = FIRST_PORT;
  try {
    for (let round = 0; round < cfg.runs; round++) {
      for (const [name, tool] of TOOLS) {
        if (failures.has(name)) continue;
        const context: RunContext = { rig, file, expected, bytes: cfg.bytes, capMs: cfg.capMs, scratch, port: port++, runName: `${row.id}-r${round + 1}` };
        try {
          const outcome = await tool(context);
          runs.get(name)!.push(outcome);
          process.stderr.write(`[${index}/${total}] ${row.id} round ${round + 1}: ${name} ${describe(outcome)}\n`);
        } catch (error) {
          if (!(error instanceof BenchError)) throw error;
          failures.set(name, error.message);
          process.stderr.write(`[${index}/${total}] ${row.id} round ${round + 1}: ${name} FAILED: ${error.message}\n`);
          for (const proc of live) proc.kill();
        }
      }
    }
    const counters = await rig.counters();
    const forward = counters.filter((c) => c.direction === "forward");
    const lines = forward.map((c) => {
      const reverse = counters.find((r) => r.link === c.link && r.direction === "reverse")!;
      return (
        `link ${c.link}: ${c.packets} packets, ${((100 * c.lost) / Math.max(1, c.packets)).toFixed(3)}% lost at random ` +
        `(ACK direction ${((100 * reverse.lost) / Math.max(1, reverse.packets)).toFixed(3)}%), ${c.queueDrops} queue drops, ` +
        `deepest queue ${(c.maxQueueBytes / 1024).toFixed(0)} KiB${c.overflowDrops + c.writeErrors > 0 ? `, ${c.overflowDrops} overflow drops, ${c.writeErrors} write errors` : ""}`
      );
    });
    process.stderr.write(`[${index}/${total}] ${row.id} took ${((performance.now() - startedAt) / 1000).toFixed(0)} s; forwarder: ${lines.join("; ")}\n`);
  } finally {
    rig.destroy();
    currentRig = undefined;
  }
  const figure = (name: ToolName): ToolFigure => {
    const failure = failures.get(name);
    return failure !== undefined ? { failed: failure } : summariseRuns(runs.get(name)!);
  };
  return {
    result: { row, linkBytesPerSecond: rig.totalBytesPerSecond, netcat: figure("netcat"), iperf3: figure("iperf3"), viamillipede: figure("viamillipede") },
    failed: failures.has("netcat") || failures.has("viamillipede"),
    tcpMemory: `tcp_rmem ${rig.tcpMemory.rmem}, tcp_wmem ${rig.tcpMemory.wmem}`,
  };
}

function interrupted(signal: NodeJS.Signals): void {
  for (const proc of live) proc.kill();
  currentRig?.destroy();
  process.stderr.write(`bench:wan: interrupted (${signal})\n`);
  process.exit(130);
}

async function main(): Promise<number> {
  const missing = missingTool();
  if (missing !== undefined) {
    console.log(`bench:wan skipped: ${missing}`);
    return 0;
  }
  const cfg = config();
  process.on("SIGINT", interrupted);
  process.on("SIGTERM", interrupted);
  const { path: file } = inputFile(cfg.bytes);
  const expected = await sha256(file);
  const scratch = mkdtempSync(join(tmpdir(), "viamillipede-bench-wan-"));
  const startedAt = performance.now();
  const results: RowResult[] = [];
  let failed = false;
  let tcpMemory = "";
  try {
    for (const [i, row] of cfg.rows.entries()) {
      const outcome = await benchRow(row, i + 1, cfg.rows.length, cfg, file, expected, scratch);
      results.push(outcome.result);
      failed ||= outcome.failed;
      tcpMemory = outcome.tcpMemory;
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const minutes = (performance.now() - startedAt) / 60_000;
  console.log(
    `bench:wan: ${(cfg.bytes / MIB).toFixed(0)} MiB a run, median of ${cfg.runs} run(s) per tool, cap ${cfg.capMs / 1000} s a run, ` +
      `${results.length} row(s) in ${minutes.toFixed(1)} min; bun ${Bun.version}; ${tcpMemory} in both namespaces; ` +
      `bottleneck queue per direction = rate × RTT + 64 KiB`,
  );
  console.log("");
  console.log(table(results));
  console.log("");
  console.log(
    "Rates in MiB/s over the whole run from the sender's start, start-up included. (capped): the run hit the cap and the rate is " +
      "what had arrived by then. iperf3: the bytes its server received. Two-link rows: netcat and iperf3 on the 10 ms link alone, " +
      "viamillipede on both, \"vs link\" against the summed rate.",
  );
  const met = results.filter((result) => judge(result).met).length;
  console.log(`targets met on ${met} of ${results.length} row(s)`);
  if (failed) process.stderr.write("bench:wan: a netcat or viamillipede transfer failed (see above)\n");
  return failed ? 1 : 0;
}

await runBench(main);
