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
 *     checkphrase, `encrypt` on both ends, then the session: another
 *     session's hello meets the takeover rule (takeover.ts), a hello of the
 *     open session joins it if its foot size matches and it has room.
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

/** What admission needs to know of the receiver's session (a Session is one). */
export interface SessionView {
  readonly sessionId: bigint;
  readonly footBytes: number;
  readonly isOpen: boolean;
  readonly isComplete: boolean;
  readonly connectionCount: number;
}

/** The receiver's state as one hello finds it. */
export interface ReceiverView {
  session: SessionView | undefined;
  /** What the takeover rule needs about the session; read only for another session's hello. */
  activity: () => SessionActivity;
  /** Sessions given up to a newcomer: their transmitter hears "session over". */
  retired: readonly bigint[];
  /** Why the session failed, when it did. */
  failure: string | undefined;
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
  /** Refuse the hello; `failSession`: then fail the open session with this (its output is partial). */
  | { kind: "refuse"; reply: HelloReply; failSession?: VmError }
  /** Join the open session. */
  | { kind: "join" }
  /** Start a session for this hello; `retire`: first give up the open one, for this reason. */
  | { kind: "start"; retire?: string };

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

/** Step 2: whether `hello` (from `remoteAddress`) joins the session, starts one, or is refused. */
export function decideAdmission(hello: Hello, remoteAddress: string, policy: AdmissionPolicy, receiver: ReceiverView, outputBytes: bigint): Admission {
  const refuse = (reason: RefuseReason, text: string, failSession?: VmError): Admission => ({ kind: "refuse", reply: refusal(reason, text), ...(failSession && { failSession }) });
  if (!sameBytes(hello.checkphrase, policy.checkphrase)) return refuse(RefuseReason.REFUSE_CHECKPHRASE, "checkphrase mismatch");
  const encrypted = (hello.capabilities & CAP_ENCRYPT) !== 0;
  if (encrypted && (hello.capabilities & CAP_KEY) === 0) return refuse(RefuseReason.REFUSE_CAPABILITY, "encrypt needs a key on both ends");
  if (policy.encrypt && !encrypted) return refuse(RefuseReason.REFUSE_CAPABILITY, "this receiver requires encrypt; add 'encrypt' on the transmitter");

  const session = receiver.session;
  if (session === undefined) return { kind: "start" };
  if (session.sessionId !== hello.sessionId) {
    if (receiver.retired.includes(hello.sessionId)) {
      return refuse(RefuseReason.REFUSE_SESSION_OVER, "this receiver gave the transfer up for lack of connections and took another; start it again");
    }
    if (!session.isOpen) return refuse(RefuseReason.REFUSE_SESSION_OVER, "it has finished another transfer");
    const verdict = judgeNewcomer(receiver.activity(), receiver.nowMs, policy.timeoutMs);
    switch (verdict.kind) {
      case "busy": {
        const until = verdict.abandonedInMs === undefined ? "" : `; it is given up after ${policy.timeoutMs / 1000}s of that`;
        return refuse(RefuseReason.REFUSE_SESSION_BUSY, `this receiver is busy with another transfer (${verdict.why}${until})`);
      }
      case "end": {
        const written = formatCount(Number(outputBytes));
        return refuse(
          RefuseReason.REFUSE_SESSION_OVER,
          `its previous transfer was abandoned (${verdict.why}) after ${written} bytes reached its output, which a new stream cannot follow; restart the receiver`,
          new VmError(
            "peerLost",
            `the transmitter vanished (${verdict.why}) after ${written} bytes were written; a new transmitter from ${remoteAddress} was turned away, since its stream cannot follow a partial one: start both ends again`,
          ),
        );
      }
      case "yield":
        return { kind: "start", retire: `${verdict.why}; a new transmitter from ${remoteAddress} takes over` };
    }
  }
  if (!session.isOpen && !session.isComplete) {
    // A straggler of our own transfer may hear of the failure here before the abort reaches its siblings.
    return refuse(RefuseReason.REFUSE_SESSION_OVER, `the transfer failed there: ${receiver.failure ?? "reason unknown"}`);
  }
  if (hello.footBytes !== session.footBytes) {
    return refuse(RefuseReason.REFUSE_FOOT_SIZE, `foot size ${hello.footBytes} differs from the session's ${session.footBytes}`);
  }
  if (session.connectionCount >= MAX_CONNECTIONS_PER_SESSION) {
    return refuse(RefuseReason.REFUSE_TOO_MANY_CONNECTIONS, `at most ${MAX_CONNECTIONS_PER_SESSION} connections per transfer`);
  }
  return { kind: "join" };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
