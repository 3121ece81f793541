#!/usr/bin/env bun
/**
 * Loopback throughput, on 127.0.0.1 only: viamillipede against OpenBSD netcat and socat, and
 * whether it meets issue 9's targets (default settings ≥ 1.0x netcat from a file, ≥ 0.9x netcat
 * through pipes, peak RSS ≤ 256 MiB at each end, CPU seconds per GiB beside netcat's).
 *
 * 1. A file of random (incompressible) bytes is created once and cached in os.tmpdir(), then
 *    read to /dev/null so it sits in the page cache (a compressible text file likewise, for
 *    the compress rows).
 * 2. The rows (bench/loopback-rows.ts), in two sections:
 *    - file: `tool < FILE`, `tool > /dev/null`: netcat; socat (when installed); viamillipede
 *      default settings (named by what the CLI's help says the default is), `threads 1`, `4`,
 *      `16`, `auto`; encrypt; compress zstd on random and on text input; plain on text.
 *    - pipes: `cat FILE | tool`, `tool | cat > /dev/null`, each end one `bash -c` pipeline:
 *      netcat, socat, viamillipede default.
 * 3. Every viamillipede row transfers once into a temp file and the sha256 must match the
 *    source (untimed, through the same pipes), so a broken transfer cannot be timed.
 * 4. BENCH_RUNS rounds; each round runs every row once, in the same order (interleaved, so drift
 *    in the machine hits all of them alike). A run is timed from the sender's spawn until both
 *    ends have exited, and both must exit 0. The receiver listens on port 0 and says which port
 *    it got. A stuck end is ended by pid, with everything it started.
 * 5. Per row: median wall time → MiB/s; CPU seconds (user + sys of both ends, pipeline members
 *    included, median) and per GiB; peak RSS of each end (the largest single process, maximum
 *    over the runs); the ratio against the same section's netcat row.
 * 6. Two tables on stdout, the feature summary, then the verdict: one line per target, "met" or
 *    "NOT met" (throughput ratios are judged only at 1 GiB or more). Exit 0 either way (this reports, it is not a test); exit 1 only when a transfer
 *    failed or an output's sha256 differed.
 *
 * Knobs: BENCH_BYTES (default 1 GiB), BENCH_RUNS (default 3), BENCH_SMOKE=1 (64 MiB, 1 run: CI's
 * quick version), BENCH_ONLY=REGEX (only the rows whose name matches, e.g. `pipes`, `^netcat$`,
 * or `^(?!.*auto)` for all but the auto row), BENCH_RUSAGE=time|bun (how CPU and RSS are read:
 * /usr/bin/time when present, else Bun's subprocess resourceUsage()).
 */
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BenchError, GENERATE_BLOCK_BYTES, inputFile, positiveInt, sha256 } from "./common.ts";
import {
  allRows,
  defaultRowName,
  HOST,
  netcatUnavailable,
  receiverPlumbing,
  ROOT,
  type Row,
  senderPlumbing,
  socatUnavailable,
} from "./loopback-rows.ts";
import { featuresLine, runRate, sectionTable, summarise, verdict, type RunResult, type Summary } from "./loopback-report.ts";
import { Measured, oneLine, TIME_BIN, type RusageSource } from "./measured.ts";

const MIB = 1 << 20;
const GIB = 1 << 30;
const SMOKE_BYTES = 64 * MIB;
const DEFAULT_BYTES = GIB;
const DEFAULT_RUNS = 3;
/** How long a receiver gets to say it is listening. */
const READY_TIMEOUT_MS = 15_000;
/** A transfer's deadline: this much, plus the payload at a crawl of DEADLINE_FLOOR_MIB_S. */
const DEADLINE_BASE_MS = 30_000;
const DEADLINE_FLOOR_MIB_S = 5;
/** After one end exits, how long the other gets before it is killed. */
const PEER_GRACE_MS = 10_000;

// ---- configuration ----------------------------------------------------------------------

interface Config {
  bytes: number;
  runs: number;
  smoke: boolean;
  rusage: RusageSource;
  /** BENCH_ONLY: run only the rows whose name matches. */
  only: RegExp | undefined;
}

function readConfig(): Config {
  const smoke = process.env.BENCH_SMOKE === "1";
  const wanted = process.env.BENCH_RUSAGE ?? "";
  if (!["", "time", "bun"].includes(wanted)) throw new BenchError(`BENCH_RUSAGE=${wanted}: expected time or bun`);
  if (wanted === "time" && !existsSync(TIME_BIN)) throw new BenchError(`BENCH_RUSAGE=time but ${TIME_BIN} is not installed`);
  return {
    bytes: positiveInt("BENCH_BYTES", smoke ? SMOKE_BYTES : DEFAULT_BYTES),
    runs: positiveInt("BENCH_RUNS", smoke ? 1 : DEFAULT_RUNS),
    smoke,
    rusage: wanted === "bun" || (wanted === "" && !existsSync(TIME_BIN)) ? "bun" : "time",
    only: onlyPattern(process.env.BENCH_ONLY),
  };
}

function onlyPattern(raw: string | undefined): RegExp | undefined {
  if (raw === undefined || raw === "") return undefined;
  try {
    return new RegExp(raw);
  } catch (error) {
    throw new BenchError(`BENCH_ONLY=${raw}: not a regular expression (${error instanceof Error ? error.message : error})`);
  }
}

/** The rows BENCH_ONLY selects; naming them all when it selects none. */
function selectRows(rows: Row[], only: RegExp | undefined): Row[] {
  if (only === undefined) return rows;
  const chosen = rows.filter((row) => only.test(row.name));
  if (chosen.length === 0) {
    throw new BenchError(`BENCH_ONLY=${only.source} matches no row; the rows are: ${rows.map((r) => r.name).join(", ")}`);
  }
  return chosen;
}

// ---- one transfer -----------------------------------------------------------------------

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs the receiver, then the sender reading `input`; resolves once both exited 0. */
async function transfer(cfg: Config, row: Row, input: string, output: string | undefined, scratch: string): Promise<RunResult> {
  const deadlineMs = DEADLINE_BASE_MS + (cfg.bytes / MIB / DEADLINE_FLOOR_MIB_S) * 1000;
  const rx = new Measured(`${row.name} receiver`, receiverPlumbing(row, output), cfg.rusage, scratch, ROOT);
  let tx: Measured | undefined;
  try {
    const match = await rx.waitForStderr(row.tool.ready, READY_TIMEOUT_MS);
    const started = performance.now();
    tx = new Measured(`${row.name} sender`, senderPlumbing(row, Number(match[1]), input), cfg.rusage, scratch, ROOT);
    const sides = [rx, tx];
    let ended = 0;
    const finished = sides.map((side) =>
      side.proc.exited.then(() => {
        ended = performance.now();
        // One end is done: the other gets a grace period, then is ended by pid.
        const other = side === rx ? tx! : rx;
        void sleep(PEER_GRACE_MS).then(() => other.kill());
      }),
    );
    const timedOut = await Promise.race([Promise.all(finished).then(() => false), sleep(deadlineMs).then(() => true)]);
    if (timedOut) {
      for (const side of sides) side.kill();
      throw new BenchError(`${row.name}: no finish within ${Math.round(deadlineMs / 1000)} s`);
    }
    const [rxOutcome, txOutcome] = await Promise.all([rx.outcome(), tx.outcome()]);
    const failures = ([["sender", txOutcome], ["receiver", rxOutcome]] as const)
      .filter(([, outcome]) => outcome.exitCode !== 0)
      .map(([side, outcome]) => {
        const how = outcome.signal ? `signal ${outcome.signal}` : `exit ${outcome.exitCode}`;
        return `${side} failed (${how}): ${oneLine(outcome.stderr)}`;
      });
    if (failures.length) throw new BenchError(`${row.name}: ${failures.join("; ")}`);
    const cpu = rxOutcome.usage && txOutcome.usage ? rxOutcome.usage.cpuSeconds + txOutcome.usage.cpuSeconds : undefined;
    return {
      seconds: (ended - started) / 1000,
      cpuSeconds: cpu,
      rxRssBytes: rxOutcome.usage?.maxRssBytes,
      txRssBytes: txOutcome.usage?.maxRssBytes,
    };
  } finally {
    rx.kill();
    tx?.kill();
  }
}

// ---- input ------------------------------------------------------------------------------

/**
 * A cached compressible file of `bytes` bytes: numbered log-like lines (zstd
 * shrinks it roughly 20 to 60 times), so compression has something to do.
 */
function textFile(bytes: number): string {
  const path = join(tmpdir(), `viamillipede-bench-text-${bytes}.txt`);
  if (existsSync(path) && statSync(path).size === bytes) return path;
  const partial = `${path}.${process.pid}.partial`;
  const fd = openSync(partial, "w");
  try {
    let line = 0;
    for (let left = bytes; left > 0; ) {
      let block = "";
      while (block.length < GENERATE_BLOCK_BYTES / 4) block += `${line} 2024-05-01T12:00:${line % 60} host-${line % 17} service=${line % 5} ok bytes=${(line++ * 7919) % 100000}\n`;
      const chunk = Buffer.from(block).subarray(0, Math.min(left, block.length));
      writeSync(fd, chunk);
      left -= chunk.length;
    }
  } finally {
    closeSync(fd);
  }
  renameSync(partial, path);
  return path;
}

interface Inputs {
  path: Record<Row["input"], string>;
  sha256: Record<Row["input"], string>;
  /** For the header: whether the random file was made now, and how long preparing took. */
  created: boolean;
  seconds: number;
}

/** The input files, read once so they sit in the page cache, with their sha256. */
async function prepareInputs(bytes: number): Promise<Inputs> {
  const t0 = performance.now();
  const random = inputFile(bytes);
  const text = textFile(bytes);
  for (const path of [random.path, text]) {
    const cat = Bun.spawn(["cat", path], { stdout: "ignore" });
    if ((await cat.exited) !== 0) throw new BenchError(`cat ${path} failed`);
  }
  return {
    path: { random: random.path, text },
    sha256: { random: await sha256(random.path), text: await sha256(text) },
    created: random.created,
    seconds: (performance.now() - t0) / 1000,
  };
}

// ---- the bench --------------------------------------------------------------------------

/** Correctness first, untimed: each verified row once into a file, whose sha256 must match. */
async function verifyRows(cfg: Config, rows: Row[], inputs: Inputs, scratch: string): Promise<void> {
  const out = join(scratch, "verify.bin");
  for (const row of rows.filter((r) => r.verify)) {
    rmSync(out, { force: true });
    await transfer(cfg, row, inputs.path[row.input], out, scratch);
    const got = await sha256(out);
    rmSync(out, { force: true });
    const want = inputs.sha256[row.input];
    if (got !== want) throw new BenchError(`${row.name}: output sha256 ${got} differs from input ${want}`);
  }
}

/** BENCH_RUNS rounds, every row once per round; progress on stderr. */
async function timeRows(cfg: Config, rows: Row[], inputs: Inputs, scratch: string): Promise<Map<Row, RunResult[]>> {
  const results = new Map<Row, RunResult[]>(rows.map((r) => [r, []]));
  for (let round = 1; round <= cfg.runs; round++) {
    for (const row of rows) {
      const result = await transfer(cfg, row, inputs.path[row.input], undefined, scratch);
      results.get(row)!.push(result);
      process.stderr.write(`round ${round}/${cfg.runs} ${row.name}: ${runRate(cfg.bytes, result).toFixed(0)} MiB/s\n`);
    }
  }
  return results;
}

async function main(): Promise<number> {
  const cfg = readConfig();
  const scratch = mkdtempSync(join(tmpdir(), "viamillipede-bench-"));
  try {
    const keyFile = join(scratch, "bench.key");
    writeFileSync(keyFile, randomBytes(32));
    const ncMissing = netcatUnavailable();
    const socatMissing = socatUnavailable();
    const rows = selectRows(allRows({ netcat: !ncMissing, socat: !socatMissing, defaultName: defaultRowName(), keyFile }), cfg.only);

    const inputs = await prepareInputs(cfg.bytes);
    console.log(
      `viamillipede loopback bench: ${(cfg.bytes / MIB).toFixed(0)} MiB on ${HOST}, ${cfg.runs} run(s) each, median shown` +
        (cfg.smoke ? " (BENCH_SMOKE)" : "") +
        (cfg.only ? ` (BENCH_ONLY=${cfg.only.source}: ${rows.length} row(s))` : ""),
    );
    console.log(
      `input ${inputs.path.random} (${inputs.created ? "created" : "reused"}, in page cache, sha256 ${inputs.sha256.random.slice(0, 16)}…, ` +
        `prepared in ${inputs.seconds.toFixed(1)} s)`,
    );
    console.log(`bun ${Bun.version}, ${navigator.hardwareConcurrency} CPUs; CPU and RSS from ${cfg.rusage === "time" ? TIME_BIN : "Bun resourceUsage()"}`);
    if (ncMissing) console.log(`netcat: skipped, ${ncMissing}`);
    if (socatMissing) console.log(`socat: skipped, ${socatMissing}`);

    await verifyRows(cfg, rows, inputs, scratch);
    console.log(`verified: sha256 of every viamillipede row's output matches its input\n`);

    const results = await timeRows(cfg, rows, inputs, scratch);
    const summaries = rows.map((row) => summarise(row, results.get(row)!, cfg.bytes));
    printReport(cfg, summaries);
    return 0;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function printReport(cfg: Config, summaries: Summary[]): void {
  const sections = [
    ["file", "file → tool → /dev/null"],
    ["pipes", "pipes: cat FILE | tool, tool | cat > /dev/null"],
  ] as const;
  for (const [section, title] of sections) {
    if (!summaries.some((s) => s.row.section === section)) continue;
    console.log(`${title}\n${sectionTable(summaries, section, cfg.bytes)}\n`);
  }
  console.log(
    "(CPU s: user+sys of both ends together, pipeline members included, median; CPU s/GiB: the same per GiB moved; " +
      "RSS: the largest single process of each end, peak over the runs; vs netcat: against the same section's netcat row)",
  );
  if (cfg.smoke) console.log("(BENCH_SMOKE: at this size process start-up dominates; a correctness check, not a throughput figure)");
  if (cfg.rusage === "bun") {
    // Linux carries a process's RSS high-water mark across exec, and Bun forks from this process.
    const own = (process.memoryUsage().rss / MIB).toFixed(0);
    console.log(`(RSS via Bun resourceUsage() includes this bench's own RSS when it forked, now ${own} MiB; install GNU time for exact figures)`);
  }
  const features = featuresLine(summaries);
  if (features) console.log(`\n${features}`);
  console.log(`\nissue 9 targets (${(cfg.bytes / MIB).toFixed(0)} MiB${cfg.bytes === GIB ? "" : ", not the issue's 1 GiB"}):`);
  for (const line of verdict(summaries, cfg.bytes)) console.log(`  ${line}`);
}

try {
  process.exit(await main());
} catch (error) {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
