/**
 * What `threads auto` (thread-tuner.ts) is told: its settings, with the
 * defaults and the measurements behind them, and how the transfer stands at
 * each tick (the pool reads it from the acknowledgements and the kernel).
 */
import { MAX_THREADS } from "../options.ts";
import { FULL_QUEUE_INFLATION } from "./round-trips.ts";

export interface TunerSettings {
  /** Connections to begin with. */
  start: number;
  /** Never more than this. */
  max: number;
  /**
   * After a change, a measurement may reject the new count only if it began at
   * least this long after the change (dials, handshakes, TCP slow start)...
   */
  settleMs: number;
  /** ...and at least this many round trips of the path (slow start doubles once per round trip). */
  settleRoundTrips: number;
  /** Measure at least this long... */
  measureMs: number;
  /** ...and this many round trips (acknowledgements come in bursts a round trip apart)... */
  measureRoundTrips: number;
  /** ...and until at least this many bytes were acknowledged (feet arrive in whole 2 MiB steps). */
  measureBytes: number;
  /**
   * ...or this many where goodput is read from TCP's acknowledgements, which
   * count bytes, not feet. Four feet at a 200 ms path's 1 % loss (cubic: 0.09
   * MiB/s a flow, 0.35 with 4) took a measurement to its 5 s limit, and the
   * climb from 4 connections to 48 took 28 s of a 60 s transfer.
   */
  measureTcpBytes: number;
  /** ...but never longer than this, or `maxMeasureRoundTrips` on a longer path (a slow path must still be judged). */
  maxMeasureMs: number;
  maxMeasureRoundTrips: number;
  /** More connections must raise goodput by this factor to be kept. */
  gain: number;
  /**
   * ...and by at least this many bytes over the measurement: feet are
   * acknowledged whole, so a measurement is only good to about a foot either
   * way, and a "gain" smaller than that is noise (28 against 24 MiB/s over
   * 0.7 s, 1.4 feet of 2 MiB, once took a paced 24 MiB/s source to 16
   * connections).
   */
  minGainBytes: number;
  /**
   * The same where goodput is read from TCP's acknowledgements
   * (`tcpDeliveredBytes`), which are good to a few packets per connection.
   * With two feet, a 0.5 s measurement at 16 MiB/s needed a 50 % gain to pay.
   */
  minTcpGainBytes: number;
  /** The transfer's foot size, in bytes. */
  footBytes: number;
  /** A measurement that timed out with fewer feet than this cannot reject a trial while every connection has feet (`tooSlowToTell`). */
  judgeFeet: number;
  /**
   * Round trips standing at most this far above their least mean no queue at
   * the bottleneck (`queueFree`). bbr's probing alone lifts them by up to a quarter on a path it fills.
   */
  queueFreeInflation: number;
  /**
   * Round trips standing at least this far above their least, whatever the
   * congestion control, mean a standing queue: the link is full (`linkFull`;
   * FULL_QUEUE_INFLATION, round-trips.ts, says what the rig read).
   */
  fullInflation: number;
  /** `gain` for a baseline read before its connections settled (see the class comment). */
  unsettledGain: number;
  /** Goodput grew by at least this factor: grow four times as fast. Fallen by it from what a full link moved at its hold: the hold is looked at again (thread-tuner.ts). */
  strongGain: number;
  /**
   * A count held at the receiver's window is probed once the window has grown
   * by this factor past it: a smaller step cannot show `gain` within a
   * measurement's error, and costs a slow start.
   */
  windowGrowth: number;
  /** First wait in steady state before trying more connections again. */
  reprobeMs: number;
  maxReprobeMs: number;
}

/**
 * On loopback one to sixteen connections move the same within noise
 * (2.1–2.4 GiB/s, `bun run bench`); where each flow is limited, four start
 * four times faster than one.
 */
export const AUTO_START_THREADS = 4;
/** The CLI's maximum; beyond ~32 the receiver's window (32 feet) is the limit anyway. */
export const AUTO_MAX_THREADS = MAX_THREADS;

/**
 * Defaults: on a short path a judgement about twice a second; on a long one
 * eight round trips of settling (TCP slow start from its initial window to
 * a 300 Mbit/s × 100 ms path's share takes about that many doublings) and six
 * of measuring. A re-probe after 10 s, at most every 80 s.
 */
export function defaultTunerSettings(footBytes: number): TunerSettings {
  return {
    start: AUTO_START_THREADS,
    max: AUTO_MAX_THREADS,
    settleMs: 200,
    settleRoundTrips: 8,
    measureMs: 500,
    measureRoundTrips: 6,
    measureBytes: 4 * footBytes,
    measureTcpBytes: 1024 * 1024,
    maxMeasureMs: 5_000,
    maxMeasureRoundTrips: 25,
    gain: 1.1,
    unsettledGain: 2,
    minGainBytes: 2 * footBytes,
    minTcpGainBytes: 512 * 1024,
    footBytes,
    judgeFeet: 4,
    queueFreeInflation: 1.2,
    fullInflation: FULL_QUEUE_INFLATION,
    strongGain: 1.5,
    windowGrowth: 1.25,
    reprobeMs: 10_000,
    maxReprobeMs: 80_000,
  };
}

/** How the transfer stands at a tick. */
export interface TunerProgress {
  /** Running totals the receiver acknowledged. */
  deliveredBytes: number;
  deliveredFeet: number;
  /** Running total of bytes that reached the receiver's TCP on our connections (acknowledged, selectively or not), where the transport can tell. */
  tcpDeliveredBytes?: number;
  /** Feet read and not yet acknowledged (queued or on the wire). */
  feetHeld: number;
  connectionsUp: number;
  /** The path's round trip, once measured (the quickest handshake seen). */
  roundTripMs?: number;
  /** Feet the receiver's window lets be unacknowledged at once, once known. */
  windowFeet?: number;
  /** How far the connections' round trips stand above their least (`roundTripInflation`), where the kernel reports them. */
  roundTripInflation?: number;
  /** The same over every connection, whatever its congestion control (`roundTripInflation(samples, "any")`). */
  queueInflation?: number;
  /** The least round trip any connection has seen, where the kernel reports it. */
  leastRoundTripMs?: number;
}
