/**
 * One transmitter connection: dial, hello, wait for the receiver's answer
 * (with a deadline), then carry feet out and control frames back.
 */
import { VmError } from "../errors.ts";
import type { Network } from "../net/channel.ts";
import { formatAddress } from "../net/address.ts";
import { inject, type ChaosFault } from "../net/chaos.ts";
import { FramedConnection } from "../net/framed-connection.ts";
import { Heartbeat } from "../net/heartbeat.ts";
import { BufferPool } from "../net/buffer-pool.ts";
import { processCollector } from "../net/collector.ts";
import {
  decodeFrame,
  decodeHelloReply,
  encodeControlFrame,
  encodeFootRecord,
  encodeHello,
  encodeKeyProof,
  readText,
  type ControlFrame,
  type FootSeal,
} from "../protocol/messages.ts";
import { FootSealer, footKey, keyNonce, proofMatches, receiverProof, SEAL_OVERHEAD_BYTES, transmitterProof } from "../protocol/keys.ts";
import {
  CAP_ENCRYPT,
  ChecksumKind,
  FOOT_FLAG_SEALED,
  FrameKind,
  Hello as HelloCodec,
  Welcome as WelcomeCodec,
  HelloStatus,
  MAX_CONTROL_RECORD_BYTES,
  MAX_HELLO_RECORD_BYTES,
  RefuseReason,
  type Hello,
  type Welcome,
} from "../protocol/xdr.generated.ts";
import type { OutboundFoot } from "./scheduler.ts";

/** How long dialling and the receiver's answer to our hello may take together. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

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

/** Turns a refusal into the error the user sees; `fatal` ends the transfer, `busy` is waited on (busy-wait.ts). */
function refusalError(reason: RefuseReason, text: string, target: string): { error: VmError; fatal: boolean; busy?: boolean } {
  switch (reason) {
    case RefuseReason.REFUSE_CHECKPHRASE:
      return {
        error: new VmError("checkphrase", `receiver ${target} refused the checkphrase; give both ends the same 'checkphrase WORD'`),
        fatal: true,
      };
    case RefuseReason.REFUSE_VERSION:
      return { error: new VmError("protocol", `receiver ${target}: ${text}; run the same viamillipede version on both ends`), fatal: true };
    case RefuseReason.REFUSE_SESSION_BUSY:
      return { error: new VmError("busy", `receiver ${target} refused: ${text}`), fatal: false, busy: true };
    case RefuseReason.REFUSE_KEY:
    case RefuseReason.REFUSE_CAPABILITY:
      return { error: new VmError("key", `receiver ${target} refused: ${text}`), fatal: true };
    case RefuseReason.REFUSE_SESSION_OVER:
      return { error: new VmError("peerLost", `receiver ${target} turned the connection away: ${text}`), fatal: true };
    case RefuseReason.REFUSE_TOO_MANY_CONNECTIONS:
      return { error: new VmError("protocol", `receiver ${target} has enough connections: ${text}`), fatal: false };
    default:
      return { error: new VmError("protocol", `receiver ${target} refused the connection: ${text}`), fatal: true };
  }
}

/** A dial that failed: `fatal` when retrying cannot help (wrong checkphrase, version...); `busy`: the receiver holds another transfer. */
export class DialFailure extends Error {
  constructor(
    readonly error: VmError | Error,
    readonly fatal: boolean,
    readonly busy = false,
  ) {
    super(error.message);
  }
}

/**
 * Memory for sealed foot copies, reused once a copy is written.
 *
 * The cipher returns each sealed foot in fresh memory that lived until the
 * copy was written, long enough to outlive the young-generation collections,
 * so it piled up for a late full one: encrypt peaked at 235–420 MiB against
 * ~100 MiB plain. Copying it into a reused buffer at once (≈ 0.1 ms per
 * 2 MiB, against ≈ 0.7 ms to seal) leaves garbage that dies young, which the
 * collector's requests reclaim. One copy per send stays inherent: the plain
 * foot is kept for a resend on another connection, under another key.
 *
 * The buffers come from a BufferPool per foot size (one per transmitter in
 * practice), each a foot plus the seal's overhead, which any sealed foot fits.
 */
const sealedPools = new Map<number, BufferPool>();
/** Spent sealed copies kept for reuse across connections (feet go only to idle connections, so about one in flight each). */
const MAX_FREE_SEALED_BUFFERS = 32;

/** The pool for sealed copies of feet of up to `footBytes`. */
export function sealedPool(footBytes: number): BufferPool {
  let pool = sealedPools.get(footBytes);
  if (pool === undefined) sealedPools.set(footBytes, (pool = new BufferPool(footBytes + SEAL_OVERHEAD_BYTES, MAX_FREE_SEALED_BUFFERS)));
  return pool;
}

/** The sealer's pieces (nonce, ciphertext, tag) as one view of a buffer from `pool`; the pieces become garbage. */
export function gatherSealed(pieces: readonly Uint8Array[], pool: BufferPool, collector: { discarded(bytes: number): void } = processCollector): Uint8Array {
  let bytes = 0;
  for (const piece of pieces) bytes += piece.length;
  // A sealed foot always fits; anything larger gets memory of its own (the pool ignores it when given back).
  const out = bytes <= pool.bufferBytes ? pool.take().subarray(0, bytes) : new Uint8Array(bytes);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  collector.discarded(bytes);
  return out;
}

export class TxConnection {
  private framed!: FramedConnection;
  private accepted = false;
  private closeReported = false;
  private readonly heartbeat = new Heartbeat();
  /** Keyed connections: the hello's XDR bytes and our nonce, which both proofs cover. */
  private helloBytes: Uint8Array | undefined;
  private transmitterNonce: Uint8Array | undefined;
  private receiverNonce: Uint8Array | undefined;
  /** Seals every foot copy sent here (`encrypt`), under this connection's own key. */
  private seal: FootSeal | undefined;
  /** Where this connection's sealed copies come from and go back to (`encrypt`). */
  private sealedPool: BufferPool | undefined;
  /** The session's foot size (from the hello): what a sealed copy must hold. */
  private footBytes = 0;
  private wantsEncrypt = false;

  private constructor(
    readonly id: number,
    readonly target: string,
    private readonly events: TxConnectionEvents,
    /** The pre-shared key, when the transmitter has one. */
    private readonly key: Uint8Array | undefined,
  ) {}

  /**
   * Dials and handshakes. Resolves with the connection and the receiver's
   * welcome; rejects with a DialFailure.
   */
  static async open(
    network: Network,
    target: DialTarget,
    id: number,
    hello: Hello,
    events: TxConnectionEvents,
    key?: Uint8Array,
  ): Promise<{ connection: TxConnection; welcome: Welcome }> {
    const label = formatAddress(target.host, target.port);
    const connection = new TxConnection(id, label, events, key);
    let settle!: { resolve: (w: Welcome) => void; reject: (f: DialFailure) => void };
    const answered = new Promise<Welcome>((resolve, reject) => (settle = { resolve, reject }));
    answered.catch(() => {}); // a refusal may come before we wait for the answer; the race below reports it
    // One deadline for the dial and the handshake: a path that swallows the
    // SYN would otherwise hold this dial for the kernel's two minutes.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DialFailure(new Error(`${label}: no answer within ${HANDSHAKE_TIMEOUT_MS / 1000}s`), false)),
        HANDSHAKE_TIMEOUT_MS,
      );
    });
    try {
      const dialling = FramedConnection.dial(network, target.host, target.port, MAX_HELLO_RECORD_BYTES, {
        onRecord: (record) => connection.receive(record, settle),
        onIdle: () => connection.accepted && events.onIdle(connection),
        onClose: (error) => connection.closed(error, settle),
      });
      try {
        connection.framed = await Promise.race([dialling, deadline]);
      } catch (error) {
        // Too late is as good as never: a connection that opens after the deadline is closed.
        dialling.then((late) => late.destroy(), () => {});
        throw error instanceof DialFailure ? error : new DialFailure(error as Error, false);
      }
      const ours = { ...hello, connectionId: id };
      if (key !== undefined) connection.helloBytes = HelloCodec.encode(ours);
      connection.wantsEncrypt = (hello.capabilities & CAP_ENCRYPT) !== 0;
      connection.footBytes = hello.footBytes;
      connection.framed.send([encodeHello(ours)]);
      try {
        return { connection, welcome: await Promise.race([answered, deadline]) };
      } catch (error) {
        connection.framed.destroy();
        throw error;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  get isClosed(): boolean {
    return this.framed.isClosed;
  }

  /** Idle: nothing queued, so a foot handed over now goes straight to the kernel. */
  get isIdle(): boolean {
    return this.framed.queuedBytes === 0 && !this.framed.isClosed;
  }

  /** Foot payload bytes and feet handed to this connection, and how many were copies. */
  readonly carried = { bytes: 0, feet: 0, retransmits: 0 };

  get roundTripMs(): number | undefined {
    return this.heartbeat.roundTripMs;
  }

  /** Queues a copy of the foot; `foot.copiesQueued` counts it until written or dropped. */
  sendFoot(foot: OutboundFoot, flags: number, onWritten: () => void): void {
    this.carried.bytes += foot.payload.length;
    this.carried.feet++;
    if (foot.sends > 1) this.carried.retransmits++;
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
    const ping = this.heartbeat.due(timeoutMs);
    if (ping !== undefined) this.sendControl(ping);
    return this.framed.stallReason(timeoutMs);
  }

  /** Declares the connection dead: it closes and the owner hears `onClose` with `reason`. */
  kill(reason: Error): void {
    this.framed.destroy(reason);
  }

  /** Injects a rehearsed fault (`chaos N`). */
  chaos(fault: ChaosFault): void {
    inject(fault, this.framed);
  }

  /** Sends one last frame, then half-closes once it is written. */
  sendFinal(frame: ControlFrame): void {
    this.closeReported = true;
    this.sendControl(frame);
    this.framed.shutdown();
  }

  close(): void {
    this.closeReported = true;
    this.framed.destroy();
  }

  private receive(record: Uint8Array, settle: { resolve: (w: Welcome) => void; reject: (f: DialFailure) => void }): void {
    if (!this.accepted) {
      let reply;
      try {
        reply = decodeHelloReply(record);
      } catch (error) {
        const failure = new VmError("protocol", `${this.target} is not a viamillipede receiver (${(error as Error).message})`);
        settle.reject(new DialFailure(failure, true));
        this.framed.destroy();
        return;
      }
      if (reply.status === HelloStatus.HELLO_CHALLENGE) return this.answerChallenge(reply.challenged.receiverNonce, settle);
      if (reply.status === HelloStatus.HELLO_ACCEPT_PROVEN) return this.checkProof(reply.proven.accepted, reply.proven.proof, settle);
      if (reply.status === HelloStatus.HELLO_ACCEPT) {
        if (this.key !== undefined) {
          // Our data goes only to a receiver that proved it holds the key.
          return this.reject(new VmError("key", `receiver ${this.target} has no key: it accepted without proving one; give it the same 'key FILE'`), settle);
        }
        this.accept(reply.accepted, settle);
      } else {
        const { error, fatal, busy } = refusalError(reply.refused.reason, readText(reply.refused.text), this.target);
        settle.reject(new DialFailure(error, fatal, busy));
        this.framed.destroy();
      }
      return;
    }
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
    if (frame.kind === FrameKind.FRAME_PING) return this.sendControl({ kind: FrameKind.FRAME_PONG, pong: frame.ping });
    if (frame.kind === FrameKind.FRAME_PONG) return this.heartbeat.answered(frame.pong); // its arrival is also the proof of life
    this.events.onFrame(this, frame);
  }

  private accept(welcome: Welcome, settle: { resolve: (w: Welcome) => void }): void {
    this.accepted = true;
    this.framed.maxRecordBytes = MAX_CONTROL_RECORD_BYTES;
    settle.resolve(welcome);
  }

  private reject(error: VmError, settle: { reject: (f: DialFailure) => void }): void {
    settle.reject(new DialFailure(error, true));
    this.framed.destroy();
  }

  /** The receiver holds a key: prove ours with a fresh nonce of our own. */
  private answerChallenge(receiverNonce: Uint8Array, settle: { reject: (f: DialFailure) => void }): void {
    if (this.key === undefined || this.helloBytes === undefined || this.receiverNonce !== undefined) {
      return this.reject(new VmError("key", `receiver ${this.target} requires a key; give both ends the same 'key FILE'`), settle);
    }
    this.receiverNonce = receiverNonce;
    this.transmitterNonce = keyNonce();
    const proof = transmitterProof(this.key, this.helloBytes, receiverNonce, this.transmitterNonce);
    this.framed.send([encodeKeyProof({ transmitterNonce: this.transmitterNonce, proof })]);
  }

  /** The receiver accepted our proof; it must prove the key too before any foot goes out. */
  private checkProof(welcome: Welcome, proof: Uint8Array, settle: { resolve: (w: Welcome) => void; reject: (f: DialFailure) => void }): void {
    const { key, helloBytes, receiverNonce, transmitterNonce } = this;
    if (key === undefined || helloBytes === undefined || receiverNonce === undefined || transmitterNonce === undefined) {
      return this.reject(new VmError("protocol", `${this.target} sent a proof nobody asked for`), settle);
    }
    if (!proofMatches(proof, receiverProof(key, helloBytes, receiverNonce, transmitterNonce, WelcomeCodec.encode(welcome)))) {
      return this.reject(new VmError("key", `receiver ${this.target} does not hold the same key; give both ends the same 'key FILE'`), settle);
    }
    if (this.wantsEncrypt !== ((welcome.capabilities & CAP_ENCRYPT) !== 0)) {
      return this.reject(new VmError("key", `receiver ${this.target} does not agree to encrypt; run the same viamillipede version on both ends`), settle);
    }
    if (this.wantsEncrypt) {
      const sealer = new FootSealer(footKey(key, transmitterNonce, receiverNonce));
      const pool = (this.sealedPool = sealedPool(this.footBytes));
      this.seal = { overheadBytes: SEAL_OVERHEAD_BYTES, seal: (aad, plain) => [gatherSealed(sealer.seal(aad, plain), pool)] };
    }
    this.accept(welcome, settle);
  }

  /** Feet on this connection are sealed. */
  get sealed(): boolean {
    return this.seal !== undefined;
  }

  private closed(error: Error | undefined, settle: { reject: (f: DialFailure) => void }): void {
    if (!this.accepted) {
      const reason = error?.message ?? "connection closed during the handshake";
      const looksForeign = error instanceof VmError && error.code === "protocol";
      settle.reject(
        new DialFailure(
          looksForeign ? new VmError("protocol", `${this.target} is not a viamillipede receiver (${reason})`) : new Error(`${this.target}: ${reason}`),
          looksForeign,
        ),
      );
      return;
    }
    if (this.closeReported) return;
    this.closeReported = true;
    this.events.onClose(this, error);
  }
}
