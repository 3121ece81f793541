// The receiver's window rule (src/rx/window.ts): grows to twice what a round
// trip moves plus a foot per connection, measured over SAMPLE_MS of writing,
// never past its cap, never shrinking.
import { describe, expect, test } from "bun:test";
import { ReceiveWindow, SAMPLE_MS, wantedFeet } from "../../src/rx/window.ts";
import { MIB } from "../support/sizes.ts";

const FOOT = 2 * MIB;

/** Writes a foot every `everyMs` for `forMs` from `startMs`; the growths seen. */
function writeSteadily(window: ReceiveWindow, startMs: number, everyMs: number, forMs: number, connections: number, roundTripMs: number | undefined) {
  const growths = [];
  for (let t = startMs; t <= startMs + forMs; t += everyMs) {
    const growth = window.written(FOOT, t, connections, roundTripMs);
    if (growth !== undefined) growths.push(growth);
  }
  return growths;
}

describe("wantedFeet", () => {
  test("twice the bandwidth-delay product in feet plus a foot per connection", () => {
    // 36 MiB/s over 200 ms is 7.2 MiB, 3.6 feet; with 16 connections: 2 × 19.6 → 40.
    expect(wantedFeet(36 * MIB, 200, 16, FOOT)).toBe(40);
    // Loopback: 2 GiB/s over 0.1 ms, 4 connections: 2 × 4.1 → 9, under the 32 a session starts with.
    expect(wantedFeet(2048 * MIB, 0.1, 4, FOOT)).toBe(9);
  });
});

describe("ReceiveWindow", () => {
  test("a long path with many connections: grows once a sample is in, to what it wants", () => {
    const window = new ReceiveWindow(FOOT, 32, 64);
    // 64 connections, 10 MiB/s (a foot every 200 ms), 200 ms round trip: wants 2 × (1 + 64) = 130, capped at 64.
    const growths = writeSteadily(window, 0, 200, 3 * SAMPLE_MS, 64, 200);
    expect(growths.length).toBe(1);
    expect(growths[0]).toMatchObject({ fromFeet: 32, toFeet: 64, connections: 64, roundTripMs: 200 });
    expect(growths[0]!.bytesPerSecond).toBeCloseTo(10 * MIB, -3);
    expect(window.windowFeet).toBe(64);
  });

  test("nothing changes before SAMPLE_MS of writing: the first foot only starts the clock", () => {
    const window = new ReceiveWindow(FOOT, 4, 64);
    expect(writeSteadily(window, 0, 10, SAMPLE_MS - 20, 64, 200)).toEqual([]);
    expect(window.windowFeet).toBe(4);
    expect(window.written(FOOT, SAMPLE_MS, 64, 200)?.toFeet).toBe(64);
  });

  test("a fast short path (loopback, 4 connections) keeps the starting window", () => {
    const window = new ReceiveWindow(FOOT, 32, 64);
    // 2 GiB/s: a foot per millisecond, 0.1 ms round trip.
    expect(writeSteadily(window, 0, 1, 5 * SAMPLE_MS, 4, 0.1)).toEqual([]);
    expect(window.windowFeet).toBe(32);
  });

  test("the smallest round trip heard counts: a queue in front of later pings does not inflate it", () => {
    const window = new ReceiveWindow(FOOT, 4, 1000);
    window.written(FOOT, 0, 1, 50);
    // 200 MiB/s (a foot every 10 ms) over 50 ms is 5 feet: 2 × (5 + 1) = 12; over the 900 ms heard later it would be 182.
    const growth = writeSteadily(window, 10, 10, SAMPLE_MS, 1, 900)[0];
    expect(growth?.roundTripMs).toBe(50);
    expect(growth?.toFeet).toBe(12);
  });

  test("never shrinks: a slower sample after a growth leaves the window as it is", () => {
    const window = new ReceiveWindow(FOOT, 8, 100);
    expect(writeSteadily(window, 0, 100, SAMPLE_MS, 20, 200)[0]?.toFeet).toBeGreaterThan(8);
    const grown = window.windowFeet;
    expect(writeSteadily(window, 2 * SAMPLE_MS, 500, 4 * SAMPLE_MS, 1, 200)).toEqual([]);
    expect(window.windowFeet).toBe(grown);
  });

  test("with no round trip heard yet, only the connections count", () => {
    const window = new ReceiveWindow(FOOT, 4, 100);
    expect(writeSteadily(window, 0, 100, SAMPLE_MS, 10, undefined)[0]?.toFeet).toBe(20);
  });
});
