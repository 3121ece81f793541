/**
 * The takeover rule (src/rx/takeover.ts) as a function of times: when a hello
 * of another session is refused busy, when the open session gives way, and
 * when the receiver ends a partial one instead.
 */
import { describe, expect, test } from "bun:test";
import { judgeNewcomer, type SessionActivity } from "../../src/rx/takeover.ts";

const TIMEOUT_MS = 5_000;

/** A session that began at 0 and has received feet, with one connection up. */
function session(change: Partial<SessionActivity> = {}): SessionActivity {
  return { startedMs: 0, joined: 1, aloneSinceMs: 0, feetReceived: 3, outputBytes: 0n, ...change };
}

describe("a live session is never displaced", () => {
  test("connected and carrying feet: busy at any age, with no end in sight", () => {
    for (const nowMs of [0, 4_999, 5_000, 3_600_000]) {
      expect(judgeNewcomer(session({ outputBytes: 123n }), nowMs, TIMEOUT_MS)).toEqual({ kind: "busy", why: "it is running", abandonedInMs: undefined });
    }
  });

  test("connected, feet received, nothing written yet (waiting on foot 0): still busy", () => {
    expect(judgeNewcomer(session({ feetReceived: 31 }), 60_000, TIMEOUT_MS).kind).toBe("busy");
  });
});

describe("a session with no connection", () => {
  const alone = (outputBytes: bigint) => session({ joined: 0, aloneSinceMs: 10_000, startedMs: 1_000, outputBytes });

  test("is busy for `timeout` after its last connection left, saying when it is abandoned", () => {
    expect(judgeNewcomer(alone(0n), 10_000, TIMEOUT_MS)).toEqual({ kind: "busy", why: "it has had no connection for 0.0s", abandonedInMs: 5_000 });
    expect(judgeNewcomer(alone(0n), 13_000, TIMEOUT_MS)).toEqual({ kind: "busy", why: "it has had no connection for 3.0s", abandonedInMs: 2_000 });
    expect(judgeNewcomer(alone(0n), 14_999, TIMEOUT_MS).kind).toBe("busy");
  });

  test("then gives way if it wrote nothing", () => {
    expect(judgeNewcomer(alone(0n), 15_000, TIMEOUT_MS)).toEqual({ kind: "yield", why: "no connection for 5.0s" });
    expect(judgeNewcomer(alone(0n), 99_000, TIMEOUT_MS)).toEqual({ kind: "yield", why: "no connection for 89.0s" });
  });

  test("or is ended if any byte of it reached stdout: never spliced", () => {
    expect(judgeNewcomer(alone(1n), 15_000, TIMEOUT_MS)).toEqual({ kind: "end", why: "no connection for 5.0s" });
    expect(judgeNewcomer(alone(1n), 14_999, TIMEOUT_MS).kind).toBe("busy");
  });
});

describe("a session that never received a foot (a squatter, a transmitter killed in its handshake)", () => {
  const footless = session({ feetReceived: 0, startedMs: 2_000 });

  test("is busy for `timeout` after its hello, even with its connection up", () => {
    expect(judgeNewcomer(footless, 2_000, TIMEOUT_MS)).toEqual({ kind: "busy", why: "it has sent no data in 0.0s", abandonedInMs: 5_000 });
    expect(judgeNewcomer(footless, 6_999, TIMEOUT_MS).kind).toBe("busy");
  });

  test("then gives way, connected or not", () => {
    expect(judgeNewcomer(footless, 7_000, TIMEOUT_MS)).toEqual({ kind: "yield", why: "no foot in the 5.0s since its hello" });
    expect(judgeNewcomer({ ...footless, joined: 0, aloneSinceMs: 6_900 }, 7_000, TIMEOUT_MS)).toEqual({ kind: "yield", why: "no foot in the 5.0s since its hello" });
  });

  test("without a connection, whichever clock runs out first decides", () => {
    // Its connection left 1 s after its hello: abandoned 5 s after the hello, not 5 s after the leaving.
    const left = { ...footless, joined: 0, aloneSinceMs: 3_000 };
    expect(judgeNewcomer(left, 4_000, TIMEOUT_MS)).toEqual({ kind: "busy", why: "it has had no connection for 1.0s", abandonedInMs: 3_000 });
  });
});

test("timeout is the receiver's: a shorter one gives way sooner", () => {
  const alone = session({ joined: 0, aloneSinceMs: 0 });
  expect(judgeNewcomer(alone, 1_000, 1_000).kind).toBe("yield");
  expect(judgeNewcomer(alone, 1_000, 5_000).kind).toBe("busy");
});
