/**
 * The last feet's plan (src/tx/last-feet.ts): an idle connection takes one of
 * the waiting feet unless the others, each after its backlog, would finish
 * them all clearly before it finishes one.
 */
import { describe, expect, test } from "bun:test";
import { fasterCopy, FINISH_MARGIN, finishMs, takesLastFoot, type Carrier } from "../../src/tx/last-feet.ts";

const MiB = 2 ** 20;
const FOOT = 2 * MiB;

describe("last feet", () => {
  test("a connection's finish time counts its backlog and then the feet, at its rate", () => {
    expect(finishMs({ backlogBytes: MiB, bytesPerSecond: 10 * MiB }, 1, FOOT)).toBeCloseTo(300);
    expect(finishMs({ backlogBytes: 0, bytesPerSecond: 10 * MiB }, 3, FOOT)).toBeCloseTo(600);
  });

  test("the trace it comes from: the last foot goes to the fast connection, not to a slow idle one", () => {
    // 50 ms, cubic: one connection moved a foot in about 120 ms, the late ones one in 860 ms or more.
    const fast: Carrier = { backlogBytes: 4 * MiB, bytesPerSecond: 17 * MiB };
    const slow: Carrier = { backlogBytes: 0, bytesPerSecond: 2.4 * MiB };
    expect(takesLastFoot(slow, [fast], 1, FOOT)).toBe(false);
    // In the slow one's 833 ms less the margin (757 ms) the fast one finishes its backlog and 4 feet:
    // with 5 waiting, the slow one has a place.
    expect(takesLastFoot(slow, [fast], 4, FOOT)).toBe(false);
    expect(takesLastFoot(slow, [fast], 5, FOOT)).toBe(true);
    // The fast one itself always does.
    expect(takesLastFoot(fast, [slow], 1, FOOT)).toBe(true);
  });

  test("several others add up their places", () => {
    const slow: Carrier = { backlogBytes: 0, bytesPerSecond: MiB }; // a foot in 2 s
    const others: Carrier[] = [1, 2, 3].map(() => ({ backlogBytes: 0, bytesPerSecond: 4 * MiB })); // a foot each 0.5 s
    // In 2 s / 1.1 each of the others finishes 3 feet: 9 in all.
    expect(takesLastFoot(slow, others, 9, FOOT)).toBe(false);
    expect(takesLastFoot(slow, others, 10, FOOT)).toBe(true);
  });

  test("only others clearly sooner leave a connection out: rates are estimates", () => {
    const candidate: Carrier = { backlogBytes: 0, bytesPerSecond: 10 * MiB };
    const barelyFaster: Carrier = { backlogBytes: 0, bytesPerSecond: 10 * MiB * (1 + FINISH_MARGIN / 2) };
    const clearlyFaster: Carrier = { backlogBytes: 0, bytesPerSecond: 10 * MiB * (1 + 2 * FINISH_MARGIN) };
    expect(takesLastFoot(candidate, [barelyFaster], 1, FOOT)).toBe(true);
    expect(takesLastFoot(candidate, [clearlyFaster], 1, FOOT)).toBe(false);
    // Equal connections all take feet.
    expect(takesLastFoot(candidate, [candidate, candidate], 1, FOOT)).toBe(true);
  });

  test("a rate not known (or nothing delivered) is no reason to leave a connection out", () => {
    const fast: Carrier = { backlogBytes: 0, bytesPerSecond: 100 * MiB };
    expect(takesLastFoot({ backlogBytes: 0, bytesPerSecond: 0 }, [fast], 1, FOOT)).toBe(true);
    expect(takesLastFoot({ backlogBytes: 0, bytesPerSecond: MiB }, [{ backlogBytes: 0, bytesPerSecond: 0 }], 1, FOOT)).toBe(true);
  });

  test("fasterCopy: the idle connection that delivers a whole copy first, if clearly before the carrier delivers the rest", () => {
    const idle: Carrier[] = [
      { backlogBytes: 0, bytesPerSecond: MiB }, // a copy in 2 s
      { backlogBytes: 0, bytesPerSecond: 4 * MiB }, // 0.5 s
      { backlogBytes: FOOT, bytesPerSecond: 4 * MiB }, // 1 s: its own backlog first
    ];
    // The carrier still has the whole foot at 0.5 MiB/s: 4 s. The quickest copy wins.
    expect(fasterCopy({ backlogBytes: FOOT, bytesPerSecond: MiB / 2 }, idle, FOOT)).toBe(1);
    // Only a quarter of the foot left at 1 MiB/s: 0.5 s, and no copy beats that by the margin.
    expect(fasterCopy({ backlogBytes: FOOT / 4, bytesPerSecond: MiB }, idle, FOOT)).toBeUndefined();
    // Behind the foot, more of the carrier's backlog does not count: at most the foot's bytes are left of it.
    expect(fasterCopy({ backlogBytes: 3 * FOOT, bytesPerSecond: 4 * MiB }, idle, FOOT)).toBeUndefined();
  });

  test("fasterCopy: a carrier that delivers nothing (a retransmission timeout) is beaten by any idle one that delivers; unknown rates are not judged", () => {
    expect(fasterCopy({ backlogBytes: FOOT, bytesPerSecond: 0 }, [{ backlogBytes: 0, bytesPerSecond: MiB / 100 }], FOOT)).toBe(0);
    expect(fasterCopy({ backlogBytes: FOOT, bytesPerSecond: 0 }, [{ backlogBytes: 0, bytesPerSecond: 0 }], FOOT)).toBeUndefined();
    expect(fasterCopy({ backlogBytes: FOOT, bytesPerSecond: MiB }, [], FOOT)).toBeUndefined();
  });
});
