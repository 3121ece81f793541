/**
 * stdin and stdout (Linux, best effort): pipes larger and blocking, and a
 * descriptor that was closed at start told from a real /dev/null.
 *
 * 1. Size. A Linux pipe holds 64 KiB, so each read of `zfs send | tx` or
 *    write of `rx | zfs recv` moves at most 64 KiB per wake-up of the other
 *    process, and a 2 MiB foot takes 32 round trips through Bun's thread pool.
 *    1 MiB measured best (4 MiB no longer fits the CPU caches; figures in
 *    README, Performance).
 * 2. Blocking writes. Touching process.stdout makes fd 1 non-blocking (Bun
 *    1.4.5; consola's full import does, which the logger loads on a
 *    terminal), and Node's stream then writes a pipe a piece at a time,
 *    waking on epoll between pieces. With O_NONBLOCK cleared, one write() per
 *    foot on Bun's thread pool lets the kernel do that waiting (stdin is read
 *    the same way, src/tx/stdin.ts): faster and cheaper in CPU through both
 *    pipes (figures in README, Performance).
 *
 * 3. Closed at start. Bun puts /dev/null in place of a closed fd 0 or 1
 *    (`viamillipede rx 8834 >&-`) before any of our code runs, so a receiver
 *    would "write" and confirm a whole stream that went nowhere, and a
 *    transmitter would send an empty one. Its stand-in is opened
 *    O_RDWR|O_CLOEXEC (/proc/self/fdinfo flags 02100002, Bun 1.4.5), which
 *    no inherited descriptor can be: exec closes every O_CLOEXEC descriptor,
 *    so a user's own `>/dev/null` (O_WRONLY), `</dev/null` (O_RDONLY) or
 *    `<>/dev/null` (O_RDWR) never carries the flag. `closedAtStart` tells them
 *    apart (Linux only; elsewhere it says no).
 *
 * Nothing in 1 and 2 is required: on another OS, without libc, on an architecture
 * whose O_NONBLOCK we do not know, for a terminal or a socket, or when the
 * kernel refuses (an unprivileged user asking above
 * /proc/sys/fs/pipe-max-size), the descriptor stays as it was.
 */
import { FFIType } from "bun:ffi";
import { fstatSync, readFileSync, readlinkSync } from "node:fs";
import { openLibc } from "./libc.ts";
import { log } from "./log.ts";

/** What we ask for: measured best (see above). */
export const WANTED_PIPE_BYTES = 1 << 20;
const F_GETFL = 3;
const F_SETFL = 4;
const F_SETPIPE_SZ = 1031;
const F_GETPIPE_SZ = 1032;
/** Linux's open flags where they are asm-generic's; alpha, mips, parisc and sparc differ and are left alone. */
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const O_ACCMODE = 0o3;
const O_RDWR = 0o2;
const GENERIC_FLAG_ARCHES = new Set(["x64", "ia32", "arm64", "arm", "s390x", "riscv64", "ppc64", "loong64"]);

type Fcntl = (fd: number, command: number, argument: number) => number;

let fcntl: Fcntl | null | undefined;

/** libc's fcntl through bun:ffi, or null where there is none to be had. */
function loadFcntl(): Fcntl | null {
  if (fcntl !== undefined) return fcntl;
  fcntl = null;
  const symbols = openLibc({ fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
  if (symbols !== null) fcntl = (fd, command, argument) => symbols.fcntl(fd, command, argument);
  return fcntl;
}

/** The largest pipe an unprivileged process may ask for (root may ask for more, we don't). */
function pipeMaxBytes(): number {
  try {
    return Number(readFileSync("/proc/sys/fs/pipe-max-size", "utf8").trim()) || WANTED_PIPE_BYTES;
  } catch {
    return WANTED_PIPE_BYTES;
  }
}

/**
 * Grows the pipe on `fd` to WANTED_PIPE_BYTES (never shrinks it). Returns the
 * pipe's size afterwards, or undefined when `fd` is not a pipe or the size
 * cannot be read.
 */
export function growPipe(fd: number): number | undefined {
  if (kindOf(fd) !== "pipe") return undefined;
  const call = loadFcntl();
  if (call === null) return undefined;
  const before = call(fd, F_GETPIPE_SZ, 0);
  if (before < 0) return undefined;
  const wanted = Math.min(WANTED_PIPE_BYTES, pipeMaxBytes());
  if (before >= wanted) return before;
  const after = call(fd, F_SETPIPE_SZ, wanted);
  if (after < 0) {
    log.debug(`fd ${fd}: could not grow the pipe from ${before} to ${wanted} bytes; keeping ${before}`);
    return before;
  }
  log.debug(`fd ${fd}: pipe grown from ${before} to ${after} bytes`);
  return after;
}

/** What is on the other end of a descriptor, as far as these tunings care. */
function kindOf(fd: number): "pipe" | "file" | "other" | undefined {
  try {
    const stat = fstatSync(fd);
    return stat.isFIFO() ? "pipe" : stat.isFile() ? "file" : "other";
  } catch {
    return undefined;
  }
}

/**
 * Clears O_NONBLOCK on `fd` when it is a pipe or a regular file, so that a
 * write on the thread pool waits in the kernel for room instead of failing
 * with EAGAIN. Returns whether `fd` now blocks; false for a terminal or a
 * socket (whose flags other processes share and expect), and wherever the
 * flag cannot be read or set.
 */
export function blockingWrites(fd: number): boolean {
  const kind = kindOf(fd);
  if (kind !== "pipe" && kind !== "file") return false;
  if (!GENERIC_FLAG_ARCHES.has(process.arch)) return false;
  const call = loadFcntl();
  if (call === null) return false;
  const flags = call(fd, F_GETFL, 0);
  if (flags < 0) return false;
  if ((flags & O_NONBLOCK) === 0) return true;
  if (call(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
    log.debug(`fd ${fd}: could not clear O_NONBLOCK; writing it through the stream`);
    return false;
  }
  return true;
}

/**
 * Whether `fd` is the /dev/null Bun opened in place of a descriptor that was
 * closed when the process started (3 above): /dev/null, read-write, and
 * close-on-exec. False wherever /proc/self/fdinfo cannot say (not Linux, an
 * architecture with other flag values, no /proc).
 */
export function closedAtStart(fd: number): boolean {
  if (process.platform !== "linux" || !GENERIC_FLAG_ARCHES.has(process.arch)) return false;
  try {
    if (readlinkSync(`/proc/self/fd/${fd}`) !== "/dev/null") return false;
    const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))?.[1];
    if (flags === undefined) return false;
    const value = Number.parseInt(flags, 8);
    return (value & O_CLOEXEC) !== 0 && (value & O_ACCMODE) === O_RDWR;
  } catch {
    return false;
  }
}
