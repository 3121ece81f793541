import { describe, expect, test } from "bun:test";
import {
  chooseLink,
  connectionBudget,
  desiredConnections,
  linkFootCaps,
  MIN_LINK_FEET,
  rebalanceMove,
  type LinkView,
} from "../../src/tx/placement.ts";

const live = (rate = 0, feetDelivered = 1000): LinkView => ({ live: true, rate, feetDelivered, proving: false });
const dead = (rate = 0): LinkView => ({ live: false, rate, feetDelivered: 1000, proving: false });
/** A live link whose first feet are on their way: no rate yet. */
const proving = (): LinkView => ({ live: true, rate: 0, feetDelivered: 0, proving: true });
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

describe("connection placement", () => {
  test("every link keeps one connection, even when threads is smaller", () => {
    expect(connectionBudget(2, 3)).toBe(3);
    expect(connectionBudget(16, 3)).toBe(16);
  });

  test("before any rate is known, floating connections spread evenly over live links", () => {
    const desired = desiredConnections([live(), live(), live()], 16);
    expect(sum(desired)).toBeCloseTo(16);
    for (const d of desired) expect(d).toBeCloseTo(1 + 13 / 3);
  });

  test("floating connections follow the links' rates", () => {
    const desired = desiredConnections([live(10), live(20), live(30)], 16);
    expect(desired).toEqual([1 + 13 / 6, 1 + 26 / 6, 1 + 39 / 6].map((d) => expect.closeTo(d, 9)));
    // A slow source uses only the first link: everything floats there.
    expect(desiredConnections([live(5), live(0), live(0)], 16)).toEqual([14, 1, 1]);
  });

  test("a link still carrying its first feet counts as the known links do on average, not as a rate of 0", () => {
    // 10 ms and 150 ms links: the long one's first foot takes over a second to arrive.
    expect(desiredConnections([live(12), proving()], 4)).toEqual([2, 2]);
    expect(desiredConnections([live(10), live(30), proving()], 9)).toEqual([1 + 6 / 6, 1 + 18 / 6, 1 + 12 / 6].map((d) => expect.closeTo(d, 9)));
    expect(desiredConnections([proving(), proving()], 4)).toEqual([2, 2]);
    // ...so it keeps its floating connection; once judged at a rate of 0, it gives it up.
    const assigned = [2, 2];
    expect(rebalanceMove([live(12), proving()], desiredConnections([live(12), proving()], 4), assigned)).toBeUndefined();
    expect(rebalanceMove([live(12), live(0, 0)], desiredConnections([live(12), live(0, 0)], 4), assigned)).toEqual({ from: 1, to: 0 });
  });

  test("a dead link keeps only its anchor; with every link dead, all stay candidates", () => {
    expect(desiredConnections([dead(), live(), live()], 9)).toEqual([1, 4, 4]);
    expect(desiredConnections([dead(), dead()], 4)).toEqual([2, 2]);
  });

  test("a floating connection dials the live link furthest below its share, the preferred one on a tie", () => {
    const links = [live(), live(), live()];
    expect(chooseLink(links, [2, 2, 2], [1, 1, 1])).toBe(0);
    expect(chooseLink(links, [2, 2, 2], [2, 1, 1])).toBe(1);
    expect(chooseLink([dead(), live()], [5, 5], [1, 9])).toBe(1);
    expect(chooseLink([dead(), dead()], [2, 2], [2, 1])).toBe(1);
  });

  test("rebalancing moves one connection only when the placement is off by a whole one", () => {
    const links = [live(10), live(20), live(30)];
    const desired = desiredConnections(links, 16); // ≈ 3.2, 5.3, 7.5
    expect(rebalanceMove(links, desired, [3, 5, 8])).toBeUndefined();
    expect(rebalanceMove(links, desired, [6, 5, 5])).toEqual({ from: 0, to: 2 });
    // Never the anchor: a link with one connection gives none away.
    expect(rebalanceMove([live(0), live(100)], [1, 1], [1, 1])).toBeUndefined();
    // Floating connections leave a dead link for a live one.
    expect(rebalanceMove([dead(), live()], desiredConnections([dead(), live()], 8), [5, 3])).toEqual({ from: 0, to: 1 });
  });
});

describe("link shares of the window", () => {
  test("with no rate known, nothing limits a link beyond its connections", () => {
    expect(linkFootCaps([live(), live()], 32)).toEqual([32, 32]);
  });

  test("each link carries feet in proportion to its rate, at least MIN_LINK_FEET", () => {
    // Half the window is shared out by rate, the other half is slack for reordering.
    expect(linkFootCaps([live(10), live(20), live(30)], 32)).toEqual([3, 6, 8]);
    expect(linkFootCaps([live(100), live(0)], 32)).toEqual([16, MIN_LINK_FEET]);
    expect(linkFootCaps([dead(50), live(50)], 32)).toEqual([MIN_LINK_FEET, 16]);
    expect(linkFootCaps([live(100)], 32)).toEqual([32]);
  });

  test("with several links, a link starts small and earns its share foot by foot", () => {
    expect(linkFootCaps([live(0, 0), live(0, 0)], 32)).toEqual([MIN_LINK_FEET, MIN_LINK_FEET]);
    expect(linkFootCaps([live(10, 1), live(30, 40)], 32)).toEqual([MIN_LINK_FEET + 1, 12]);
    // One link alone is not held back.
    expect(linkFootCaps([live(0, 0)], 32)).toEqual([32]);
  });
});
