/**
 * `foot auto` (src/tx/foot-size.ts): the size a first round trip settles on,
 * and the size the input's own stages count feet in.
 */
import { describe, expect, test } from "bun:test";
import { DEFAULT_FOOT_BYTES } from "../../src/options.ts";
import { autoFootBytes, LONG_PATH_FOOT_BYTES, LONG_PATH_ROUND_TRIP_MS, nominalFootBytes } from "../../src/tx/foot-size.ts";

describe("foot auto", () => {
  test("a short first round trip (loopback, a LAN) keeps the default; a long one cuts smaller feet", () => {
    expect(LONG_PATH_FOOT_BYTES).toBeLessThan(DEFAULT_FOOT_BYTES);
    expect([0.03, 1, LONG_PATH_ROUND_TRIP_MS - 0.001].map(autoFootBytes)).toEqual([DEFAULT_FOOT_BYTES, DEFAULT_FOOT_BYTES, DEFAULT_FOOT_BYTES]);
    expect([LONG_PATH_ROUND_TRIP_MS, 50, 200].map(autoFootBytes)).toEqual([LONG_PATH_FOOT_BYTES, LONG_PATH_FOOT_BYTES, LONG_PATH_FOOT_BYTES]);
  });

  test("a transport that cannot tell the round trip keeps the default", () => {
    expect(autoFootBytes(undefined)).toBe(DEFAULT_FOOT_BYTES);
  });

  test("leglimit, delayus and ratelimit count in feet of `foot SIZE`, or of the default under auto", () => {
    expect(nominalFootBytes({ footBytes: "auto" })).toBe(DEFAULT_FOOT_BYTES);
    expect(nominalFootBytes({ footBytes: 65536 })).toBe(65536);
  });
});
