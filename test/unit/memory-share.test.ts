/**
 * A serving receiver's memory shares (src/rx/memory-share.ts) on their own:
 * every session's budget fits the shared total for every `sessions` and the
 * default foot size, `buffer` still caps the window, and only feet too large
 * for a share take more than one (at most the 6-foot floor).
 */
import { expect, test } from "bun:test";
import { DEFAULT_BUFFER_BYTES, DEFAULT_FOOT_BYTES, MAX_SESSIONS, MIN_WINDOW_FEET } from "../../src/options.ts";
import { MAX_FOOT_BYTES } from "../../src/protocol/xdr.generated.ts";
import { SERVE_MEMORY_BYTES, serveMemoryBytes, sessionShare } from "../../src/rx/memory-share.ts";

const MIB = 2 ** 20;

test("2 MiB feet: N sessions' budgets together fit the shared memory, for every N up to MAX_SESSIONS", () => {
  for (let sessions = 1; sessions <= MAX_SESSIONS; sessions++) {
    const share = sessionShare(DEFAULT_FOOT_BYTES, sessions, DEFAULT_BUFFER_BYTES);
    expect({ sessions, fits: sessions * share.budgetBytes <= serveMemoryBytes(sessions) }).toEqual({ sessions, fits: true });
    expect(share.windowFeet).toBeGreaterThanOrEqual(MIN_WINDOW_FEET);
    expect(share.budgetBytes).toBe((share.windowFeet + share.assemblyRecords) * DEFAULT_FOOT_BYTES);
  }
});

test("the default 4 sessions: 40 MiB each, a 30 MiB window and 10 MiB arriving; one session alone keeps the window buffer allows", () => {
  expect(sessionShare(DEFAULT_FOOT_BYTES, 4, DEFAULT_BUFFER_BYTES)).toEqual({ windowFeet: 15, assemblyRecords: 5, budgetBytes: 40 * MIB });
  expect(sessionShare(DEFAULT_FOOT_BYTES, 1, DEFAULT_BUFFER_BYTES)).toEqual({ windowFeet: DEFAULT_BUFFER_BYTES / DEFAULT_FOOT_BYTES, assemblyRecords: 8, budgetBytes: DEFAULT_BUFFER_BYTES + 16 * MIB });
  expect(sessionShare(DEFAULT_FOOT_BYTES, 16, DEFAULT_BUFFER_BYTES)).toEqual({ windowFeet: 4, assemblyRecords: 2, budgetBytes: 12 * MIB });
});

test("the shared memory is 160 MiB up to 13 sessions, then the floors of all: 192 MiB at 16", () => {
  expect([1, 4, 13, 14, 16].map(serveMemoryBytes)).toEqual([160, 160, 160, 168, 192].map((mib) => mib * MIB));
  expect(SERVE_MEMORY_BYTES).toBe(160 * MIB);
});

test("feet too large for a share take the floor, 4 feet of window and 2 arriving, never more", () => {
  // One session alone has room for more: the window `buffer` allows.
  expect(sessionShare(MAX_FOOT_BYTES, 1, DEFAULT_BUFFER_BYTES).windowFeet).toBe(DEFAULT_BUFFER_BYTES / MAX_FOOT_BYTES);
  for (const sessions of [4, 16]) {
    expect(sessionShare(MAX_FOOT_BYTES, sessions, DEFAULT_BUFFER_BYTES)).toEqual({ windowFeet: 4, assemblyRecords: 2, budgetBytes: 6 * MAX_FOOT_BYTES });
  }
  expect(6 * MAX_FOOT_BYTES).toBeLessThanOrEqual(SERVE_MEMORY_BYTES);
});

test("a smaller buffer caps the window below the share", () => {
  expect(sessionShare(DEFAULT_FOOT_BYTES, 2, 16 * MIB).windowFeet).toBe(8);
});
