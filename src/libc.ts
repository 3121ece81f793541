/**
 * libc through bun:ffi, for the few calls Bun does not offer (fcntl on the
 * standard descriptors, setsockopt for the congestion control). Linux only,
 * glibc or musl; elsewhere, or when no libc can be opened, `openLibc` gives
 * null and the callers go without (each says what that costs).
 */
import { dlopen, type FFIFunction } from "bun:ffi";

/** glibc, then musl's names. */
const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"];

/** The first libc that opens with these symbols, or null. */
export function openLibc<Fns extends Record<string, FFIFunction>>(symbols: Fns): ReturnType<typeof dlopen<Fns>>["symbols"] | null {
  if (process.platform !== "linux") return null;
  for (const name of LIBC_NAMES) {
    try {
      return dlopen(name, symbols).symbols;
    } catch {
      // try the next name
    }
  }
  return null;
}
