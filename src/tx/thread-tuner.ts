/**
 * `threads auto`: how many connections to keep, found by measuring goodput
 * (bytes the receiver acknowledged per second). Pure: the transmitter feeds it
 * the clock and its acknowledged-byte counts each tick and applies the count it
 * returns. Goodput is read from the receiver's TCP acknowledgements where the
 * transport can tell (`tcpDeliveredBytes`, src/net/tcp-info.ts), and from the
 * feet it acknowledged otherwise: those come a whole foot (2 MiB) at a time,
 * and connections that started their feet together finish them together, so
 * half a second of them read "52 MiB/s with 4" on a 35.8 MiB/s path.
 *
 * Why: one TCP flow is often held back by something per flow (its window on a
 * long fat network, a per-flow policer, one core's worth of work at an end),
 * and then more connections move more; on a fast local path they only cost
 * memory and CPU. Which one applies is only known by trying.
 *
 * How (a hill climb, like TCP's slow start then steady state):
 * - start with `start` connections;
 * - every window follows the path's round trip (`roundTripMs`, fed in; fixed
 *   floors until it is known): on a 100 ms path, acknowledgements come in
 *   bursts a round trip apart and a new connection needs several round trips
 *   of TCP slow start before it moves its share, so windows fixed in
 *   milliseconds judge a long path on its noise and its start-up;
 * - measure goodput for at least `measureMs` and `measureRoundTrips`, and
 *   `measureBytes`, over the measurement's whole time (a rate taken only
 *   between its first and last acknowledgement overstated the first
 *   measurement, when the connections' buffers fill at once: 26 MiB/s
 *   with 4 connections throttled to 4 MiB/s each, so that 8 looked no
 *   better and `threads auto` stayed at 4);
 * - the first measurement, and the first after an outage, start only once
 *   the connections settled (below): a baseline taken in slow start
 *   understates the count, and every doubling then looked like a gain;
 * - after a change, a measurement that shows the new count pays is taken at
 *   once, but one that would reject it must start after the new connections
 *   settled: at least `settleMs` and `settleRoundTrips`, and once every foot
 *   held at the change has been acknowledged (the feet queued on the old
 *   connections; on a per-flow-limited path they take seconds to drain, and
 *   until then the new count looks no better than the old);
 * - never more connections than feet the receiver's window lets out
 *   (`windowFeet`): a connection without a foot moves nothing, and a trial
 *   beyond it only spends connections in slow start. Not fewer: where each
 *   connection moves a fraction of a MiB/s (50 ms, 1 % loss, cubic: about
 *   0.3), every connection the window allows pays (bench/wan.md); and a
 *   count held at the window's limit is probed as soon as the window grows
 *   by `windowGrowth`, not a re-probe later (200 ms, 0.1 % loss, cubic: 32
 *   connections at a 32-foot window at 6 s, the window at 48 feet within
 *   seconds, and the 32 held until the re-probe at 17–18 s);
 * - grow: double the count while each doubling raises goodput by `gain`
 *   (10%) or more, up to `max`; when goodput grew by `strongGain` (50%) or
 *   more, quadruple instead: that is a per-flow limit, and the ramp is time
 *   spent below what the path can do (measured during the change, goodput
 *   understates what the new count will do, so proportional growth is rarely
 *   seen even where it is the truth);
 * - a doubling that does not pay goes back to the previous count, which is
 *   then measured again before the rejection stands: goodput drifts while
 *   connections leave slow start and meet their first losses (on a 200 ms
 *   path with 0.1 % loss, 4 cubic connections moved 6 MiB/s in their first
 *   3 s and 2 MiB/s once settled), so a trial compared with a baseline taken
 *   earlier can look worse when it was better (8 connections "moved 5 against
 *   6", and `threads auto` stayed at 4 for 10 s at a third of what 8 do). If
 *   the old count now moves less than the trial did, the trial paid after all
 *   and the climb goes on from it. Once per transfer: drift is what the
 *   first seconds do, and later, with tens of connections each moving a foot
 *   in seconds, every change disturbs the next measurement, and re-checks
 *   that kept finding "the old count moves less" took the count up and down
 *   each measurement (200 ms, 0.1 % loss: 21, 16, 30, 21, 32, 30 in 22 s);
 * - on a long path, a doubling that moved at least 1/`gain` of its baseline
 *   is held, not undone, and half of it (1/`unsettledGain`) where the
 *   baseline was read before its connections settled (a trial that paid at
 *   once): new connections move up to twice as much in slow start as once
 *   they meet their losses (50 ms, 0.1 % loss, cubic: "34 MiB/s with 16"
 *   half a second after the change; then "32 connections moved 17 against
 *   34" and went back to 16, 15.9 s for 256 MiB, against 11.1–11.6 s in
 *   runs that stayed at 32), and the way back costs seconds (100 ms, 0.1 %,
 *   cubic: "43 connections moved 23 against 29 with 16", then the 16 moved
 *   4 MiB/s for 10 s);
 * - a measurement too coarse to judge (`tooSlowToTell`: fewer than
 *   `judgeFeet` feet while every connection has one) keeps the trial;
 * - so does a path with no queue (`queueFree`): where the kernel reports
 *   the round trips of connections whose congestion control fills queues
 *   (`roundTripInflation`, QUEUE_FILLING_CONGESTION) and they stand
 *   within `queueFreeInflation` of the least seen while every connection
 *   has feet, the bottleneck is not full and the flows themselves are the
 *   limit (random loss, a per-flow policer), so more of them pay even when
 *   goodput cannot show it yet; and such a trial is judged at once, without
 *   waiting for the new connections to settle. Goodput drifts down for
 *   seconds after connections start on a lossy path (50 ms, 0.1 % loss,
 *   cubic: 4 connections read 34 MiB/s in their first second, 6 by the
 *   ninth), so a count judged against its predecessor was rejected there
 *   and found again only after the re-check, 9 s in; a link our
 *   connections fill holds a queue at once (cubic fills the bottleneck's
 *   buffer: twice the round trip on the rig's 50 ms link), and is judged by
 *   goodput as before;
 * - where the kernel reports round trips (a path of 2 ms or more), a trial
 *   that did not pay but moves within `gain` of the count before it is
 *   held rather than undone: the connections that would close carry their
 *   share of a full link, and the rest take seconds to win it back (50 ms,
 *   bbr: 8 → 4 connections, and the 4 moved 23 MiB/s for over a second
 *   where 8 had moved 35); and a rejection there stands without the
 *   re-check: the drift it answered is `queueFree`'s for cubic and reno,
 *   bbr's goodput barely moves with random loss, and the second
 *   measurement can read more than drift (100 ms clean: back from 8 to 4,
 *   the 4 read "5 MiB/s with 4 now", and with the re-check the count went
 *   to 16 on a full link, 10.5 s where 4 take 8.4);
 * - a link the connections already fill is not tried with more (`linkFull`):
 *   where the kernel reports round trips standing `fullInflation` (1.3) or
 *   more above their least at the end of a measurement and at half its
 *   ticks or more (at all of them before the connections settled: slow
 *   start overshoots), whatever the congestion control, a queue stands
 *   at the bottleneck, so it is busy all the time and more connections
 *   cannot move more. The climb stops there, and so do re-probes while the
 *   queue stands. A trial there was not free even when held: on the rig's
 *   clean 50 ms path (cubic or bbr) 4 connections moved 35 MiB/s and the
 *   step to 8 added four that took 0.86–1.3 s a foot, where the first took
 *   0.35; the stream's end waited on them (fixed `threads 4`: 7.88–7.93 s
 *   for 256 MiB, auto 8.02–8.18). The reading is the median connection's
 *   over all links: on the rig's two links of 10 and 150 ms, the 10 ms
 *   link's queue stands with 4 connections (2.3–2.5), and 4 moved 0.82–0.88
 *   of the summed rate; judged per link (every link's queue standing), the
 *   count climbed to 16–32 and moved 0.64–0.67, the 150 ms link's feet
 *   holding the window. Half the ticks, not all: bbr drains the queue its
 *   start-up built (50 ms, clean, 4 connections, every 100 ms: 1.19, 2.04,
 *   2.02, 2.04, 1.73, 1.10, 1.22, 1.32, 1.52), and judged at every tick the
 *   first measurement went to 8 connections and back (8.25–8.87 s for
 *   256 MiB where 4 take 7.9); so did 200 ms clean paths, cubic or bbr.
 *   What this gives up: against other traffic filling
 *   the same queue, more connections would win a larger share of it.
 *   The queue may have been the connections' slow start's, even on a
 *   settled reading, so a full-link hold is watched (`fullHold`): once the
 *   connections have had their time (`settleMs`, `settleRoundTrips`; at
 *   once where the reading was settled), a probe comes as soon as a
 *   measurement's worth shows the queue gone (now and at half its ticks)
 *   and goodput fallen by `strongGain` from the hold's, not `reprobeMs`
 *   later (50 ms, 0.1 % loss, cubic: 8 → 16, "35 MiB/s with 16" and 1.46x
 *   at every tick from the step on, then 17 MiB/s for the 10 s to the
 *   re-probe, where 32 move 23; 100 ms, 0.1 % loss, cubic: the first
 *   settled reading, 0.8–1.9 s, "30 MiB/s with 4" at 1.46x, then 4 moved
 *   3 MiB/s until the re-probe at 12.3 s). Both, because bbr on a link it
 *   fills drains its queue now and then (the readings above) while
 *   goodput stays; a cubic path whose losses took the queue away moves a
 *   fraction of what it did;
 * - steady: now and then (`reprobeMs`, doubling after each probe that did not
 *   pay, up to `maxReprobeMs`) try half as many again, because the path may
 *   have changed (a policer lifted, a link added); a probe that pays climbs on.
 * A measurement with no connection up (an outage) is thrown away: a rate of
 * zero says nothing about the count.
 */
import { QUEUE_MIN_ROUND_TRIP_MS } from "./round-trips.ts";
import type { TunerProgress, TunerSettings } from "./tuner-settings.ts";

/** A measurement's queue readings, one per tick. */
interface QueueReadings {
  ticks: number;
  /** Ticks at which a tall queue stood (`queueStands`). */
  stood: number;
  standsNow: boolean;
}

/** A count and the goodput measured with it (bytes per second). */
interface Measured {
  count: number;
  rate: number;
  /** Measured once the count's connections had settled; not so a trial taken at once because it paid. */
  settled: boolean;
}

/** What the tuner decided at a tick, for logging; `undefined` when nothing was decided. `to` equals `from` when it decided to stay. */
export interface TunerChange {
  from: number;
  to: number;
  why: string;
}

export class ThreadTuner {
  /** Connections wanted now. */
  private count: number;
  /** The count we fall back to if the current trial does not pay, with its goodput. */
  private baseline: Measured | undefined;
  /** A trial just rejected, while the count it was compared with is measured again. */
  private rejected: { trial: Measured; phase: "grow" | "steady" } | undefined;
  /** A rejection has been re-checked: later ones stand at once. */
  private rechecked = false;
  /** "grow": judging a doubling; "steady": holding, re-probing now and then. */
  private phase: "grow" | "steady" = "grow";
  private changedMs: number;
  /** Settled once this many feet are acknowledged (those held at the change); undefined: not known yet. */
  private settleFeet: number | undefined = 0;
  /** The measurement under way: when it began, the acknowledged bytes then, which count they came from, and its ticks' queue readings (how many, how many with a tall queue, the latest). */
  private measurement: { startMs: number; startBytes: number; byTcp: boolean; flushed: boolean; queue: QueueReadings } | undefined;
  private reprobeMs: number;
  private nextProbeMs = Infinity;
  /** Held on a full link: from `watchMs` on, the queue and goodput (`rate` at the hold) are watched for a probe (`update`). */
  private fullHold: { watchMs: number; rate: number } | undefined;
  /** Held at the receiver's window (the climb's ceiling), short of `max`: a probe once the window grows by `windowGrowth`. */
  private atWindow = false;
  /** Connections were up at the last tick: going from none to some starts like a change (slow start again). */
  private wasUp = false;

  constructor(
    private readonly settings: TunerSettings,
    nowMs: number,
  ) {
    this.count = Math.max(1, Math.min(settings.start, settings.max));
    this.changedMs = nowMs;
    this.reprobeMs = settings.reprobeMs;
  }

  get target(): number {
    return this.count;
  }

  /** One tick: how the transfer stands. Returns the change, if any. */
  update(nowMs: number, progress: TunerProgress): TunerChange | undefined {
    const { deliveredFeet } = progress;
    const byTcp = progress.tcpDeliveredBytes !== undefined;
    const deliveredBytes = progress.tcpDeliveredBytes ?? progress.deliveredBytes;
    if (progress.connectionsUp === 0) {
      this.measurement = undefined; // an outage: start measuring again once something is up
      this.wasUp = false;
      return undefined;
    }
    if (!this.wasUp) {
      // The first connections, or the first after an outage: they start in slow start
      // (no old connections have feet to drain: settling is the time alone).
      this.wasUp = true;
      this.changedMs = nowMs;
      this.settleFeet = 0;
    }
    const roundTripMs = progress.roundTripMs ?? 0;
    // The feet held when the count changed: they are through once this many are acknowledged.
    this.settleFeet ??= deliveredFeet + progress.feetHeld;
    const flushed = deliveredFeet >= this.settleFeet && nowMs - this.changedMs >= this.settleMs(progress);
    // A measurement from this tick: its queue reading is this tick's, unless the count just changed.
    const stands = this.queueStands(progress);
    const measureFromNow = (settled: boolean, queue: QueueReadings = { ticks: 1, stood: stands ? 1 : 0, standsNow: stands }) => ({ startMs: nowMs, startBytes: deliveredBytes, byTcp, flushed: settled, queue });
    if (this.measurement === undefined || this.measurement.byTcp !== byTcp) {
      this.measurement = measureFromNow(flushed);
      return undefined;
    }
    const { queue } = this.measurement;
    queue.ticks++;
    if (stands) queue.stood++;
    queue.standsNow = stands;
    const elapsedMs = nowMs - this.measurement.startMs;
    const bytes = deliveredBytes - this.measurement.startBytes;
    const measureMs = Math.max(this.settings.measureMs, this.settings.measureRoundTrips * roundTripMs);
    const maxMeasureMs = Math.max(this.settings.maxMeasureMs, this.settings.maxMeasureRoundTrips * roundTripMs);
    const enough = elapsedMs >= measureMs && bytes >= (byTcp ? this.settings.measureTcpBytes : this.settings.measureBytes);
    const timedOut = elapsedMs >= maxMeasureMs;
    const rate = elapsedMs > 0 ? (bytes * 1000) / elapsedMs : 0;
    // A first judgement waits for the connections to settle too: a baseline taken
    // in slow start understates its count.
    const trial = this.baseline !== undefined && this.baseline.count !== this.count;
    const settledEnough = this.measurement.flushed || (trial && (this.pays(rate, this.baseline!.rate, elapsedMs) || this.queueFree(progress)));
    // Held on a full link, and the connections have had their time: once a measurement's worth
    // shows the queue gone (now, and at half its ticks) and goodput fallen, a probe is due at once.
    const hold = this.fullHold;
    const fullNoMore = enough && hold !== undefined && nowMs >= hold.watchMs && !queueStoodMostly(queue) && rate * this.settings.strongGain <= hold.rate;
    if (fullNoMore) this.nextProbeMs = nowMs;
    if ((enough && settledEnough) || timedOut || fullNoMore) {
      const change = this.judge(nowMs, rate, elapsedMs, progress);
      // After a change the next measurement starts at once (for a trial that pays, the
      // sooner the better); otherwise at the next tick. This tick's round trips are the
      // old count's: the queue is judged from the next tick on.
      this.measurement = change === undefined || change.to === change.from ? undefined : measureFromNow(false, { ticks: 0, stood: 0, standsNow: false });
      return change;
    }
    // Settled only now: measure afresh from here.
    if (!this.measurement.flushed && flushed) this.measurement = measureFromNow(flushed);
    return undefined;
  }

  /** How long new connections take to settle: `settleMs`, and `settleRoundTrips` of the path. */
  private settleMs(progress: TunerProgress): number {
    return Math.max(this.settings.settleMs, this.settings.settleRoundTrips * (progress.roundTripMs ?? 0));
  }

  /**
   * A measurement that ran its longest and saw fewer than `judgeFeet` feet
   * acknowledged, while every connection had a foot to carry: each
   * connection moves so little (a foot takes it longer than the measurement)
   * that the count cannot be judged from goodput, and that is the per-flow
   * limit more connections lift. The trial is kept rather than rejected (on
   * a 200 ms path with 1 % loss and cubic, 4 and 8 connections both "moved
   * 0 MiB/s" in 5 s, and auto stayed at 4 for the whole transfer: 0.5 MiB/s
   * where iperf3 -P 16 moves 1.5). A slow input is told apart by the feet
   * held: it leaves connections without feet.
   */
  private tooSlowToTell(rate: number, elapsedMs: number, progress: TunerProgress): boolean {
    const feet = (rate * elapsedMs) / 1000 / this.settings.footBytes;
    return feet < this.settings.judgeFeet && progress.feetHeld >= this.count;
  }

  /** No queue stands at the bottleneck while every connection has feet: the flows, not the link, are the limit. */
  private queueFree(progress: TunerProgress): boolean {
    const inflation = progress.roundTripInflation;
    return inflation !== undefined && inflation <= this.settings.queueFreeInflation && progress.feetHeld >= this.count;
  }

  /** A tall queue stands at the bottleneck now. */
  private queueStands(progress: TunerProgress): boolean {
    return progress.queueInflation !== undefined && progress.queueInflation >= this.settings.fullInflation;
  }

  /**
   * The link is full: a tall queue stands at the end of the measurement and
   * stood at half its ticks or more (bbr drains its start-up's queue for a
   * few), or at every tick of a measurement taken before its connections
   * settled (new connections in slow start overshoot: 50 ms, 0.1 % loss,
   * cubic, 16 connections read 1.41 and "34 MiB/s" half a second after a
   * step, and by half the ticks the count stayed there, at 14 MiB/s where
   * 32 move 23), so more connections cannot move more.
   */
  private linkFull(): boolean {
    const measurement = this.measurement;
    if (measurement === undefined || !measurement.queue.standsNow) return false;
    return measurement.flushed ? queueStoodMostly(measurement.queue) : measurement.queue.stood === measurement.queue.ticks;
  }

  /** More connections paid: goodput rose by `gain` and by more than a measurement's error (`minGainBytes`, `minTcpGainBytes`). */
  private pays(rate: number, before: number, elapsedMs: number): boolean {
    const minGainBytes = this.measurement?.byTcp === true ? this.settings.minTcpGainBytes : this.settings.minGainBytes;
    return rate >= before * this.settings.gain && ((rate - before) * elapsedMs) / 1000 >= minGainBytes;
  }

  private judge(nowMs: number, rate: number, elapsedMs: number, progress: TunerProgress): TunerChange | undefined {
    const { windowFeet } = progress;
    const current: Measured = { count: this.count, rate, settled: this.measurement?.flushed !== false };
    const before = this.baseline;
    // More connections than feet the window lets out would sit idle.
    const ceiling = Math.max(1, Math.min(this.settings.max, windowFeet !== undefined && windowFeet > 0 ? windowFeet : Infinity));
    if (this.rejected !== undefined) return this.confirmRejection(nowMs, current, elapsedMs, ceiling);
    if (before !== undefined && before.count !== this.count && !this.pays(rate, before.rate, elapsedMs) && !this.tooSlowToTell(rate, elapsedMs, progress) && !this.queueFree(progress)) {
      const long = progress.leastRoundTripMs !== undefined && progress.leastRoundTripMs >= QUEUE_MIN_ROUND_TRIP_MS;
      // A baseline read before its connections settled stood that much higher than the count moves (the class comment says why).
      const tolerance = before.settled ? this.settings.gain : this.settings.unsettledGain;
      if (long && this.count > before.count && rate * tolerance >= before.rate) {
        // Did not pay, did not cost: held, not undone (the class comment says why).
        this.baseline = current;
        this.holdSteady(nowMs, false);
        return this.stay(`${this.count} connections moved ${mib(rate)} against ${mib(before.rate)} with ${before.count}${before.settled ? "" : ", read before they settled"}: held`);
      }
      // The trial did not pay: back to what we had (the first time, on a path whose queue the
      // kernel does not report, to measure it again before the rejection stands).
      const why = `${this.count} connections moved ${mib(rate)} against ${mib(before.rate)} with ${before.count}`;
      if (!this.rechecked && !long) {
        this.rechecked = true;
        this.rejected = { trial: current, phase: this.phase };
        this.baseline = undefined;
        return this.change(nowMs, before.count, why);
      }
      this.holdSteady(nowMs, this.phase === "steady");
      return this.change(nowMs, before.count, why);
    }
    // The first measurement, a trial that paid, or steady state: this count is the baseline now.
    this.baseline = current;
    if (before !== undefined && before.count !== this.count && this.phase === "steady") {
      // A probe paid: the path changed, so keep climbing.
      this.phase = "grow";
      this.reprobeMs = this.settings.reprobeMs;
    }
    if (this.phase === "grow") {
      if (this.count >= ceiling) {
        this.holdSteady(nowMs, false);
        // At the cap nothing is left to probe; at the window's limit, the window may grow.
        if (this.count >= this.settings.max) this.nextProbeMs = Infinity;
        else this.atWindow = true;
        return undefined;
      }
      if (this.linkFull()) {
        this.holdFull(nowMs, rate, progress, false);
        return this.stay(`${mib(rate)} with ${this.count}; round trips ${progress.queueInflation!.toFixed(2)}x their least: the link is full`);
      }
      const noQueue = this.queueFree(progress) ? `, no queue (round trips ${progress.roundTripInflation!.toFixed(2)}x their least)` : "";
      const why = before === undefined || before.count === this.count ? `${mib(rate)} with ${this.count}${noQueue}` : `${mib(rate)} with ${this.count}, ${rate >= before.rate ? "up" : "down"} from ${mib(before.rate)} with ${before.count}${noQueue}`;
      const strong = before !== undefined && rate >= before.rate * this.settings.strongGain;
      return this.change(nowMs, Math.min(ceiling, this.count * (strong ? 4 : 2)), why);
    }
    const windowGrew = this.atWindow && ceiling >= this.count * this.settings.windowGrowth;
    if ((nowMs >= this.nextProbeMs || windowGrew) && this.count < ceiling) {
      if (this.linkFull()) {
        this.holdFull(nowMs, rate, progress, true);
        return undefined;
      }
      const to = Math.min(ceiling, Math.ceil(this.count * 1.5));
      this.nextProbeMs = Infinity; // set again when the probe is judged
      return this.change(nowMs, to, `probing${windowGrew ? `, the window grown to ${ceiling} feet` : ""}: ${mib(rate)} with ${this.count}`);
    }
    return undefined;
  }

  /**
   * The count a trial was rejected against, measured again (`current`): if it
   * now moves less than the trial did by `gain`, goodput drifted and the trial
   * paid after all: the climb goes on from the trial's count (the next step is
   * judged against the trial's figure, which the drift, if it goes on, makes
   * the harder to beat; re-checks being once per transfer, that rejection
   * stands). Otherwise the rejection stands, with the fresh figure as the
   * baseline.
   */
  private confirmRejection(nowMs: number, current: Measured, elapsedMs: number, ceiling: number): TunerChange | undefined {
    const { trial, phase } = this.rejected!;
    this.rejected = undefined;
    if (this.pays(trial.rate, current.rate, elapsedMs)) {
      this.baseline = trial;
      this.phase = "grow";
      this.reprobeMs = this.settings.reprobeMs;
      const to = trial.count >= ceiling ? trial.count : Math.min(ceiling, trial.count * 2);
      return this.change(nowMs, to, `${mib(current.rate)} with ${current.count} now, less than the ${mib(trial.rate)} ${trial.count} moved`);
    }
    this.baseline = current;
    this.holdSteady(nowMs, phase === "steady");
    return undefined;
  }

  /** Holds the count on a full link, watched from once the connections have had their settle time (at once if this measurement was settled). */
  private holdFull(nowMs: number, rate: number, progress: TunerProgress, probeFailed: boolean): void {
    this.holdSteady(nowMs, probeFailed);
    this.fullHold = { watchMs: this.measurement?.flushed === true ? nowMs : nowMs + this.settleMs(progress), rate };
  }

  /** Holds the count until the next probe; after a probe that did not pay, the next one waits twice as long. */
  private holdSteady(nowMs: number, probeFailed: boolean): void {
    if (probeFailed) this.reprobeMs = Math.min(this.reprobeMs * 2, this.settings.maxReprobeMs);
    this.fullHold = undefined;
    this.atWindow = false;
    this.phase = "steady";
    this.nextProbeMs = nowMs + this.reprobeMs;
  }

  /** A decision to keep the count, for the log. */
  private stay(why: string): TunerChange {
    return { from: this.count, to: this.count, why };
  }

  private change(nowMs: number, to: number, why: string): TunerChange | undefined {
    if (to === this.count) return undefined;
    const from = this.count;
    this.count = to;
    this.changedMs = nowMs;
    this.fullHold = undefined;
    this.atWindow = false;
    this.settleFeet = undefined; // taken at the next tick, from the feet held then
    return { from, to, why };
  }
}

/** A tall queue stands now and stood at half the measurement's ticks or more: a full link, once the connections settled (`linkFull`). */
function queueStoodMostly(queue: QueueReadings): boolean {
  return queue.standsNow && queue.stood * 2 >= queue.ticks;
}

function mib(bytesPerSecond: number): string {
  return `${(bytesPerSecond / (1 << 20)).toFixed(0)} MiB/s`;
}
