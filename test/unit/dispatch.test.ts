/**
 * Dispatch on its own, with no network: a scheduler, links, and connections
 * that only record what they are handed. Which foot goes where, the share
 * per connection, draining connections, straggler copies and end-of-stream.
 */
import { describe, expect, test } from "bun:test";
import type { ChaosFault } from "../../src/net/chaos.ts";
import type { ControlFrame } from "../../src/protocol/messages.ts";
import { DigestKind, FOOT_FLAG_RETRANSMIT, FrameKind, type EndOfStream } from "../../src/protocol/xdr.generated.ts";
import type { Delivery } from "../../src/tx/delivery-rate.ts";
import { Dispatch, MAX_BYTES_PER_CONNECTION, type FootCarrier, type Route } from "../../src/tx/dispatch.ts";
import { Link } from "../../src/tx/links.ts";
import { SendScheduler, type OutboundFoot } from "../../src/tx/scheduler.ts";

/** A connection that keeps what it is handed; `idle` says whether it has room now. */
class RecordingCarrier implements FootCarrier {
  readonly feet: { id: bigint; flags: number }[] = [];
  readonly frames: ControlFrame[] = [];
  idle = true;
  /** No kernel figures unless a test gives them. */
  delivery: Delivery | undefined = undefined;
  deliveryRate: number | undefined = undefined;
  moving: boolean | undefined = undefined;
  queueStands: boolean | undefined = undefined;
  constructor(readonly id: number) {}
  get isIdle(): boolean {
    return this.idle;
  }
  sendFoot(foot: OutboundFoot, flags: number): void {
    this.feet.push({ id: foot.id, flags });
  }
  sendControl(frame: ControlFrame): void {
    this.frames.push(frame);
  }
  chaos(_fault: ChaosFault): void {}
}

function foot(id: number): OutboundFoot {
  return { id: BigInt(id), offset: BigInt(id * 10), payload: new Uint8Array(10), checksum: 0n, sends: 0, connectionId: undefined, copiesQueued: 0, acknowledged: false, lastSentMs: 0, hedges: 0 };
}

/** Feet delivered by a connection past TCP slow start: more than any share. */
const WARM = 100;

function rig(linkCount: number, perLink: number, windowFeet = 8, footBytes = 10) {
  let now = 0;
  const scheduler = new SendScheduler(undefined, () => now);
  scheduler.credit(BigInt(windowFeet));
  const links = Array.from({ length: linkCount }, (_, i) => new Link(i, `10.0.0.${i + 1}`, 9000));
  // Warm unless a test says otherwise: each has delivered enough feet to carry its whole share.
  const routes: (Route & { connection: RecordingCarrier; draining: boolean; feetDelivered: number })[] = [];
  let id = 1;
  for (const link of links) for (let n = 0; n < perLink; n++) routes.push({ connection: new RecordingCarrier(id++), link, draining: false, endSent: false, feetDelivered: WARM });
  const views = () => links.map((link) => ({ live: link.live, rate: 0, feetDelivered: 0, proving: false }));
  const dispatch = new Dispatch(scheduler, links, () => routes, views, () => {}, { timeoutS: 5, chaosEvery: 0, footBytes });
  return { scheduler, links, routes, dispatch, advance: (ms: number) => (now += ms) };
}

describe("dispatch", () => {
  test("on one link, feet alternate over its connections (fewest carried first), each up to its share of the window", () => {
    const { scheduler, routes, dispatch } = rig(1, 2, 8);
    for (let i = 0; i < 10; i++) scheduler.add(foot(i));
    dispatch.pump();
    expect(routes[0]!.connection.feet.map((f) => f.id)).toEqual([0n, 2n, 4n, 6n]);
    expect(routes[1]!.connection.feet.map((f) => f.id)).toEqual([1n, 3n, 5n, 7n]);
    expect(scheduler.carriedBy(1)).toBe(4);
    expect(scheduler.carriedBy(2)).toBe(4);
  });

  test("a connection carries at most MAX_BYTES_PER_CONNECTION unacknowledged, whatever the foot size", () => {
    const MIB = 1024 * 1024;
    for (const [footBytes, feet] of [[2 * MIB, 4], [512 * 1024, 16], [16 * MIB, 1]] as const) {
      const { scheduler, routes, dispatch } = rig(1, 1, 64, footBytes);
      for (let i = 0; i < 64; i++) scheduler.add(foot(i));
      dispatch.pump();
      expect({ footBytes, carried: routes[0]!.connection.feet.length }).toEqual({ footBytes, carried: feet });
      expect(feet * footBytes).toBeLessThanOrEqual(Math.max(footBytes, MAX_BYTES_PER_CONNECTION));
    }
  });

  test("with two links and nothing delivered yet, each link carries MIN_LINK_FEET, the preferred one first", () => {
    const { scheduler, routes, dispatch } = rig(2, 2, 8);
    for (let i = 0; i < 8; i++) scheduler.add(foot(i));
    dispatch.pump();
    expect(routes.map((route) => route.connection.feet.map((f) => f.id))).toEqual([[0n], [1n], [2n], [3n]]);
  });

  test("a draining or busy connection takes no feet; an idle one again does", () => {
    const { scheduler, routes, dispatch } = rig(1, 2);
    routes[0]!.draining = true;
    routes[1]!.connection.idle = false;
    scheduler.add(foot(0));
    dispatch.pump();
    expect(routes[0]!.connection.feet).toEqual([]);
    expect(routes[1]!.connection.feet).toEqual([]);
    routes[1]!.connection.idle = true;
    dispatch.pump();
    expect(routes[1]!.connection.feet).toEqual([{ id: 0n, flags: 0 }]);
  });

  test("a foot re-queued after its connection was lost goes out again, flagged as a retransmit", () => {
    const { scheduler, routes, dispatch } = rig(1, 2);
    scheduler.add(foot(0));
    dispatch.pump();
    const first = routes.find((route) => route.connection.feet.length === 1)!;
    expect(scheduler.connectionLost(first.connection.id)).toBe(1);
    routes.splice(routes.indexOf(first), 1);
    dispatch.pump();
    expect(routes[0]!.connection.feet).toEqual([{ id: 0n, flags: FOOT_FLAG_RETRANSMIT }]);
    expect(dispatch.retransmits).toBe(1);
  });

  test("a straggler is copied to an idle connection on another link after a few round trips", () => {
    const { scheduler, routes, dispatch, advance } = rig(2, 1);
    scheduler.add(foot(0));
    scheduler.add(foot(1));
    dispatch.pump();
    const carrierOf0 = routes.find((route) => route.connection.feet.some((f) => f.id === 0n))!;
    // Foot 1 is acknowledged after 10 ms: the round trip is 10 ms, so foot 0 straggles after 50 ms (the minimum).
    advance(10);
    scheduler.acknowledge(0n, [1n]);
    dispatch.pump();
    expect(routes.reduce((n, route) => n + route.connection.feet.length, 0)).toBe(2);
    advance(40);
    dispatch.pump();
    const copy = routes.find((route) => route !== carrierOf0)!;
    expect(copy.connection.feet.at(-1)).toEqual({ id: 0n, flags: FOOT_FLAG_RETRANSMIT });
    advance(1_000);
    dispatch.pump();
    dispatch.pump();
    const copies = routes.reduce((n, route) => n + route.connection.feet.filter((f) => f.id === 0n).length, 0);
    expect(copies).toBe(3); // the first send and at most two extra copies
    // Counted as copies, in bytes too: `threads auto` takes them out of TCP's delivered bytes.
    expect([dispatch.retransmits, dispatch.copiedBytes]).toEqual([2, 20]);
  });

  test("end-of-stream goes out once on every connection, including one that comes later", () => {
    const { routes, dispatch, links } = rig(1, 2);
    const end: EndOfStream = { totalFeet: 0n, totalBytes: 0n, digest: { kind: DigestKind.DIGEST_XXH3_CHAIN, xxh3Chain: 0n } };
    dispatch.endOfStream(end);
    dispatch.pump();
    routes.push({ connection: new RecordingCarrier(9), link: links[0]!, draining: false, endSent: false, feetDelivered: 0 });
    dispatch.pump();
    for (const route of routes) expect(route.connection.frames.map((frame) => frame.kind)).toEqual([FrameKind.FRAME_END]);
  });

  test("once the input has ended, the last feet wait for the connections that finish them first", () => {
    const { scheduler, routes, dispatch } = rig(1, 3, 8);
    const [fast, slow, unmeasured] = routes as [(typeof routes)[0], (typeof routes)[0], (typeof routes)[0]];
    // Feet of 10 bytes. The fast connection (busy) delivers 100 B/s and holds 10 bytes: its next feet are done
    // at 200, 300, 400 ... ms. The slow one (idle) delivers 10 B/s and holds nothing: a foot takes it 1000 ms.
    fast.connection.delivery = { deliveredBytes: 0, backlogBytes: 10 };
    fast.connection.deliveryRate = 100;
    fast.connection.idle = false;
    slow.connection.delivery = { deliveredBytes: 0, backlogBytes: 0 };
    slow.connection.deliveryRate = 10;
    unmeasured.connection.idle = false;
    // Before the end is known, an idle connection takes a foot whatever its rate.
    scheduler.add(foot(0));
    dispatch.pump();
    expect(slow.connection.feet.map((f) => f.id)).toEqual([0n]);
    scheduler.acknowledge(1n, []);
    // Four feet wait once the input has ended: the fast one would finish all four before the slow one finishes one.
    for (let i = 1; i < 5; i++) scheduler.add(foot(i));
    dispatch.endOfStream({ totalFeet: 5n, totalBytes: 50n, digest: { kind: DigestKind.DIGEST_XXH3_CHAIN, xxh3Chain: 0n } });
    expect(slow.connection.feet).toHaveLength(1);
    // At 50 B/s the fast one finishes them at 400, 600, 800 and 1000 ms: the slow one is about as soon with one.
    fast.connection.deliveryRate = 50;
    dispatch.pump();
    expect(slow.connection.feet.map((f) => f.id)).toEqual([0n, 1n]);
    // The other three are the fast one's once it is idle.
    fast.connection.idle = true;
    dispatch.pump();
    expect(fast.connection.feet.map((f) => f.id)).toEqual([2n, 3n, 4n]);
    // A connection whose rate is not known yet is not judged: it takes a foot.
    fast.connection.idle = false;
    slow.connection.idle = false;
    unmeasured.connection.idle = true;
    scheduler.retransmit([1n]);
    dispatch.pump();
    expect(unmeasured.connection.feet).toEqual([{ id: 1n, flags: FOOT_FLAG_RETRANSMIT }]);
  });

  test("stopped, it sends nothing", () => {
    const { scheduler, routes, dispatch } = rig(1, 1);
    dispatch.stop();
    scheduler.add(foot(0));
    dispatch.pump();
    expect(routes[0]!.connection.feet).toEqual([]);
  });

  test("a straggler on a new connection is copied to a warm idle one after two round trips, not four", () => {
    const { scheduler, routes, dispatch, advance } = rig(1, 3, 8);
    const [warm, fresh, other] = routes as [(typeof routes)[0], (typeof routes)[0], (typeof routes)[0]];
    fresh.feetDelivered = 0;
    other.feetDelivered = 0;
    for (let i = 0; i < 3; i++) scheduler.add(foot(i));
    dispatch.pump();
    // Foot 0 on the warm connection, 1 on the new one, 2 on the other new one.
    expect([warm, fresh, other].map((route) => route.connection.feet.map((f) => f.id))).toEqual([[0n], [1n], [2n]]);
    // Feet 0 and 2 are acknowledged after 100 ms: a foot round trip of 100 ms; the output waits on foot 1.
    advance(100);
    scheduler.acknowledge(1n, [2n]);
    dispatch.pump();
    advance(99);
    dispatch.pump();
    expect(warm.connection.feet).toHaveLength(1);
    advance(1);
    dispatch.pump();
    // Two round trips after it was sent: a copy on the warm connection, not on the other new one.
    expect(warm.connection.feet.at(-1)).toEqual({ id: 1n, flags: FOOT_FLAG_RETRANSMIT });
    expect(other.connection.feet).toHaveLength(1);
  });

  test("with no warm connection idle, a straggler on a new connection waits the usual four round trips", () => {
    const { scheduler, routes, dispatch, advance } = rig(1, 2, 8);
    const [warm, fresh] = routes as [(typeof routes)[0], (typeof routes)[0]];
    fresh.feetDelivered = 0;
    scheduler.add(foot(0));
    scheduler.add(foot(1));
    dispatch.pump();
    advance(100);
    scheduler.acknowledge(0n, [0n]); // the warm connection's foot: a round trip of 100 ms
    warm.connection.idle = false;
    advance(300);
    dispatch.pump();
    expect(warm.connection.feet).toHaveLength(1);
    warm.connection.idle = true;
    advance(99);
    dispatch.pump();
    expect(warm.connection.feet).toHaveLength(2); // 400 ms after foot 1 left: the usual straggler rule
  });

  /**
   * One link, two connections, `windowFeet` of window: feet 0 and 1 go out, and
   * foot 1 is acknowledged after 100 ms (a round trip of 100 ms) while the
   * output waits on foot 0, still on the first.
   */
  function straggling(windowFeet: number) {
    const { scheduler, routes, dispatch, advance } = rig(1, 2, windowFeet);
    scheduler.add(foot(0));
    scheduler.add(foot(1));
    dispatch.pump();
    const [first, second] = routes as [(typeof routes)[0], (typeof routes)[0]];
    advance(100);
    scheduler.acknowledge(0n, [1n]);
    return { first, second, dispatch, advance };
  }

  test("a straggler the whole transfer waits on (every foot out, the window full) is copied after 1.5 round trips, not four", () => {
    for (const windowFeet of [2, 8]) {
      const { first, second, dispatch, advance } = straggling(windowFeet);
      dispatch.pump();
      advance(49);
      dispatch.pump();
      expect(second.connection.feet).toHaveLength(1);
      advance(1);
      dispatch.pump();
      // With 2 feet of window nothing else can go out: a copy now. With 8, more input may come: not yet.
      expect(second.connection.feet.map((f) => f.id)).toEqual(windowFeet === 2 ? [1n, 0n] : [1n]);
      expect(first.connection.feet).toHaveLength(1);
    }
  });

  /**
   * `straggling`, with foot 0 still wholly on the first connection (10 bytes, delivered at
   * `carrierRate` bytes/s) and the second idle at 100 bytes/s; 10 ms later (far from 1.5 round
   * trips, 150 ms), what does the second carry?
   */
  function secondCarriesAfterStraggling(windowFeet: number, carrierRate: number): bigint[] {
    const { first, second, dispatch, advance } = straggling(windowFeet);
    first.connection.idle = false;
    first.connection.delivery = { deliveredBytes: 0, backlogBytes: 10 };
    first.connection.deliveryRate = carrierRate;
    second.connection.delivery = { deliveredBytes: 10, backlogBytes: 0 };
    second.connection.deliveryRate = 100;
    advance(10);
    dispatch.pump();
    return second.connection.feet.map((f) => f.id);
  }

  test("a straggler the whole transfer waits on goes at once to an idle connection that delivers a copy sooner than its carrier delivers the rest", () => {
    // 2 feet of window: nothing else can go out. A copy takes the second 100 ms: sooner than a
    // carrier in a timeout (0/s) or at 1 byte/s, not than one at 100/s.
    for (const carrierRate of [0, 1, 100]) {
      expect(secondCarriesAfterStraggling(2, carrierRate), `carrier at ${carrierRate}/s`).toEqual(carrierRate === 100 ? [1n] : [1n, 0n]);
    }
  });

  test("...but not while more feet may go out (the window has room): a copy then costs what they would have moved", () => {
    expect(secondCarriesAfterStraggling(8, 0)).toEqual([1n]);
  });

  describe("a straggler on a full link (a queue stands on its carrier's path)", () => {
    /** `straggling` with 2 feet of window (the transfer waits on foot 0), 1.5 round trips on: what does the second carry? */
    function copiedAfterStallWhen(carrier: { moving: boolean | undefined; queueStands: boolean | undefined }): bigint[] {
      const { first, second, dispatch, advance } = straggling(2);
      first.connection.moving = carrier.moving;
      first.connection.queueStands = carrier.queueStands;
      advance(50);
      dispatch.pump();
      return second.connection.feet.map((f) => f.id);
    }

    test("is not copied on that link while its carrier's TCP is moving: the copy would only share the bottleneck", () => {
      expect(copiedAfterStallWhen({ moving: true, queueStands: true })).toEqual([1n]);
    });

    test("is copied when its carrier delivers nothing (a retransmission timeout), when no queue stands, or where neither is known", () => {
      expect(copiedAfterStallWhen({ moving: false, queueStands: true })).toEqual([1n, 0n]);
      expect(copiedAfterStallWhen({ moving: true, queueStands: false })).toEqual([1n, 0n]);
      expect(copiedAfterStallWhen({ moving: undefined, queueStands: undefined })).toEqual([1n, 0n]);
    });

    test("goes to an idle connection on another link all the same", () => {
      const { scheduler, routes, dispatch, advance } = rig(2, 1, 2);
      const [near, far] = routes as [(typeof routes)[0], (typeof routes)[0]];
      scheduler.add(foot(0));
      scheduler.add(foot(1));
      dispatch.pump();
      expect([near.connection.feet.length, far.connection.feet.length]).toEqual([2, 0]);
      advance(100);
      scheduler.acknowledge(0n, [1n]);
      near.connection.moving = true;
      near.connection.queueStands = true;
      advance(50);
      dispatch.pump();
      expect(far.connection.feet.map((f) => f.id)).toEqual([0n]);
    });
  });
});
