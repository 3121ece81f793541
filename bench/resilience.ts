#!/usr/bin/env bun
/**
 * Resilience costs, on 127.0.0.1 only: `bun bench/resilience.ts`.
 *
 * 1. 300 MiB of incompressible bytes (a seed's AES-CTR keystream) in a temp file.
 * 2. Throughput under resets, BENCH_RUNS rounds (default 3), interleaved: each
 *    round runs, with threads 16 and 4, a clean transfer through
 *    the fault proxy (its CLI, a process of its own) and one where the proxy
 *    resets every connection after 8–12 MiB (~10 MiB). A run is timed from the transmitter's spawn until both
 *    ends have exited; both must exit 0 and rx's stdout must hash to the input.
 *    The aim: resets every ~10 MiB cost at most 1.5x.
 * 3. Blackhole detection: threads 1, the proxy (in process, so its events carry
 *    this process's timestamps) freezes every connection after 5 MiB of an
 *    8 MiB stream; the time from the first blackhole to the proxy's next accept
 *    (the re-dial) is how long a dead path goes unnoticed, for `timeout 5` (the
 *    default) and `timeout 2`, BENCH_RUNS runs each.
 * 4. A table of medians (with ranges) on stdout and a one-line summary. Exit 1
 *    if any transfer failed.
 *
 * Knobs: BENCH_RUNS (default 3), BENCH_BYTES (default 300 MiB).
 */
import { spawnFaultProxy } from "../test/support/fault-proxy-cli.ts";
import { startFaultProxy, type FaultProxyStats } from "../test/support/fault-proxy.ts";
import { makeInput, makeTempDir, startReceiver, startTransmitter, within, type Input } from "../test/support/spawn.ts";
import { BenchError, median, positiveInt, runBench } from "./common.ts";

const HOST = "127.0.0.1";
const MIB = 1024 * 1024;
const DEFAULT_BYTES = 300 * MIB;
const DEFAULT_RUNS = 3;
const RESET_MIN_BYTES = 8 * MIB;
const RESET_MAX_BYTES = 12 * MIB;
/** The aim for resets every ~10 MiB, against a clean run. */
const RESET_RATIO_AIM = 1.5;
/** The old default, and the 4 the end-to-end test uses. */
const THREADS = [16, 4];
const DETECT_INPUT_BYTES = 8 * MIB;
const DETECT_BLACKHOLE_AFTER_BYTES = 5 * MIB;
const DETECT_TIMEOUTS_S = [5, 2];
/** One transfer's deadline. */
const RUN_DEADLINE_MS = 120_000;

function range(values: readonly number[], digits: number): string {
  return `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;
}

// ---- one transfer ----------------------------------------------------------------------

interface TransferResult {
  ms: number;
  resets: number;
  /** Bytes the proxy forwarded toward rx, over the input's length: what re-sends cost. */
  amplification: number;
}

/** rx ← CLI proxy (with `proxyArgs`) ← tx, timed; throws unless both exit 0 with identical output. */
async function throughProxy(input: Input, threads: number, proxyArgs: readonly string[]): Promise<TransferResult> {
  const receiver = await startReceiver(["rx", "0", "bind", HOST]);
  const proxy = await spawnFaultProxy(["--target", `${HOST}:${receiver.port}`, ...proxyArgs]);
  let ms = 0;
  let stats: FaultProxyStats | null = null;
  try {
    const started = performance.now();
    const transmitter = startTransmitter(["tx", HOST, `${proxy.port}`, "threads", `${threads}`], { file: input.path });
    const [tx, rx] = await within(RUN_DEADLINE_MS, "transfer", Promise.all([transmitter.done(), receiver.done()]));
    ms = performance.now() - started;
    if (tx.exitCode !== 0 || rx.exitCode !== 0 || rx.stdoutSha256 !== input.sha256) {
      throw new BenchError(`transfer failed (tx ${tx.exitCode}, rx ${rx.exitCode}, ${rx.stdoutBytes} bytes out):\n${tx.stderr}\n${rx.stderr}`);
    }
  } finally {
    if (receiver.proc.exitCode === null) receiver.proc.kill("SIGKILL");
    stats = (await proxy.stop()).stats;
  }
  return { ms, resets: stats?.resets ?? 0, amplification: (stats?.bytesUp ?? 0) / input.bytes };
}

/** Milliseconds from the first connection's blackhole to the re-dial, with `timeout timeoutS` on both ends. */
async function detection(input: Input, timeoutS: number): Promise<number> {
  const receiver = await startReceiver(["rx", "0", "bind", HOST, "timeout", `${timeoutS}`]);
  let holeAt: number | undefined;
  let redialAt: number | undefined;
  const proxy = await startFaultProxy({
    target: { host: HOST, port: receiver.port },
    seed: 7,
    blackholeEvery: 1,
    blackholeAfterBytes: DETECT_BLACKHOLE_AFTER_BYTES,
    onEvent: (event) => {
      if (event.type === "blackhole" && event.index === 0) holeAt = performance.now();
      if (event.type === "accept" && event.index === 1) redialAt = performance.now();
    },
  });
  try {
    const transmitter = startTransmitter(["tx", HOST, `${proxy.port}`, "threads", "1", "timeout", `${timeoutS}`], { file: input.path });
    const [tx, rx] = await within(RUN_DEADLINE_MS, "transfer through a blackhole", Promise.all([transmitter.done(), receiver.done()]));
    if (tx.exitCode !== 0 || rx.exitCode !== 0 || rx.stdoutSha256 !== input.sha256) {
      throw new BenchError(`transfer through a blackhole failed (tx ${tx.exitCode}, rx ${rx.exitCode}):\n${tx.stderr}\n${rx.stderr}`);
    }
    if (holeAt === undefined || redialAt === undefined) throw new BenchError("the proxy saw no blackhole or no re-dial");
    return redialAt - holeAt;
  } finally {
    proxy.close();
    if (receiver.proc.exitCode === null) receiver.proc.kill("SIGKILL");
  }
}

// ---- the run ---------------------------------------------------------------------------

async function main(): Promise<number> {
  const runs = positiveInt("BENCH_RUNS", DEFAULT_RUNS);
  const bytes = positiveInt("BENCH_BYTES", DEFAULT_BYTES);
  const temp = makeTempDir("bench-resilience");
  try {
    const input = await makeInput(temp.path, bytes, "bench resilience");
    const small = await makeInput(temp.path, DETECT_INPUT_BYTES, "bench detect");
    const mib = bytes / MIB;
    process.stderr.write(`resilience bench: ${mib} MiB through the fault proxy, ${runs} rounds; blackhole detection ${runs} runs per timeout\n`);

    const clean = new Map<number, number[]>(THREADS.map((t) => [t, []]));
    const reset = new Map<number, number[]>(THREADS.map((t) => [t, []]));
    const resetCounts = new Map<number, number[]>(THREADS.map((t) => [t, []]));
    const amplification = new Map<number, number[]>(THREADS.map((t) => [t, []]));
    for (let round = 1; round <= runs; round++) {
      for (const threads of THREADS) {
        const c = await throughProxy(input, threads, ["--seed", `${round}`]);
        clean.get(threads)!.push(c.ms);
        const r = await throughProxy(input, threads, ["--seed", `${round}`, "--reset-min", `${RESET_MIN_BYTES}`, "--reset-max", `${RESET_MAX_BYTES}`]);
        reset.get(threads)!.push(r.ms);
        resetCounts.get(threads)!.push(r.resets);
        amplification.get(threads)!.push(r.amplification);
        process.stderr.write(`  round ${round}, threads ${threads}: clean ${(c.ms / 1000).toFixed(2)} s, resets ${(r.ms / 1000).toFixed(2)} s (${r.resets} resets)\n`);
      }
    }
    const detect = new Map<number, number[]>();
    for (const timeoutS of DETECT_TIMEOUTS_S) {
      const samples: number[] = [];
      for (let run = 1; run <= runs; run++) samples.push(await detection(small, timeoutS));
      detect.set(timeoutS, samples);
      process.stderr.write(`  timeout ${timeoutS}: detected in ${samples.map((ms) => (ms / 1000).toFixed(2)).join(", ")} s\n`);
    }

    const ratios = new Map(THREADS.map((t) => [t, median(reset.get(t)!) / median(clean.get(t)!)]));
    const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    const rate = (ms: number) => `${(mib / (ms / 1000)).toFixed(0)} MiB/s`;
    const rows: string[][] = [
      ["case", "median", "range", "notes"],
      ...THREADS.flatMap((threads) => {
        const c = clean.get(threads)!;
        const r = reset.get(threads)!;
        return [
          [`threads ${threads}, clean, ${mib} MiB via proxy`, secs(median(c)), `${range(c.map((ms) => ms / 1000), 2)} s`, rate(median(c))],
          [
            `threads ${threads}, resets every 8–12 MiB`,
            secs(median(r)),
            `${range(r.map((ms) => ms / 1000), 2)} s`,
            `${rate(median(r))}, ${median(resetCounts.get(threads)!)} resets, ` +
              `${median(amplification.get(threads)!).toFixed(2)} bytes sent per byte, ${ratios.get(threads)!.toFixed(2)}x clean`,
          ],
        ];
      }),
      ...DETECT_TIMEOUTS_S.map((timeoutS) => {
        const samples = detect.get(timeoutS)!;
        return [`blackhole detection, timeout ${timeoutS}`, secs(median(samples)), `${range(samples.map((ms) => ms / 1000), 2)} s`, `bound: timeout + 1 s = ${timeoutS + 1} s`];
      }),
    ];
    const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
    for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd());
    const detectText = DETECT_TIMEOUTS_S.map((timeoutS) => `${(median(detect.get(timeoutS)!) / 1000).toFixed(2)} s at timeout ${timeoutS}`).join(", ");
    const ratioText = THREADS.map((t) => `${ratios.get(t)!.toFixed(2)}x at threads ${t}`).join(", ");
    const met = [...ratios.values()].every((ratio) => ratio <= RESET_RATIO_AIM);
    console.log(
      `summary: resets every ~10 MiB cost ${ratioText} of a clean run (aim ≤ ${RESET_RATIO_AIM}x: ${met ? "met" : "missed"}); ` +
        `a blackholed connection is re-dialled after ${detectText}`,
    );
    return 0;
  } finally {
    temp.remove();
  }
}

if (import.meta.main) await runBench(main);
