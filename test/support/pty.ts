/**
 * A pseudo-terminal for a spawned process's stderr, made with libc through
 * bun:ffi (Linux): `openPty()` returns the slave descriptor to hand to
 * Bun.spawn, `readUntil(pattern)` reads what the process wrote there, and
 * `hangUp()` closes the master, as a terminal emulator or an ssh session
 * does when it goes away: from then on every write to the slave fails with EIO.
 *
 * The slave is opened with O_NOCTTY and the child gets no session of its
 * own, so it is not the child's controlling terminal and the hang-up sends
 * no SIGHUP: what is tested is the write failing, nothing else.
 * `ptyAvailable()` says whether this host can do it (else the test skips).
 */
import { dlopen, FFIType, ptr } from "bun:ffi";
import { closeSync, constants, openSync, read } from "node:fs";

type PtyCalls = { posix_openpt(flags: number): number; grantpt(fd: number): number; unlockpt(fd: number): number; ptsname_r(fd: number, buf: Uint8Array): number };

let libc: PtyCalls | null | undefined;

function loadLibc(): PtyCalls | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (process.platform !== "linux") return libc;
  try {
    const lib = dlopen("libc.so.6", {
      posix_openpt: { args: [FFIType.i32], returns: FFIType.i32 },
      grantpt: { args: [FFIType.i32], returns: FFIType.i32 },
      unlockpt: { args: [FFIType.i32], returns: FFIType.i32 },
      ptsname_r: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
    });
    libc = {
      posix_openpt: (flags) => lib.symbols.posix_openpt(flags),
      grantpt: (fd) => lib.symbols.grantpt(fd),
      unlockpt: (fd) => lib.symbols.unlockpt(fd),
      ptsname_r: (fd, buf) => lib.symbols.ptsname_r(fd, ptr(buf), buf.length),
    };
  } catch {
    // musl or no libc.so.6: no pty here
  }
  return libc;
}

export function ptyAvailable(): boolean {
  return loadLibc() !== null;
}

export interface Pty {
  /** For the child's stdio; the parent's copy is closed by `childStarted()`. */
  slave: number;
  /** Closes the parent's copy of the slave once the child holds its own. */
  childStarted(): void;
  /** Reads the terminal until its text so far matches `pattern`; returns that text. */
  readUntil(pattern: RegExp): Promise<string>;
  /** Closes the master: the terminal is gone. */
  hangUp(): void;
}

export function openPty(): Pty {
  const lib = loadLibc();
  if (lib === null) throw new Error("no pseudo-terminals here (needs Linux and libc.so.6)");
  const master = lib.posix_openpt(constants.O_RDWR | constants.O_NOCTTY);
  if (master < 0 || lib.grantpt(master) !== 0 || lib.unlockpt(master) !== 0) throw new Error("posix_openpt failed");
  const name = new Uint8Array(128);
  if (lib.ptsname_r(master, name) !== 0) throw new Error("ptsname_r failed");
  const slave = openSync(new TextDecoder().decode(name.subarray(0, name.indexOf(0))), constants.O_RDWR | constants.O_NOCTTY);
  let text = "";
  const chunk = Buffer.alloc(4096);
  return {
    slave,
    childStarted: () => closeSync(slave),
    async readUntil(pattern) {
      // One read at a time on the thread pool, none left pending once the pattern is seen.
      while (!pattern.test(text)) {
        const n = await new Promise<number>((resolve, reject) => read(master, chunk, 0, chunk.length, null, (error, bytes) => (error ? reject(error) : resolve(bytes))));
        if (n === 0) throw new Error(`the terminal closed before ${pattern}; it showed:\n${text}`);
        text += chunk.subarray(0, n).toString("utf8");
      }
      return text;
    },
    hangUp: () => closeSync(master),
  };
}
