/**
 * The `threads auto` tuner against simulated paths: a path is a function from
 * the connection count to goodput, and a tick of 250 ms moves that many bytes
 * (the transmitter's watchdog ticks as often).
 */
import { describe, expect, test } from "bun:test";
import { leastRoundTrip, roundTripInflation } from "../../src/tx/round-trips.ts";
import { ThreadTuner, type TunerChange } from "../../src/tx/thread-tuner.ts";
import { defaultTunerSettings, type TunerSettings } from "../../src/tx/tuner-settings.ts";
import { MIB } from "../support/sizes.ts";

const FOOT = 2 * MIB;
const TICK_MS = 250;

/** Goodput in MiB/s for a connection count. */
type Path = (connections: number, nowMs: number) => number;

/** Each flow limited to `perFlow` MiB/s, all of them together to `total`. */
const perFlow = (perFlowMib: number, totalMib = Infinity): Path => (n) => Math.min(n * perFlowMib, totalMib);

/**
 * A path whose rate also depends on the time since the count last grew (new
 * connections in slow start), from `rates(count, msSinceGrowth)`.
 */
function afterGrowth(rates: (connections: number, sinceGrowthMs: number) => number): { path: Path; sinceGrowthMs: (nowMs: number) => number } {
  let last = defaultTunerSettings(FOOT).start;
  let grewMs = 0;
  return {
    path: (n, nowMs) => {
      if (n > last) grewMs = nowMs;
      last = n;
      return rates(n, nowMs - grewMs);
    },
    sinceGrowthMs: (nowMs) => nowMs - grewMs,
  };
}

interface Run {
  /** The count at every tick. */
  counts: number[];
  changes: TunerChange[];
  /** Decisions to keep the count (logged as "staying at"). */
  stays: TunerChange[];
  final: number;
}

/**
 * Runs the tuner for `seconds` against `path`. The new count's rate applies
 * from the tick after a change; `feetHeld` feet are held at every tick (the
 * window) and `up(nowMs)` says how many connections are up.
 */
function simulate(
  path: Path,
  seconds: number,
  options: {
    settings?: Partial<TunerSettings>;
    feetHeld?: number;
    up?: (nowMs: number, count: number) => number;
    /** The path's round trip, as the pool measures it (none: unknown). */
    roundTripMs?: number;
    /** The receiver's window in feet, or as it grows over time. */
    windowFeet?: number | ((nowMs: number) => number);
    /**
     * Feet acknowledged whole, each connection's a foot's time after its bytes
     * began to move, and the connections in step (they started their feet
     * together): the acknowledged count trails the bytes moved by up to a
     * foot per connection, by a share that swings with a 1.3 s period.
     * Otherwise bytes are acknowledged as they move.
     */
    feetInBursts?: boolean;
    /** The TCP acknowledgements' count is known too (bytes as they move). */
    tcp?: boolean;
    /** The connections' round trips over their least, as the kernel reports them (none: not reported). */
    inflation?: (count: number, nowMs: number) => number;
    /** The same over every connection, whatever its congestion control (default: `inflation`'s, as with cubic alone). */
    queueInflation?: (count: number, nowMs: number) => number;
  } = {},
): Run {
  const tuner = new ThreadTuner({ ...defaultTunerSettings(FOOT), ...options.settings }, 0);
  const run: Run = { counts: [], changes: [], stays: [], final: tuner.target };
  let bytes = 0;
  let acknowledged = 0;
  for (let now = TICK_MS; now <= seconds * 1000; now += TICK_MS) {
    const up = options.up?.(now, tuner.target) ?? tuner.target;
    bytes += (up === 0 ? 0 : path(tuner.target, now)) * MIB * (TICK_MS / 1000);
    const trailing = tuner.target * FOOT * (0.5 + 0.5 * Math.sin((2 * Math.PI * now) / 1_300));
    acknowledged = options.feetInBursts === true ? Math.max(acknowledged, Math.floor(Math.max(0, bytes - trailing) / FOOT) * FOOT) : bytes;
    const change = tuner.update(now, {
      deliveredBytes: acknowledged,
      deliveredFeet: Math.floor(acknowledged / FOOT),
      tcpDeliveredBytes: options.tcp === true ? bytes : undefined,
      roundTripInflation: options.inflation?.(tuner.target, now),
      queueInflation: (options.queueInflation ?? options.inflation)?.(tuner.target, now),
      // The kernel reports round trips wherever it reports bytes.
      leastRoundTripMs: options.tcp === true ? options.roundTripMs : undefined,
      feetHeld: options.feetHeld ?? 8,
      connectionsUp: up,
      roundTripMs: options.roundTripMs,
      windowFeet: typeof options.windowFeet === "function" ? options.windowFeet(now) : options.windowFeet,
    });
    if (change !== undefined) (change.to === change.from ? run.stays : run.changes).push(change);
    run.counts.push(tuner.target);
  }
  run.final = tuner.target;
  return run;
}

/** What the tuner decided in a run, changes then stays, for a failed expectation's message. */
function decisions(run: Run): string {
  return [...run.changes, ...run.stays].map((c) => `${c.from}→${c.to}: ${c.why}`).join("; ");
}

describe("threads auto", () => {
  test("a gain smaller than the measurement's error (two feet) is not taken for one: a 24 MiB/s source read as 28 with 8 stays at 4", () => {
    // The paced source moves 24 MiB/s whatever the count; just after the step to 8, acknowledgements
    // that were queued arrive in a burst: 28 MiB/s for 0.75 s (3 MiB, 1.5 feet more), then 24 again.
    let eightSince: number | undefined;
    const paced: Path = (n, nowMs) => {
      if (n !== 8) return 24;
      eightSince ??= nowMs;
      return nowMs - eightSince < 750 ? 28 : 24;
    };
    const run = simulate(paced, 4, { settings: { reprobeMs: 60_000 } });
    expect(run.changes.map((c) => c.to)).toEqual([8, 4]);
    expect(run.final).toBe(4);
  });

  test("starts with 4 connections", () => {
    expect(new ThreadTuner(defaultTunerSettings(FOOT), 0).target).toBe(4);
  });

  test("a path that limits each flow: climbs to the cap within a few seconds", () => {
    const run = simulate(perFlow(4), 10);
    expect(run.final).toBe(64);
    // 4 → 8 (doubling), then quadrupling while goodput grows in proportion.
    expect(run.changes.map((c) => c.to)).toEqual([8, 32, 64]);
    // The first measurement waits for the connections to settle (200 ms with no round trip known).
    expect(run.counts.findIndex((count) => count === 64) * TICK_MS).toBeLessThanOrEqual(2_500);
  });

  test("a path with a shared limit: settles where more connections stop paying", () => {
    // 10 MiB/s per flow, 100 in all: 4 → 40, 8 → 80, 32 → 100 (pays), 64 → 100 (does not).
    const run = simulate(perFlow(10, 100), 20);
    expect(run.changes.slice(0, 4).map((c) => c.to)).toEqual([8, 32, 64, 32]);
    // Later probes (48) do not pay either.
    expect(run.final).toBe(32);
  });

  test("a fast local path where one flow does it all: stays at the start", () => {
    // Loopback-like: more connections move no more (a little less).
    const run = simulate((n) => 1800 - n, 8);
    expect(run.changes.map((c) => [c.from, c.to])).toEqual([
      [4, 8],
      [8, 4],
    ]);
    expect(run.final).toBe(4);
  });

  test("a gain under 10% is noise: the count goes back", () => {
    const run = simulate((n) => (n <= 4 ? 100 : 108), 8);
    expect(run.final).toBe(4);
  });

  test("a trial is rejected only after the feet held at the change are through", () => {
    // 40 feet held at 40 MiB/s (20 feet/s): two seconds to drain before a rejection can be measured.
    const run = simulate((n) => (n <= 4 ? 40 : 40), 10, { feetHeld: 40 });
    const grewAt = run.counts.findIndex((count) => count === 8);
    const backAt = run.counts.findIndex((count, i) => i > grewAt && count === 4);
    expect(grewAt).toBeGreaterThanOrEqual(0);
    expect((backAt - grewAt) * TICK_MS).toBeGreaterThanOrEqual(2_000);
  });

  test("steady state probes again later, and climbs on when the path changed", () => {
    // Until 5 s one flow does it all (100 MiB/s); then each flow gets 20 MiB/s.
    const path: Path = (n, now) => (now < 5_000 ? 100 : n * 20);
    const run = simulate(path, 30);
    const probe = run.changes.find((c) => c.why.startsWith("probing"));
    expect(probe).toEqual(expect.objectContaining({ from: 4, to: 6 }));
    expect(run.final).toBe(64);
  });

  test("probes that do not pay come ever more rarely", () => {
    const run = simulate(() => 100, 120);
    const probes = run.changes.filter((c) => c.why.startsWith("probing"));
    expect(probes.length).toBeGreaterThanOrEqual(2);
    // 10 s, then 20, 40, 80 (the cap) after each probe that did not pay: never more than 4 in two minutes.
    expect(probes.length).toBeLessThanOrEqual(4);
  });

  test("an outage (no connection up) is not a measurement", () => {
    // Per-flow limited, but nothing is up between 0.5 s and 6 s: no judgement then.
    const down = (now: number) => now > 500 && now < 6_000;
    const run = simulate(perFlow(4), 12, { up: (now, count) => (down(now) ? 0 : count) });
    const duringOutage = run.counts.slice(2, 23);
    expect(new Set(duringOutage)).toEqual(new Set([4]));
    expect(run.final).toBe(64);
  });

  test("a slow path is still judged, after maxMeasureMs", () => {
    // 1 MiB/s per flow: 4 feet take longer than the 5 s limit at the start.
    const run = simulate(perFlow(0.25), 30);
    expect(run.changes.length).toBeGreaterThan(0);
    expect(run.changes[0]!.to).toBe(8);
  });

  test("never beyond the cap it is given", () => {
    const run = simulate(perFlow(4), 10, { settings: { max: 12 } });
    expect(Math.max(...run.counts)).toBe(12);
  });

  test("a long path the first connections fill: the slow-start ramp is not taken for a per-flow limit", () => {
    // 100 ms round trip, 36 MiB/s link that 4 connections fill once out of TCP slow start,
    // which takes them the first 8 round trips (the rate ramps up to the link's meanwhile).
    const slowStart: Path = (_n, now) => Math.min(36, (36 * now) / 800);
    const run = simulate(slowStart, 20, { roundTripMs: 100 });
    // One trial of twice as many at most, and back.
    expect(Math.max(...run.counts), run.changes.map((c) => c.why).join("; ")).toBeLessThanOrEqual(8);
    expect(run.final).toBe(4);
  });

  test("measurement windows follow the round trip: a 200 ms path is judged after 8 of them, not 200 ms", () => {
    const run = simulate(perFlow(1), 30, { roundTripMs: 200 });
    const first = run.counts.findIndex((count) => count !== 4);
    // Settling 8 round trips (1.6 s), then measuring 6 (1.2 s).
    expect(first * TICK_MS + TICK_MS).toBeGreaterThanOrEqual(2_800);
    expect(run.final).toBe(64);
  });

  test("never more connections than the receiver's window has feet", () => {
    const run = simulate(perFlow(4), 20, { windowFeet: 12 });
    expect(Math.max(...run.counts)).toBe(12);
  });

  test("a rejection is confirmed by measuring the old count again: goodput that drifts down is not taken for a trial that did not pay", () => {
    // A 200 ms path with 0.1 % loss (cubic): each flow moves 1.5 MiB/s until its first losses
    // (3 s), then falls to 0.5 MiB/s by 6 s and stays there; the flows never fill the link.
    const decaying: Path = (n, now) => n * (now < 3_000 ? 1.5 : Math.max(0.5, 1.5 - (now - 3_000) / 3_000));
    const run = simulate(decaying, 30, { roundTripMs: 200, windowFeet: 96 });
    const why = decisions(run);
    // The doubling measured during the fall looks worse than the 4 measured before it...
    expect(run.changes[1]?.to, why).toBe(4);
    // ...but 4 measured again moves less than 8 did: the climb goes on from 8 (to 16), long before a re-probe (10 s).
    expect(run.changes[2]?.to, why).toBe(16);
    expect(run.counts[Math.round(15_000 / TICK_MS)], why).toBeGreaterThanOrEqual(32);
  });

  test("a count held at the receiver's window is probed once the window grows, not a re-probe later (200 ms, 0.1 % loss, cubic)", () => {
    // 0.4 MiB/s a flow, no queue; the window lets out 32 feet until 8 s, then 43, then 48.
    const windowFeet = (nowMs: number): number => (nowMs < 8_000 ? 32 : nowMs < 9_000 ? 43 : 48);
    const run = simulate(perFlow(0.4), 30, { roundTripMs: 200, tcp: true, inflation: () => 1.02, feetHeld: 48, windowFeet });
    const why = decisions(run);
    expect(run.counts[Math.round(7_500 / TICK_MS)], why).toBe(32);
    expect(run.counts[Math.round(12_000 / TICK_MS)], why).toBeGreaterThan(32);
  });

  test("...but not for a step too small to judge: a window grown from 46 to 48 feet waits for the re-probe", () => {
    const windowFeet = (nowMs: number): number => (nowMs < 8_000 ? 46 : 48);
    const run = simulate(perFlow(0.4), 14, { roundTripMs: 200, tcp: true, inflation: () => 1.02, feetHeld: 48, windowFeet });
    const why = decisions(run);
    expect(run.counts[Math.round(7_500 / TICK_MS)], why).toBe(46);
    expect(run.counts[run.counts.length - 1], why).toBe(46);
  });

  test("connections so slow that a measurement sees under 4 feet: the trial is kept, and the count climbs (200 ms, 1 % loss, cubic)", () => {
    // Each flow moves 0.1 MiB/s: a 2 MiB foot takes a connection 20 s; every connection has feet.
    const run = simulate(perFlow(0.1), 60, { roundTripMs: 200, feetHeld: 48, windowFeet: 48 });
    const why = decisions(run);
    expect(run.final, why).toBeGreaterThanOrEqual(32);
  });

  test("read from TCP, such slow connections are judged on a megabyte, not four feet: 48 within 10 s, not 15 (200 ms, 1 % loss, cubic)", () => {
    // 0.09 MiB/s a flow: four feet (8 MiB) took 4 connections past the 5 s limit.
    const run = simulate(perFlow(0.09), 20, { tcp: true, roundTripMs: 200, inflation: () => 1.01, feetHeld: 48, windowFeet: 48 });
    const why = decisions(run);
    expect(run.counts[Math.round(10_000 / TICK_MS) - 1], why).toBe(48);
  });

  test("a doubling judged against a figure from slow start (a trial that paid at once) is held where it moved 80 % of it (50 ms, 0.1 % loss, cubic)", () => {
    // Settled: 13 MiB/s with 4, 16 with 8, 18 with 16, 31 with 32 or more; but for a second
    // after a step to 16 or more the new connections' slow start moves 36.
    const { path } = afterGrowth((n, sinceMs) => (n >= 16 && sinceMs < 1_000 ? 36 : n >= 32 ? 31 : n >= 16 ? 18 : n >= 8 ? 16 : 13));
    const inflation = (n: number): number => (n >= 16 ? 1.25 : 1.02);
    const run = simulate(path, 30, { tcp: true, roundTripMs: 50, inflation, feetHeld: 48, windowFeet: 48, settings: { reprobeMs: 60_000 } });
    const why = decisions(run);
    expect(run.final, why).toBe(48);
    expect(run.stays.map((c) => c.why), why).toEqual(["48 connections moved 31 MiB/s against 36 MiB/s with 16, read before they settled: held"]);
  });

  test("...and where it moved half of it (100 ms, 0.1 % loss, cubic: a way back costs seconds at a quarter of the rate)", () => {
    // Settled, each flow moves 0.55 MiB/s (32: 18 MiB/s, 43: 24); for a second after a step to 16
    // or more the new connections' slow start moves 1.8 each (32: 33, the link). On the rig,
    // "43 connections moved 23 against 29 with 16" went back to 16, which then moved 4 MiB/s for
    // 10 s (their windows had met their losses).
    const { path } = afterGrowth((n, sinceMs) => Math.min(33, (n >= 16 && sinceMs < 1_000 ? 1.8 : 0.55) * n));
    // With 32 or more, a queue forms (round trips 1.25x their least), short of a full link.
    const inflation = (n: number): number => (n >= 32 ? 1.25 : 1.02);
    const run = simulate(path, 30, { tcp: true, roundTripMs: 100, inflation, feetHeld: 43, windowFeet: 43, settings: { reprobeMs: 60_000 } });
    const why = decisions(run);
    expect(run.changes.filter((c) => c.to < c.from), why).toEqual([]);
    expect(run.final, why).toBeGreaterThanOrEqual(32);
  });

  test("...but a slow input (connections without feet) is no reason to climb", () => {
    // 0.2 MiB/s whatever the count: the input is the limit, and 2 feet are held.
    const run = simulate(() => 0.2, 60, { roundTripMs: 200, feetHeld: 2, settings: { reprobeMs: 120_000 } });
    expect(run.final).toBe(4);
  });

  test("goodput is read from TCP's acknowledgements where they are known: feet finished in bursts are not taken for a gain", () => {
    // A 300 Mbit/s path (35.8 MiB/s), 50 ms, that one connection fills: every count moves 34 MiB/s.
    const link: Path = () => 34;
    const byFeet = simulate(link, 40, { feetInBursts: true, roundTripMs: 50, settings: { reprobeMs: 60_000 } });
    const byTcp = simulate(link, 40, { feetInBursts: true, tcp: true, roundTripMs: 50, settings: { reprobeMs: 60_000 } });
    // The premise: read from the feet, a burst looks like a gain ("40 MiB/s with 8, up from 32 with 4").
    expect(Math.max(...byFeet.counts), byFeet.changes.map((c) => c.why).join("; ")).toBeGreaterThan(8);
    // Read from TCP: one trial of 8, held (it cost nothing), and no more.
    expect(byTcp.changes.map((c) => c.to), byTcp.changes.map((c) => c.why).join("; ")).toEqual([8]);
  });

  test("...and a path where counts pay up to 32 is climbed as the rates say, bursts or not", () => {
    // 5 MiB/s a flow, 60 in all: 4 → 20, 8 → 40, 32 → 60, 64 → 60.
    // Read from the feet, "80 MiB/s with 16" made 64 look worse and the count fell back to 16.
    const run = simulate(perFlow(5, 60), 40, { feetInBursts: true, tcp: true, settings: { reprobeMs: 60_000 } });
    expect(run.changes.map((c) => c.to), run.changes.map((c) => c.why).join("; ")).toEqual([8, 32, 64, 32]);
  });

  test("read from TCP, a gain of 15 % at 16 MiB/s pays; read from feet, it is under the measurement's error", () => {
    // 16 MiB/s with 4, 18.4 with 8 or more (a 50 ms lossy path where 8 do a little better).
    const path: Path = (n) => (n <= 4 ? 16 : 18.4);
    const byTcp = simulate(path, 8, { tcp: true, roundTripMs: 50, settings: { reprobeMs: 60_000 } });
    const byFeet = simulate(path, 8, { roundTripMs: 50, settings: { reprobeMs: 60_000 } });
    expect(byTcp.counts[byTcp.counts.length - 1], byTcp.changes.map((c) => c.why).join("; ")).toBeGreaterThanOrEqual(8);
    expect(byFeet.changes.map((c) => c.to)).toEqual([8, 4]);
  });

  test("no queue at the bottleneck (round trips at their least) while every connection has feet: goodput drifting down does not stop the climb", () => {
    // The drifting 200 ms, 0.1 % loss path of the re-check test, and the kernel's round trips at 1.05 of the least.
    const decaying: Path = (n, now) => n * (now < 3_000 ? 1.5 : Math.max(0.5, 1.5 - (now - 3_000) / 3_000));
    const run = simulate(decaying, 30, { roundTripMs: 200, windowFeet: 96, feetHeld: 96, tcp: true, inflation: () => 1.05 });
    const why = decisions(run);
    // Never back: each doubling is kept, judged without waiting for the new connections to settle.
    expect(run.changes.every((c) => c.to > c.from), why).toBe(true);
    expect(run.counts[Math.round(6_000 / TICK_MS)], why).toBeGreaterThanOrEqual(32);
  });

  test("...while a tall queue stands (a link the connections fill), no more are tried, then or in later probes; the decision is logged once", () => {
    const run = simulate(() => 34, 60, { roundTripMs: 50, tcp: true, inflation: () => 2 });
    expect(run.changes).toEqual([]);
    expect(run.stays.map((c) => c.why)).toEqual(["34 MiB/s with 4; round trips 2.00x their least: the link is full"]);
  });

  test("...whatever the congestion control: bbr's connections filling the link read a tall queue too", () => {
    const run = simulate(() => 34, 60, { roundTripMs: 50, tcp: true, queueInflation: () => 2.05 });
    expect(run.changes).toEqual([]);
  });

  test("...and while bbr drains the queue its start-up built: half the measurement's ticks and its last one standing is a full link", () => {
    // 50 ms, clean, 4 bbr connections, as the kernel read them (sampled every 250 ms): start-up
    // fills the queue, a drain of a few hundred milliseconds, then the queue stands again.
    const sequence = [1.0, 1.19, 2.02, 1.1, 1.32];
    const queueInflation = (_count: number, nowMs: number): number => sequence[Math.round(nowMs / TICK_MS) - 1] ?? 1.8;
    const run = simulate(() => 34, 20, { roundTripMs: 50, tcp: true, queueInflation, settings: { reprobeMs: 60_000 } });
    expect(run.changes.map((c) => `${c.from}→${c.to}: ${c.why}`)).toEqual([]);
    expect(run.stays.map((c) => c.why)).toEqual(["34 MiB/s with 4; round trips 1.32x their least: the link is full"]);
  });

  test("...but a step judged at once (it paid before its connections settled) needs the queue at every tick: slow start overshoots (50 ms, 0.1 % loss, cubic)", () => {
    // 15 MiB/s with 4, 18 with 8 or 16, 23 with 32 or more; for a second after a step to 16
    // the new connections' slow start moves 34 and, from its second reading on, builds a queue.
    const { path, sinceGrowthMs } = afterGrowth((n, sinceMs) => (n === 16 && sinceMs < 1_000 ? 34 : n >= 32 ? 23 : n >= 8 ? 18 : 15));
    const queueInflation = (n: number, nowMs: number): number => (n === 16 && sinceGrowthMs(nowMs) >= 250 && sinceGrowthMs(nowMs) < 1_000 ? 1.41 : 1.05);
    const run = simulate(path, 20, { tcp: true, roundTripMs: 50, queueInflation, inflation: () => 1.05, feetHeld: 48, windowFeet: 48, settings: { reprobeMs: 60_000 } });
    const why = decisions(run);
    expect(run.final, why).toBeGreaterThanOrEqual(32);
  });

  test("...and a full link read before the connections settled is looked at again once they have, not a re-probe later", () => {
    // The rig's 50 ms, 0.1 % loss, cubic path in a full run: 8 → 16 at 1.9 s, and the new connections'
    // slow start built a queue from the step on, so every tick stood (1.46x) and "35 MiB/s with 16"
    // held the count at 16, which then moved 17 MiB/s until the re-probe 10 s later (32 move 23).
    const { path, sinceGrowthMs } = afterGrowth((n, sinceMs) => (n === 16 && sinceMs < 1_000 ? 35 : n >= 32 ? 23 : n >= 16 ? 17 : n >= 8 ? 16 : 13));
    const queueInflation = (n: number, nowMs: number): number => (n === 16 && sinceGrowthMs(nowMs) < 1_000 ? 1.46 : 1.05);
    const run = simulate(path, 20, { tcp: true, roundTripMs: 50, queueInflation, inflation: () => 1.05, feetHeld: 48, windowFeet: 48 });
    const why = decisions(run);
    expect(run.stays.some((c) => c.why.endsWith("the link is full")), why).toBe(true);
    // Past 16 within a few seconds, not at the default re-probe (10 s after the hold).
    expect(run.counts[Math.round(5_000 / TICK_MS)], why).toBeGreaterThan(16);
  });

  test("...where the queue still stands once they have, the hold stands: no probe then or later", () => {
    // The same step to 16, on a link 16 fill: the queue stands from the step on and stays.
    const { path } = afterGrowth((n, sinceMs) => (n === 16 && sinceMs < 1_000 ? 35 : n >= 16 ? 34 : n >= 8 ? 16 : 13));
    const queueInflation = (n: number): number => (n >= 16 ? 1.46 : 1.05);
    const run = simulate(path, 30, { tcp: true, roundTripMs: 50, queueInflation, inflation: () => 1.05, feetHeld: 48, windowFeet: 48 });
    const why = decisions(run);
    expect(Math.max(...run.counts), why).toBe(16);
  });

  test("...and so is one read once they settled, where the queue was still slow start's: a probe once it is gone and goodput fell", () => {
    // The rig's 100 ms, 0.1 % loss, cubic path in a full run: the first settled reading (0.8–1.9 s)
    // saw 4 connections' slow start fill the link, "30 MiB/s with 4" at 1.46x; then their losses took
    // the queue away and 4 moved 3 MiB/s until the re-probe at 12.3 s (12 move 16).
    const path: Path = (n, nowMs) => (n === 4 ? (nowMs < 2_500 ? 30 : 3) : Math.min(32, 1.4 * n));
    const queueInflation = (n: number, nowMs: number): number => (n === 4 && nowMs < 2_500 ? 1.46 : 1.02);
    const run = simulate(path, 20, { tcp: true, roundTripMs: 100, queueInflation, inflation: queueInflation, feetHeld: 48, windowFeet: 48 });
    const why = decisions(run);
    expect(run.stays.some((c) => c.why === "30 MiB/s with 4; round trips 1.46x their least: the link is full"), why).toBe(true);
    expect(run.counts[Math.round(5_000 / TICK_MS)], why).toBeGreaterThan(4);
  });

  test("...but a full link whose queue comes and goes while goodput holds (bbr draining what it built) is not probed before the re-probe", () => {
    // bbr on a link 4 connections fill: round trips read 1.1 for a second, then 1.5 for one, and so on; 34 MiB/s throughout.
    const queueInflation = (n: number, nowMs: number): number => (nowMs < 2_000 || Math.floor(nowMs / 1_000) % 2 === 1 ? 1.5 : 1.1);
    const run = simulate(() => 34, 9, { tcp: true, roundTripMs: 50, queueInflation, inflation: () => 1.05, feetHeld: 48, windowFeet: 48 });
    const why = decisions(run);
    expect(run.stays.some((c) => c.why.endsWith("the link is full")), why).toBe(true);
    expect(Math.max(...run.counts), why).toBe(4);
  });

  test("...and the climb stops where the queue begins to stand", () => {
    // 2 MiB/s a flow up to 34 in all: 8 doubles 4's goodput (so the next step is 32), and 32 fill the link.
    const run = simulate(perFlow(2, 34), 60, { roundTripMs: 50, tcp: true, windowFeet: 96, feetHeld: 96, inflation: (n) => (n < 32 ? 1.02 : 1.9) });
    expect(run.changes.map((c) => c.to), run.changes.map((c) => c.why).join("; ")).toEqual([8, 32]);
  });

  test("a doubling that does not pay, where round trips are known but say nothing of a queue (bbr), is held and not undone", () => {
    const run = simulate(() => 34, 8, { roundTripMs: 50, tcp: true });
    expect(run.changes.map((c) => c.to)).toEqual([8]);
    expect(run.stays.map((c) => c.why)).toEqual(["8 connections moved 34 MiB/s against 34 MiB/s with 4: held"]);
  });

  test("...but one that costs goodput goes back, at once (no re-check where the queue is known)", () => {
    // 34 MiB/s with 4, 28 with 8 (more connections overflow a small bottleneck buffer); a queue, not a tall one.
    const run = simulate((n) => (n <= 4 ? 34 : 28), 8, { roundTripMs: 50, tcp: true, inflation: () => 1.25 });
    expect(run.changes.map((c) => c.to)).toEqual([8, 4]);
  });

  test("...and without feet on every connection (a slow input), no queue is no reason to climb", () => {
    const run = simulate(() => 0.2, 60, { roundTripMs: 200, feetHeld: 2, tcp: true, inflation: () => 1, settings: { reprobeMs: 120_000 } });
    // The first doubling is always tried; costing nothing, it is held.
    expect(Math.max(...run.counts)).toBeLessThanOrEqual(8);
  });

  test("roundTripInflation: the median connection's round trip over its link's least; nothing where links are too short to tell; leastRoundTrip", () => {
    const sample = (link: number, roundTripMs: number, minRoundTripMs: number, congestion: string | undefined = "cubic") => ({ link, roundTripMs, minRoundTripMs, congestion });
    // Link 0's least is 50 ms (a connection that started in a queue saw 80 at best); link 1's is 150.
    expect(roundTripInflation([sample(0, 55, 50), sample(0, 100, 80), sample(0, 60, 51), sample(1, 150, 150), sample(1, 300, 150)])).toBeCloseTo(1.2, 5);
    // Loopback: tens of microseconds.
    expect(roundTripInflation([sample(0, 0.05, 0.01), sample(0, 0.02, 0.01)])).toBeUndefined();
    expect(roundTripInflation([])).toBeUndefined();
    // bbr keeps the queue near empty at full rate, and an algorithm nobody named says nothing: only cubic's count here.
    expect(roundTripInflation([sample(0, 55, 50, "bbr"), sample(0, 52, 50, undefined), sample(0, 100, 50)])).toBeCloseTo(2, 5);
    expect(roundTripInflation([sample(0, 55, 50, "bbr")])).toBeUndefined();
    // A connection with no round trip sampled yet (least 0) is left out of the least.
    expect(leastRoundTrip([sample(0, 55, 50, "bbr"), sample(1, 160, 150), sample(1, 0, 0)])).toBe(50);
    expect(leastRoundTrip([sample(0, 0, 0)])).toBeUndefined();
  });

  test("a rejection that stands after the second look holds the count", () => {
    // 12 MiB/s with 4, 12.5 with 8, whenever measured: 8 is rejected, 4 measured again, and kept.
    const run = simulate((n) => (n <= 4 ? 12 : 12.5), 8, { roundTripMs: 50 });
    expect(run.changes.map((c) => c.to)).toEqual([8, 4]);
    expect(run.final).toBe(4);
  });
});
