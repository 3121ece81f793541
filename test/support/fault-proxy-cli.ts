/**
 * The fault proxy (fault-proxy.ts) as a process of its own, so that its work
 * does not share an event loop with the test runner:
 *
 *   bun test/support/fault-proxy-cli.ts --target 127.0.0.1:PORT --seed 1 \
 *     [--reset-min B --reset-max B] [--blackhole-every N [--blackhole-after B | --blackhole-after-min B --blackhole-after-max B]] \
 *     [--delay-ms MS] [--throttle BYTES_PER_S] [--flip-every B | --flip-probability P] \
 *     [--outage-after-bytes B --outage-ms MS] [--outage-mode refuse|reset] [--buffer-bytes B] [--verbose] [--control-stdin]
 *
 * It prints `fault-proxy: listening on port N` on stderr (stdout stays empty)
 * and `fault-proxy: <event json>` for each fault with --verbose. SIGTERM or
 * SIGINT print `fault-proxy: stats <json>` and exit 0; a bad flag exits 2
 * with one line. With --control-stdin it reads commands, one per line, on
 * stdin: `outage-start [MS]`, `outage-end`, `stats` (each confirmed on
 * stderr), and the end of stdin ends it like SIGTERM, so a proxy whose parent
 * died does not linger.
 *
 * `spawnFaultProxy(args)` runs it from a test: it waits for the listening line
 * and returns the port, `command()`, `stats()` and `stop()`.
 */
import { parseArgs } from "node:util";
import { startFaultProxy, type FaultProxy, type FaultProxyOptions, type FaultProxyStats } from "./fault-proxy.ts";

const PREFIX = "fault-proxy:";
const LISTENING_LINE = /^fault-proxy: listening on port (\d+)$/m;
const STATS_LINE = /^fault-proxy: stats (\{.*\})$/gm;

class UsageError extends Error {}

/** Maps the command line onto proxy options (pure). */
export function parseProxyArgs(argv: readonly string[]): { options: FaultProxyOptions; verbose: boolean; controlStdin: boolean } {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      target: { type: "string" },
      seed: { type: "string" },
      "reset-min": { type: "string" },
      "reset-max": { type: "string" },
      "blackhole-every": { type: "string" },
      "blackhole-after": { type: "string" },
      "blackhole-after-min": { type: "string" },
      "blackhole-after-max": { type: "string" },
      "delay-ms": { type: "string" },
      throttle: { type: "string" },
      "flip-every": { type: "string" },
      "flip-probability": { type: "string" },
      "outage-after-bytes": { type: "string" },
      "outage-ms": { type: "string" },
      "outage-mode": { type: "string" },
      "buffer-bytes": { type: "string" },
      verbose: { type: "boolean" },
      "control-stdin": { type: "boolean" },
    },
  });
  const number = (flag: keyof typeof values): number | undefined => {
    const text = values[flag];
    if (text === undefined || typeof text === "boolean") return undefined;
    const value = Number(text);
    if (text.trim() === "" || !Number.isFinite(value) || value < 0) throw new UsageError(`--${flag} wants a non-negative number, not "${text}"`);
    return value;
  };
  const target = /^(.+):(\d+)$/.exec(values.target ?? "");
  if (!target) throw new UsageError("--target HOST:PORT is required");
  const options: FaultProxyOptions = { target: { host: target[1]!.replace(/^\[(.*)\]$/, "$1"), port: Number(target[2]) }, seed: number("seed") ?? 1 };
  const resetMin = number("reset-min");
  const resetMax = number("reset-max");
  if (resetMin !== undefined || resetMax !== undefined) {
    options.resetAfterBytes = { min: resetMin ?? resetMax!, max: resetMax ?? resetMin! };
  }
  options.blackholeEvery = number("blackhole-every");
  const after = number("blackhole-after");
  const afterMin = number("blackhole-after-min");
  const afterMax = number("blackhole-after-max");
  if (after !== undefined) options.blackholeAfterBytes = after;
  else if (afterMin !== undefined || afterMax !== undefined) options.blackholeAfterBytes = { min: afterMin ?? afterMax!, max: afterMax ?? afterMin! };
  options.delayMs = number("delay-ms");
  options.throttleBytesPerSec = number("throttle");
  const flipEvery = number("flip-every");
  const flipProbability = number("flip-probability");
  if (flipEvery !== undefined) options.flipBytes = { everyBytes: flipEvery };
  else if (flipProbability !== undefined) options.flipBytes = { probability: flipProbability };
  const outageAfter = number("outage-after-bytes");
  const outageMs = number("outage-ms");
  if ((outageAfter === undefined) !== (outageMs === undefined)) throw new UsageError("--outage-after-bytes and --outage-ms go together");
  if (outageAfter !== undefined) options.outage = { afterBytes: outageAfter, durationMs: outageMs! };
  const mode = values["outage-mode"];
  if (mode !== undefined && mode !== "refuse" && mode !== "reset") throw new UsageError(`--outage-mode is refuse or reset, not "${mode}"`);
  if (mode !== undefined) options.outageMode = mode;
  options.bufferBytes = number("buffer-bytes");
  return { options, verbose: values.verbose ?? false, controlStdin: values["control-stdin"] ?? false };
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed: ReturnType<typeof parseProxyArgs>;
  try {
    parsed = parseProxyArgs(argv);
  } catch (error) {
    process.stderr.write(`${PREFIX} ${(error as Error).message}\n`);
    return 2;
  }
  const say = (line: string) => process.stderr.write(`${PREFIX} ${line}\n`);
  const proxy = await startFaultProxy({
    ...parsed.options,
    onEvent: (event) => {
      if (parsed.verbose || event.type === "error") say(JSON.stringify(event));
    },
  });
  say(`listening on port ${proxy.port}`);
  const printStats = () => say(`stats ${JSON.stringify(proxy.stats())}`);
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  process.on("SIGTERM", finish);
  process.on("SIGINT", finish);
  if (parsed.controlStdin) void readCommands(proxy, say, printStats).then(finish);
  await finished;
  printStats();
  proxy.close();
  return 0;
}

/** Runs the commands read on stdin until it ends. */
async function readCommands(proxy: FaultProxy, say: (line: string) => void, printStats: () => void): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of Bun.stdin.stream()) {
    pending += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const [command = "", argument] = pending.slice(0, newline).trim().split(/\s+/);
      pending = pending.slice(newline + 1);
      if (command === "outage-start") {
        proxy.startOutage(argument === undefined ? undefined : Number(argument));
        say("outage-start done");
      } else if (command === "outage-end") {
        await proxy.endOutage().then(
          () => say("outage-end done"),
          (error: Error) => say(`outage-end failed: ${error.message}`),
        );
      } else if (command === "stats") {
        printStats();
      } else if (command !== "") {
        say(`unknown command "${command}" (outage-start [MS], outage-end, stats)`);
      }
    }
  }
}

// ---- running it from a test --------------------------------------------------------------

export interface FaultProxyProcess {
  port: number;
  proc: Bun.Subprocess<"pipe", "pipe", "pipe">;
  /** Sends a command and resolves once the proxy confirmed it; `outage-start` may carry a duration. */
  command(command: "outage-start" | "outage-end", durationMs?: number): Promise<void>;
  stats(): Promise<FaultProxyStats>;
  /** SIGTERM, then the exit code, the final stats and the whole stderr. */
  stop(): Promise<{ exitCode: number | null; stats: FaultProxyStats | null; stderr: string }>;
}

/** Spawns the CLI with `args` and --control-stdin, and waits for its listening line. */
export async function spawnFaultProxy(args: readonly string[], listenTimeoutMs = 10_000): Promise<FaultProxyProcess> {
  const proc = Bun.spawn([process.execPath, import.meta.path, ...args, "--control-stdin"], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  let stderr = "";
  const waiters: Array<() => void> = [];
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) {
      stderr += decoder.decode(chunk, { stream: true });
      for (const wake of waiters.splice(0)) wake();
    }
    for (const wake of waiters.splice(0)) wake();
  })();
  const stdoutText = new Response(proc.stdout).text();
  /** Resolves with the first match of `pattern` after `from` in stderr, or rejects at exit or timeout. */
  const waitFor = async (pattern: RegExp, from: number, what: string): Promise<RegExpExecArray> => {
    const deadline = performance.now() + listenTimeoutMs;
    for (;;) {
      const rest = stderr.slice(from);
      pattern.lastIndex = 0;
      const match = pattern.exec(rest);
      if (match) return match;
      if (proc.exitCode !== null || performance.now() > deadline) throw new Error(`fault proxy: no ${what}; stderr:\n${stderr}`);
      await Promise.race([new Promise<void>((resolve) => waiters.push(resolve)), proc.exited, Bun.sleep(100)]);
    }
  };
  const port = Number((await waitFor(LISTENING_LINE, 0, "listening line"))[1]);
  const sink = proc.stdin;
  const send = async (line: string) => {
    sink.write(`${line}\n`);
    await sink.flush();
  };
  const lastStats = (text: string): FaultProxyStats | null => {
    const all = [...text.matchAll(STATS_LINE)];
    return all.length > 0 ? (JSON.parse(all[all.length - 1]![1]!) as FaultProxyStats) : null;
  };
  return {
    port,
    proc,
    async command(command, durationMs) {
      const from = stderr.length;
      await send(durationMs === undefined ? command : `${command} ${durationMs}`);
      const answer = await waitFor(new RegExp(`^fault-proxy: ${command} (done|failed: .*)$`, "m"), from, `confirmation of ${command}`);
      if (answer[1] !== "done") throw new Error(`fault proxy: ${command} ${answer[1]}`);
    },
    async stats() {
      const from = stderr.length;
      await send("stats");
      const match = await waitFor(/^fault-proxy: stats (\{.*\})$/m, from, "stats line");
      return JSON.parse(match[1]!) as FaultProxyStats;
    },
    async stop() {
      proc.kill("SIGTERM");
      const [exitCode] = await Promise.all([proc.exited, reading, stdoutText]);
      return { exitCode, stats: lastStats(stderr), stderr };
    },
  };
}

if (import.meta.main) {
  // stdin may still be open: exit explicitly.
  process.exit(await main(process.argv.slice(2)));
}
