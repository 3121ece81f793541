/**
 * `threads auto` end to end on virtual time: the real transmitter and
 * receiver over the in-memory network's emulated paths (memory-network.ts),
 * both on one VirtualClock (test/support/virtual-clock.ts), so a 200 ms
 * round trip and a transfer of many seconds cost no wall time.
 *
 * 1. A long fat path that limits each connection (200 ms round trip, a
 *    window per connection far below the path's bandwidth-delay product):
 *    one connection moves windowBytes per round trip, so filling the link
 *    takes about rate × RTT / windowBytes connections, and auto must find
 *    that many.
 * 2. A path with no delay whose only limit is shared (one connection fills
 *    it): auto must not keep more connections than it started with.
 *
 * What each run prints on failure: the counts auto went through
 * (`connectionsWanted` sampled every tick) and the virtual seconds taken.
 */
import { describe, expect, test } from "bun:test";
import type { TransmitterOptions } from "../../src/options.ts";
import { receive } from "../../src/rx/receiver.ts";
import { memorySink } from "../../src/rx/stdout.ts";
import type { TransferFigures } from "../../src/status/figures.ts";
import { transmit } from "../../src/tx/transmitter.ts";
import { memorySource } from "../support/memory-source.ts";
import { MIB } from "../support/sizes.ts";
import { VirtualClock } from "../support/virtual-clock.ts";
import { MemoryNetwork, type LinkConditions } from "./memory-network.ts";

const FOOT = 64 * 1024;
/** The receiver's window in feet: far beyond what any of these paths needs in flight. */
const WINDOW_FEET = 1024;
const common = { verbose: 0, checkphrase: "", chaosEvery: 0, footBytes: FOOT, patienceS: 600, timeoutS: 600 };

function pattern(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 2654435761) >>> 24;
  return bytes;
}

interface AutoRun {
  seconds: number;
  /** `connectionsWanted` at every watchdog tick, without repeats. */
  counts: number[];
  final: number;
}

/** Sends `bytes` over a path with `conditions` with `threads auto`; the output must be whole. */
async function autoOver(conditions: LinkConditions, bytes: number): Promise<AutoRun> {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, links: { far: conditions } });
  const sink = memorySink();
  let listening!: (port: number) => void;
  const ready = new Promise<number>((resolve) => (listening = resolve));
  const rx = receive({ ...common, port: 0, bind: undefined, windowFeet: WINDOW_FEET }, { network, sink, clock, onListening: listening });
  const port = await ready;
  const input = pattern(bytes);
  const options: TransmitterOptions = { ...common, targets: [{ host: "far", port }], threads: "auto" };
  let figures: (() => TransferFigures) | undefined;
  const counts: number[] = [];
  const sample = clock.every(250, "test samples connectionsWanted", () => {
    const wanted = figures?.().connectionsWanted;
    if (wanted !== undefined && wanted !== null && counts.at(-1) !== wanted) counts.push(wanted);
  });
  const summary = await clock.until(transmit(options, { network, source: memorySource(input), clock, observe: (f) => (figures = f) }), 600_000);
  sample.cancel();
  const final = figures!().connectionsWanted!;
  await clock.until(rx, 60_000);
  expect(summary.bytes).toBe(BigInt(bytes));
  expect(Buffer.from(sink.bytes()).equals(Buffer.from(input))).toBe(true);
  return { seconds: summary.seconds, counts, final };
}

describe("threads auto on virtual time", () => {
  test("200 ms round trip, 64 KiB per connection, 4 MiB/s link: finds the ~13 connections that fill it", async () => {
    const rateBytes = 4 * MIB;
    const run = await autoOver({ delayMs: 100, bytesPerSecond: rateBytes, windowBytes: 64 * 1024 }, 48 * MIB);
    const message = `counts ${run.counts.join(" → ")}, ${run.seconds.toFixed(1)} virtual s`;
    // One connection moves 64 KiB per 200 ms (0.3125 MiB/s): 13 fill the link.
    expect(run.final, message).toBeGreaterThanOrEqual(13);
    // Start-up included: 48 MiB at the link's rate take 12 s; 4 connections alone would take 38 s.
    expect(48 / run.seconds, message).toBeGreaterThanOrEqual(0.7 * 4);
  }, 120_000);

  test("no delay, one shared 16 MiB/s limit: stays with the connections it started with", async () => {
    const run = await autoOver({ delayMs: 0, bytesPerSecond: 16 * MIB }, 96 * MIB);
    const message = `counts ${run.counts.join(" → ")}, ${run.seconds.toFixed(1)} virtual s`;
    expect(run.final, message).toBe(4);
    // One trial of twice as many is the price of finding out; never more.
    expect(Math.max(...run.counts), message).toBeLessThanOrEqual(8);
  }, 120_000);
});
