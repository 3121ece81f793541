/**
 * The kernel's figures for one of our connections (getsockopt TCP_INFO):
 * the bytes the peer acknowledged, and the round trip now and at its least.
 *
 * Bytes that arrived give goodput to the segment, where feet acknowledged by
 * the receiver come 2 MiB at a time.
 *
 * Why: `threads auto` judges a count by goodput over a few round trips. Read
 * from feet, a measurement is only good to a foot per connection either way,
 * and connections that started their feet together finish them together: on
 * a 300 Mbit/s (35.8 MiB/s) path, 0.5 s windows read "40 MiB/s with 8" and
 * "52 with 4" (bench/wan.md), and steps were judged on such bursts. The
 * kernel's count moves with every TCP acknowledgement. Its cumulative count
 * alone is bursty too: after a lost segment the data behind it is only
 * selectively acknowledged, and the cumulative count jumps by all of it when
 * the retransmission lands (50 ms, bbr, 4 connections: 112 MiB/s in one
 * 100 ms reading of a 35.8 MiB/s link, 1.6 in another); adding the
 * selectively acknowledged segments counts bytes as they arrive.
 *
 * The round trips tell whether a queue stands at the bottleneck: a link that
 * our connections fill holds a queue (round trip above its least), while
 * connections each held back by random loss leave it empty. See
 * thread-tuner.ts for what `threads auto` makes of it.
 */
import { ptr, read } from "bun:ffi";
import { IPPROTO_TCP, socketCalls } from "./socket-calls.ts";

const TCP_INFO = 11;
/** Offsets in `struct tcp_info` (linux/tcp.h, checked with offsetof on Linux 6.18; stable since they were added). */
const SND_MSS_OFFSET = 16; // __u32 tcpi_snd_mss
const SACKED_OFFSET = 28; // __u32 tcpi_sacked, segments
const RTT_OFFSET = 68; // __u32 tcpi_rtt, µs
const BYTES_ACKED_OFFSET = 120; // __u64 tcpi_bytes_acked (Linux 4.1)
const MIN_RTT_OFFSET = 148; // __u32 tcpi_min_rtt, µs (Linux 4.6)
const INFO_BYTES = MIN_RTT_OFFSET + 4;

/** The kernel's "no sample yet" for tcpi_min_rtt (~0U). */
const NO_MIN_RTT = 0xffffffff;

function minRoundTripMs(microseconds: number): number {
  return microseconds === NO_MIN_RTT ? 0 : microseconds / 1000;
}

/** One buffer for every call: the calls are synchronous and the values are read out at once. */
const info = new Uint8Array(INFO_BYTES);
const infoLength = new Uint32Array(1);

/** What the kernel says of one of our connections. */
export interface TcpFigures {
  /** Bytes of this connection's stream the peer's TCP acknowledged so far (the kernel counts the SYN as one). */
  bytesAcked: number;
  /**
   * ...and with the segments the peer holds beyond a gap (selectively
   * acknowledged), counted at the segment size: what has arrived.
   */
  bytesDelivered: number;
  /** Smoothed round trip, and the least seen (what the path takes without a queue; 0 before any), in milliseconds. */
  roundTripMs: number;
  minRoundTripMs: number;
  /** Its congestion control (`cubic`, `bbr`, ...), where the kernel says. */
  congestion: string | undefined;
}

/**
 * The kernel's figures for descriptor `fd`, or undefined where it cannot say
 * (no libc, a kernel older than 4.6, a closed descriptor). `congestion` is
 * passed in: it is read once per connection (`getCongestion`), not each time.
 */
export function tcpFigures(fd: number, congestion: string | undefined): TcpFigures | undefined {
  const calls = socketCalls();
  if (calls === null) return undefined;
  const at = ptr(info);
  infoLength[0] = INFO_BYTES;
  if (calls.getsockopt(fd, IPPROTO_TCP, TCP_INFO, at, ptr(infoLength)) !== 0) return undefined;
  if (infoLength[0] < INFO_BYTES) return undefined;
  const bytesAcked = Number(read.u64(at, BYTES_ACKED_OFFSET));
  return {
    bytesAcked,
    bytesDelivered: bytesAcked + read.u32(at, SACKED_OFFSET) * read.u32(at, SND_MSS_OFFSET),
    roundTripMs: read.u32(at, RTT_OFFSET) / 1000,
    minRoundTripMs: minRoundTripMs(read.u32(at, MIN_RTT_OFFSET)),
    congestion,
  };
}
