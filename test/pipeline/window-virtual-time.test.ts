/**
 * The window on a long fat path, in virtual time: both roles on one
 * VirtualClock over the in-memory network's emulated link (200 ms round trip,
 * 300 Mbit/s, a 4 MiB window per connection), with enough connections that
 * no single one limits the transfer.
 *
 * Proves: at the default `buffer` the receiver's window grows to cover the
 * path (rx/window.ts), so the transfer moves at least 0.9 of the link; with a
 * `buffer` smaller than the bandwidth-delay product, at both ends or at the
 * transmitter alone (which then reads no further ahead), it moves about
 * `buffer` per round trip. Feet are 128 KiB, so the window the receiver starts with
 * (32 feet, 4 MiB) is about half the path's 7.2 MiB bandwidth-delay product:
 * a window that did not follow the path would hold the first test near 0.55
 * of the link. Rates are taken over the second half of the stream, after
 * start-up (dial, hello, the window's first measurement).
 *
 * Also: without a cap (the command line sets none), a receiver starts its
 * window at DEFAULT_WINDOW_BYTES in feet of whatever size the transmitter
 * asks: 32 of 2 MiB, 128 of 512 KiB (`foot auto` on a long path), 4 of 16 MiB.
 */
import { describe, expect, test } from "bun:test";
import { DEFAULT_WINDOW_BYTES, DEFAULT_WINDOW_FEET, type TransmitterOptions } from "../../src/options.ts";
import type { TransferFigures } from "../../src/status/figures.ts";
import { receive } from "../../src/rx/receiver.ts";
import type { ByteSink } from "../../src/rx/stdout.ts";
import { transmit } from "../../src/tx/transmitter.ts";
import { memorySource } from "../support/memory-source.ts";
import { MIB } from "../support/sizes.ts";
import { VirtualClock } from "../support/virtual-clock.ts";
import { MemoryNetwork } from "./memory-network.ts";

const FOOT = 128 * 1024;
const ROUND_TRIP_MS = 200;
/** 300 Mbit/s. */
const LINK_BYTES_PER_S = 300e6 / 8;
const STREAM_BYTES = 96 * MIB;
/** Per-connection window 4 MiB over 200 ms: 20 MiB/s each, so 8 connections could carry four times the link. */
const THREADS = 32;
/** Virtual time the slowest case may take (about 10 MiB/s): far beyond it means a stall. */
const LIMIT_MS = 60_000;

function pattern(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 2654435761) >>> 24;
  return bytes;
}
const INPUT = pattern(STREAM_BYTES);
const INPUT_SHA256 = new Bun.CryptoHasher("sha256").update(INPUT).digest("hex");

/** A sink that hashes what it is given and notes when the second half of the stream began and ended, on `clock`. */
function timedSink(clock: VirtualClock): ByteSink & { halfMs?: number; endMs?: number; bytes: number; sha256(): string } {
  const hasher = new Bun.CryptoHasher("sha256");
  const sink: ByteSink & { halfMs?: number; endMs?: number; bytes: number; sha256(): string } = {
    bytes: 0,
    async write(bytes) {
      hasher.update(bytes);
      sink.bytes += bytes.length;
      if (sink.halfMs === undefined && sink.bytes >= STREAM_BYTES / 2) sink.halfMs = clock.now();
      if (sink.bytes === STREAM_BYTES) sink.endMs = clock.now();
    },
    sha256: () => hasher.digest("hex"),
  };
  return sink;
}

/** Moves the stream over the emulated path with `bufferBytes` at `ends`; the rate of its second half, bytes/s. */
async function secondHalfRate(bufferBytes: number | undefined, ends: "both" | "tx" = "both"): Promise<number> {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, links: { wan: { delayMs: ROUND_TRIP_MS / 2, bytesPerSecond: LINK_BYTES_PER_S } } });
  const sink = timedSink(clock);
  const common = { verbose: 0, checkphrase: "", chaosEvery: 0, patienceS: 60, timeoutS: 5 };
  const buffer = bufferBytes === undefined ? {} : { bufferBytes };
  let listening!: (port: number) => void;
  const ready = new Promise<number>((resolve) => (listening = resolve));
  const rxBuffer = ends === "both" ? buffer : {};
  const rx = receive({ ...common, ...rxBuffer, port: 0, bind: undefined, windowFeet: DEFAULT_WINDOW_FEET }, { network, sink, clock, onListening: listening });
  const port = await ready;
  const options: TransmitterOptions = { ...common, ...buffer, footBytes: FOOT, targets: [{ host: "wan", port }], threads: THREADS };
  const summary = await clock.until(transmit(options, { network, source: memorySource(INPUT), clock }), LIMIT_MS);
  await clock.until(rx, LIMIT_MS);
  expect(summary.bytes).toBe(BigInt(STREAM_BYTES));
  expect(sink.sha256()).toBe(INPUT_SHA256);
  return (STREAM_BYTES / 2 / (sink.endMs! - sink.halfMs!)) * 1000;
}

describe("the window on a 200 ms, 300 Mbit/s path (virtual time)", () => {
  test("default buffer: the window grows past the bandwidth-delay product and the transfer fills the link (≥ 0.9)", async () => {
    const rate = await secondHalfRate(undefined);
    console.error(`default buffer: ${(rate / MIB).toFixed(1)} MiB/s = ${(rate / LINK_BYTES_PER_S).toFixed(2)} of the link`);
    expect(rate).toBeGreaterThanOrEqual(0.9 * LINK_BYTES_PER_S);
  }, 60_000);

  for (const ends of ["both", "tx"] as const) {
    test(`buffer 2M at ${ends === "both" ? "both ends" : "the transmitter alone"}, below the bandwidth-delay product: the window is the limit, about buffer per round trip`, async () => {
      const bufferBytes = 2 * MIB;
      const rate = await secondHalfRate(bufferBytes, ends);
      const windowBound = bufferBytes / (ROUND_TRIP_MS / 1000);
      console.error(`buffer 2M (${ends}): ${(rate / MIB).toFixed(1)} MiB/s = ${(rate / windowBound).toFixed(2)} of buffer / round trip`);
      // A little under buffer / round trip: credit also waits for a foot to cross the bottleneck.
      expect(rate).toBeLessThanOrEqual(1.05 * windowBound);
      expect(rate).toBeGreaterThanOrEqual(0.7 * windowBound);
      expect(rate).toBeLessThan(0.5 * LINK_BYTES_PER_S);
    }, 60_000);
  }
});

describe("the window a receiver starts with, without a cap", () => {
  for (const [footBytes, feet] of [
    [2 * MIB, 32],
    [512 * 1024, 128],
    [16 * MIB, 4],
  ] as const) {
    test(`feet of ${footBytes / 1024} KiB: ${feet} of them, DEFAULT_WINDOW_BYTES`, async () => {
      expect(feet * footBytes).toBe(DEFAULT_WINDOW_BYTES);
      const clock = new VirtualClock();
      const network = new MemoryNetwork({ clock });
      const sink = timedSink(clock);
      const common = { verbose: 0, checkphrase: "", chaosEvery: 0, patienceS: 60, timeoutS: 5 };
      let listening!: (port: number) => void;
      const ready = new Promise<number>((resolve) => (listening = resolve));
      const rx = receive({ ...common, port: 0, bind: undefined }, { network, sink, clock, onListening: listening });
      const port = await ready;
      let figures: (() => TransferFigures) | undefined;
      const input = INPUT.subarray(0, 3 * footBytes + 1);
      const options: TransmitterOptions = { ...common, footBytes, targets: [{ host: "memory", port }], threads: 2 };
      const summary = await clock.until(transmit(options, { network, source: memorySource(input), clock, observe: (read) => (figures = read) }), LIMIT_MS);
      await clock.until(rx, LIMIT_MS);
      expect(summary.bytes).toBe(BigInt(input.length));
      // Credit reaches past what was delivered by the window: the welcome's, never grown in so short a transfer.
      expect(figures!().windowFeet).toBe(feet);
    }, 30_000);
  }
});
