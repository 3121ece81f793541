/**
 * Admission (src/rx/admission.ts) on its own, no network: what a hello meets
 * given the receiver's policy and its session, and that starting or
 * replacing the session is a decision the receiver is handed, not done here.
 */
import { describe, expect, test } from "bun:test";
import { MAX_CONNECTIONS_PER_SESSION } from "../../src/constants.ts";
import { MAX_THREADS } from "../../src/options.ts";
import { readText } from "../../src/protocol/messages.ts";
import {
  CAP_COMPRESS,
  CAP_ENCRYPT,
  CAP_KEY,
  CAP_NONE,
  CAP_PRODUCER_FAILED,
  CAP_VERDICT,
  HelloStatus,
  RefuseReason,
  VM_MAGIC,
  VM_PROTOCOL_VERSION,
  type Hello,
  type HelloReply,
} from "../../src/protocol/xdr.generated.ts";
import {
  decideAdmission,
  screenHello,
  welcome,
  type Admission,
  type AdmissionPolicy,
  type ReceiverView,
  type SessionView,
} from "../../src/rx/admission.ts";
import type { SessionActivity } from "../../src/rx/takeover.ts";

const FOOT = 64 * 1024;
const TIMEOUT_MS = 5_000;
const policy: AdmissionPolicy = { checkphrase: new TextEncoder().encode("phrase"), encrypt: false, keyed: false, timeoutMs: TIMEOUT_MS };

function hello(change: Partial<Hello> = {}): Hello {
  return { magic: VM_MAGIC, protocolVersion: VM_PROTOCOL_VERSION, sessionId: 7n, checkphrase: policy.checkphrase, footBytes: FOOT, capabilities: CAP_NONE, connectionId: 0, ...change };
}

function session(change: Partial<SessionView> = {}): SessionView {
  return { sessionId: 7n, footBytes: FOOT, isOpen: true, isComplete: false, connectionCount: 1, ...change };
}

/**
 * A receiver without serve holding `session` (default: one open session 7),
 * or with the views and settings `change` gives; `failure`: why its sessions failed.
 */
function receiver(
  change: Partial<Omit<ReceiverView, "failure">> & { session?: SessionView | undefined; failure?: string } = {},
  activity: Partial<SessionActivity> | ((session: SessionView) => Partial<SessionActivity>) = {},
): ReceiverView {
  const { session: one = "session" in change ? undefined : session(), failure, ...rest } = change;
  const activityOf = typeof activity === "function" ? activity : () => activity;
  return {
    sessions: one === undefined ? [] : [one],
    capacity: 1,
    serving: false,
    draining: false,
    activity: (view) => ({ startedMs: 0, joined: 1, aloneSinceMs: 0, feetReceived: 3, outputBytes: 0n, ...activityOf(view) }),
    retired: [],
    failure: () => failure,
    nowMs: 60_000,
    ...rest,
  };
}

/** The refusal's reason and text, or the decision itself when it is not a refusal. */
function refused(admission: Admission): { reason: RefuseReason; text: string } | Admission {
  if (admission.kind !== "refuse") return admission;
  const reply: HelloReply = admission.reply;
  if (reply.status !== HelloStatus.HELLO_REFUSE) throw new Error(`a refusal with status ${reply.status}`);
  return { reason: reply.refused.reason, text: readText(reply.refused.text) };
}

describe("the key is judged first, before anything else", () => {
  test("a keyed receiver challenges every hello that offers a key, whatever else it says", () => {
    expect(screenHello(hello({ capabilities: CAP_KEY, checkphrase: new Uint8Array() }), true)).toEqual({ kind: "challenge" });
  });
  test("a keyed receiver refuses a hello without a key; a keyless one refuses a hello with one", () => {
    for (const [capabilities, keyed, text] of [
      [CAP_NONE, true, "this receiver requires a key; give both ends the same 'key FILE'"],
      [CAP_KEY, false, "this receiver has no key; give both ends the same 'key FILE'"],
    ] as const) {
      const screening = screenHello(hello({ capabilities }), keyed);
      expect(screening.kind).toBe("refuse");
      if (screening.kind === "refuse") expect(refused({ kind: "refuse", reply: screening.reply })).toEqual({ reason: RefuseReason.REFUSE_KEY, text });
    }
  });
  test("no key on either end: decided at once", () => {
    expect(screenHello(hello(), false)).toEqual({ kind: "decide" });
  });
});

describe("policy", () => {
  test("a wrong checkphrase is refused even by an empty receiver", () => {
    expect(refused(decideAdmission(hello({ checkphrase: new Uint8Array([1]) }), "a", policy, receiver({ session: undefined })))).toEqual({
      reason: RefuseReason.REFUSE_CHECKPHRASE,
      text: "checkphrase mismatch",
    });
  });
  test("encrypt needs a key, and a receiver with encrypt requires it", () => {
    expect(refused(decideAdmission(hello({ capabilities: CAP_ENCRYPT }), "a", policy, receiver()))).toEqual({ reason: RefuseReason.REFUSE_CAPABILITY, text: "encrypt needs a key on both ends" });
    expect(refused(decideAdmission(hello({ capabilities: CAP_KEY }), "a", { ...policy, keyed: true, encrypt: true }, receiver()))).toEqual({
      reason: RefuseReason.REFUSE_CAPABILITY,
      text: "this receiver requires encrypt; add 'encrypt' on the transmitter",
    });
  });
});

describe("the session is a decision the receiver acts on", () => {
  test("no session: the first acceptable hello starts one", () => {
    expect(decideAdmission(hello(), "a", policy, receiver({ session: undefined }))).toEqual({ kind: "start" });
  });
  test("a hello of the open session joins it", () => {
    expect(decideAdmission(hello(), "a", policy, receiver())).toEqual({ kind: "join", sessionId: 7n });
  });
  test("a hello of a complete session joins it (its transmitter comes back for the confirmation)", () => {
    expect(decideAdmission(hello(), "a", policy, receiver({ session: session({ isOpen: false, isComplete: true }) }))).toEqual({ kind: "join", sessionId: 7n });
  });
  test("a hello of a failed session is told why", () => {
    expect(refused(decideAdmission(hello(), "a", policy, receiver({ session: session({ isOpen: false }), failure: "disk full" })))).toEqual({
      reason: RefuseReason.REFUSE_SESSION_OVER,
      text: "the transfer failed there: disk full",
    });
  });
  test("another foot size is refused", () => {
    expect(refused(decideAdmission(hello({ footBytes: 2 * FOOT }), "a", policy, receiver()))).toEqual({
      reason: RefuseReason.REFUSE_FOOT_SIZE,
      text: `foot size ${2 * FOOT} differs from the session's ${FOOT}`,
    });
  });
  test(`a session takes ${MAX_CONNECTIONS_PER_SESSION} connections, the next is refused`, () => {
    expect(decideAdmission(hello(), "a", policy, receiver({ session: session({ connectionCount: MAX_CONNECTIONS_PER_SESSION - 1 }) }))).toEqual({ kind: "join", sessionId: 7n });
    expect(refused(decideAdmission(hello(), "a", policy, receiver({ session: session({ connectionCount: MAX_CONNECTIONS_PER_SESSION }) })))).toEqual({
      reason: RefuseReason.REFUSE_TOO_MANY_CONNECTIONS,
      text: `at most ${MAX_CONNECTIONS_PER_SESSION} connections per transfer`,
    });
  });
  test("the receiver's limit admits every connection the transmitter may open", () => {
    expect(MAX_CONNECTIONS_PER_SESSION).toBeGreaterThanOrEqual(MAX_THREADS);
  });
});

describe("another session's hello meets the takeover rule", () => {
  const newcomer = hello({ sessionId: 8n });
  test("busy while the open session lives, saying when it would be given up", () => {
    expect(refused(decideAdmission(newcomer, "a", policy, receiver({}, { joined: 0, aloneSinceMs: 58_000 })))).toEqual({
      reason: RefuseReason.REFUSE_SESSION_BUSY,
      text: "this receiver is busy with another transfer (it has had no connection for 2.0s; it is given up after 5s of that)",
    });
  });
  test("an abandoned session that wrote nothing gives way: start, retiring it", () => {
    expect(decideAdmission(newcomer, "10.0.0.2:999", policy, receiver({}, { joined: 0, aloneSinceMs: 50_000 }))).toEqual({
      kind: "start",
      retire: { sessionId: 7n, why: "no connection for 10.0s; a new transmitter from 10.0.0.2:999 takes over" },
    });
  });
  test("an abandoned session that wrote bytes: the newcomer is refused and the session is to fail", () => {
    const admission = decideAdmission(newcomer, "10.0.0.2:999", policy, receiver({}, { joined: 0, aloneSinceMs: 50_000, outputBytes: 1234n }));
    expect(refused(admission)).toEqual({
      reason: RefuseReason.REFUSE_SESSION_OVER,
      text: "its previous transfer was abandoned (no connection for 10.0s) after 1,234 bytes reached its output, which a new stream cannot follow; restart the receiver",
    });
    expect(admission.kind === "refuse" && admission.failSession?.error.code).toBe("peerLost");
    expect(admission.kind === "refuse" && admission.failSession?.error.message).toContain("a new transmitter from 10.0.0.2:999 was turned away");
  });
  test("a retired session's transmitter is told it is over; so is any after a finished transfer", () => {
    expect(refused(decideAdmission(newcomer, "a", policy, receiver({ retired: [8n] })))).toMatchObject({ reason: RefuseReason.REFUSE_SESSION_OVER });
    expect(refused(decideAdmission(newcomer, "a", policy, receiver({ session: session({ isOpen: false, isComplete: true }) })))).toEqual({
      reason: RefuseReason.REFUSE_SESSION_OVER,
      text: "it has finished another transfer",
    });
  });
});

test("the welcome carries the session's position and only the capabilities the receiver knows", () => {
  const accepted = welcome(hello({ capabilities: CAP_KEY | CAP_ENCRYPT | CAP_COMPRESS | 0x100 }), { nonce: 5n, deliveredBelow: 2n, windowEnd: 34n });
  expect(accepted).toEqual({ receiverNonce: 5n, deliveredBelow: 2n, windowEnd: 34n, capabilities: CAP_KEY | CAP_ENCRYPT | CAP_COMPRESS });
});

test("CAP_PRODUCER_FAILED is echoed when offered; CAP_VERDICT only by a receiver whose command reads the stream", () => {
  const session = { nonce: 5n, deliveredBelow: 0n, windowEnd: 32n };
  const offered = hello({ capabilities: CAP_VERDICT | CAP_PRODUCER_FAILED | 0x400 });
  expect(welcome(offered, session).capabilities).toBe(CAP_PRODUCER_FAILED);
  expect(welcome(offered, session, true).capabilities).toBe(CAP_VERDICT | CAP_PRODUCER_FAILED);
  // A version 1 transmitter offers neither, and hears of neither.
  expect(welcome(hello({ capabilities: CAP_NONE }), session, true).capabilities).toBe(CAP_NONE);
});

describe("serving: several sessions, each with its own output", () => {
  const live = (id: bigint): SessionView => session({ sessionId: id });
  const serving = (sessions: SessionView[], capacity: number, change: { draining?: boolean; retired?: bigint[] } = {}) => ({ sessions, capacity, serving: true, ...change });
  const newcomer = hello({ sessionId: 9n });

  test("with a free place a new transfer starts beside live ones: nothing is taken over", () => {
    expect(decideAdmission(newcomer, "a", policy, receiver(serving([live(7n), live(8n)], 3)))).toEqual({ kind: "start" });
  });
  test("a hello of any session held joins that one", () => {
    expect(decideAdmission(hello({ sessionId: 8n }), "a", policy, receiver(serving([live(7n), live(8n)], 2)))).toEqual({ kind: "join", sessionId: 8n });
  });
  test("every place taken by a live transfer: busy, naming sessions N", () => {
    expect(refused(decideAdmission(newcomer, "a", policy, receiver(serving([live(7n), live(8n)], 2))))).toEqual({
      reason: RefuseReason.REFUSE_SESSION_BUSY,
      text: "this receiver is busy with 2 transfers, its 'sessions 2'",
    });
  });
  test("every place taken, one abandoned after writing: it gives way (its output is its own), the newcomer starts", () => {
    const activity = (view: SessionView): Partial<SessionActivity> => (view.sessionId === 8n ? { joined: 0, aloneSinceMs: 50_000, outputBytes: 1234n } : {});
    expect(decideAdmission(newcomer, "10.0.0.3:1", policy, receiver(serving([live(7n), live(8n)], 2), activity))).toEqual({
      kind: "start",
      retire: { sessionId: 8n, why: "no connection for 10.0s; a new transmitter from 10.0.0.3:1 takes over" },
    });
  });
  test("a session that ended holds no place; its transmitter coming back for the confirmation still joins it", () => {
    const ended = session({ sessionId: 8n, isOpen: false, isComplete: true });
    expect(decideAdmission(newcomer, "a", policy, receiver(serving([live(7n), ended], 2)))).toEqual({ kind: "start" });
    expect(decideAdmission(hello({ sessionId: 8n }), "a", policy, receiver(serving([live(7n), ended], 2)))).toEqual({ kind: "join", sessionId: 8n });
  });
  test("draining (SIGTERM): no new transfer, busy so its transmitter may try the restarted receiver; running ones still take connections", () => {
    const view = receiver(serving([live(7n)], 4, { draining: true }));
    expect(refused(decideAdmission(newcomer, "a", policy, view))).toEqual({
      reason: RefuseReason.REFUSE_SESSION_BUSY,
      text: "this receiver is shutting down (SIGTERM) and takes no new transfer; try again once it is back",
    });
    expect(decideAdmission(hello(), "a", policy, view)).toEqual({ kind: "join", sessionId: 7n });
  });
  test("a free place but not the memory for the newcomer's budget: busy, naming the memory; a hello of a session held still joins", () => {
    const MIB = 2 ** 20;
    const full = { memory: { totalBytes: 160 * MIB, freeBytes: 40 * MIB, neededBytes: 96 * MIB } };
    expect(refused(decideAdmission(newcomer, "a", policy, receiver({ ...serving([live(7n), live(8n)], 4), ...full })))).toEqual({
      reason: RefuseReason.REFUSE_SESSION_BUSY,
      text: `this receiver's memory for transfers (160 MiB) is held by 2 transfers; one with feet of ${FOOT} bytes needs 96 MiB of it, 40 MiB is free`,
    });
    expect(decideAdmission(hello({ sessionId: 8n }), "a", policy, receiver({ ...serving([live(7n), live(8n)], 4), ...full }))).toEqual({ kind: "join", sessionId: 8n });
    const room = { memory: { totalBytes: 160 * MIB, freeBytes: 40 * MIB, neededBytes: 40 * MIB } };
    expect(decideAdmission(newcomer, "a", policy, receiver({ ...serving([live(7n), live(8n)], 4), ...room }))).toEqual({ kind: "start" });
  });
  test("a session no longer held that ended or gave way: its stragglers hear 'session over', they never start it afresh", () => {
    expect(refused(decideAdmission(newcomer, "a", policy, receiver(serving([], 2, { retired: [9n] }))))).toMatchObject({ reason: RefuseReason.REFUSE_SESSION_OVER });
  });
});
