// The send scheduler: window-bounded reading, re-sends first, nothing lost
// when a connection dies, acknowledged feet freed.
import { describe, expect, test } from "bun:test";
import { SendScheduler, type OutboundFoot } from "../../src/tx/scheduler.ts";

const foot = (id: number): OutboundFoot => ({
  id: BigInt(id),
  offset: BigInt(id) * 4n,
  payload: new Uint8Array(4),
  checksum: 0n,
  sends: 0,
  connectionId: undefined,
  copiesQueued: 0,
  acknowledged: false,
  lastSentMs: 0,
  hedges: 0,
});

function withFeet(count: number, window = 16): SendScheduler {
  const s = new SendScheduler();
  s.credit(BigInt(window));
  for (let id = 0; id < count; id++) s.add(foot(id));
  return s;
}

describe("SendScheduler", () => {
  test("reads only below the granted window", () => {
    const s = new SendScheduler();
    expect(s.canRead()).toBe(false); // nothing granted yet
    s.credit(2n);
    s.add(foot(0));
    s.add(foot(1));
    expect(s.canRead()).toBe(false);
    expect(s.credit(1n)).toBe(false); // stale credit changes nothing
    expect(s.credit(3n)).toBe(true);
    expect(s.canRead()).toBe(true);
  });

  test("read ahead before any window: the feet are read, and go out only within the window granted (a peer may grant fewer)", () => {
    const s = new SendScheduler();
    s.readAhead(4);
    for (let id = 0; id < 4; id++) {
      expect(s.canRead()).toBe(true);
      s.add(foot(id));
    }
    expect(s.canRead()).toBe(false);
    expect(s.next(1)).toBeUndefined(); // nothing granted yet
    s.credit(2n);
    expect([s.next(1)?.id, s.next(2)?.id, s.next(1)]).toEqual([0n, 1n, undefined]);
    expect(s.waitingCount).toBe(0); // feet 2 and 3 wait for the window, not for a connection
    s.credit(3n);
    expect([s.waitingCount, s.next(1)?.id]).toEqual([1, 2n]);
  });

  test("feet go out in order, each remembered with its connection", () => {
    const s = withFeet(3);
    expect([s.next(1)?.id, s.next(2)?.id, s.next(1)?.id, s.next(2)]).toEqual([0n, 1n, 2n, undefined]);
  });

  test("a lost connection's unacknowledged feet are sent again, before new ones", () => {
    const s = withFeet(5);
    s.next(1); // 0 on 1
    s.next(2); // 1 on 2
    s.next(1); // 2 on 1
    s.acknowledge(0n, [2n]); // foot 2 arrived
    expect(s.connectionLost(1)).toBe(1); // only foot 0 is missing
    const again = s.next(3)!;
    expect(again.id).toBe(0n);
    expect(again.sends).toBe(2);
    expect(s.next(3)?.id).toBe(3n);
  });

  test("acknowledgements free feet; cumulative and selective", () => {
    const s = withFeet(4);
    for (let i = 0; i < 4; i++) s.next(1);
    s.acknowledge(2n, [3n]);
    expect(s.heldCount).toBe(1);
    s.acknowledge(4n, []);
    expect(s.allAcknowledged).toBe(true);
    expect(s.deliveredBelow).toBe(4n);
  });

  test("a retransmit request re-queues sent feet, ignores unknown or unsent ones", () => {
    const s = withFeet(3);
    s.next(1);
    expect(s.retransmit([0n, 2n, 99n])).toBe(1);
    expect(s.next(2)?.id).toBe(0n);
    expect(s.next(2)?.id).toBe(1n);
  });

  test("feet acknowledged while queued for re-send are skipped", () => {
    const s = withFeet(2);
    s.next(1);
    s.next(1);
    s.connectionLost(1);
    s.acknowledge(1n, []);
    expect(s.next(2)?.id).toBe(1n);
    expect(s.next(2)).toBeUndefined();
  });

  test("a straggler is the foot the receiver waits on, once it is overdue", () => {
    let now = 1000;
    const s = new SendScheduler(undefined, () => now);
    s.credit(8n);
    for (let id = 0; id < 3; id++) s.add(foot(id));
    expect(s.straggler(0)).toBeUndefined(); // not sent yet: not a straggler
    s.next(1); // 0 on connection 1
    now += 10;
    s.next(2); // 1 on connection 2
    s.acknowledge(0n, [1n]); // 1 arrived after 0ms; 0 did not
    expect(s.footRoundTripMs).toBe(0);
    expect(s.straggler(50)).toBeUndefined();
    now += 50;
    const straggler = s.straggler(50)!;
    expect(straggler.id).toBe(0n);
    s.hedge(straggler, 2);
    expect([straggler.hedges, straggler.sends, straggler.connectionId]).toEqual([1, 2, 2]);
    expect(s.straggler(50)).toBeUndefined(); // the copy restarts its clock
    s.acknowledge(2n, []);
    expect(s.straggler(0)).toBeUndefined();
  });

  test("acknowledgements time the foot round trip (smoothed)", () => {
    let now = 0;
    const s = new SendScheduler(undefined, () => now);
    s.credit(8n);
    s.add(foot(0));
    s.add(foot(1));
    s.next(1);
    s.next(1);
    now = 80;
    s.acknowledge(0n, [0n]);
    expect(s.footRoundTripMs).toBe(80);
    now = 160;
    s.acknowledge(0n, [1n]);
    expect(s.footRoundTripMs).toBe(90); // 80 + (160 - 80) / 8
  });

  test("reading out of order is a bug, caught", () => {
    const s = withFeet(1);
    expect(() => s.add(foot(5))).toThrow();
  });
});
