/**
 * How long a transmitter waits on a "busy" receiver (src/tx/busy-wait.ts):
 * three times `timeout`, never beyond `patience`, one episode at a time.
 */
import { expect, test } from "bun:test";
import { busyWaitMs, BusyWait } from "../../src/tx/busy-wait.ts";

test("the wait is three timeouts, capped by patience (0 = forever: no cap)", () => {
  expect(busyWaitMs(5, 300)).toBe(15_000);
  expect(busyWaitMs(1, 300)).toBe(3_000);
  expect(busyWaitMs(5, 0)).toBe(15_000);
  expect(busyWaitMs(5, 4)).toBe(4_000);
});

test("the first refusal opens the wait, later ones wait until it is used up", () => {
  const wait = new BusyWait(15_000);
  expect(wait.refused(100_000)).toBe("first");
  expect(wait.refused(101_000)).toBe("waiting");
  expect(wait.refused(114_999)).toBe("waiting");
  expect(wait.refused(115_000)).toBe("over");
});

test("a connection that got in ends the episode: the next refusal starts a new wait", () => {
  const wait = new BusyWait(3_000);
  expect(wait.refused(0)).toBe("first");
  wait.reset();
  expect(wait.refused(10_000)).toBe("first");
  expect(wait.refused(12_999)).toBe("waiting");
  expect(wait.refused(13_000)).toBe("over");
});
