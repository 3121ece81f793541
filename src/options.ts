/**
 * What the CLI hands to the transmitter and receiver: plain data, already
 * validated. Both the original keyword grammar and the --flag form produce it.
 */

/** 2 MiB: the original's foot size; large enough to amortise per-foot costs. */
export const DEFAULT_FOOT_BYTES = 2 * 1024 * 1024;
/**
 * `threads auto` (src/tx/thread-tuner.ts): on loopback it matches any fixed
 * count (1..16 all within noise, 2.1-2.4 GiB/s), and where something limits
 * each flow it reached 0.85x the best fixed count against 0.51x for the old
 * default of 16 (`bun run bench:auto`).
 */
export const DEFAULT_THREADS: number | "auto" = "auto";
export const MIN_THREADS = 1;
export const MAX_THREADS = 64;
/**
 * The receiver's starting window in bytes: the transmitter's foot size turns
 * it into feet (32 of 2 MiB), so a peer that asks for larger feet gets fewer
 * of them (src/rx/record-budget.ts, receiveWindowFeet). The window then grows with
 * the path, up to `buffer` (src/rx/window.ts).
 */
export const DEFAULT_WINDOW_BYTES = 64 * 1024 * 1024;
/** Feet the receiver's window starts at with the default feet: in flight plus held for reordering. */
export const DEFAULT_WINDOW_FEET = DEFAULT_WINDOW_BYTES / DEFAULT_FOOT_BYTES;
/** Feet in the window however large they are: enough to keep a few connections busy. */
export const MIN_WINDOW_FEET = 4;
/**
 * `buffer SIZE`: the most the window may grow to, in bytes of feet, at each
 * end. rx: feet outstanding (in flight, held for reordering, being written),
 * to which its memory budget adds at most 16 MiB of records still arriving;
 * tx: feet read and not yet acknowledged. The default is the largest that
 * keeps the receiver's peak RSS 20 MiB under 256 MiB against a peer that
 * first grows the window to it and then stalls with 64 partial records
 * (test/e2e/memory.test.ts): 96 MiB peaked at 192–207 MiB, 128 MiB at
 * 226–238 MiB. Above that, memory follows `buffer` (the user's choice on a
 * long fat path, e.g. `buffer 256M`).
 */
export const DEFAULT_BUFFER_BYTES = 96 * 1024 * 1024;
/** The smallest `buffer`: 1 MiB. A window holds MIN_WINDOW_FEET feet however small `buffer` is: the receiver says so when it has to. */
export const MIN_BUFFER_BYTES = 1024 * 1024;
/**
 * The largest `buffer`: 4 GiB. The receiver's and transmitter's memory follow it,
 * so a value beyond what the machine has would be refused by the kernel
 * mid-transfer instead of at the start.
 */
export const MAX_BUFFER_BYTES = 4 * 1024 * 1024 * 1024;
export const MAX_VERBOSE = 20;
/** How long either end keeps going while no connection is up (a router reboot fits). */
export const DEFAULT_PATIENCE_S = 300;
/** A connection that hears nothing for this long is dead (heartbeats go 4 times as often). */
export const DEFAULT_TIMEOUT_S = 5;
export const MIN_TIMEOUT_S = 1;
export const MAX_TIMEOUT_S = 3600;
export const MAX_CHAOS_EVERY = 1_000_000;
/** `leglimit`: at most 2^32 feet (8 PiB of 2 MiB feet). */
export const MAX_LEG_LIMIT = 2 ** 32;
/** `delayus`: at most a minute before each foot. */
export const MAX_DELAY_US = 60_000_000;
/**
 * `serve`: transfers run at once by default. The sessions share one foot
 * memory budget in equal parts (src/rx/memory-share.ts: 160 MiB, 40 MiB a
 * session at 4), which keeps a serving receiver's peak RSS under 256 MiB.
 */
export const DEFAULT_SESSIONS = 4;
/** `sessions N` at most: 16 x 12 MiB of foot memory (src/rx/memory-share.ts), and 16 x 64 connections. */
export const MAX_SESSIONS = 16;
/** `ratelimit`: 1 byte/s .. 1 TiB/s. */
export const MAX_RATE_BYTES_PER_S = 2 ** 40;

/** One `tx HOST PORT` clause, in the user's order of preference. */
export interface TxTarget {
  host: string;
  port: number;
}

export interface CommonOptions {
  /** 0 (warnings and errors only) .. 20 (everything). */
  verbose: number;
  /** Must match on both ends; a guard against talking to a stale peer. */
  checkphrase: string;
  /**
   * Seconds to keep going while no connection is up: the transmitter keeps
   * dialling, the receiver keeps its session. 0 means forever.
   */
  patienceS: number;
  /** Seconds of silence (or of no write progress) after which a connection is declared dead. */
  timeoutS: number;
  /** Every this many feet, inject a fault (close, reset, stall) on a connection; 0 = never. */
  chaosEvery: number;
  /** `key FILE` (or VIAMILLIPEDE_KEY_FILE / VIAMILLIPEDE_KEY): the CLI loads it into `key`. */
  keyFile?: string;
  /** The pre-shared key: every connection proves it in both directions before data flows. */
  key?: Uint8Array;
  /** Seal every foot with AES-256-GCM (needs `key`); rx: refuse transmitters that do not. */
  encrypt?: boolean;
  /** `buffer SIZE`: bytes of feet this end may hold (default DEFAULT_BUFFER_BYTES). */
  bufferBytes?: number;
  /** `congestion ALG`: the kernel's TCP congestion control for this end's connections (Linux); unset: the kernel's default. */
  congestion?: string;
  /**
   * `exec COMMAND [ARG...]`: run this command (no shell) instead of using
   * stdin (tx: its stdout is the stream) or stdout (rx: its stdin is the stream).
   */
  exec?: string[];
}

/** `compress zstd|gzip[:LEVEL]`: how tx compresses each foot (a foot that does not shrink goes raw). */
export interface Compression {
  kind: "zstd" | "gzip";
  level: number;
}
export const COMPRESSION_LEVELS = { zstd: { min: 1, max: 22, default: 3 }, gzip: { min: 1, max: 9, default: 6 } } as const;

export interface TransmitterOptions extends CommonOptions {
  targets: TxTarget[];
  /** Connections to keep, 1..64, or "auto": as many as raise goodput (src/tx/thread-tuner.ts). */
  threads: number | "auto";
  /** `foot SIZE`: the size feet are cut to, or "auto": by the first connection's round trip (src/tx/foot-size.ts). */
  footBytes: number | "auto";
  /** Send what the input has without waiting for full feet (interactive traffic). */
  charmode?: boolean;
  /** Compress each foot off the main thread before it is (perhaps) sealed. */
  compress?: Compression;
  /** Names the transfer to the receiver, which hands it to its command; sent in a version 2 hello (protocol/README.md). */
  label?: string;
  /**
   * The rest shape the input before the chunker (src/tx/input.ts builds it);
   * the transmitter itself never reads them.
   * `prbs SEED`: send the prbs stream of this 16-bit seed instead of stdin.
   */
  prbsSeed?: number;
  /** `leglimit N`: end the input after N feet' worth of bytes. */
  legLimit?: number;
  /** `delayus N`: wait N microseconds before each foot's worth of input. */
  delayUs?: number;
  /** `ratelimit RATE`: read the input at most this many bytes per second (one bucket for every connection). */
  rateBytesPerS?: number;
}

export interface ReceiverOptions extends CommonOptions {
  port: number;
  /** Address to listen on; undefined means every address (IPv4 and IPv6). */
  bind: string | undefined;
  /**
   * Feet the window starts at, at most (tests ask for small windows). Without
   * it the window starts at DEFAULT_WINDOW_BYTES of the session's feet
   * (src/rx/record-budget.ts); either way it grows with the path up to
   * `bufferBytes`.
   */
  windowFeet?: number;
  /** `prbs SEED`: check the stream is the prbs stream of this seed (it is still written out). */
  prbsSeed?: number;
  /** `serve`: keep listening after a transfer and run up to `sessions` at once, each into its own output. */
  serve?: boolean;
  /** `sessions N`: transfers a serving receiver runs at once (DEFAULT_SESSIONS unless given). */
  sessions?: number;
}

/**
 * A TCP tunnel over a full-duplex pipe (both roles). `terminate`: accept one
 * local connection on `port` (loopback) and carry it; `initiate`: once the
 * pipe is up, connect to the service at host:port and carry that connection.
 */
export type TunnelOptions = { kind: "terminate"; port: number } | { kind: "initiate"; host: string; port: number };

/**
 * A parsed command line: what to run. At least one role is present; both at
 * once is a full-duplex pipe (stdin → tx, rx → stdout), or, with `tunnel`,
 * a TCP connection carried both ways.
 */
/** What the user sees besides errors: progress, summary, stats file. */
export interface ReportOptions {
  /** "auto": a live progress line when stderr is a terminal; `progress` forces it, `quiet` turns it off. */
  progress: "auto" | "on" | "off";
  /** Nothing but errors on stderr. */
  quiet: boolean;
  /** `size BYTES`: the expected stream size, for percentages and an ETA. */
  expectedBytes: number | null;
  /** `stats FILE`: where the JSON summary goes. */
  statsFile: string | null;
}

export const DEFAULT_REPORT: ReportOptions = { progress: "auto", quiet: false, expectedBytes: null, statsFile: null };

export interface Invocation {
  report?: ReportOptions;
  transmit?: TransmitterOptions;
  receive?: ReceiverOptions;
  tunnel?: TunnelOptions;
  /** Lines to warn about before running (e.g. tx-only keywords given to rx alone). */
  warnings?: string[];
}
