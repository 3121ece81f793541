/**
 * `congestion ALG`: the kernel's TCP congestion control for our own
 * connections (Linux, setsockopt TCP_CONGESTION through bun:ffi on libc).
 *
 * Why: on a long path with random loss, cubic (and reno) read every lost
 * packet as congestion and halve the window, so each connection gets a small
 * share of the link and even 64 of them cannot fill it; bbr paces by measured
 * bandwidth and round trip and barely notices random loss. A host whose
 * default is cubic can still pick bbr for this transfer alone.
 *
 * How:
 * 1. `checkCongestion(alg)` before a role starts: one throw-away TCP socket
 *    asks the kernel for ALG, so every reason it can refuse (not built or not
 *    loadable: ENOENT; not in tcp_allowed_congestion_control for a process
 *    without CAP_NET_ADMIN: EPERM) becomes a usage error that names what to
 *    do, before anything is dialled or listened on.
 * 2. `setCongestion(fd, alg)` on each connection once it is open, dialled or
 *    accepted. After the handshake rather than before it: a route's
 *    `congctl ALG` (`ip route ... congctl cubic`) replaces whatever the socket
 *    asked for at connect() and accept() time, and the kernel lets an open
 *    connection change algorithm unless the route says `congctl lock`.
 *
 * Bun 1.4.5 does not type it, but its sockets carry their descriptor as
 * `socket.fd` (dialled and accepted alike); bun-network.ts reads it there.
 */
import { FFIType, type Pointer, ptr, read } from "bun:ffi";
import { readFileSync } from "node:fs";
import { VmError } from "../errors.ts";
import { openLibc } from "../libc.ts";

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const IPPROTO_TCP = 6;
const TCP_CONGESTION = 13;
const ENOENT = 2;
const EPERM = 1;
/** The kernel's TCP_CA_NAME_MAX (16) less the terminating NUL. */
export const MAX_CONGESTION_NAME_BYTES = 15;
/** What the kernel's algorithm names look like (`bbr`, `cubic`, `dctcp`, `highspeed`, ...). */
const CONGESTION_NAME = /^[A-Za-z0-9_-]+$/;
const AVAILABLE_FILE = "/proc/sys/net/ipv4/tcp_available_congestion_control";
const ALLOWED_FILE = "/proc/sys/net/ipv4/tcp_allowed_congestion_control";

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  close(fd: number): number;
  setsockopt(fd: number, level: number, name: number, value: Pointer, length: number): number;
  getsockopt(fd: number, level: number, name: number, value: Pointer, length: Pointer): number;
  errno(): number;
}

let libc: Libc | null | undefined;

/** libc through bun:ffi, or null where there is none (not Linux, no libc found). */
function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  const symbols = openLibc({
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
    setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
  if (symbols === null) return libc;
  libc = {
    socket: (domain, type, protocol) => symbols.socket(domain, type, protocol),
    close: (fd) => symbols.close(fd),
    setsockopt: (fd, level, option, value, length) => symbols.setsockopt(fd, level, option, value, length),
    getsockopt: (fd, level, option, value, length) => symbols.getsockopt(fd, level, option, value, length),
    // errno is thread-local and nothing runs between the failed call and this read.
    errno: () => {
      const where = symbols.__errno_location();
      return where === null ? 0 : read.i32(where, 0);
    },
  };
  return libc;
}

/** A /proc list of algorithm names, or "unknown" where it cannot be read. */
function kernelList(file: string): string {
  try {
    return readFileSync(file, "utf8").trim() || "none";
  } catch {
    return "unknown";
  }
}

/** Sets ALG on descriptor `fd`; returns 0 or the errno the kernel gave. */
export function setCongestion(fd: number, alg: string): number {
  const c = loadLibc();
  if (c === null) return -1;
  const name = new TextEncoder().encode(alg);
  return c.setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, ptr(name), name.length) === 0 ? 0 : c.errno();
}

/** The algorithm a socket uses (getsockopt TCP_CONGESTION), or undefined where it cannot be read. */
export function getCongestion(fd: number): string | undefined {
  const c = loadLibc();
  if (c === null) return undefined;
  const name = new Uint8Array(MAX_CONGESTION_NAME_BYTES + 1);
  const length = new Uint32Array([name.length]);
  if (c.getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, ptr(name), ptr(length)) !== 0) return undefined;
  const end = name.indexOf(0);
  return new TextDecoder().decode(name.subarray(0, end < 0 ? length[0] : end));
}

/** Why the kernel refused ALG, as the rest of a one-line message that names what to do. */
export function congestionRefusal(alg: string, errno: number): string {
  if (errno === ENOENT) {
    return `congestion '${alg}': this kernel does not offer it (available: ${kernelList(AVAILABLE_FILE)}; 'modprobe tcp_${alg}' may add it)`;
  }
  if (errno === EPERM) {
    return `congestion '${alg}': only a process with CAP_NET_ADMIN may pick it (allowed for everyone: ${kernelList(ALLOWED_FILE)}; add it to net.ipv4.tcp_allowed_congestion_control or run as root)`;
  }
  return `congestion '${alg}': the kernel refused it (setsockopt TCP_CONGESTION: errno ${errno})`;
}

/**
 * Throws VmError("usage") unless this process can give its TCP connections
 * ALG: asks the kernel on a socket of its own, which is connected to nothing
 * and closed at once.
 */
export function checkCongestion(alg: string): void {
  const c = loadLibc();
  if (c === null) throw new VmError("usage", `congestion '${alg}': choosing the congestion control needs Linux (and its libc); leave it out here`);
  const fd = c.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new VmError("usage", `congestion '${alg}': cannot open a socket to ask the kernel (errno ${c.errno()})`);
  try {
    const errno = setCongestion(fd, alg);
    if (errno !== 0) throw new VmError("usage", congestionRefusal(alg, errno));
  } finally {
    c.close(fd);
  }
}

/** Reads `congestion ALG`'s value: a name the kernel could know (it is asked when a role starts). */
export function parseCongestionName(text: string): string {
  if (!CONGESTION_NAME.test(text) || text.length > MAX_CONGESTION_NAME_BYTES) {
    throw new VmError("usage", `congestion '${text}' is not an algorithm name (1..${MAX_CONGESTION_NAME_BYTES} letters, digits, '_' or '-', as in ${AVAILABLE_FILE})`);
  }
  return text;
}
