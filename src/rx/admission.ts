/**
 * Admission: what the receiver answers a hello. Pure: the receiver hands in
 * the hello, its policy and what it knows about its session; nothing here
 * does I/O, reads a clock or changes state. The receiver acts on the
 * decision (starts or replaces the session, fails a partial one); the
 * connection sends the reply.
 *
 *  1. `screenHello`, as soon as a hello is read: the key. A receiver with a
 *     key challenges every hello and decides nothing else before the
 *     transmitter proves it (so a stranger learns nothing, not even whether
 *     its checkphrase was right); one without a key refuses a hello that
 *     offers one.
 *  2. `decideAdmission`, on a hello (proven, when there is a key): the
 *     checkphrase, `encrypt` on both ends, then the session: a hello of a
 *     session the receiver holds joins it if its foot size matches and it
 *     has room; another session starts while there is a free place (one,
 *     or `sessions N` when serving, whose memory must also have room for
 *     its budget, memory-share.ts); when there is no place, the open
 *     sessions meet the takeover rule (takeover.ts).
 *  3. `welcome` / `refusal`: the reply to send.
 */
import { MAX_CONNECTIONS_PER_SESSION } from "../constants.ts";
import { VmError } from "../errors.ts";
import { formatCount } from "../log-limiter.ts";
import { wireText } from "../protocol/messages.ts";
import {
  CAP_COMPRESS,
  CAP_ENCRYPT,
  CAP_KEY,
  CAP_PRODUCER_FAILED,
  CAP_VERDICT,
  HelloStatus,
  RefuseReason,
  VM_PROTOCOL_VERSION_2,
  type Hello,
  type HelloReply,
  type Welcome,
} from "../protocol/xdr.generated.ts";
import { judgeNewcomer, type SessionActivity } from "./takeover.ts";


/** The receiver's settings that admission reads. */
export interface AdmissionPolicy {
  checkphrase: Uint8Array;
  /** `encrypt` on the receiver: every transmitter must seal its feet. */
  encrypt: boolean;
  /** The receiver has a pre-shared key: every connection must prove it. */
  keyed: boolean;
  /** `timeout`, for the takeover rule. */
  timeoutMs: number;
}

/** What admission needs to know of a session the receiver holds (a Session is one). */
export interface SessionView {
  readonly sessionId: bigint;
  readonly footBytes: number;
  readonly isOpen: boolean;
  readonly isComplete: boolean;
  readonly connectionCount: number;
}

/** The receiver's state as one hello finds it. */
export interface ReceiverView {
  /** The sessions it holds: open ones, and ended ones still lingering for their transmitter. */
  sessions: readonly SessionView[];
  /** Open sessions at once, at most: 1, or `sessions N` when serving. */
  capacity: number;
  /**
   * `serve`: each session writes into an output of its own, so a session
   * that ended frees its place, and an abandoned one gives way even after
   * writing (its output is aborted, never followed by another stream).
   */
  serving: boolean;
  /** SIGTERM while serving: no new session, the running ones go on. */
  draining: boolean;
  /**
   * Serving: the foot memory the sessions share (memory-share.ts). A new
   * session starts only while its budget (`neededBytes`, for the hello's
   * foot size) fits in what the sessions held leave free.
   */
  memory?: { totalBytes: number; freeBytes: number; neededBytes: number };
  /** What the takeover rule needs about an open session; read only when a newcomer finds no free place. */
  activity: (session: SessionView) => SessionActivity;
  /** Sessions given up to a newcomer: their transmitter hears "session over". */
  retired: readonly bigint[];
  /** Why a failed session failed. */
  failure: (session: SessionView) => string | undefined;
  nowMs: number;
}

export type Screening =
  /** Refuse at once. */
  | { kind: "refuse"; reply: HelloReply }
  /** Send a challenge; decide once the proof is in. */
  | { kind: "challenge" }
  /** No key on either end: decide now. */
  | { kind: "decide" };

export type Admission =
  /** Refuse the hello; `failSession`: then fail that session with this error (its output is partial). */
  | { kind: "refuse"; reply: HelloReply; failSession?: { sessionId: bigint; error: VmError } }
  /** Join the session the hello names. */
  | { kind: "join"; sessionId: bigint }
  /** Start a session for this hello; `retire`: first give up that abandoned session, for this reason. */
  | { kind: "start"; retire?: { sessionId: bigint; why: string } };

/** A refusal for `reason`, with a line for the transmitter's user. */
export function refusal(reason: RefuseReason, text: string): HelloReply {
  return { status: HelloStatus.HELLO_REFUSE, refused: { reason, receiverVersion: VM_PROTOCOL_VERSION_2, text: wireText(text) } };
}

/** The capabilities every receiver of this build takes when offered (the welcome echoes them). */
export const RECEIVER_CAPABILITIES = CAP_KEY | CAP_ENCRYPT | CAP_COMPRESS | CAP_PRODUCER_FAILED;

/**
 * The acceptance of `hello` into a session that stands at `deliveredBelow` /
 * `windowEnd`. `consumer`: a command reads the stream, so its verdict is
 * promised (CAP_VERDICT) to a transmitter that asks for it. Bits we do not
 * know are never echoed: a peer of a later version learns we lack them.
 */
export function welcome(hello: Hello, session: { nonce: bigint; deliveredBelow: bigint; windowEnd: bigint }, consumer = false): Welcome {
  return {
    receiverNonce: session.nonce,
    deliveredBelow: session.deliveredBelow,
    windowEnd: session.windowEnd,
    capabilities: hello.capabilities & (RECEIVER_CAPABILITIES | (consumer ? CAP_VERDICT : 0)),
  };
}

/** Step 1: the key, before anything else about the hello is judged. */
export function screenHello(hello: Hello, keyed: boolean): Screening {
  const offersKey = (hello.capabilities & CAP_KEY) !== 0;
  if (keyed && !offersKey) return { kind: "refuse", reply: refusal(RefuseReason.REFUSE_KEY, "this receiver requires a key; give both ends the same 'key FILE'") };
  if (!keyed && offersKey) return { kind: "refuse", reply: refusal(RefuseReason.REFUSE_KEY, "this receiver has no key; give both ends the same 'key FILE'") };
  return keyed ? { kind: "challenge" } : { kind: "decide" };
}

/** Step 2: whether `hello` (from `remoteAddress`) joins a session, starts one, or is refused. */
export function decideAdmission(hello: Hello, remoteAddress: string, policy: AdmissionPolicy, receiver: ReceiverView): Admission {
  if (!sameBytes(hello.checkphrase, policy.checkphrase)) return refuse(RefuseReason.REFUSE_CHECKPHRASE, "checkphrase mismatch");
  const encrypted = (hello.capabilities & CAP_ENCRYPT) !== 0;
  if (encrypted && (hello.capabilities & CAP_KEY) === 0) return refuse(RefuseReason.REFUSE_CAPABILITY, "encrypt needs a key on both ends");
  if (policy.encrypt && !encrypted) return refuse(RefuseReason.REFUSE_CAPABILITY, "this receiver requires encrypt; add 'encrypt' on the transmitter");

  const own = receiver.sessions.find((session) => session.sessionId === hello.sessionId);
  if (own !== undefined) return joinOwn(hello, own, receiver);
  if (receiver.retired.includes(hello.sessionId)) {
    return refuse(RefuseReason.REFUSE_SESSION_OVER, "this receiver gave the transfer up for lack of connections and took another; start it again");
  }
  // Without serve the receiver runs one transfer: once it has ended, the receiver is done.
  if (!receiver.serving && receiver.sessions.some((session) => !session.isOpen)) return refuse(RefuseReason.REFUSE_SESSION_OVER, "it has finished another transfer");
  if (receiver.draining) return refuse(RefuseReason.REFUSE_SESSION_BUSY, "this receiver is shutting down (SIGTERM) and takes no new transfer; try again once it is back");
  const open = receiver.sessions.filter((session) => session.isOpen);
  if (open.length >= receiver.capacity) return takeOver(open, remoteAddress, policy, receiver);
  const memory = receiver.memory;
  if (memory !== undefined && memory.neededBytes > memory.freeBytes) {
    const held = receiver.sessions.length;
    return refuse(
      RefuseReason.REFUSE_SESSION_BUSY,
      `this receiver's memory for transfers (${mib(memory.totalBytes)} MiB) is held by ${held === 1 ? "1 transfer" : `${held} transfers`}; ` +
        `one with feet of ${hello.footBytes} bytes needs ${mib(memory.neededBytes)} MiB of it, ${mib(memory.freeBytes)} MiB is free`,
    );
  }
  return { kind: "start" };
}

/** A hello of a session the receiver holds: it joins, unless the session failed or cannot take it. */
function joinOwn(hello: Hello, session: SessionView, receiver: ReceiverView): Admission {
  if (!session.isOpen && !session.isComplete) {
    // A straggler of our own transfer may hear of the failure here before the abort reaches its siblings.
    return refuse(RefuseReason.REFUSE_SESSION_OVER, `the transfer failed there: ${receiver.failure(session) ?? "reason unknown"}`);
  }
  if (hello.footBytes !== session.footBytes) {
    return refuse(RefuseReason.REFUSE_FOOT_SIZE, `foot size ${hello.footBytes} differs from the session's ${session.footBytes}`);
  }
  if (session.connectionCount >= MAX_CONNECTIONS_PER_SESSION) {
    return refuse(RefuseReason.REFUSE_TOO_MANY_CONNECTIONS, `at most ${MAX_CONNECTIONS_PER_SESSION} connections per transfer`);
  }
  return { kind: "join", sessionId: session.sessionId };
}

/**
 * A newcomer finds every place taken: the takeover rule (takeover.ts) is
 * asked about each open session, in the order they started. The first that
 * gives way is retired for it; else it is refused busy, or (one transfer,
 * without serve) the receiver fails rather than append to a partial stream.
 */
function takeOver(open: readonly SessionView[], remoteAddress: string, policy: AdmissionPolicy, receiver: ReceiverView): Admission {
  const busy: { why: string; abandonedInMs: number | undefined }[] = [];
  for (const session of open) {
    const activity = receiver.activity(session);
    const verdict = judgeNewcomer(activity, receiver.nowMs, policy.timeoutMs);
    if (verdict.kind === "busy") {
      busy.push(verdict);
      continue;
    }
    const why = `${verdict.why}; a new transmitter from ${remoteAddress} takes over`;
    // Serving, its output is its own: aborting it loses nothing another stream would follow.
    if (verdict.kind === "yield" || receiver.serving) return { kind: "start", retire: { sessionId: session.sessionId, why } };
    const written = formatCount(Number(activity.outputBytes));
    return {
      kind: "refuse",
      reply: refusal(
        RefuseReason.REFUSE_SESSION_OVER,
        `its previous transfer was abandoned (${verdict.why}) after ${written} bytes reached its output, which a new stream cannot follow; restart the receiver`,
      ),
      failSession: {
        sessionId: session.sessionId,
        error: new VmError(
          "peerLost",
          `the transmitter vanished (${verdict.why}) after ${written} bytes were written; a new transmitter from ${remoteAddress} was turned away, since its stream cannot follow a partial one: start both ends again`,
        ),
      },
    };
  }
  if (receiver.serving) {
    const soonest = busy.map((verdict) => verdict.abandonedInMs).filter((ms) => ms !== undefined);
    const until = soonest.length === 0 ? "" : `; one with no connection or no data is given up after ${policy.timeoutMs / 1000}s of that`;
    return refuse(RefuseReason.REFUSE_SESSION_BUSY, `this receiver is busy with ${open.length === 1 ? "1 transfer" : `${open.length} transfers`}, its 'sessions ${receiver.capacity}'${until}`);
  }
  const verdict = busy[0]!;
  const until = verdict.abandonedInMs === undefined ? "" : `; it is given up after ${policy.timeoutMs / 1000}s of that`;
  return refuse(RefuseReason.REFUSE_SESSION_BUSY, `this receiver is busy with another transfer (${verdict.why}${until})`);
}

/** Refuses a hello: the reply for `reason`, with `text` for the transmitter's user. */
function refuse(reason: RefuseReason, text: string): Admission {
  return { kind: "refuse", reply: refusal(reason, text) };
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(0);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
