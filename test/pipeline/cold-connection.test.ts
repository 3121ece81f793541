/**
 * A connection that joins a busy path late, on virtual time: the real
 * transmitter and receiver over the in-memory network's emulated path
 * (memory-network.ts), both on one VirtualClock.
 *
 * On a saturated bottleneck a new TCP connection loses its first flights and
 * waits on retransmission timeouts: measured on the WAN rig's 100 ms path, new
 * connections held their first foot for over 3 s. The foot the receiver's
 * output waits on must not wait with them while warm connections sit idle:
 * it is copied to a warm one after two of the link's foot round trips
 * (dispatch.ts, COLD_HEDGE_ROUND_TRIPS), where a straggler on a warm
 * connection waits four.
 *
 * Here connection 1 is reset after 4 MiB; its slot dials again at once, and
 * past its handshake, nothing the new connection sends arrives for 10 s. The
 * same transfer without the hold is the yardstick. What the test prints on
 * failure: the virtual seconds taken with and without the hold.
 */
import { describe, expect, test } from "bun:test";
import type { TransmitterOptions } from "../../src/options.ts";
import { receive } from "../../src/rx/receiver.ts";
import { memorySink } from "../../src/rx/stdout.ts";
import { transmit } from "../../src/tx/transmitter.ts";
import { memorySource } from "../support/memory-source.ts";
import { pattern } from "../support/pattern.ts";
import { MIB } from "../support/sizes.ts";
import { VirtualClock } from "../support/virtual-clock.ts";
import { MemoryNetwork } from "./memory-network.ts";

const FOOT = 256 * 1024;
const common = { verbose: 0, checkphrase: "", chaosEvery: 0, footBytes: FOOT, patienceS: 600, timeoutS: 600 };

/** 32 MiB over a 100 ms, 8 MiB/s path with 3 connections; connection 1 is reset after 4 MiB and its replacement's data is held `holdMs`. */
async function transfer(holdMs: number): Promise<number> {
  const clock = new VirtualClock();
  // TCP slow start too: a new connection's send buffer, like its window, starts small, so a held one takes no more feet.
  const network = new MemoryNetwork({ clock, links: { far: { delayMs: 50, bytesPerSecond: 8 * MIB, initialWindowBytes: 10 * 1448 } } });
  network.dialFaults.push({ resetAfterBytes: 4 * MIB }, {}, {}, { holdAfterBytes: 1024, holdMs });
  const sink = memorySink();
  let listening!: (port: number) => void;
  const ready = new Promise<number>((resolve) => (listening = resolve));
  const rx = receive({ ...common, port: 0, bind: undefined, windowFeet: 8 }, { network, sink, clock, onListening: listening });
  const port = await ready;
  const input = pattern(32 * MIB);
  const options: TransmitterOptions = { ...common, targets: [{ host: "far", port }], threads: 3 };
  const summary = await clock.until(transmit(options, { network, source: memorySource(input), clock }), 120_000);
  await clock.until(rx, 60_000);
  expect(Buffer.from(sink.bytes()).equals(Buffer.from(input))).toBe(true);
  expect(network.dials).toBe(4);
  return summary.seconds;
}

describe("a new connection on a busy path", () => {
  test("its first foot, held 10 s by the path, is copied to a warm connection before the receiver's window fills behind it", async () => {
    const unheld = await transfer(0);
    const held = await transfer(10_000);
    const message = `${held.toFixed(2)} virtual s with the new connection held, ${unheld.toFixed(2)} without`;
    // Copied after four foot round trips, the window (8 feet) filled behind it: 0.35 s more. After two, the warm connections keep it moving.
    expect(held, message).toBeLessThan(unheld + 0.15);
  }, 60_000);
});
