/**
 * The socket calls Bun does not offer (socket, setsockopt, getsockopt on a
 * connection's descriptor), through bun:ffi on libc: the congestion control
 * (congestion.ts) and the kernel's own figures for a connection (tcp-info.ts).
 * Null where there is no libc to open (not Linux); each caller says what that costs.
 */
import { FFIType, type Pointer, read } from "bun:ffi";
import { openLibc } from "../libc.ts";

export const AF_INET = 2;
export const SOCK_STREAM = 1;
export const SOCK_CLOEXEC = 0o2000000;
export const IPPROTO_TCP = 6;

export interface SocketCalls {
  socket(domain: number, type: number, protocol: number): number;
  close(fd: number): number;
  setsockopt(fd: number, level: number, name: number, value: Pointer, length: number): number;
  getsockopt(fd: number, level: number, name: number, value: Pointer, length: Pointer): number;
  errno(): number;
}

let calls: SocketCalls | null | undefined;

/** The calls, opened once per process; null where there is no libc. */
export function socketCalls(): SocketCalls | null {
  if (calls !== undefined) return calls;
  calls = null;
  const symbols = openLibc({
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
    setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
  if (symbols === null) return calls;
  calls = {
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
  return calls;
}

/** The descriptor Bun 1.4.5 carries on its sockets (dialled and accepted alike) without typing it; undefined if absent. */
export function socketDescriptor(socket: unknown): number | undefined {
  const fd = (socket as { fd?: unknown }).fd;
  return typeof fd === "number" && fd >= 0 ? fd : undefined;
}
