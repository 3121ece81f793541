/**
 * One receiver connection: read the hello within a deadline, let the
 * receiver admit or refuse it, then pass frames to the session.
 *
 * A malformed record drops this connection only (the transmitter re-sends
 * its feet on others); what the session judges a violation ends the session.
 */
import { log } from "../log.ts";
import type { Channel, ChannelHandlers } from "../net/channel.ts";
import { inject, type Chaos } from "../net/chaos.ts";
import { FramedConnection } from "../net/framed-connection.ts";
import { Heartbeat } from "../net/heartbeat.ts";
import {
  decodeFrame,
  decodeHello,
  encodeControlFrame,
  encodeHelloReply,
  readText,
  wireText,
  type ControlFrame,
} from "../protocol/messages.ts";
import {
  FOOT_RECORD_OVERHEAD_BYTES,
  FrameKind,
  HelloStatus,
  MAX_HELLO_RECORD_BYTES,
  VM_PROTOCOL_VERSION,
  type Hello,
  type HelloReply,
} from "../protocol/xdr.generated.ts";
import type { Session, SessionLink } from "./session.ts";

/** A connection must say hello within this time. */
export const HELLO_TIMEOUT_MS = 10_000;
/** A refused connection is dropped after this long if the peer does not close it. */
const REFUSED_LINGER_MS = 2_000;

/** The receiver's decision on a hello. */
export type Admission = { reply: HelloReply; session?: Session };

export class RxConnection implements SessionLink {
  private readonly framed: FramedConnection;
  readonly channelHandlers: ChannelHandlers;
  private session: Session | undefined;
  private helloTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly heartbeat = new Heartbeat();

  constructor(
    readonly id: number,
    channel: Channel,
    private readonly admit: (connection: RxConnection, hello: Hello) => Admission,
    private readonly onGone: (connection: RxConnection) => void,
    private readonly chaos: Chaos,
  ) {
    const accepted = FramedConnection.accept(channel, MAX_HELLO_RECORD_BYTES, {
      onRecord: (record) => this.receive(record),
      onIdle: () => {},
      onClose: (error) => this.closed(error),
    });
    this.framed = accepted.connection;
    this.channelHandlers = accepted.channelHandlers;
    this.helloTimer = setTimeout(() => {
      log.warn(`connection from ${this.remoteAddress} sent no hello within ${HELLO_TIMEOUT_MS / 1000}s; dropped`);
      this.framed.destroy();
    }, HELLO_TIMEOUT_MS);
  }

  get remoteAddress(): string {
    return this.framed.remoteAddress;
  }

  get isOpen(): boolean {
    return !this.framed.isClosed;
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

  /** Sends a ping when due; returns why the connection is dead, if it is. */
  watch(timeoutMs: number): string | undefined {
    const ping = this.heartbeat.due(timeoutMs);
    if (ping !== undefined) this.send(ping);
    return this.framed.stallReason(timeoutMs);
  }

  kill(reason: Error): void {
    log.warn(`connection ${this.id} from ${this.remoteAddress} ${reason.message}; dropped`);
    this.framed.destroy(reason);
  }

  private receive(record: Uint8Array): void {
    if (this.session === undefined) return this.receiveHello(record);
    let frame;
    try {
      frame = decodeFrame(record);
    } catch (error) {
      log.warn(`connection ${this.id} from ${this.remoteAddress}: ${(error as Error).message}; dropped`);
      this.framed.destroy();
      return;
    }
    if (frame.kind === FrameKind.FRAME_PING) return this.send({ kind: FrameKind.FRAME_PONG, pong: frame.ping });
    if (frame.kind === FrameKind.FRAME_PONG) return; // its arrival is the proof of life
    this.session.onFrame(this, frame);
    if (frame.kind !== FrameKind.FRAME_FOOT) return;
    const fault = this.chaos.tick();
    if (fault !== undefined) {
      log.warn(`chaos: ${fault} on connection ${this.id}`);
      inject(fault, this.framed);
    }
  }

  private receiveHello(record: Uint8Array): void {
    clearTimeout(this.helloTimer);
    const decoded = decodeHello(record);
    const admission: Admission = decoded.ok
      ? this.admit(this, decoded.hello)
      : {
          reply: {
            status: HelloStatus.HELLO_REFUSE,
            refused: { reason: decoded.reason, receiverVersion: VM_PROTOCOL_VERSION, text: wireText(decoded.text) },
          },
        };
    this.framed.send([encodeHelloReply(admission.reply)]);
    if (admission.session === undefined) {
      const text = admission.reply.status === HelloStatus.HELLO_REFUSE ? readText(admission.reply.refused.text) : "";
      log.warn(`refused connection from ${this.remoteAddress}: ${text}`);
      this.framed.shutdown();
      setTimeout(() => this.framed.destroy(), REFUSED_LINGER_MS).unref?.();
      return;
    }
    this.session = admission.session;
    this.framed.maxRecordBytes = this.session.footBytes + FOOT_RECORD_OVERHEAD_BYTES;
    this.framed.allocate = this.session.allocate;
    this.session.join(this);
  }

  private closed(error?: Error): void {
    clearTimeout(this.helloTimer);
    if (error) log.debug(`connection ${this.id} from ${this.remoteAddress} closed: ${error.message}`);
    this.session?.leave(this);
    this.onGone(this);
  }
}
