/**
 * Spawn helpers for the end-to-end tests: the real CLI (`bun src/cli/main.ts`)
 * as separate processes talking over loopback.
 *
 * What it provides:
 * - `startReceiver(args)` spawns `rx ...`, waits on its stderr (never a sleep)
 *   for `viamillipede: listening on port N` and returns the port, the process
 *   and `done()`, which resolves once the receiver has exited with its exit
 *   code, whole stderr and the sha256 and length of its stdout. stdout is
 *   hashed as it arrives through a pipe (as in `rx | zfs receive`), or, with
 *   `output: "consumer"`, read for a few bytes and then closed, like
 *   `rx | head -c 1000`.
 * - `runTransmitter(args, input)` runs `tx ...` to its exit with stdin from a
 *   file, from nothing, or from a pipe the test feeds; it returns exit code,
 *   stdout, stderr and the elapsed milliseconds.
 * - `startTransmitter(args, input)` is `runTransmitter` for a test that needs
 *   the process while it runs (its pid, to sample memory or send a signal).
 * - Either may run the CLI under a shell redirection (`redirect: ">&-"`),
 *   for what a user's shell does to its descriptors.
 * - `runCli(args)` runs any command line to its exit (e.g. a second `rx`).
 * - The receiver's and transmitter's `netns` and `fileLimit` options run the
 *   CLI inside a network namespace or under `ulimit -n N`.
 * - `peakRssSampler(proc)` polls a running process's VmHWM (Linux /proc).
 * - `makeInput(dir, bytes, seed)` writes deterministic, incompressible bytes
 *   (the AES-256-CTR keystream of a seed) to a file and returns its sha256.
 * - `freePort()`, `ipv6LoopbackAvailable()`, `makeTempDir()`, `within()` (a
 *   deadline that names what was late) and `errorLines()` (the
 *   `viamillipede:` lines of a stderr other than the listening line).
 * - Every process spawned here is tracked; `killLeftovers()` (for afterEach)
 *   kills, by its own pid, any that a failed test left running.
 */
import { createCipheriv, createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ROOT = join(import.meta.dir, "../..");
export const MAIN = join(ROOT, "src/cli/main.ts");
export const PROGRAM = "viamillipede";

/** The line a receiver started with port 0 prints on stderr. */
const LISTENING_LINE = /^viamillipede: listening on port (\d+)$/m;
/** A stack trace line, which a user-facing error must never contain. */
export const STACK_LINE = /^\s+at /m;

// ---- processes ---------------------------------------------------------------------

const running = new Set<Bun.Subprocess>();

function spawnCli(
  args: readonly string[],
  options: { stdin: "ignore" | "pipe" | Bun.BunFile | null; stdout: "pipe"; netns?: string; env?: Record<string, string>; redirect?: string; fileLimit?: number },
): Bun.Subprocess<"pipe" | "ignore", "pipe", "pipe"> {
  // `ip netns exec` and `sh -c '... exec "$@"'` exec the command: the pid is still the CLI's.
  const shell = options.redirect !== undefined || options.fileLimit !== undefined;
  const limit = options.fileLimit === undefined ? "" : `ulimit -n ${options.fileLimit} && `;
  const prefix = [
    ...(options.netns === undefined ? [] : ["ip", "netns", "exec", options.netns]),
    ...(shell ? ["sh", "-c", `${limit}exec "$@" ${options.redirect ?? ""}`, "sh"] : []),
  ];
  const proc = Bun.spawn([...prefix, process.execPath, MAIN, ...args], {
    cwd: ROOT,
    stdin: options.stdin ?? "ignore",
    stdout: options.stdout,
    stderr: "pipe",
    // NO_COLOR keeps logs plain; CI/TEST must not change what the CLI prints.
    env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", ...options.env },
  }) as Bun.Subprocess<"pipe" | "ignore", "pipe", "pipe">;
  running.add(proc);
  void proc.exited.finally(() => running.delete(proc));
  return proc;
}

/** Every live descendant of `pid`, from /proc (each thread lists the children it forked); [] off Linux. */
export function descendants(pid: number): number[] {
  const found: number[] = [];
  const visit = (parent: number): void => {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${parent}/task`);
    } catch {
      return;
    }
    for (const task of tasks) {
      let children = "";
      try {
        children = readFileSync(`/proc/${parent}/task/${task}/children`, "utf8");
      } catch {
        continue;
      }
      for (const child of children.split(/\s+/).filter(Boolean).map(Number)) {
        found.push(child);
        visit(child);
      }
    }
  };
  visit(pid);
  return found;
}

/** Kills (SIGKILL, by pid) whatever a test left running; for afterEach. */
export async function killLeftovers(): Promise<void> {
  const left = [...running];
  for (const proc of left) proc.kill("SIGKILL");
  await Promise.all(left.map((proc) => proc.exited));
}

/**
 * Rejects with "`what` took longer than ms" if `promise` has not settled by
 * then; `explain` adds what was going on (see peersSoFar), so a hang on a CI
 * machine says where it was stuck.
 */
export async function within<T>(ms: number, what: string, promise: Promise<T>, explain?: () => Promise<string>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(async () => {
      const context = explain === undefined ? "" : `\n${await explain().catch((error: Error) => `(no explanation: ${error.message})`)}`;
      reject(new Error(`${what} took longer than ${ms} ms${context}`));
    }, ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads a text stream to its end, letting `watch` see the text so far after each chunk. */
async function readText(stream: ReadableStream<Uint8Array>, watch?: (soFar: string) => void): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    text += decoder.decode(chunk, { stream: true });
    watch?.(text);
  }
  text += decoder.decode();
  watch?.(text);
  return text;
}

// ---- the receiver ------------------------------------------------------------------

export interface ReceiverOutcome {
  exitCode: number | null;
  signalCode: string | number | null;
  stderr: string;
  /** sha256 (hex) and length of everything the receiver wrote to stdout (what was read of it, for "consumer"). */
  stdoutSha256: string;
  stdoutBytes: number;
}

export interface Receiver {
  port: number;
  proc: Bun.Subprocess;
  /** The stderr text so far. */
  stderrSoFar(): string;
  /** Bytes read from its stdout so far. */
  stdoutBytesSoFar(): number;
  /** Resolves once the process has exited and its streams are read. */
  done(): Promise<ReceiverOutcome>;
}

export interface ReceiverOptions {
  /**
   * "hash" (default): read all of stdout and hash it.
   * "consumer": read at least `consumeBytes` (default 1000), then close the pipe.
   */
  output?: "hash" | "consumer";
  consumeBytes?: number;
  /** How long to wait for the listening line (default 10 s). */
  listenTimeoutMs?: number;
  /** Run inside this network namespace (test/support/netns-rig.ts). */
  netns?: string;
  /** A shell redirection applied to the CLI, after the helper's own stdio (e.g. `>&-`, `1<>/dev/null`). */
  redirect?: string;
  /** Run with at most this many open files (`ulimit -n`). */
  fileLimit?: number;
}

export async function drainStdout(
  stream: ReadableStream<Uint8Array>,
  options: ReceiverOptions,
  onBytes: (bytes: number) => void = () => {},
): Promise<{ sha256: string; bytes: number }> {
  const hasher = new Bun.CryptoHasher("sha256");
  let bytes = 0;
  const reader = stream.getReader();
  const limit = options.output === "consumer" ? (options.consumeBytes ?? 1000) : Infinity;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    hasher.update(value);
    bytes += value.length;
    onBytes(bytes);
    if (bytes >= limit) {
      // The consumer has seen enough and goes away: the receiver's stdout is now a closed pipe.
      await reader.cancel();
      break;
    }
  }
  return { sha256: hasher.digest("hex"), bytes };
}

/**
 * Spawns `viamillipede rx ...args` (args should say port 0) and resolves once
 * it printed its port. Rejects, with its stderr, if it exits first.
 */
export async function startReceiver(args: readonly string[], options: ReceiverOptions = {}): Promise<Receiver> {
  const proc = spawnCli(args, { stdin: "ignore", stdout: "pipe", netns: options.netns, redirect: options.redirect, fileLimit: options.fileLimit });
  let stderrText = "";
  let announce!: (port: number) => void;
  const announced = new Promise<number>((resolve) => (announce = resolve));
  const stderr = readText(proc.stderr, (soFar) => {
    stderrText = soFar;
    const match = LISTENING_LINE.exec(soFar);
    if (match) announce(Number(match[1]));
  });
  let stdoutBytes = 0;
  const stdout = drainStdout(proc.stdout, options, (bytes) => (stdoutBytes = bytes));
  const outcome = (async (): Promise<ReceiverOutcome> => {
    const [text, out, exitCode] = await Promise.all([stderr, stdout, proc.exited]);
    return { exitCode, signalCode: proc.signalCode, stderr: text, stdoutSha256: out.sha256, stdoutBytes: out.bytes };
  })();
  const exitedFirst = outcome.then((o) => {
    throw new Error(`receiver ${args.join(" ")} exited (${o.exitCode}) before listening; stderr:\n${o.stderr}`);
  });
  const port = await within(options.listenTimeoutMs ?? 10_000, `receiver's listening line (${args.join(" ")})`, Promise.race([announced, exitedFirst]));
  return { port, proc, stderrSoFar: () => stderrText, stdoutBytesSoFar: () => stdoutBytes, done: () => outcome };
}

// ---- the transmitter and other command lines ---------------------------------------

export interface CliOutcome {
  exitCode: number | null;
  signalCode: string | number | null;
  stdout: string;
  stderr: string;
  elapsedMs: number;
}

/** What the transmitter reads: a file, nothing, or a pipe that `feed` writes and the helper then closes. */
export type TransmitterInput = { file: string } | { empty: true } | { feed: (sink: Bun.FileSink) => Promise<void> };

/** Runs `viamillipede ...args` with the given stdin to its exit. */
export function runTransmitter(args: readonly string[], input: TransmitterInput): Promise<CliOutcome> {
  return startTransmitter(args, input).done();
}

export interface Transmitter {
  proc: Bun.Subprocess;
  /** Resolves once the process has exited and its streams are read (as `runTransmitter`). */
  done(): Promise<CliOutcome>;
}

/** Spawns `viamillipede ...args` with the given stdin and returns at once; `done()` waits for its exit. */
export function startTransmitter(
  args: readonly string[],
  input: TransmitterInput,
  options: { netns?: string; env?: Record<string, string>; redirect?: string; fileLimit?: number } = {},
): Transmitter {
  const started = performance.now();
  const stdin = "file" in input ? Bun.file(input.file) : "feed" in input ? "pipe" : "ignore";
  const proc = spawnCli(args, { stdin, stdout: "pipe", netns: options.netns, env: options.env, redirect: options.redirect, fileLimit: options.fileLimit });
  const feeding =
    "feed" in input
      ? (async () => {
          const sink = proc.stdin as Bun.FileSink;
          try {
            await input.feed(sink);
          } finally {
            await sink.end();
          }
        })()
      : Promise.resolve();
  const outcome = (async (): Promise<CliOutcome> => {
    const [stdout, stderr, exitCode] = await Promise.all([readText(proc.stdout), readText(proc.stderr), proc.exited, feeding]);
    return { exitCode, signalCode: proc.signalCode, stdout, stderr, elapsedMs: performance.now() - started };
  })();
  return { proc, done: () => outcome };
}

/** Runs any command line with empty stdin to its exit. */
export function runCli(args: readonly string[]): Promise<CliOutcome> {
  return runTransmitter(args, { empty: true });
}

// ---- errors on stderr ----------------------------------------------------------------

/** The `viamillipede:` lines of a stderr, without the receiver's listening line. */
export function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line.startsWith(`${PROGRAM}:`) && !LISTENING_LINE.test(line));
}

// ---- inputs, ports, temp dirs ----------------------------------------------------------

export function makeTempDir(label: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `viamillipede-${label}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface Input {
  path: string;
  bytes: number;
  sha256: string;
}

const GENERATE_CHUNK_BYTES = 4 << 20;

/** The deterministic, incompressible byte stream of a seed: AES-256-CTR over zeros. */
export function keystream(seed: string): (bytes: number) => Buffer {
  const key = createHash("sha256").update(`viamillipede e2e ${seed}`).digest();
  const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  return (bytes) => cipher.update(Buffer.alloc(bytes));
}

/** Writes `bytes` bytes of the seed's keystream to a new file in `dir`. */
export async function makeInput(dir: string, bytes: number, seed = `${bytes}`): Promise<Input> {
  const path = join(dir, `input-${seed}-${bytes}.bin`);
  const next = keystream(seed);
  const hasher = createHash("sha256");
  const file = await open(path, "w");
  try {
    for (let left = bytes; left > 0; ) {
      const chunk = next(Math.min(left, GENERATE_CHUNK_BYTES));
      hasher.update(chunk);
      await file.write(chunk);
      left -= chunk.length;
    }
  } finally {
    await file.close();
  }
  return { path, bytes, sha256: hasher.digest("hex") };
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Ports freePort has handed out in this process: the kernel may offer a released port again. */
const handedOut = new Set<number>();

/**
 * A port nobody listens on right now: bound on port 0, then released. Never
 * one handed out before in this process: bind(0) picks at random among the
 * free ports, and two calls in one test returned the same port about once in
 * 7,000 pairs (an `initiate` service port equal to a peer's rx port made the
 * refusing-service tunnel test idle until the 10 s hello deadline).
 */
export function freePort(hostname = "127.0.0.1"): number {
  for (;;) {
    const server = Bun.listen({ hostname, port: 0, socket: { data() {} } });
    const port = server.port;
    server.stop(true);
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

// ---- memory --------------------------------------------------------------------------

/** How often `peakRssSampler` reads /proc. */
const RSS_SAMPLE_MS = 100;

/**
 * Polls `/proc/PID/status` of a running process every 100 ms and keeps the
 * largest VmHWM (the kernel's own peak RSS, so spikes between polls count).
 * `stop()` returns the peak in bytes, or null where /proc is not available.
 */
export function peakRssSampler(proc: Bun.Subprocess): { stop(): number | null } {
  let peak: number | null = null;
  const sample = () => {
    try {
      const status = readFileSync(`/proc/${proc.pid}/status`, "utf8");
      const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
      if (match) peak = Math.max(peak ?? 0, Number(match[1]) * 1024);
    } catch {
      // Gone already, or no /proc here.
    }
  };
  sample();
  const timer = setInterval(() => {
    if (proc.exitCode === null && proc.signalCode === null) sample();
  }, RSS_SAMPLE_MS);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

/** Whether this host can listen on ::1. */
export function ipv6LoopbackAvailable(): boolean {
  try {
    Bun.listen({ hostname: "::1", port: 0, socket: { data() {} } }).stop(true);
    return true;
  } catch {
    return false;
  }
}
