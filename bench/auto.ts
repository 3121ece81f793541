#!/usr/bin/env bun
/**
 * `threads auto` where parallel connections matter: `bun run bench:auto`.
 *
 * The fault proxy (its CLI, a process of its own) sits between tx and rx on
 * 127.0.0.1 and throttles every connection to BENCH_AUTO_THROTTLE bytes/s
 * (default 8 MiB/s), the way one TCP flow is held back by its window on a long
 * fat network or by a per-flow policer. The same file goes through it with
 * fixed thread counts (4, 16, 32, 64) and with `threads auto`, BENCH_RUNS
 * rounds (default 1), interleaved. One connection is left out: it moves the
 * throttle's rate by construction, and 2 GiB at 8 MiB/s would take 4 minutes.
 * A run is timed from the transmitter's spawn until both ends have exited;
 * both must exit 0 and rx's output must hash to the input. Beside the whole
 * run's rate, the rate of its second half (from when half the bytes reached
 * rx's stdout) shows what each count does once started.
 *
 * The issue's aim: auto reaches at least 80% of the best fixed count's
 * throughput (whole runs) without the user choosing a count. The last line
 * says whether it did. Exit 1 only if a transfer failed.
 *
 * Knobs: BENCH_BYTES (default 2 GiB), BENCH_RUNS (default 1),
 * BENCH_AUTO_THROTTLE (bytes/s per connection, default 8 MiB/s).
 */
import { spawnFaultProxy } from "../test/support/fault-proxy-cli.ts";
import type { FaultProxyStats } from "../test/support/fault-proxy.ts";
import { startReceiver, startTransmitter, within, type Input } from "../test/support/spawn.ts";
import { BenchError, inputFile, median, positiveInt, runBench, sha256 } from "./common.ts";

const HOST = "127.0.0.1";
const MIB = 1024 * 1024;
const FIXED_THREADS = [4, 16, 32, 64];
const AIM = 0.8;
/** A transfer's deadline: the payload at one throttled connection's rate, plus a minute. */
const deadlineMs = (bytes: number, throttle: number): number => 60_000 + (bytes / throttle) * 1000;

interface Result {
  seconds: number;
  /** From half the bytes on rx's stdout to the end. */
  secondHalfSeconds: number;
  connections: number;
  /** The tuner's decisions (tx at verbose 1), for the record. */
  tuning: string[];
}

/** rx ← throttling proxy ← tx with `threads`, timed; throws unless both exit 0 with identical output. */
async function throughThrottle(input: Input, threads: string, throttle: number): Promise<Result> {
  const receiver = await startReceiver(["rx", "0", "bind", HOST]);
  const proxy = await spawnFaultProxy(["--target", `${HOST}:${receiver.port}`, "--throttle", `${throttle}`]);
  let run: Omit<Result, "connections">;
  let stats: FaultProxyStats | null;
  try {
    const started = performance.now();
    const transmitter = startTransmitter(["tx", HOST, `${proxy.port}`, "threads", threads, "verbose", "1"], { file: input.path });
    let halfAt = Infinity;
    const watchHalf = setInterval(() => {
      if (halfAt === Infinity && receiver.stdoutBytesSoFar() >= input.bytes / 2) halfAt = performance.now();
    }, 20);
    const [tx, rx] = await within(deadlineMs(input.bytes, throttle), `threads ${threads}`, Promise.all([transmitter.done(), receiver.done()])).finally(() =>
      clearInterval(watchHalf),
    );
    const ended = performance.now();
    const seconds = (ended - started) / 1000;
    if (tx.exitCode !== 0 || rx.exitCode !== 0 || rx.stdoutSha256 !== input.sha256) {
      throw new BenchError(`threads ${threads}: transfer failed (tx ${tx.exitCode}, rx ${rx.exitCode}, ${rx.stdoutBytes} bytes out):\n${tx.stderr}\n${rx.stderr}`);
    }
    const tuning = tx.stderr.split("\n").filter((line) => line.includes("threads auto:")).map((line) => line.replace(/^.*threads auto: /, ""));
    run = { seconds, secondHalfSeconds: (ended - Math.min(halfAt, ended)) / 1000, tuning };
  } finally {
    if (receiver.proc.exitCode === null) receiver.proc.kill("SIGKILL");
    stats = (await proxy.stop()).stats;
  }
  return { ...run, connections: stats?.connectionsAccepted ?? 0 };
}

async function main(): Promise<number> {
  const bytes = positiveInt("BENCH_BYTES", 2048 * MIB);
  const runs = positiveInt("BENCH_RUNS", 1);
  const throttle = positiveInt("BENCH_AUTO_THROTTLE", 8 * MIB);
  const file = inputFile(bytes);
  const input: Input = { path: file.path, bytes, sha256: await sha256(file.path) };
  const mib = bytes / MIB;
  const configs = [...FIXED_THREADS.map(String), "auto"];
  console.log(`threads auto bench: ${mib} MiB through the fault proxy at ${(throttle / MIB).toFixed(1)} MiB/s per connection, ${runs} round(s), median shown`);
  const results = new Map<string, Result[]>(configs.map((c) => [c, []]));
  for (let round = 1; round <= runs; round++) {
    for (const threads of configs) {
      const result = await throughThrottle(input, threads, throttle);
      results.get(threads)!.push(result);
      process.stderr.write(`  round ${round}, threads ${threads}: ${(mib / result.seconds).toFixed(1)} MiB/s, ${result.connections} connections opened\n`);
    }
  }
  const rate = (threads: string): number => mib / median(results.get(threads)!.map((r) => r.seconds));
  const secondHalfRate = (threads: string): number => mib / 2 / median(results.get(threads)!.map((r) => r.secondHalfSeconds));
  const best = FIXED_THREADS.map(String).reduce((a, b) => (rate(b) > rate(a) ? b : a));
  const rows = configs.map((threads) => {
    const last = results.get(threads)!.at(-1)!;
    return [
      threads === "auto" ? "threads auto" : `threads ${threads}`,
      rate(threads).toFixed(1),
      median(results.get(threads)!.map((r) => r.seconds)).toFixed(2),
      `${(rate(threads) / rate(best)).toFixed(2)}x`,
      secondHalfRate(threads).toFixed(1),
      String(last.connections),
    ];
  });
  const header = ["configuration", "MiB/s", "wall s", "vs best fixed", "2nd half MiB/s", "connections opened"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  console.log([line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n"));
  console.log(`threads auto's decisions (last run):\n${results.get("auto")!.at(-1)!.tuning.map((t) => `  ${t}`).join("\n")}`);
  const ratio = rate("auto") / rate(best);
  console.log(
    `summary: threads auto ${rate("auto").toFixed(1)} MiB/s = ${ratio.toFixed(2)}x the best fixed count (threads ${best}, ${rate(best).toFixed(1)} MiB/s); ` +
      `aim ≥ ${AIM}x: ${ratio >= AIM ? "met" : "NOT met"}`,
  );
  return 0;
}

if (import.meta.main) await runBench(main);
