#!/usr/bin/env bun
/**
 * Loopback throughput: viamillipede against OpenBSD netcat, on 127.0.0.1 only.
 *
 * 1. A file of random (incompressible) bytes is created once and cached in
 *    os.tmpdir(), then read to /dev/null so it sits in the page cache.
 * 2. Every viamillipede configuration transfers it once into a temp file and the
 *    sha256 must match the source (untimed), so a broken transfer cannot be timed.
 * 3. BENCH_RUNS rounds; each round runs every configuration once, in the same
 *    order (interleaved, so drift in the machine hits all of them alike). A run is
 *    timed from the sender's spawn until both sender and receiver have exited, and
 *    both must exit 0. The receiver listens on port 0 and says which port it got.
 * 4. Per configuration: median wall time → MiB/s; CPU seconds (user + sys of both
 *    processes, median); peak RSS of each side (maximum over the runs).
 * 5. A table on stdout, ending with one summary line. Exit 1 if any transfer failed.
 *
 * Knobs: BENCH_BYTES (default 1 GiB), BENCH_RUNS (default 3), BENCH_SMOKE=1 (64 MiB,
 * 1 run: CI's quick version), BENCH_RUSAGE=time|bun (how CPU and RSS are read:
 * /usr/bin/time when present, else Bun's subprocess resourceUsage()).
 */
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BenchError, GENERATE_BLOCK_BYTES, inputFile, median, positiveInt, sha256 } from "./common.ts";

const ROOT = join(import.meta.dir, "..");
const ENTRY = join(ROOT, "src/cli/main.ts");
const HOST = "127.0.0.1";
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
/** After one side exits, how long the other gets before it is killed. */
const PEER_GRACE_MS = 10_000;
const TIME_BIN = "/usr/bin/time";

// ---- configuration ----------------------------------------------------------------------

interface Config {
  bytes: number;
  runs: number;
  smoke: boolean;
  /** Where CPU time and peak RSS come from. */
  rusage: "time" | "bun";
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
  };
}

// ---- processes --------------------------------------------------------------------------

interface Usage {
  cpuSeconds: number;
  maxRssBytes: number;
}

interface Outcome {
  exitCode: number | null;
  signal: string | number | null;
  stderr: string;
  usage: Usage | undefined;
}

/** A spawned process whose stderr is collected and whose CPU time and peak RSS are read after exit. */
class Measured {
  readonly proc: Bun.Subprocess<"ignore" | Bun.BunFile, "ignore" | Bun.BunFile, "pipe">;
  private stderrText = "";
  private readonly stderrDone: Promise<void>;
  private readonly listeners = new Set<() => void>();
  private readonly timeFile: string | undefined;

  constructor(
    readonly label: string,
    cmd: string[],
    io: { stdin: "ignore" | Bun.BunFile; stdout: "ignore" | Bun.BunFile },
    rusage: Config["rusage"],
    scratch: string,
  ) {
    if (rusage === "time") {
      this.timeFile = join(scratch, `time-${label}-${Math.random().toString(36).slice(2)}`);
      cmd = [TIME_BIN, "-o", this.timeFile, "-f", "%U %S %M", ...cmd];
    }
    this.proc = Bun.spawn(cmd, { cwd: ROOT, stdin: io.stdin, stdout: io.stdout, stderr: "pipe" });
    this.stderrDone = this.collectStderr();
  }

  private async collectStderr(): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of this.proc.stderr) {
      this.stderrText += decoder.decode(chunk, { stream: true });
      for (const notify of this.listeners) notify();
    }
    this.stderrText += decoder.decode();
    for (const notify of this.listeners) notify();
  }

  /** Resolves with the first match of `pattern` on stderr; rejects if the process exits first or on timeout. */
  waitForStderr(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new BenchError(`${this.label}: not ready after ${timeoutMs} ms`)), timeoutMs);
      const finish = (error?: Error, match?: RegExpMatchArray): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (match) resolve(match);
        else reject(error);
      };
      const check = (): void => {
        const match = this.stderrText.match(pattern);
        if (match) finish(undefined, match);
      };
      this.listeners.add(check);
      check();
      void this.proc.exited.then(async () => {
        await this.stderrDone;
        check();
        if (this.listeners.has(check)) {
          finish(new BenchError(`${this.label} exited (${this.proc.exitCode}) before it was ready: ${oneLine(this.stderrText)}`));
        }
      });
    });
  }

  /** Ends this process (and, under /usr/bin/time, the measured child) by pid. */
  kill(): void {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    if (this.timeFile !== undefined) {
      try {
        const children = readFileSync(`/proc/${this.proc.pid}/task/${this.proc.pid}/children`, "utf8").trim();
        for (const pid of children.split(/\s+/).filter(Boolean)) process.kill(Number(pid), "SIGTERM");
        return; // time exits when its child does
      } catch {
        // fall through: kill the wrapper itself
      }
    }
    this.proc.kill("SIGTERM");
  }

  async outcome(): Promise<Outcome> {
    await this.proc.exited;
    await this.stderrDone;
    let usage: Usage | undefined;
    let stderr = this.stderrText;
    if (this.timeFile !== undefined) {
      // GNU time writes "Command exited with non-zero status N" etc. before the format line.
      const lines = existsSync(this.timeFile) ? readFileSync(this.timeFile, "utf8").trim().split("\n") : [];
      const fields = (lines.at(-1) ?? "").trim().split(/\s+/).map(Number);
      if (fields.length === 3 && fields.every(Number.isFinite)) {
        const [user, sys, rssKiB] = fields as [number, number, number];
        usage = { cpuSeconds: user + sys, maxRssBytes: rssKiB * 1024 };
      }
      if (lines.length > 1) stderr += lines.slice(0, -1).join("\n");
    } else {
      const ru = this.proc.resourceUsage();
      if (ru) usage = { cpuSeconds: Number(ru.cpuTime.user + ru.cpuTime.system) / 1e6, maxRssBytes: ru.maxRSS };
    }
    return { exitCode: this.proc.exitCode, signal: this.proc.signalCode, stderr, usage };
  }
}

function oneLine(text: string): string {
  const flat = text.trim().replace(/\s*\n\s*/g, " | ");
  return flat === "" ? "(no stderr)" : flat.slice(0, 600);
}

// ---- tools ------------------------------------------------------------------------------

interface Tool {
  name: string;
  /** The receiver's command; it must print READY on stderr once it listens. */
  receiver(): string[];
  ready: RegExp;
  sender(port: number): string[];
  viamillipede: boolean;
  threads?: number;
  /** Which input it reads: the random file (default) or the compressible one. */
  input?: "random" | "text";
}

function netcat(): Tool {
  return {
    name: "netcat",
    // -n: no DNS; -v: say "Listening on 127.0.0.1 PORT" once bound (port 0: the kernel picks).
    receiver: () => ["nc", "-l", "-n", "-v", HOST, "0"],
    ready: /Listening on \S+ (\d+)/,
    sender: (port) => ["nc", "-N", "-n", HOST, String(port)],
    viamillipede: false,
  };
}

function viamillipede(threads: number | undefined): Tool {
  return {
    name: threads === undefined ? "viamillipede (16 threads, default)" : `viamillipede (${threads} thread${threads === 1 ? "" : "s"})`,
    receiver: () => [process.execPath, ENTRY, "rx", "0", "bind", HOST],
    ready: /listening on port (\d+)/,
    sender: (port) => [process.execPath, ENTRY, "tx", HOST, String(port), ...(threads === undefined ? [] : ["threads", String(threads)])],
    viamillipede: true,
    ...(threads === undefined ? {} : { threads }),
  };
}

/**
 * viamillipede with a feature on: `encrypt` (a key file made here), or
 * `compress zstd` on random or on compressible input.
 */
function viamillipedeWith(name: string, extra: string[], input: Tool["input"], keyFile?: string): Tool {
  const keyArgs = keyFile === undefined ? [] : ["key", keyFile];
  return {
    name,
    receiver: () => [process.execPath, ENTRY, "rx", "0", "bind", HOST, ...keyArgs, ...(extra.includes("encrypt") ? ["encrypt"] : [])],
    ready: /listening on port (\d+)/,
    sender: (port) => [process.execPath, ENTRY, "tx", HOST, String(port), ...keyArgs, ...extra],
    viamillipede: true,
    input,
  };
}

/** Why OpenBSD netcat cannot be used here, or undefined when it can. */
function netcatUnavailable(): string | undefined {
  const nc = Bun.which("nc");
  if (nc === null) return "nc is not installed (apt-get install netcat-openbsd)";
  const help = Bun.spawnSync([nc, "-h"], { stdout: "pipe", stderr: "pipe" });
  const text = help.stdout.toString() + help.stderr.toString();
  if (!text.includes("OpenBSD")) return `${nc} is not OpenBSD netcat (needs -N; apt-get install netcat-openbsd)`;
  return undefined;
}

// ---- one transfer -----------------------------------------------------------------------

interface RunResult {
  seconds: number;
  cpuSeconds: number | undefined;
  rxRssBytes: number | undefined;
  txRssBytes: number | undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs the receiver, then the sender with `input`; resolves once both exited 0. */
async function transfer(
  cfg: Config,
  tool: Tool,
  input: string,
  output: string | undefined,
  scratch: string,
): Promise<RunResult> {
  const deadlineMs = DEADLINE_BASE_MS + (cfg.bytes / MIB / DEADLINE_FLOOR_MIB_S) * 1000;
  const rx = new Measured(`${tool.name} receiver`, tool.receiver(), { stdin: "ignore", stdout: output === undefined ? "ignore" : Bun.file(output) }, cfg.rusage, scratch);
  let tx: Measured | undefined;
  try {
    const match = await rx.waitForStderr(tool.ready, READY_TIMEOUT_MS);
    const port = Number(match[1]);
    const started = performance.now();
    tx = new Measured(`${tool.name} sender`, tool.sender(port), { stdin: Bun.file(input), stdout: "ignore" }, cfg.rusage, scratch);
    const sides = [rx, tx];
    let ended = 0;
    const finished = sides.map((side) =>
      side.proc.exited.then(() => {
        ended = performance.now();
        // One side is done: the other gets a grace period, then is ended by pid.
        const other = side === rx ? tx! : rx;
        void sleep(PEER_GRACE_MS).then(() => other.kill());
      }),
    );
    const timedOut = await Promise.race([
      Promise.all(finished).then(() => false),
      sleep(deadlineMs).then(() => true),
    ]);
    if (timedOut) {
      for (const side of sides) side.kill();
      throw new BenchError(`${tool.name}: no finish within ${Math.round(deadlineMs / 1000)} s`);
    }
    const seconds = (ended - started) / 1000;
    const [rxOutcome, txOutcome] = await Promise.all([rx.outcome(), tx.outcome()]);
    const failures = ([["sender", txOutcome], ["receiver", rxOutcome]] as const)
      .filter(([, outcome]) => outcome.exitCode !== 0)
      .map(([side, outcome]) => {
        const how = outcome.signal ? `signal ${outcome.signal}` : `exit ${outcome.exitCode}`;
        return `${side} failed (${how}): ${oneLine(outcome.stderr)}`;
      });
    if (failures.length) throw new BenchError(`${tool.name}: ${failures.join("; ")}`);
    const cpu = rxOutcome.usage && txOutcome.usage ? rxOutcome.usage.cpuSeconds + txOutcome.usage.cpuSeconds : undefined;
    return { seconds, cpuSeconds: cpu, rxRssBytes: rxOutcome.usage?.maxRssBytes, txRssBytes: txOutcome.usage?.maxRssBytes };
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

// ---- report -----------------------------------------------------------------------------

function mibPerS(bytes: number, seconds: number): number {
  return bytes / MIB / seconds;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

function fmtMib(bytes: number | undefined): string {
  return bytes === undefined ? "n/a" : (bytes / MIB).toFixed(0);
}

// ---- main -------------------------------------------------------------------------------

async function main(): Promise<number> {
  const cfg = readConfig();
  const scratch = mkdtempSync(join(tmpdir(), "viamillipede-bench-"));
  try {
    const ncMissing = netcatUnavailable();
    const keyFile = join(scratch, "bench.key");
    writeSync(openSync(keyFile, "w"), randomBytes(32));
    const tools = [
      ...(ncMissing ? [] : [netcat()]),
      viamillipede(undefined),
      viamillipede(4),
      viamillipede(1),
      viamillipedeWith("viamillipede encrypt", ["encrypt"], "random", keyFile),
      viamillipedeWith("viamillipede compress zstd (random)", ["compress", "zstd"], "random"),
      viamillipedeWith("viamillipede compress zstd (text)", ["compress", "zstd"], "text"),
      viamillipedeWith("viamillipede plain (text)", [], "text"),
    ];

    const t0 = performance.now();
    const input = inputFile(cfg.bytes);
    const cat = Bun.spawn(["cat", input.path], { stdout: "ignore" });
    if ((await cat.exited) !== 0) throw new BenchError(`cat ${input.path} failed`);
    const expected = await sha256(input.path);
    const text = textFile(cfg.bytes);
    const expectedText = await sha256(text);
    const inputOf = (tool: Tool): string => (tool.input === "text" ? text : input.path);
    const expectedOf = (tool: Tool): string => (tool.input === "text" ? expectedText : expected);
    console.log(
      `viamillipede loopback bench: ${(cfg.bytes / MIB).toFixed(0)} MiB on ${HOST}, ${cfg.runs} run(s) each, median shown` +
        (cfg.smoke ? " (BENCH_SMOKE)" : ""),
    );
    console.log(
      `input ${input.path} (${input.created ? "created" : "reused"}, in page cache, sha256 ${expected.slice(0, 16)}…, ` +
        `prepared in ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
    console.log(
      `bun ${Bun.version}, ${navigator.hardwareConcurrency} CPUs; CPU and RSS from ${cfg.rusage === "time" ? TIME_BIN : "Bun resourceUsage()"}`,
    );
    if (ncMissing) console.log(`netcat: skipped, ${ncMissing}`);

    // Correctness first, untimed: each viamillipede configuration once into a file.
    for (const tool of tools.filter((t) => t.viamillipede)) {
      const out = join(scratch, "verify.bin");
      rmSync(out, { force: true });
      await transfer(cfg, tool, inputOf(tool), out, scratch);
      const got = await sha256(out);
      rmSync(out, { force: true });
      if (got !== expectedOf(tool)) throw new BenchError(`${tool.name}: output sha256 ${got} differs from input ${expectedOf(tool)}`);
    }
    console.log(`verified: sha256 of every viamillipede configuration's output matches the input\n`);

    const results = new Map<Tool, RunResult[]>(tools.map((t) => [t, []]));
    for (let round = 1; round <= cfg.runs; round++) {
      for (const tool of tools) {
        const result = await transfer(cfg, tool, inputOf(tool), undefined, scratch);
        results.get(tool)!.push(result);
        process.stderr.write(`round ${round}/${cfg.runs} ${tool.name}: ${mibPerS(cfg.bytes, result.seconds).toFixed(0)} MiB/s\n`);
      }
    }

    const summary = new Map<Tool, number>();
    for (const [tool, runs] of results) summary.set(tool, mibPerS(cfg.bytes, median(runs.map((r) => r.seconds))));
    const ncRate = ncMissing ? undefined : summary.get(tools[0]!);
    const rows = tools.map((tool) => {
      const runs = results.get(tool)!;
      const rates = runs.map((r) => mibPerS(cfg.bytes, r.seconds));
      const cpus = runs.map((r) => r.cpuSeconds).filter((c): c is number => c !== undefined);
      const peak = (pick: (r: RunResult) => number | undefined): number | undefined => {
        const values = runs.map(pick).filter((v): v is number => v !== undefined);
        return values.length ? Math.max(...values) : undefined;
      };
      const rate = summary.get(tool)!;
      return [
        tool.name,
        rate.toFixed(0),
        `${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)}`,
        median(runs.map((r) => r.seconds)).toFixed(2),
        cpus.length ? median(cpus).toFixed(2) : "n/a",
        fmtMib(peak((r) => r.rxRssBytes)),
        fmtMib(peak((r) => r.txRssBytes)),
        ncRate === undefined ? "n/a" : `${(rate / ncRate).toFixed(2)}x`,
      ];
    });
    console.log(
      table(["tool", "MiB/s", "range", "wall s", "CPU s", "rx RSS MiB", "tx RSS MiB", "vs netcat"], rows),
    );
    console.log("(CPU s: user+sys of sender and receiver together, median; RSS: peak over the runs)");
    if (cfg.smoke) console.log("(BENCH_SMOKE: at this size process start-up dominates; a correctness check, not a throughput figure)");
    if (cfg.rusage === "bun") {
      // Linux carries a process's RSS high-water mark across exec, and Bun forks from this process.
      const own = (process.memoryUsage().rss / MIB).toFixed(0);
      console.log(
        `(RSS via Bun resourceUsage() includes this bench's own RSS when it forked, now ${own} MiB; ` +
          `install GNU time for exact figures)`,
      );
    }
    console.log("");

    const main = tools.find((t) => t.viamillipede && t.threads === undefined)!;
    const mainRate = summary.get(main)!;
    const named = (name: string): number => summary.get(tools.find((t) => t.name === name)!)!;
    console.log(
      `encrypt ${named("viamillipede encrypt").toFixed(0)} MiB/s = ${(named("viamillipede encrypt") / mainRate).toFixed(2)}x plain; ` +
        `compress zstd: random ${named("viamillipede compress zstd (random)").toFixed(0)} MiB/s, ` +
        `text ${named("viamillipede compress zstd (text)").toFixed(0)} MiB/s (plain on text ${named("viamillipede plain (text)").toFixed(0)} MiB/s)`,
    );
    console.log(
      ncRate === undefined
        ? `viamillipede (16 threads) ${mainRate.toFixed(0)} MiB/s; netcat skipped (${ncMissing})`
        : `viamillipede (16 threads) ${mainRate.toFixed(0)} MiB/s = ${(mainRate / ncRate).toFixed(2)}x netcat ${ncRate.toFixed(0)} MiB/s`,
    );
    return 0;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

try {
  process.exit(await main());
} catch (error) {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
