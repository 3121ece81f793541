/**
 * A spawned `viamillipede` whose stdin, stdout and stderr the test drives
 * while it runs: for full duplex (one process is both ends), tunnels and
 * charmode, where spawn.ts's receiver and transmitter shapes do not fit.
 *
 * - `startPeer(args, stdin)` spawns `bun src/cli/main.ts ...args` with stdin
 *   from a pipe the test writes (`peer.stdin`), a file, or nothing.
 * - `peer.stdout` collects every byte with its arrival time;
 *   `untilBytes(n)` resolves when n bytes have arrived (or rejects when
 *   stdout ends first). With `keepStdout: false` only lengths are kept. `peer.stderr.until(pattern)` waits for a line.
 * - `peer.done()` resolves once the process exited and both streams ended.
 * - Every peer is tracked; `killPeers()` (for afterEach) kills, by its own
 *   pid, any that a failed test left running.
 */
import { MAIN, ROOT } from "./spawn.ts";

const peers = new Set<Bun.Subprocess>();

export async function killPeers(): Promise<void> {
  const left = [...peers];
  for (const proc of left) proc.kill("SIGKILL");
  await Promise.all(left.map((proc) => proc.exited));
}

/** Bytes as they arrive on a stream, with when each chunk came (`keep` false: lengths only). */
export class ByteWatch {
  readonly chunks: { atMs: number; bytes: Uint8Array }[] = [];
  length = 0;
  private ended = false;
  private waiters: { bytes: number; resolve: (atMs: number) => void; reject: (error: Error) => void }[] = [];
  readonly done: Promise<void>;

  constructor(
    stream: ReadableStream<Uint8Array>,
    private readonly keep = true,
  ) {
    this.done = (async () => {
      for await (const chunk of stream) {
        this.chunks.push({ atMs: performance.now(), bytes: keep ? chunk : new Uint8Array(chunk.length) });
        this.length += chunk.length;
        this.settle();
      }
      this.ended = true;
      this.settle();
    })();
  }

  /** Resolves with the arrival time of the chunk that brought the total to `bytes`. */
  untilBytes(bytes: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ bytes, resolve, reject });
      this.settle();
    });
  }

  bytes(): Buffer {
    if (!this.keep) throw new Error("stdout was not kept (keepStdout: false)");
    return Buffer.concat(this.chunks.map((chunk) => chunk.bytes));
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

/** Text as it arrives on a stream. */
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

export function startPeer(
  args: readonly string[],
  stdin: "pipe" | "ignore" | { file: string } = "ignore",
  options: { keepStdout?: boolean; ignoreHangup?: boolean } = {},
): Peer {
  // As `nohup` leaves it: SIGHUP ignored across exec (the pid stays the CLI's).
  const prefix = options.ignoreHangup === true ? ["sh", "-c", `trap '' HUP; exec "$@"`, "sh"] : [];
  const proc = Bun.spawn([...prefix, process.execPath, MAIN, ...args], {
    cwd: ROOT,
    stdin: typeof stdin === "object" ? Bun.file(stdin.file) : stdin,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
  });
  peers.add(proc);
  void proc.exited.finally(() => peers.delete(proc));
  const keep = options.keepStdout ?? true;
  const stdout = new ByteWatch(proc.stdout, keep);
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
    const running = Object.values(peers).filter((peer) => peer.proc.exitCode === null && peer.proc.signalCode === null);
    for (const peer of running) peer.proc.kill("SIGUSR1");
    if (running.length > 0) await Bun.sleep(STATUS_WAIT_MS);
    return Object.entries(peers)
      .map(([name, { proc, stderr }]) => `--- ${name} (${proc.exitCode === null && proc.signalCode === null ? "still running" : `exited ${proc.exitCode ?? proc.signalCode}`}), stderr so far:\n${stderr.text}`)
      .join("\n");
  };
}
