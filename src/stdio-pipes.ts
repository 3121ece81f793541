/**
 * stdin and stdout as pipes (Linux, best effort): larger, and blocking.
 *
 * 1. Size. A Linux pipe holds 64 KiB, so each read of `zfs send | tx` or
 *    write of `rx | zfs recv` moves at most 64 KiB per wake-up of the other
 *    process, and a 2 MiB foot takes 32 round trips through Bun's thread pool.
 *    At 1 MiB the same transfer through both pipes went from about 860 to
 *    1220 MiB/s on loopback (netcat through the same pipes: 1250); 4 MiB was
 *    slower again (1075: the pipe no longer fits the CPU caches).
 * 2. Blocking writes. Importing consola makes fd 1 non-blocking
 *    (BUN-NOTES.md), and Node's stream then writes a pipe a piece at a time,
 *    waking on epoll between pieces. With O_NONBLOCK cleared, one write() per
 *    foot on Bun's thread pool lets the kernel do that waiting (stdin is read
 *    the same way, src/tx/stdin.ts): through both pipes 1081–1123 → 1207–1238
 *    MiB/s and 1.48–1.55 → 1.37–1.40 CPU s/GiB (pipes-only bench, two runs
 *    each). See README, Performance.
 *
 * Nothing here is required: on another OS, without libc, on an architecture
 * whose O_NONBLOCK we do not know, for a terminal or a socket, or when the
 * kernel refuses (an unprivileged user asking above
 * /proc/sys/fs/pipe-max-size), the descriptor stays as it was.
 */
import { dlopen, FFIType } from "bun:ffi";
import { fstatSync, readFileSync } from "node:fs";
import { log } from "./log.ts";

/** What we ask for: measured best (see above). */
export const WANTED_PIPE_BYTES = 1 << 20;
const F_GETFL = 3;
const F_SETFL = 4;
const F_SETPIPE_SZ = 1031;
const F_GETPIPE_SZ = 1032;
/** Linux's O_NONBLOCK where it is 04000 (asm-generic); alpha, mips, parisc and sparc differ and are left alone. */
const O_NONBLOCK = 0o4000;
const O_NONBLOCK_ARCHES = new Set(["x64", "ia32", "arm64", "arm", "s390x", "riscv64", "ppc64", "loong64"]);
/** glibc, then musl's names. */
const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"];

type Fcntl = (fd: number, command: number, argument: number) => number;

let fcntl: Fcntl | null | undefined;

/** libc's fcntl through bun:ffi, or null where there is none to be had. */
function loadFcntl(): Fcntl | null {
  if (fcntl !== undefined) return fcntl;
  fcntl = null;
  if (process.platform !== "linux") return fcntl;
  for (const name of LIBC_NAMES) {
    try {
      const lib = dlopen(name, { fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
      fcntl = (fd, command, argument) => lib.symbols.fcntl(fd, command, argument);
      return fcntl;
    } catch {
      // try the next name
    }
  }
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
  if (!O_NONBLOCK_ARCHES.has(process.arch)) return false;
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
