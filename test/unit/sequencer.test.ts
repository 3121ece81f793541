// The reorder buffer: in-order release, duplicates dropped, the window enforced.
import { describe, expect, test } from "bun:test";
import { Sequencer, type SequencedFoot } from "../../src/rx/sequencer.ts";

const foot = (id: number): SequencedFoot => ({ id: BigInt(id), offset: 0n, payload: Uint8Array.of(id), checksum: 0n, connectionId: 1 });

/** Takes and writes everything ready; returns the ids in the order released. */
function drain(sequencer: Sequencer): number[] {
  const out: number[] = [];
  for (let f = sequencer.takeNext(); f !== undefined; f = sequencer.takeNext()) {
    out.push(Number(f.id));
    sequencer.written();
  }
  return out;
}

describe("Sequencer", () => {
  test("feet arriving in any order leave in id order", () => {
    const s = new Sequencer(8);
    for (const id of [3, 1, 2]) expect(s.accept(foot(id))).toBe("accepted");
    expect(drain(s)).toEqual([]); // foot 0 missing: nothing may leave
    expect(s.accept(foot(0))).toBe("accepted");
    expect(drain(s)).toEqual([0, 1, 2, 3]);
    expect(s.deliveredBelow).toBe(4n);
    expect(s.windowEnd).toBe(12n);
  });

  test("duplicates, held or already written, are reported and not kept", () => {
    const s = new Sequencer(4);
    s.accept(foot(1));
    expect(s.accept(foot(1))).toBe("duplicate");
    s.accept(foot(0));
    drain(s);
    expect(s.accept(foot(0))).toBe("duplicate");
    expect(s.heldCount).toBe(0);
  });

  test("the window bounds what is held, counting feet still being written", () => {
    const s = new Sequencer(2);
    expect(s.accept(foot(2))).toBe("outside-window");
    s.accept(foot(0));
    s.accept(foot(1));
    const first = s.takeNext();
    expect(first?.id).toBe(0n);
    // Foot 0 is being written, not yet written: the window has not moved.
    expect(s.accept(foot(2))).toBe("outside-window");
    s.written();
    expect(s.accept(foot(2))).toBe("accepted");
    expect(s.writingCount).toBe(0);
  });

  test("written() without a released foot is a bug, caught", () => {
    expect(() => new Sequencer(2).written()).toThrow();
  });
});
