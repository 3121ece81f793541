/**
 * A command that `exec` runs in place of stdin (tx: the producer, whose
 * stdout is the stream) or of stdout (rx: the consumer, whose stdin is the
 * stream). The roles' sides are src/tx/producer.ts and src/rx/consumer.ts.
 *
 * 1. Spawned directly from its argument vector (Bun.spawn; never a shell:
 *    a user who wants one writes `sh -c '...'`), in a process group of its
 *    own (setsid). A signal we send reaches everything it started (`sh -c
 *    'zstd -d | zfs recv ...'`), and the user's ^C reaches only us, so we
 *    stop it in order (step 3) instead of racing it.
 * 2. Its stderr is passed through to ours as it comes, and its last
 *    MAX_STDERR_TAIL_BYTES are kept: its final message is what the verdict
 *    (rx) or the producer's failure (tx) carries to the other end.
 * 3. `stop()`: SIGTERM to its group; SIGKILL to the group if it is still
 *    running after STOP_GRACE_MS, and once it has exited, SIGKILL to
 *    whatever of its group ignored the SIGTERM. The caller closes the
 *    command's stdin only after that: a consumer that is stopped must never
 *    read an end of input first (for `tar` and `zfs recv` a closed input is
 *    a clean end; see README, "exec").
 *
 * State it owns: the child process, its stderr tail, how it ended.
 */
import { VmError } from "./errors.ts";
import { passThroughStderr } from "./log.ts";
import { describeVerdict, stderrTail, verdictFrame } from "./protocol/messages.ts";
import { FrameKind, MAX_STDERR_TAIL_BYTES, type ConsumerVerdict } from "./protocol/xdr.generated.ts";

/** How long a stopped command gets to exit on SIGTERM before its group is killed. */
export const STOP_GRACE_MS = 1_000;

/** How a command ended: its exit status, the signal that killed it, or it never ran. */
export type CommandEnd = { exitCode: number } | { signal: string } | "not run";

/**
 * A word as a shell would need it written, for messages: `sh -c "cat > out"`
 * (double quotes where they suffice: messages wrap the whole command in single ones).
 */
function shellWord(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  if (!/["$`\\!]/.test(word)) return `"${word}"`;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The command line as the user would type it again. */
export function commandText(argv: readonly string[]): string {
  return argv.map(shellWord).join(" ");
}

/** Bun names the signal as the system does (SIGTERM); the verdict carries that name. */
function endOf(proc: Bun.Subprocess): CommandEnd {
  if (proc.signalCode !== null) return { signal: String(proc.signalCode) };
  return { exitCode: proc.exitCode ?? 0 };
}

/** Where the command's stdin and stdout go: a pipe we hold, or ours (inherited). */
export interface CommandStdio {
  stdin: "pipe" | "inherit";
  stdout: "pipe" | "inherit";
}

export class Command {
  /** The command line, for messages. */
  readonly text: string;
  /** Resolves once the command has exited (or at once, if it never ran). */
  readonly ended: Promise<CommandEnd>;
  private readonly proc: Bun.Subprocess<"pipe" | "inherit", "pipe" | "inherit", "pipe"> | undefined;
  /** The last MAX_STDERR_TAIL_BYTES of its stderr (or why it could not be started). */
  private tailBytes: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  /** Its stderr has been read to the end (a verdict must include the last line). */
  private readonly stderrDone: Promise<void>;
  private stopping: Promise<CommandEnd> | undefined;

  constructor(
    readonly argv: readonly string[],
    stdio: CommandStdio,
    env: Record<string, string | undefined> = process.env,
  ) {
    this.text = commandText(argv);
    try {
      this.proc = Bun.spawn([...argv], { stdin: stdio.stdin, stdout: stdio.stdout, stderr: "pipe", env, detached: true });
    } catch (error) {
      this.proc = undefined;
      this.tailBytes = new TextEncoder().encode(`cannot run it: ${(error as Error).message}\n`);
      this.ended = Promise.resolve("not run");
      this.stderrDone = Promise.resolve();
      return;
    }
    const proc = this.proc;
    this.stderrDone = this.readStderr(proc.stderr);
    // The verdict needs its last words: the end counts once stderr is read too (a grandchild holding it open is not waited for).
    this.ended = proc.exited.then(async () => {
      await Promise.race([this.stderrDone, Bun.sleep(STOP_GRACE_MS)]);
      return endOf(proc);
    });
  }

  /** The pipe to the command's stdin (stdio.stdin "pipe"). */
  get stdin(): Bun.FileSink | undefined {
    const stdin = this.proc?.stdin;
    return typeof stdin === "object" ? stdin : undefined;
  }

  /** The command's stdout (stdio.stdout "pipe"). */
  get stdout(): ReadableStream<Uint8Array> | undefined {
    const stdout = this.proc?.stdout;
    return typeof stdout === "object" ? stdout : undefined;
  }

  /** The last MAX_STDERR_TAIL_BYTES of its stderr so far. */
  get tail(): Uint8Array {
    return this.tailBytes;
  }

  /** Still running: not exited, never stopped. */
  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  private async readStderr(stream: ReadableStream<Uint8Array>): Promise<void> {
    try {
      for await (const chunk of stream) {
        passThroughStderr(chunk);
        const joined = new Uint8Array(this.tailBytes.length + chunk.length);
        joined.set(this.tailBytes);
        joined.set(chunk, this.tailBytes.length);
        this.tailBytes = joined.length <= MAX_STDERR_TAIL_BYTES ? joined : joined.slice(joined.length - MAX_STDERR_TAIL_BYTES);
      }
    } catch {
      // Its stderr went away: what was kept stays.
    }
  }

  /** Signals the command's process group; false once the group is gone. */
  private signalGroup(signal: NodeJS.Signals): boolean {
    if (this.proc === undefined) return false;
    try {
      process.kill(-this.proc.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Stops the command (see the header, step 3); resolves with how it ended
   * once it has. `waitMs`: first give it that long to exit by itself (it
   * closed its input and is on its way out: its own exit status is the news).
   */
  stop(waitMs = 0): Promise<CommandEnd> {
    this.stopping ??= (async () => {
      if (this.running && waitMs > 0) await this.exitWithin(waitMs);
      if (this.running) {
        this.signalGroup("SIGTERM");
        await this.exitWithin(STOP_GRACE_MS);
      }
      // Whatever of its group outlived the SIGTERM (or the command's own exit) must not read an end of input.
      this.signalGroup("SIGKILL");
      return this.ended;
    })();
    return this.stopping;
  }

  /** Resolves once the command has exited, or after `ms`. */
  private async exitWithin(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
    await Promise.race([this.proc?.exited, late]);
    clearTimeout(timer);
  }

  /** How it ended, as the verdict the receiver sends (and the transmitter describes). */
  verdict(end: CommandEnd): ConsumerVerdict {
    const frame = verdictFrame(this.text, end, stderrTail(this.tailBytes));
    if (frame.kind !== FrameKind.FRAME_VERDICT) throw new VmError("internal", "internal error: verdictFrame made another frame");
    return frame.verdict;
  }

  /** One line on how it ended: `'zfs send tank@s' exited 1: cannot open 'tank@s': dataset does not exist`. */
  describe(end: CommandEnd): string {
    return describeVerdict(this.verdict(end));
  }
}

/** Whether `end` is a success: the command exited 0. */
export function succeeded(end: CommandEnd): boolean {
  return typeof end === "object" && "exitCode" in end && end.exitCode === 0;
}

/**
 * Refuses, before anything listens or dials, a command that cannot be found
 * (a typo would otherwise surface only once a transfer starts).
 */
export function checkCommand(argv: readonly string[], role: "rx" | "tx"): void {
  const program = argv[0];
  if (program === undefined) throw new VmError("usage", "exec needs a command: 'exec COMMAND [ARG...]'");
  if (Bun.which(program) === null) {
    throw new VmError("usage", `${role}: exec cannot find '${program}'${program.includes("/") ? "" : " on PATH"}; give the command's name or path`);
  }
}
