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
 * The descriptor comes from the socket (socket-calls.ts, `socketDescriptor`).
 */
import { ptr } from "bun:ffi";
import { readFileSync } from "node:fs";
import { VmError } from "../errors.ts";
import { AF_INET, IPPROTO_TCP, SOCK_CLOEXEC, SOCK_STREAM, socketCalls } from "./socket-calls.ts";

const TCP_CONGESTION = 13;
const ENOENT = 2;
const EPERM = 1;
/** The kernel's TCP_CA_NAME_MAX (16) less the terminating NUL. */
export const MAX_CONGESTION_NAME_BYTES = 15;
/** What the kernel's algorithm names look like (`bbr`, `cubic`, `dctcp`, `highspeed`, ...). */
const CONGESTION_NAME = /^[A-Za-z0-9_-]+$/;
const AVAILABLE_FILE = "/proc/sys/net/ipv4/tcp_available_congestion_control";
const ALLOWED_FILE = "/proc/sys/net/ipv4/tcp_allowed_congestion_control";

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
  const c = socketCalls();
  if (c === null) return -1;
  const name = new TextEncoder().encode(alg);
  return c.setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, ptr(name), name.length) === 0 ? 0 : c.errno();
}

/** The algorithm a socket uses (getsockopt TCP_CONGESTION), or undefined where it cannot be read. */
export function getCongestion(fd: number): string | undefined {
  const c = socketCalls();
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
  const c = socketCalls();
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
