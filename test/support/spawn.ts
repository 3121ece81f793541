/**
 * The one process harness for spawned tests: the real CLI (`bun
 * src/cli/main.ts`) as separate processes talking over loopback. Every CLI
 * is spawned by `spawnCli`, its streams are watched by a ByteWatch (stdout:
 * bytes, sha256, `untilBytes(n)`) and a TextWatch (stderr: `until(pattern)`),
 * deadlines come from `within`, and `killLeftovers` kills what is left.
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
 * - `startPeer(args, stdin)` spawns a CLI whose stdin (a pipe the test writes,
 *   a file, or nothing), stdout and stderr the test drives while it runs: full
 *   duplex, tunnels, charmode; `peersSoFar` explains a hang among peers.
 * - The receiver's and transmitter's `netns` and `fileLimit` options run the
 *   CLI inside a network namespace or under `ulimit -n N`; `program`, `cwd`
 *   and `env` run another build of it (the standalone executable) from
 *   another directory with another environment.
 * - `peakRssSampler(proc)` polls a running process's VmHWM (Linux /proc).
 * - `makeInput(dir, bytes, seed)` writes deterministic, incompressible bytes
 *   (the AES-256-CTR keystream of a seed) to a file and returns its sha256.
 * - `freePort()`, `ipv6LoopbackAvailable()`, `makeTempDir()`, `within()` (a
 *   deadline that names what was late) and `errorLines()` (the
 *   `viamillipede:` lines of a stderr other than the listening line).
 * - Every process spawned here is tracked; `killLeftovers()` (for afterEach)
 *   kills, by its own pid, any that a failed test left running.
 * - `ByteWatch` and `TextWatch` watch any stream (pipes.test.ts's own `sh`).
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

interface SpawnOptions {
  stdin: "ignore" | "pipe" | Bun.BunFile | null;
  stdout: "pipe";
  netns?: string;
  env?: Record<string, string>;
  redirect?: string;
  fileLimit?: number;
  /** As `nohup` leaves it: SIGHUP ignored across exec. */
  ignoreHangup?: boolean;
  /** The command that is the CLI; `bun src/cli/main.ts` unless given. */
  program?: readonly string[];
  /** Its working directory; the checkout unless given. */
  cwd?: string;
}

/** Spawns the CLI with `args`, tracked for killLeftovers; its pid is the CLI's whatever wraps it. */
function spawnCli(args: readonly string[], options: SpawnOptions): Bun.Subprocess<"pipe" | "ignore", "pipe", "pipe"> {
  // `ip netns exec` and `sh -c '... exec "$@"'` exec the command: the pid is still the CLI's.
  const shell = options.redirect !== undefined || options.fileLimit !== undefined || options.ignoreHangup === true;
  const limit = options.fileLimit === undefined ? "" : `ulimit -n ${options.fileLimit} && `;
  const hangup = options.ignoreHangup === true ? "trap '' HUP; " : "";
  const prefix = [
    ...(options.netns === undefined ? [] : ["ip", "netns", "exec", options.netns]),
    ...(shell ? ["sh", "-c", `${hangup}${limit}exec "$@" ${options.redirect ?? ""}`, "sh"] : []),
  ];
  const proc = Bun.spawn([...prefix, ...(options.program ?? [process.execPath, MAIN]), ...args], {
    cwd: options.cwd ?? ROOT,
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
 * Kills each shell in `shells` and everything it started (a pipeline's
 * processes are its children, not ours), waits for them, and empties the set.
 */
export async function killShells(shells: Set<Bun.Subprocess>): Promise<void> {
  for (const proc of shells) {
    for (const pid of [...descendants(proc.pid), proc.pid]) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  await Promise.all([...shells].map((proc) => proc.exited));
  shells.clear();
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

// ---- watching streams ----------------------------------------------------------------

/**
 * Bytes as they arrive on a stream, with when each chunk came, hashed as they
 * come (sha256). `keep: false` keeps only lengths (for outputs of hundreds of
 * MiB); `stopAfterBytes` stops reading, closing the pipe, once that many
 * bytes have arrived (a consumer like `head -c N`).
 */
export class ByteWatch {
  readonly chunks: { atMs: number; bytes: Uint8Array }[] = [];
  length = 0;
  private ended = false;
  private readonly hasher = new Bun.CryptoHasher("sha256");
  private waiters: { bytes: number; resolve: (atMs: number) => void; reject: (error: Error) => void }[] = [];
  readonly done: Promise<void>;

  constructor(
    stream: ReadableStream<Uint8Array>,
    private readonly options: { keep?: boolean; stopAfterBytes?: number } = {},
  ) {
    const keep = options.keep ?? true;
    this.done = (async () => {
      for await (const chunk of stream) {
        this.hasher.update(chunk);
        this.chunks.push({ atMs: performance.now(), bytes: keep ? chunk : new Uint8Array(chunk.length) });
        this.length += chunk.length;
        this.settle();
        // Leaving the loop cancels the stream: the writer now has a closed pipe.
        if (this.length >= (options.stopAfterBytes ?? Infinity)) break;
      }
      this.ended = true;
      this.settle();
    })();
  }

  /** Resolves with the arrival time of the chunk that brought the total to `bytes`; rejects if the stream ends first. */
  untilBytes(bytes: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ bytes, resolve, reject });
      this.settle();
    });
  }

  bytes(): Buffer {
    if (this.options.keep === false) throw new Error("stdout was not kept (keepStdout: false)");
    return Buffer.concat(this.chunks.map((chunk) => chunk.bytes));
  }

  /** The sha256 (hex) of everything read; once `done`. */
  sha256(): string {
    return this.hasher.digest("hex");
  }

  private settle(): void {
    for (const waiter of [...this.waiters]) {
      if (this.length >= waiter.bytes) {
        let total = 0;
        const chunk = this.chunks.find((c) => (total += c.bytes.length) >= waiter.bytes);
        waiter.resolve(chunk?.atMs ?? performance.now());
      } else if (this.ended) {
        waiter.reject(new Error(`stream ended at ${this.length} bytes, before ${waiter.bytes}`));
      } else continue;
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
    }
  }
}

/** Text as it arrives on a stream; `until(pattern)` resolves once it appears, and rejects if the stream ends first. */
export class TextWatch {
  text = "";
  private waiters: { pattern: RegExp; resolve: (match: RegExpExecArray) => void; reject: (error: Error) => void }[] = [];
  private ended = false;
  readonly done: Promise<string>;

  constructor(stream: ReadableStream<Uint8Array>) {
    const decoder = new TextDecoder();
    this.done = (async () => {
      for await (const chunk of stream) {
        this.text += decoder.decode(chunk, { stream: true });
        this.settle();
      }
      this.text += decoder.decode();
      this.ended = true;
      this.settle();
      return this.text;
    })();
  }

  until(pattern: RegExp): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ pattern, resolve, reject });
      this.settle();
    });
  }

  private settle(): void {
    for (const waiter of [...this.waiters]) {
      const match = waiter.pattern.exec(this.text);
      if (match !== null) waiter.resolve(match);
      else if (this.ended) waiter.reject(new Error(`stream ended without ${waiter.pattern}; it was:\n${this.text}`));
      else continue;
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
    }
  }
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
  /** Its stdout (lengths and sha256 only) and stderr, as they arrive. */
  stdout: ByteWatch;
  stderr: TextWatch;
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
  /** Another build of the CLI, its working directory and environment (see SpawnOptions). */
  program?: readonly string[];
  cwd?: string;
  env?: Record<string, string>;
}

/**
 * Spawns `viamillipede rx ...args` (args should say port 0) and resolves once
 * it printed its port. Rejects, with its stderr, if it exits first.
 */
export async function startReceiver(args: readonly string[], options: ReceiverOptions = {}): Promise<Receiver> {
  const proc = spawnCli(args, {
    stdin: "ignore",
    stdout: "pipe",
    netns: options.netns,
    redirect: options.redirect,
    fileLimit: options.fileLimit,
    program: options.program,
    cwd: options.cwd,
    env: options.env,
  });
  const stderr = new TextWatch(proc.stderr);
  const stopAfterBytes = options.output === "consumer" ? (options.consumeBytes ?? 1000) : undefined;
  const stdout = new ByteWatch(proc.stdout, { keep: false, stopAfterBytes });
  const outcome = (async (): Promise<ReceiverOutcome> => {
    const [text, , exitCode] = await Promise.all([stderr.done, stdout.done, proc.exited]);
    return { exitCode, signalCode: proc.signalCode, stderr: text, stdoutSha256: stdout.sha256(), stdoutBytes: stdout.length };
  })();
  const exitedFirst = outcome.then((o) => {
    throw new Error(`receiver ${args.join(" ")} exited (${o.exitCode}) before listening; stderr:\n${o.stderr}`);
  });
  const announced = stderr.until(LISTENING_LINE).then(
    (match) => Number(match[1]),
    () => exitedFirst,
  );
  const port = await within(options.listenTimeoutMs ?? 10_000, `receiver's listening line (${args.join(" ")})`, Promise.race([announced, exitedFirst]));
  return { port, proc, stdout, stderr, stderrSoFar: () => stderr.text, stdoutBytesSoFar: () => stdout.length, done: () => outcome };
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
  /** Its stderr as it arrives. */
  stderr: TextWatch;
  /** Resolves once the process has exited and its streams are read (as `runTransmitter`). */
  done(): Promise<CliOutcome>;
}

/** Spawns `viamillipede ...args` with the given stdin and returns at once; `done()` waits for its exit. */
export function startTransmitter(
  args: readonly string[],
  input: TransmitterInput,
  options: { netns?: string; env?: Record<string, string>; redirect?: string; fileLimit?: number; program?: readonly string[]; cwd?: string } = {},
): Transmitter {
  const started = performance.now();
  const stdin = "file" in input ? Bun.file(input.file) : "feed" in input ? "pipe" : "ignore";
  const proc = spawnCli(args, { stdin, stdout: "pipe", ...options });
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
  const stderr = new TextWatch(proc.stderr);
  const outcome = (async (): Promise<CliOutcome> => {
    const [stdout, text, exitCode] = await Promise.all([new TextWatch(proc.stdout).done, stderr.done, proc.exited, feeding]);
    return { exitCode, signalCode: proc.signalCode, stdout, stderr: text, elapsedMs: performance.now() - started };
  })();
  return { proc, stderr, done: () => outcome };
}

/** Runs any command line with empty stdin to its exit. */
export function runCli(args: readonly string[]): Promise<CliOutcome> {
  return runTransmitter(args, { empty: true });
}

// ---- peers: a CLI the test drives while it runs ----------------------------------------

export interface PeerOutcome {
  exitCode: number | null;
  signalCode: string | number | null;
  stdout: Buffer;
  stderr: string;
}

export interface Peer {
  proc: Bun.Subprocess;
  /** The stdin pipe (only with stdin "pipe"). */
  stdin: Bun.FileSink;
  stdout: ByteWatch;
  stderr: TextWatch;
  done(): Promise<PeerOutcome>;
}

/**
 * Spawns `viamillipede ...args` with stdin from a pipe the test writes
 * (`peer.stdin`), a file, or nothing. `keepStdout: false` keeps only lengths;
 * `ignoreHangup` runs it as `nohup` would.
 */
export function startPeer(
  args: readonly string[],
  stdin: "pipe" | "ignore" | { file: string } = "ignore",
  options: { keepStdout?: boolean; ignoreHangup?: boolean } = {},
): Peer {
  const proc = spawnCli(args, { stdin: typeof stdin === "object" ? Bun.file(stdin.file) : stdin, stdout: "pipe", ignoreHangup: options.ignoreHangup });
  const keep = options.keepStdout ?? true;
  const stdout = new ByteWatch(proc.stdout, { keep });
  const stderr = new TextWatch(proc.stderr);
  const outcome = (async (): Promise<PeerOutcome> => {
    const [exitCode, , text] = await Promise.all([proc.exited, stdout.done, stderr.done]);
    return { exitCode, signalCode: proc.signalCode, stdout: keep ? stdout.bytes() : Buffer.alloc(0), stderr: text };
  })();
  return { proc, stdin: proc.stdin as Bun.FileSink, stdout, stderr, done: () => outcome };
}

/** How long a status block (SIGUSR1) gets to arrive before peersSoFar reads stderr. */
const STATUS_WAIT_MS = 500;

/**
 * For `within`'s timeout message: asks each running peer for its status
 * block (SIGUSR1), then gives each one's exit state and stderr so far.
 */
export function peersSoFar(peers: Record<string, Peer>): () => Promise<string> {
  return async () => {
    const live = Object.values(peers).filter((peer) => peer.proc.exitCode === null && peer.proc.signalCode === null);
    for (const peer of live) peer.proc.kill("SIGUSR1");
    // Diagnostics after a deadline passed, not synchronisation: whatever arrived by then is shown.
    if (live.length > 0) await Bun.sleep(STATUS_WAIT_MS);
    return Object.entries(peers)
      .map(([name, { proc, stderr }]) => `--- ${name} (${proc.exitCode === null && proc.signalCode === null ? "still running" : `exited ${proc.exitCode ?? proc.signalCode}`}), stderr so far:\n${stderr.text}`)
      .join("\n");
  };
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
