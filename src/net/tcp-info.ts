/**
 * The kernel's count of a connection's bytes the peer acknowledged
 * (getsockopt TCP_INFO, `tcpi_bytes_acked`, Linux 4.1 and later): goodput to
 * the byte, where feet acknowledged by the receiver come 2 MiB at a time.
 *
 * Why: `threads auto` judges a count by goodput over a few round trips. Read
 * from feet, a measurement is only good to a foot per connection either way,
 * and connections that started their feet together finish them together: on
 * a 300 Mbit/s (35.8 MiB/s) path, 0.5 s windows read "40 MiB/s with 8" and
 * "52 with 4" (bench/wan.md), and steps were judged on such bursts. The
 * kernel's count moves with every TCP acknowledgement.
 */
import { ptr, read } from "bun:ffi";
import { IPPROTO_TCP, socketCalls } from "./socket-calls.ts";

const TCP_INFO = 11;
/** `struct tcp_info` up to and including `tcpi_bytes_acked` (a __u64 at offset 120; offsets from linux/tcp.h, checked with offsetof). */
const BYTES_ACKED_OFFSET = 120;
const INFO_BYTES = BYTES_ACKED_OFFSET + 8;

/** One buffer for every call: the calls are synchronous and the value is read out at once. */
const info = new Uint8Array(INFO_BYTES);
const infoLength = new Uint32Array(1);

/**
 * Bytes of this connection's stream the peer's TCP acknowledged so far (the
 * kernel counts the SYN as one), or undefined where the kernel cannot say (no libc, a kernel older than 4.1, a
 * closed descriptor).
 */
export function tcpBytesAcked(fd: number): number | undefined {
  const calls = socketCalls();
  if (calls === null) return undefined;
  infoLength[0] = INFO_BYTES;
  if (calls.getsockopt(fd, IPPROTO_TCP, TCP_INFO, ptr(info), ptr(infoLength)) !== 0) return undefined;
  if (infoLength[0] < INFO_BYTES) return undefined;
  return Number(read.u64(ptr(info), BYTES_ACKED_OFFSET));
}
