/**
 * Implementation constants: the timers and limits this implementation chose,
 * which the protocol leaves open. Protocol limits (record and foot sizes, id
 * counts) come only from protocol/viamillipede.x, through
 * src/protocol/xdr.generated.ts; user-settable defaults and bounds are in
 * src/options.ts. Tuning constants that belong to one pure module (placement,
 * hedging, pacing, the chunker, round-trip weights) stay in that module.
 * test/conformance/peer.c mirrors the heartbeat, tick and linger values.
 */

// Connections, both roles

/** Pings per timeout: a live connection is heard from several times before it could be judged dead. */
export const PINGS_PER_TIMEOUT = 4;
/** How often each role's watchdog looks at connections, the output, patience and link rates. */
export const WATCHDOG_TICK_MS = 250;
/** Closed connections remembered for status output and the stats file, per role. */
export const MAX_PAST_CONNECTIONS = 256;

// Transmitter

/** How long dialling and the receiver's answer to our hello may take together. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** A failed dial is retried after this long, doubling on each failure in a row ... */
export const FIRST_BACKOFF_MS = 100;
/** ... up to this: a receiver that comes back is found within a few seconds. */
export const MAX_BACKOFF_MS = 5_000;
/** A connection that lasted less than this is treated like a failed dial when re-dialling. */
export const SHORT_LIVED_MS = 10;
/**
 * `threads auto` looks at goodput this often: its steps are a few of these long,
 * and on a path that limits each flow the ramp is time spent below its rate.
 */
export const TUNE_MS = 100;
/** Floating connections are re-placed at most once per this many ticks (one at a time). */
export const REBALANCE_TICKS = 4;
/** Foot buffers kept for reuse; never more than the window ever needed at once. */
export const MAX_POOLED_FEET = 256;
/**
 * A failing transmitter waits at most this long for its abort notices to be
 * with the kernel (behind the rest of a foot under way) before it settles and
 * the process exits; under the CLI's 2 s grace after a signal.
 */
export const FINAL_FLUSH_MS = 1_000;

// Receiver

/** A connection must say hello within this time. */
export const HELLO_TIMEOUT_MS = 10_000;
/** A refused connection is dropped after this long if the peer does not close it. */
export const REFUSED_LINGER_MS = 2_000;
/** After the end, how long to wait for the transmitter to close its side. */
export const LINGER_MS = 5_000;
/**
 * Connections one session may have at once. The protocol sets no limit; this
 * is the transmitter's ceiling (`threads 64`, and `threads auto` grows to it),
 * which a test keeps in step with the CLI's.
 */
export const MAX_CONNECTIONS_PER_SESSION = 64;
/**
 * Connections still in their handshake at once, at most (the receiver evicts
 * the least advanced beyond it). Twice what one transmitter may open:
 * `threads 64` (or `threads auto` growing to it) dials them all at once, and
 * at 32 the receiver dropped half of a real transmitter's connections before
 * their hellos were read.
 */
export const MAX_PENDING_CONNECTIONS = 2 * MAX_CONNECTIONS_PER_SESSION;
/** A repeated warning (dropped or refused connections) is summed up once per this interval. */
export const WARNING_INTERVAL_MS = 10_000;
/** Sessions given up to a newcomer, remembered so their transmitter hears "session over", at most. */
export const MAX_RETIRED_SESSIONS = 16;
