// The collection trigger (both ends): one request per so many bytes of garbage, whatever the pieces;
// a full collection, which waits, only every so many bytes and only while resident memory is near the bound.
import { expect, test } from "bun:test";
import { Collector } from "../../src/net/collector.ts";

test("a collection is requested once per threshold crossed, then counting starts again", () => {
  let requests = 0;
  const collector = new Collector(10, () => requests++);
  collector.discarded(4);
  collector.discarded(5);
  expect(requests).toBe(0);
  collector.discarded(1);
  expect(requests).toBe(1);
  collector.discarded(9);
  expect(requests).toBe(1);
  collector.discarded(25); // a big piece is one request, not several
  expect(requests).toBe(2);
});

test("near the bound, every so many bytes the request is a full collection, which waits for the garbage to be freed", () => {
  const kinds: boolean[] = [];
  const collector = new Collector(10, (full) => kinds.push(full), 30, () => 100, 100);
  for (let i = 0; i < 7; i++) collector.discarded(10);
  expect(kinds).toEqual([false, false, true, false, false, true, false]);
});

test("below the resident threshold no collection waits; the first request past it that is due is full", () => {
  const kinds: boolean[] = [];
  let resident = 99;
  const collector = new Collector(10, (full) => kinds.push(full), 30, () => resident, 100);
  for (let i = 0; i < 6; i++) collector.discarded(10);
  expect(kinds).toEqual([false, false, false, false, false, false]);
  resident = 100; // garbage counted below the threshold still counts: the next request collects fully
  collector.discarded(10);
  collector.discarded(10);
  expect(kinds.slice(6)).toEqual([true, false]);
});
