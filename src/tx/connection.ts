/**
 * One transmitter connection, as a state machine (`state`):
 *
 *  1. "dialling": the transport connects; then our hello goes out.
 *  2. "hello-sent": waiting for the receiver's answer. A key challenge is
 *     answered with our proof (→ "proving"); an accept (→ "up"), a refusal
 *     or anything else (→ "closed", the dial fails with a DialFailure).
 *  3. "proving": keyed connections only; the receiver must prove the key
 *     too before it is "up".
 *  4. "up": feet go out, control frames come back (heartbeats answered here,
 *     the rest to the owner).
 *  5. "closing": we closed it (close, sendFinal): its end is not reported.
 *     "closed": gone; the owner heard `onClose` once if it had been up.
 *
 * One deadline (HANDSHAKE_TIMEOUT_MS, on the injected clock) covers 1 to 3.
 * It owns its framed connection, its key material and its upkeep
 * (heartbeats, liveness, chaos and its totals, `sent`: shared with the
 * receiver's connections in src/net/connection-upkeep.ts).
 */
import { HANDSHAKE_TIMEOUT_MS } from "../constants.ts";
import { systemClock, type Clock, type Timer } from "../clock.ts";
import { VmError } from "../errors.ts";
import type { Network } from "../net/channel.ts";
import type { TcpFigures } from "../net/tcp-info.ts";
import { formatAddress } from "../net/address.ts";
import type { ChaosFault } from "../net/chaos.ts";
import { ConnectionUpkeep, type FootTotals } from "../net/connection-upkeep.ts";
import { FramedConnection } from "../net/framed-connection.ts";
import { BufferPool } from "../net/buffer-pool.ts";
import {
  decodeFrame,
  decodeHelloReply,
  encodeControlFrame,
  encodeFootRecord,
  encodeHello,
  encodeKeyProof,
  helloBytes,
  readText,
  type AnyHello,
  type ControlFrame,
  type FootSeal,
} from "../protocol/messages.ts";
import { FootSealer, footKey, keyNonce, proofMatches, receiverProof, SEAL_OVERHEAD_BYTES, transmitterProof } from "../protocol/keys.ts";
import {
  CAP_ENCRYPT,
  ChecksumKind,
  FOOT_FLAG_SEALED,
  FrameKind,
  Welcome as WelcomeCodec,
  HelloStatus,
  MAX_CONTROL_RECORD_BYTES,
  MAX_HELLO_RECORD_BYTES,
  type Welcome,
} from "../protocol/xdr.generated.ts";
import { DeliveryRate, type Delivery } from "./delivery-rate.ts";
import { queueStandsOn } from "./round-trips.ts";
import { DialFailure, refusalError } from "./refusals.ts";
import type { OutboundFoot } from "./scheduler.ts";
import { gatherSealed, sealedPool } from "./sealed-copies.ts";

export { DialFailure };

export interface TxConnectionEvents {
  /** A control frame from the receiver (never a foot: those flow the other way). */
  onFrame(connection: TxConnection, frame: ControlFrame): void;
  /** Everything queued on this connection has gone to the kernel. */
  onIdle(connection: TxConnection): void;
  /** The connection is gone after having been accepted. */
  onClose(connection: TxConnection, error?: Error): void;
}

export interface DialTarget {
  host: string;
  port: number;
}

/** Where the handshake stands; the answer is settled when it leaves "hello-sent"/"proving". */
type HandshakeAnswer = { resolve: (welcome: Welcome) => void; reject: (failure: DialFailure) => void };

export type TxConnectionState =
  | { name: "dialling"; answer: HandshakeAnswer }
  | { name: "hello-sent"; answer: HandshakeAnswer }
  | { name: "proving"; answer: HandshakeAnswer; receiverNonce: Uint8Array; transmitterNonce: Uint8Array }
  | { name: "up" }
  | { name: "closing" }
  | { name: "closed" };

export class TxConnection {
  private framed!: FramedConnection;
  private state: TxConnectionState;
  /** Heartbeats, liveness, chaos and totals, as on the receiver's connections. */
  private readonly upkeep: ConnectionUpkeep;
  /** Keyed connections: the hello's XDR bytes, which both proofs cover. */
  private helloBytes: Uint8Array | undefined;
  /** Seals every foot copy sent here (`encrypt`), under this connection's own key. */
  private seal: FootSeal | undefined;
  /** Where this connection's sealed copies come from and go back to (`encrypt`). */
  private sealedPool: BufferPool | undefined;
  /** The session's foot size (from the hello): what a sealed copy must hold. */
  private footBytes = 0;
  private wantsEncrypt = false;
  /** How fast its TCP delivers while it has bytes to send, read on every watchdog tick. */
  private readonly rate = new DeliveryRate();
  /** The CAP_* bits the receiver's welcome echoed: what both ends use on this connection (0 until it is up). */
  capabilities = 0;

  private constructor(
    readonly id: number,
    /** The receiver's address as dialled, "host:port" (for messages). */
    readonly target: string,
    /** The receiver's host as dialled (the link's). */
    readonly host: string,
    private readonly events: TxConnectionEvents,
    /** The pre-shared key, when the transmitter has one. */
    private readonly key: Uint8Array | undefined,
    private readonly clock: Clock,
    answer: HandshakeAnswer,
  ) {
    this.upkeep = new ConnectionUpkeep(() => this.framed, clock);
    this.state = { name: "dialling", answer };
  }

  /**
   * Dials and handshakes. Resolves with the connection and the receiver's
   * welcome; rejects with a DialFailure.
   */
  static async open(
    network: Network,
    target: DialTarget,
    id: number,
    /** Our hello, given the round trip the TCP handshake took (where the kernel tells): see foot-size.ts. */
    hello: (roundTripMs: number | undefined) => AnyHello,
    events: TxConnectionEvents,
    key?: Uint8Array,
    clock: Clock = systemClock,
  ): Promise<{ connection: TxConnection; welcome: Welcome }> {
    const label = formatAddress(target.host, target.port);
    let answer!: HandshakeAnswer;
    const answered = new Promise<Welcome>((resolve, reject) => (answer = { resolve, reject }));
    answered.catch(() => {}); // a refusal may come before we wait for the answer; the race below reports it
    const connection = new TxConnection(id, label, target.host, events, key, clock, answer);
    // One deadline for the dial and the handshake: a path that swallows the
    // SYN would otherwise hold this dial for the kernel's two minutes.
    let timer: Timer | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = clock.after(
        HANDSHAKE_TIMEOUT_MS,
        "tx handshake deadline",
        () => reject(new DialFailure(new Error(`${label}: no answer within ${HANDSHAKE_TIMEOUT_MS / 1000}s`), false)),
        { background: true },
      );
    });
    try {
      const dialling = FramedConnection.dial(
        network,
        target.host,
        target.port,
        MAX_HELLO_RECORD_BYTES,
        {
          onRecord: (record) => connection.receive(record),
          onIdle: () => connection.state.name === "up" && events.onIdle(connection),
          onClose: (error) => connection.closed(error),
        },
        clock,
      );
      try {
        connection.framed = await Promise.race([dialling, deadline]);
      } catch (error) {
        // Too late is as good as never: a connection that opens after the deadline is closed.
        dialling.then((late) => late.destroy(), () => {});
        throw error instanceof DialFailure ? error : new DialFailure(error as Error, false);
      }
      const ours = { ...hello(connection.framed.tcpFigures?.roundTripMs), connectionId: id };
      if (key !== undefined) connection.helloBytes = helloBytes(ours);
      connection.wantsEncrypt = (ours.capabilities & CAP_ENCRYPT) !== 0;
      connection.footBytes = ours.footBytes;
      if (connection.state.name === "dialling") connection.state = { name: "hello-sent", answer };
      connection.framed.send([encodeHello(ours)]);
      try {
        return { connection, welcome: await Promise.race([answered, deadline]) };
      } catch (error) {
        connection.framed.destroy();
        throw error;
      }
    } finally {
      timer?.cancel();
    }
  }

  /** The handshake is done and the connection has not closed. */
  get isUp(): boolean {
    return this.state.name === "up";
  }

  /** Idle: nothing queued, so a foot handed over now goes straight to the kernel. */
  get isIdle(): boolean {
    return this.framed.queuedBytes === 0 && !this.framed.isClosed;
  }

  /** Foot payload bytes and feet handed to this connection, and how many were copies (totals, for figures). */
  get sent(): Readonly<FootTotals> {
    return this.upkeep.totals;
  }

  get roundTripMs(): number | undefined {
    return this.upkeep.roundTripMs;
  }

  /** The kernel's figures for the connection (bytes the receiver's TCP acknowledged, round trips), where the transport can tell. */
  get tcpFigures(): TcpFigures | undefined {
    return this.framed.tcpFigures;
  }

  /**
   * Bytes the receiver's TCP holds so far, and bytes handed to this
   * connection that it does not hold yet (queued here, in the kernel, in
   * flight), where the transport can tell.
   */
  get delivery(): Delivery | undefined {
    const figures = this.framed.tcpFigures;
    if (figures === undefined) return undefined;
    return { deliveredBytes: figures.bytesDelivered, backlogBytes: Math.max(0, this.framed.handedBytes - figures.bytesDelivered) };
  }

  /** Queues a copy of the foot; `foot.copiesQueued` counts it until written or dropped. */
  sendFoot(foot: OutboundFoot, flags: number, onWritten: () => void): void {
    this.upkeep.countFoot(foot.payload.length, foot.sends > 1);
    // A sealed foot carries no checksum: the tag authenticates it, and a
    // plain-text hash of the stream bytes would let an observer test guesses.
    const header = {
      footId: foot.id,
      streamOffset: foot.offset,
      length: foot.streamLength ?? foot.payload.length,
      sum: this.seal === undefined ? { kind: ChecksumKind.CHECKSUM_XXH3_64, xxh3: foot.checksum } : { kind: ChecksumKind.CHECKSUM_NONE },
      flags: flags | (foot.encoding ?? 0) | (this.seal === undefined ? 0 : FOOT_FLAG_SEALED),
    };
    foot.copiesQueued++;
    const pieces = encodeFootRecord(header as Parameters<typeof encodeFootRecord>[0], foot.payload, this.seal);
    this.framed.send(pieces, () => {
      foot.copiesQueued--;
      if (this.seal !== undefined) this.sealedPool?.give(pieces[1]!); // the sealed payload (see gatherSealed)
      onWritten();
    });
  }

  sendControl(frame: ControlFrame): void {
    this.framed.send([encodeControlFrame(frame)]);
  }

  /**
   * Called on every watchdog tick: sends a ping when one is due and says why
   * the connection is dead, if it is (see FramedConnection.stallReason).
   */
  watch(timeoutMs: number): string | undefined {
    const delivery = this.delivery;
    if (delivery !== undefined) this.rate.read(this.clock.now(), delivery.deliveredBytes, delivery.backlogBytes);
    return this.upkeep.watch(timeoutMs);
  }

  /** Bytes per second its TCP delivers while it has bytes to send; undefined until measured, or where the transport cannot tell. */
  get deliveryRate(): number | undefined {
    return this.rate.bytesPerSecond;
  }

  /** Whether its TCP delivered anything since the previous tick while it had bytes to send (DeliveryRate.moving). */
  get moving(): boolean | undefined {
    return this.rate.moving;
  }

  /** Whether its round trips say a queue stands on its path: its link is full (round-trips.ts `queueStandsOn`). */
  get queueStands(): boolean | undefined {
    const figures = this.framed.tcpFigures;
    return figures === undefined ? undefined : queueStandsOn(figures);
  }

  /** Declares the connection dead: it closes and the owner hears `onClose` with `reason`. */
  kill(reason: Error): void {
    this.framed.destroy(reason);
  }

  /** Injects a rehearsed fault (`chaos N`). */
  chaos(fault: ChaosFault): void {
    this.upkeep.chaos(fault);
  }

  /** Sends one last frame (feet queued and not under way are dropped), then half-closes once it is written. */
  sendFinal(frame: ControlFrame): void {
    this.enter({ name: "closing" });
    this.framed.sendFinal([encodeControlFrame(frame)]);
  }

  /** Resolves once everything queued is with the transport, or the connection is closed. */
  flushed(): Promise<void> {
    return this.framed.flushed();
  }

  close(): void {
    this.enter({ name: "closing" });
    this.framed.destroy();
  }

  /** Our own close: "up" → "closing", whose end is not reported to the owner. */
  private enter(next: { name: "closing" }): void {
    if (this.state.name === "up") this.state = next;
  }

  private receive(record: Uint8Array): void {
    const state = this.state;
    if (state.name === "hello-sent" || state.name === "proving") return this.handshake(state, record);
    if (state.name !== "up") return; // a late record on a connection we are closing
    let frame;
    try {
      frame = decodeFrame(record);
    } catch (error) {
      this.framed.destroy(error as Error);
      return;
    }
    if (frame.kind === FrameKind.FRAME_FOOT) {
      this.framed.destroy(new VmError("protocol", `${this.target} sent a foot to the transmitter`));
      return;
    }
    if (this.upkeep.answered(frame)) return;
    this.events.onFrame(this, frame);
  }

  /** The receiver's answer to our hello (or to our proof). */
  private handshake(state: Extract<TxConnectionState, { name: "hello-sent" | "proving" }>, record: Uint8Array): void {
    let reply;
    try {
      reply = decodeHelloReply(record);
    } catch (error) {
      return this.refuse(state.answer, new VmError("protocol", `${this.target} is not a viamillipede receiver (${(error as Error).message})`), true);
    }
    switch (reply.status) {
      case HelloStatus.HELLO_CHALLENGE:
        return this.answerChallenge(state, reply.challenged.receiverNonce);
      case HelloStatus.HELLO_ACCEPT_PROVEN:
        return this.checkProof(state, reply.proven.accepted, reply.proven.proof);
      case HelloStatus.HELLO_ACCEPT:
        if (this.key !== undefined) {
          // Our data goes only to a receiver that proved it holds the key.
          return this.refuse(state.answer, new VmError("key", `receiver ${this.target} has no key: it accepted without proving one; give it the same 'key FILE'`), true);
        }
        return this.accept(state.answer, reply.accepted);
      default: {
        const { error, fatal, busy } = refusalError(reply.refused.reason, readText(reply.refused.text), this.target);
        return this.refuse(state.answer, error, fatal, busy);
      }
    }
  }

  /** "hello-sent"/"proving" → "up". */
  private accept(answer: HandshakeAnswer, welcome: Welcome): void {
    this.state = { name: "up" };
    this.capabilities = welcome.capabilities;
    this.framed.maxRecordBytes = MAX_CONTROL_RECORD_BYTES;
    answer.resolve(welcome);
  }

  /** "hello-sent"/"proving" → "closed": the dial fails. */
  private refuse(answer: HandshakeAnswer, error: VmError, fatal: boolean, busy = false): void {
    this.state = { name: "closed" };
    answer.reject(new DialFailure(error, fatal, busy));
    this.framed.destroy();
  }

  /** "hello-sent" → "proving": the receiver holds a key; prove ours with a fresh nonce of our own. */
  private answerChallenge(state: Extract<TxConnectionState, { name: "hello-sent" | "proving" }>, receiverNonce: Uint8Array): void {
    if (this.key === undefined || this.helloBytes === undefined || state.name !== "hello-sent") {
      return this.refuse(state.answer, new VmError("key", `receiver ${this.target} requires a key; give both ends the same 'key FILE'`), true);
    }
    const transmitterNonce = keyNonce();
    this.state = { name: "proving", answer: state.answer, receiverNonce, transmitterNonce };
    const proof = transmitterProof(this.key, this.helloBytes, receiverNonce, transmitterNonce);
    this.framed.send([encodeKeyProof({ transmitterNonce, proof })]);
  }

  /** "proving" → "up": the receiver accepted our proof; it must prove the key too before any foot goes out. */
  private checkProof(state: Extract<TxConnectionState, { name: "hello-sent" | "proving" }>, welcome: Welcome, proof: Uint8Array): void {
    const { key, helloBytes } = this;
    if (key === undefined || helloBytes === undefined || state.name !== "proving") {
      return this.refuse(state.answer, new VmError("protocol", `${this.target} sent a proof nobody asked for`), true);
    }
    const { receiverNonce, transmitterNonce } = state;
    if (!proofMatches(proof, receiverProof(key, helloBytes, receiverNonce, transmitterNonce, WelcomeCodec.encode(welcome)))) {
      return this.refuse(state.answer, new VmError("key", `receiver ${this.target} does not hold the same key; give both ends the same 'key FILE'`), true);
    }
    if (this.wantsEncrypt !== ((welcome.capabilities & CAP_ENCRYPT) !== 0)) {
      return this.refuse(state.answer, new VmError("key", `receiver ${this.target} does not agree to encrypt; run the same viamillipede version on both ends`), true);
    }
    if (this.wantsEncrypt) {
      const sealer = new FootSealer(footKey(key, transmitterNonce, receiverNonce));
      const pool = (this.sealedPool = sealedPool(this.footBytes));
      this.seal = { overheadBytes: SEAL_OVERHEAD_BYTES, seal: (aad, plain) => [gatherSealed(sealer.seal(aad, plain), pool)] };
    }
    this.accept(state.answer, welcome);
  }

  /** The transport closed: → "closed". During the handshake the dial fails; once up, the owner hears it (unless we closed it). */
  private closed(error: Error | undefined): void {
    const state = this.state;
    this.state = { name: "closed" };
    if (state.name === "dialling" || state.name === "hello-sent" || state.name === "proving") {
      const reason = error?.message ?? "connection closed during the handshake";
      const looksForeign = error instanceof VmError && error.code === "protocol";
      state.answer.reject(
        new DialFailure(
          looksForeign ? new VmError("protocol", `${this.target} is not a viamillipede receiver (${reason})`) : new Error(`${this.target}: ${reason}`),
          looksForeign,
        ),
      );
      return;
    }
    if (state.name === "up") this.events.onClose(this, error);
  }
}
