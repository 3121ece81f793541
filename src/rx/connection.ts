/**
 * One receiver connection: read the hello within a deadline, run the key
 * handshake when there is a key, hand the (proven) hello to the receiver,
 * whose admission (admission.ts) decides, send that decision, then pass
 * frames to the session it joined.
 *
 * A malformed record drops this connection only (the transmitter re-sends
 * its feet on others); what the session judges a violation ends the session.
 */
import { HELLO_TIMEOUT_MS, REFUSED_LINGER_MS } from "../constants.ts";
import type { Clock, Timer } from "../clock.ts";
import { log } from "../log.ts";
import { formatCount, type Summarize } from "../log-limiter.ts";
import type { Channel, ChannelHandlers } from "../net/channel.ts";
import type { Chaos } from "../net/chaos.ts";
import { ConnectionUpkeep, type FootTotals } from "../net/connection-upkeep.ts";
import { FramedConnection } from "../net/framed-connection.ts";
import {
  decodeFrame,
  decodeHello,
  decodeKeyProof,
  encodeControlFrame,
  encodeHelloReply,
  footAssociatedData,
  readText,
  type AnyHello,
  type ControlFrame,
} from "../protocol/messages.ts";
import {
  FOOT_FLAG_RETRANSMIT,
  FOOT_RECORD_OVERHEAD_BYTES,
  CAP_ENCRYPT,
  FrameKind,
  HelloStatus,
  MAX_HELLO_RECORD_BYTES,
  RefuseReason,
  Welcome as WelcomeCodec,
  type Foot,
  type Hello,
  type HelloReply,
  type Welcome,
} from "../protocol/xdr.generated.ts";
import { footKey, keyNonce, proofMatches, receiverProof, transmitterProof } from "../protocol/keys.ts";
import { refusal, screenHello } from "./admission.ts";
import type { Session, SessionConnection } from "./session.ts";
import { needsUnpacking, unpackFoot } from "./unpack.ts";

/** The receiver's answer to a hello: refuse it with this reply, or join this session with this welcome. */
export type HelloAnswer = { refuse: HelloReply } | { join: Session; welcome: Welcome };

/** Where a warning goes that any host can repeat at will (the receiver sums those up: log-limiter.ts). */
export type Warn = (kind: string, line: string, summarize: Summarize) => void;

/** What a connection is given by its receiver. */
export interface RxConnectionContext {
  clock: Clock;
  chaos: Chaos;
  /** The pre-shared key, when the receiver has one: every connection must prove it. */
  key: Uint8Array | undefined;
  warn: Warn;
  /** A hello is in (proven, when there is a key): the receiver's admission answers it; a version 2 hello carries a label. */
  admit(connection: RxConnection, hello: AnyHello): HelloAnswer;
  /** The connection is gone. */
  gone(connection: RxConnection): void;
}

/** How far a connection got before it joined a session (the receiver evicts the least advanced first). */
export type HandshakeStage = "refused" | "silent" | "partial hello" | "whole hello";

/** Keyed handshake: the hello we challenged (and its bytes) and our nonce, until the proof arrives. */
interface Challenge {
  hello: AnyHello;
  bytes: Uint8Array;
  receiverNonce: Uint8Array;
}

export class RxConnection implements SessionConnection {
  private readonly framed: FramedConnection;
  readonly channelHandlers: ChannelHandlers;
  private session: Session | undefined;
  private readonly helloTimer: Timer;
  /** Heartbeats, liveness, chaos and totals, as on the transmitter's connections. */
  private readonly upkeep: ConnectionUpkeep;
  private challenged: Challenge | undefined;
  /** Refused: whatever else the peer sends is ignored until it closes. */
  private refused = false;
  /** The CAP_* bits our welcome echoed: what both ends use here (e.g. CAP_VERDICT: the verdict precedes the confirmation). */
  capabilities = 0;
  /** This connection's foot key when its feet are sealed (`encrypt`). */
  private footKey: Uint8Array | undefined;
  /** Some bytes have arrived. */
  private heard = false;

  constructor(
    readonly id: number,
    channel: Channel,
    private readonly context: RxConnectionContext,
  ) {
    const clock = context.clock;
    this.upkeep = new ConnectionUpkeep(() => this.framed, clock);
    const accepted = FramedConnection.accept(
      channel,
      MAX_HELLO_RECORD_BYTES,
      {
        onRecord: (record) => this.receive(record),
        onIdle: () => {},
        onClose: (error) => this.closed(error),
      },
      clock,
    );
    this.framed = accepted.connection;
    const handlers = accepted.channelHandlers;
    this.channelHandlers = {
      ...handlers,
      onData: (bytes) => {
        this.heard = true;
        handlers.onData(bytes);
      },
    };
    this.helloTimer = clock.after(HELLO_TIMEOUT_MS, "hello deadline", () => {
      const within = `${HELLO_TIMEOUT_MS / 1000}s`;
      this.context.warn("no hello", `connection from ${this.remoteAddress} sent no hello within ${within}; dropped`, (count, seconds) =>
        `dropped ${formatCount(count)} more connections that sent no hello within ${within} in the last ${seconds} s`,
      );
      this.framed.destroy();
    });
  }

  get remoteAddress(): string {
    return this.framed.remoteAddress;
  }

  /** The address this connection arrived on: for status output, the receiver's side of a link. */
  get localAddress(): string {
    return this.framed.localAddress;
  }

  /** Foot payload bytes and feet received here, and how many were marked as copies. */
  get carried(): Readonly<FootTotals> {
    return this.upkeep.totals;
  }

  get roundTripMs(): number | undefined {
    return this.upkeep.roundTripMs;
  }

  send(frame: ControlFrame): void {
    this.framed.send([encodeControlFrame(frame)]);
  }

  close(): void {
    this.framed.destroy();
  }

  /** Joined to a session: heartbeats and liveness apply (see TxConnection.watch). */
  get isJoined(): boolean {
    return this.session !== undefined;
  }

  /** The session this connection joined, if it did. */
  get joinedTo(): Session | undefined {
    return this.session;
  }

  /** Before it joins: how far its handshake got. */
  get handshakeStage(): HandshakeStage {
    if (this.refused) return "refused";
    if (this.challenged !== undefined) return "whole hello";
    return this.heard ? "partial hello" : "silent";
  }

  /** Sends a ping when due; returns why the connection is dead, if it is. */
  watch(timeoutMs: number): string | undefined {
    return this.upkeep.watch(timeoutMs);
  }

  kill(reason: Error): void {
    log.warn(`connection ${this.id} from ${this.remoteAddress} ${reason.message}; dropped`);
    this.framed.destroy(reason);
  }

  private receive(record: Uint8Array): void {
    if (this.refused) return;
    if (this.challenged !== undefined) return this.receiveProof(record, this.challenged);
    if (this.session === undefined) return this.receiveHello(record);
    let frame;
    try {
      frame = decodeFrame(record);
    } catch (error) {
      this.session.pool.give(record); // a foot-sized record holds a budget buffer
      log.warn(`connection ${this.id} from ${this.remoteAddress}: ${(error as Error).message}; dropped`);
      this.framed.destroy();
      return;
    }
    if (this.upkeep.answered(frame)) return;
    if (frame.kind === FrameKind.FRAME_FOOT && needsUnpacking(frame.foot.header.flags, this.footKey)) {
      void this.unpack(this.session, frame.foot, footAssociatedData(record, frame.foot.payload));
    } else {
      this.session.onFrame(this, frame);
    }
    if (frame.kind !== FrameKind.FRAME_FOOT) return;
    this.upkeep.countFoot(frame.foot.header.length, (frame.foot.header.flags & FOOT_FLAG_RETRANSMIT) !== 0);
    const fault = this.context.chaos.tick();
    if (fault !== undefined) {
      log.warn(`chaos: ${fault} on connection ${this.id}`);
      this.upkeep.chaos(fault);
    }
  }

  /**
   * Opens and inflates a foot (off the main thread where it inflates), then
   * hands the stream bytes to the session. A foot that fails authentication
   * or inflation is asked for again, like a checksum failure; never written.
   */
  private async unpack(session: Session, foot: Foot, aad: Uint8Array): Promise<void> {
    const unpacked = await unpackFoot(foot, aad, this.footKey, session.footBytes);
    if (unpacked.kind === "ok") session.collector.discarded(unpacked.payload.length); // what was opened or inflated into fresh memory
    if (this.framed.isClosed && unpacked.kind !== "ok") {
      session.pool.give(foot.payload);
      return;
    }
    switch (unpacked.kind) {
      case "ok":
        return session.onFrame(this, { kind: FrameKind.FRAME_FOOT, foot: { header: foot.header, payload: intoRecordBuffer(session, foot.payload, unpacked.payload) } });
      case "corrupt":
        session.pool.give(foot.payload);
        return session.onCorruptFoot(this, foot.header.footId, unpacked.reason);
      case "violation":
        session.pool.give(foot.payload);
        log.warn(`connection ${this.id} from ${this.remoteAddress}: ${unpacked.reason}; dropped`);
        this.framed.destroy();
    }
  }

  private receiveHello(record: Uint8Array): void {
    const decoded = decodeHello(record);
    if (!decoded.ok) return this.refuse(refusal(decoded.reason, decoded.text));
    const screening = screenHello(decoded.hello, this.context.key !== undefined);
    if (screening.kind === "refuse") return this.refuse(screening.reply);
    if (screening.kind === "decide") {
      const answer = this.context.admit(this, decoded.hello);
      if ("refuse" in answer) return this.refuse(answer.refuse);
      return this.join(answer.join, { status: HelloStatus.HELLO_ACCEPT, accepted: answer.welcome });
    }
    // Nothing is admitted before the transmitter proves the key: challenge it (the hello deadline still runs).
    const receiverNonce = keyNonce();
    this.challenged = { hello: decoded.hello, bytes: new Uint8Array(record), receiverNonce };
    this.framed.send([encodeHelloReply({ status: HelloStatus.HELLO_CHALLENGE, challenged: { receiverNonce } })]);
  }

  private receiveProof(record: Uint8Array, challenged: Challenge): void {
    const key = this.context.key!;
    this.challenged = undefined;
    let answer;
    try {
      answer = decodeKeyProof(record);
    } catch (error) {
      return this.refuse(refusal(RefuseReason.REFUSE_KEY, (error as Error).message));
    }
    const expected = transmitterProof(key, challenged.bytes, challenged.receiverNonce, answer.transmitterNonce);
    if (!proofMatches(answer.proof, expected)) {
      return this.refuse(refusal(RefuseReason.REFUSE_KEY, "wrong key: the transmitter's proof does not match this receiver's key"));
    }
    const admitted = this.context.admit(this, challenged.hello);
    if ("refuse" in admitted) return this.refuse(admitted.refuse);
    const welcome = admitted.welcome;
    const proof = receiverProof(key, challenged.bytes, challenged.receiverNonce, answer.transmitterNonce, WelcomeCodec.encode(welcome));
    if ((welcome.capabilities & CAP_ENCRYPT) !== 0) this.footKey = footKey(key, answer.transmitterNonce, challenged.receiverNonce);
    this.join(admitted.join, { status: HelloStatus.HELLO_ACCEPT_PROVEN, proven: { accepted: welcome, proof } });
  }

  /** Sends a refusal and closes, after it is written (or REFUSED_LINGER_MS, if the peer does not close). */
  private refuse(reply: HelloReply): void {
    this.helloTimer.cancel();
    this.framed.send([encodeHelloReply(reply)]);
    this.refused = true;
    const text = reply.status === HelloStatus.HELLO_REFUSE ? readText(reply.refused.text) : "";
    this.context.warn("refused", `refused connection from ${this.remoteAddress}: ${text}`, (count, seconds, last) =>
      `refused ${formatCount(count)} more connections in the last ${seconds} s (the latest: ${last})`,
    );
    this.framed.shutdown();
    this.context.clock.after(REFUSED_LINGER_MS, "refused connection's linger", () => this.framed.destroy(), { background: true });
  }

  /** Sends the acceptance and joins `session`: its record limit and memory apply from now on. */
  private join(session: Session, reply: HelloReply): void {
    this.helloTimer.cancel();
    if (reply.status === HelloStatus.HELLO_ACCEPT) this.capabilities = reply.accepted.capabilities;
    if (reply.status === HelloStatus.HELLO_ACCEPT_PROVEN) this.capabilities = reply.proven.accepted.capabilities;
    this.framed.send([encodeHelloReply(reply)]);
    this.session = session;
    this.framed.maxRecordBytes = session.footBytes + FOOT_RECORD_OVERHEAD_BYTES;
    this.framed.memory = session.recordMemory;
    session.join(this);
  }

  private closed(error?: Error): void {
    this.helloTimer.cancel();
    if (error) log.debug(`connection ${this.id} from ${this.remoteAddress} closed: ${error.message}`);
    this.session?.leave(this);
    this.context.gone(this);
  }
}

/**
 * Stream bytes inflated into fresh memory go back into the budget buffer
 * their record came in, so a held foot stays counted in the session's
 * budget and the fresh copy dies young. Bytes already in the record's
 * memory, or a record outside the budget (a short one), stay as they are.
 */
function intoRecordBuffer(session: Session, record: Uint8Array, bytes: Uint8Array): Uint8Array {
  if (bytes.buffer === record.buffer || !session.pool.lends(record)) return bytes;
  const slot = new Uint8Array(record.buffer, 0, bytes.length);
  slot.set(bytes);
  return slot;
}
