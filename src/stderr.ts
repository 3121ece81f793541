/**
 * stderr that can neither end nor stall the transfer. Every text for the user
 * (log lines, the progress line, status blocks, summaries, the final error)
 * goes through the one StderrWriter made here.
 *
 * 1. A text is written at once with a non-blocking write(2).
 * 2. What stderr cannot take now (a reader that stopped reading, a terminal
 *    held with ^S) waits in a backlog of at most STDERR_BACKLOG_BYTES and is
 *    retried every STDERR_RETRY_MS, in order.
 * 3. A text that does not fit in the backlog is dropped whole (never a
 *    fragment of it), and so is the backlog when stderr refuses a write
 *    (ENOSPC on a full disk, EPIPE from a closed pipe, EIO from a hung-up
 *    terminal). Dropped lines are counted in `droppedLines`; the next text is
 *    tried again, in case stderr has recovered. Nothing here throws.
 *
 * Why not process.stderr: on an error it emits 'error', which with no
 * listener is an uncaught exception (rx ended with exit 1 at its first
 * warning under `2>/dev/full`); on a terminal whose reader stopped it blocks
 * the main thread inside write (measured: 9.9 s, until the terminal hung
 * up); on a pipe whose reader stopped it buffers without limit (300 MB
 * measured), while reporting nothing waiting.
 *
 * Never waiting needs a non-blocking descriptor of our own. On Linux a
 * terminal or a pipe on fd 2 is opened again through /proc/self/fd/2 with
 * O_NONBLOCK: a new open file description, so the flag is not imposed on the
 * shell and the other processes sharing that terminal or pipe, and clearing
 * O_NONBLOCK on stdout (src/stdio-pipes.ts), which `2>&1` makes the same
 * description as stderr, does not reach it. Files and devices (/dev/full)
 * never wait and are written on fd 2 itself, so appends keep their place;
 * so is anything that cannot be reopened (a socket, another OS).
 */
import { constants, fstatSync, openSync, writeSync } from "node:fs";

/** At most this many bytes wait for stderr; a text that would go beyond is dropped. */
export const STDERR_BACKLOG_BYTES = 64 * 1024;
/** How often text that stderr could not take is offered again. */
export const STDERR_RETRY_MS = 50;

const STDERR_FD = 2;
const WOULD_BLOCK = new Set(["EAGAIN", "EWOULDBLOCK", "EINTR"]);
const encoder = new TextEncoder();

export interface StderrWriterOptions {
  backlogBytes?: number;
  retryMs?: number;
  /** Calls `retry` after `ms`; the default timer does not keep the process alive. */
  schedule?: (retry: () => void, ms: number) => void;
}

interface Waiting {
  bytes: Uint8Array;
  /** How many lines the user loses if it is dropped (a text without a newline is one). */
  lines: number;
}

const NEWLINE = 0x0a;

function linesIn(bytes: Uint8Array): number {
  let lines = 0;
  for (let at = bytes.indexOf(NEWLINE); at !== -1; at = bytes.indexOf(NEWLINE, at + 1)) lines++;
  return bytes[bytes.length - 1] === NEWLINE ? lines : lines + 1;
}

function unrefTimer(retry: () => void, ms: number): void {
  setTimeout(retry, ms).unref();
}

/** Writes text to a descriptor without ever throwing or waiting (see the file header). */
export class StderrWriter {
  /** Lines lost so far: refused by stderr, or no room in the backlog. */
  droppedLines = 0;
  private readonly backlog: Waiting[] = [];
  private backlogBytes = 0;
  /** How much of the first waiting text is already out. */
  private headWrittenBytes = 0;
  private retryPending = false;
  private readonly limitBytes: number;
  private readonly retryMs: number;
  private readonly schedule: (retry: () => void, ms: number) => void;

  constructor(
    private readonly fd: number,
    options: StderrWriterOptions = {},
  ) {
    this.limitBytes = options.backlogBytes ?? STDERR_BACKLOG_BYTES;
    this.retryMs = options.retryMs ?? STDERR_RETRY_MS;
    this.schedule = options.schedule ?? unrefTimer;
  }

  /** Bytes accepted but not yet taken by stderr. */
  get waitingBytes(): number {
    return this.backlogBytes - this.headWrittenBytes;
  }

  write(text: string | Uint8Array): void {
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    if (bytes.length === 0) return;
    const lines = linesIn(bytes);
    if (this.backlogBytes + bytes.length > this.limitBytes) {
      this.droppedLines += lines;
      return;
    }
    this.backlog.push({ bytes, lines });
    this.backlogBytes += bytes.length;
    if (!this.retryPending) this.flush();
  }

  /** Hands stderr what it takes now; the rest waits for a retry. */
  flush(): void {
    while (this.backlog.length > 0) {
      const head = this.backlog[0]!;
      let written: number;
      try {
        written = writeSync(this.fd, head.bytes, this.headWrittenBytes, head.bytes.length - this.headWrittenBytes);
      } catch (error) {
        if (WOULD_BLOCK.has((error as NodeJS.ErrnoException).code ?? "")) this.retryLater();
        else this.dropBacklog();
        return;
      }
      this.headWrittenBytes += written;
      if (this.headWrittenBytes < head.bytes.length) {
        // A partial write: stderr is full for now.
        this.retryLater();
        return;
      }
      this.backlog.shift();
      this.backlogBytes -= head.bytes.length;
      this.headWrittenBytes = 0;
    }
  }

  private retryLater(): void {
    if (this.retryPending) return;
    this.retryPending = true;
    this.schedule(() => {
      this.retryPending = false;
      this.flush();
    }, this.retryMs);
  }

  /** stderr refused a write: what waits is lost (a text partly out counts as lost). */
  private dropBacklog(): void {
    for (const waiting of this.backlog) this.droppedLines += waiting.lines;
    this.backlog.length = 0;
    this.backlogBytes = 0;
    this.headWrittenBytes = 0;
  }
}

/**
 * The descriptor to write stderr on: fd 2 opened again without blocking for a
 * terminal or a pipe (Linux), else fd 2 itself.
 */
export function stderrDescriptor(): number {
  let reopen = false;
  try {
    reopen = fstatSync(STDERR_FD).isFIFO() || stderrIsTerminal;
  } catch {
    return STDERR_FD;
  }
  if (!reopen || process.platform !== "linux") return STDERR_FD;
  try {
    // O_NOCTTY: the terminal must not become our controlling terminal (Bun adds O_CLOEXEC itself).
    const flags = constants.O_WRONLY | constants.O_NONBLOCK | constants.O_NOCTTY;
    return openSync(`/proc/self/fd/${STDERR_FD}`, flags);
  } catch {
    // A pipe whose reader is gone (ENXIO), a hung-up terminal (EIO), no /proc: fd 2 as it is.
    return STDERR_FD;
  }
}

/**
 * Whether fd 2 is a terminal. node:tty is asked only about a character device
 * (a terminal, /dev/null and the like): its import adds 7-8 ms to a start,
 * and a start with stderr on a file or a pipe is on the clock (bench/wan.md).
 */
export const stderrIsTerminal: boolean = (() => {
  try {
    return fstatSync(STDERR_FD).isCharacterDevice() && (require("node:tty") as typeof import("node:tty")).isatty(STDERR_FD);
  } catch {
    return false;
  }
})();

/** The process's stderr writer. */
export const stderrWriter = new StderrWriter(stderrDescriptor());

// What is still waiting gets one last chance as the process exits (best effort: it does not wait).
process.on("exit", () => stderrWriter.flush());
let guardedStderr: NodeJS.WriteStream | undefined;
/**
 * process.stderr, for what needs the stream itself (a terminal's columns,
 * consola's reporters on a terminal): whatever writes it must not turn ENOSPC
 * or EPIPE into a crash, so it never goes without an 'error' listener. Made
 * only when asked: the stream's creation adds about 9 ms to a start.
 */
export function processStderr(): NodeJS.WriteStream {
  if (guardedStderr === undefined) {
    guardedStderr = process.stderr;
    guardedStderr.on("error", () => {});
  }
  return guardedStderr;
}
