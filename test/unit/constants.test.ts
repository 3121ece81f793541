/**
 * The conformance peer (test/conformance/peer.c) restates the timers it
 * shares with this implementation; they must stay the values in
 * src/constants.ts, or the conformance runs test a peer that behaves
 * differently from ours.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { LINGER_MS, PINGS_PER_TIMEOUT, REFUSED_LINGER_MS, WATCHDOG_TICK_MS } from "../../src/constants.ts";

const PEER_SOURCE = readFileSync(join(import.meta.dir, "..", "conformance", "peer.c"), "utf8");

function defined(name: string): number {
  const match = new RegExp(`^#define ${name} (\\d+)\\s*$`, "m").exec(PEER_SOURCE);
  if (match === null) throw new Error(`peer.c defines no ${name}`);
  return Number(match[1]);
}

test("the conformance peer's heartbeat, tick and linger timers are the implementation's", () => {
  expect({
    PINGS_PER_TIMEOUT: defined("PINGS_PER_TIMEOUT"),
    TICK_MS: defined("TICK_MS"),
    LINGER_MS: defined("LINGER_MS"),
    REFUSED_LINGER_MS: defined("REFUSED_LINGER_MS"),
  }).toEqual({ PINGS_PER_TIMEOUT, TICK_MS: WATCHDOG_TICK_MS, LINGER_MS, REFUSED_LINGER_MS });
});
