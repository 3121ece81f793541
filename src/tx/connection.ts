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
import {
  decodeFrame,
  decodeHelloReply,
  encodeControlFrame,
  encodeFootRecord,
  encodeHello,
  readText,
  type ControlFrame,
} from "../protocol/messages.ts";
import {
  ChecksumKind,
  FrameKind,
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

/** Turns a refusal into the error the user sees; `fatal` ends the transfer. */
function refusalError(reason: RefuseReason, text: string, target: string): { error: VmError; fatal: boolean } {
  switch (reason) {
    case RefuseReason.REFUSE_CHECKPHRASE:
      return {
        error: new VmError("checkphrase", `receiver ${target} refused the checkphrase; give both ends the same 'checkphrase WORD'`),
        fatal: true,
      };
    case RefuseReason.REFUSE_VERSION:
      return { error: new VmError("protocol", `receiver ${target}: ${text}; run the same viamillipede version on both ends`), fatal: true };
    case RefuseReason.REFUSE_SESSION_BUSY:
      return { error: new VmError("busy", `receiver ${target} is busy with another transfer; wait for it to finish or use another port`), fatal: true };
    case RefuseReason.REFUSE_TOO_MANY_CONNECTIONS:
      return { error: new VmError("protocol", `receiver ${target} has enough connections: ${text}`), fatal: false };
    default:
      return { error: new VmError("protocol", `receiver ${target} refused the connection: ${text}`), fatal: true };
  }
}

/** A dial that failed: `fatal` when retrying cannot help (wrong checkphrase, version...). */
export class DialFailure extends Error {
  constructor(
    readonly error: VmError | Error,
    readonly fatal: boolean,
  ) {
    super(error.message);
  }
}

export class TxConnection {
  private framed!: FramedConnection;
  private accepted = false;
  private closeReported = false;
  private readonly heartbeat = new Heartbeat();

  private constructor(
    readonly id: number,
    readonly target: string,
    private readonly events: TxConnectionEvents,
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
  ): Promise<{ connection: TxConnection; welcome: Welcome }> {
    const label = formatAddress(target.host, target.port);
    const connection = new TxConnection(id, label, events);
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
      connection.framed.send([encodeHello({ ...hello, connectionId: id })]);
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

  /** Queues a copy of the foot; `foot.copiesQueued` counts it until written or dropped. */
  sendFoot(foot: OutboundFoot, flags: number, onWritten: () => void): void {
    const header = {
      footId: foot.id,
      streamOffset: foot.offset,
      length: foot.payload.length,
      sum: { kind: ChecksumKind.CHECKSUM_XXH3_64, xxh3: foot.checksum },
      flags,
    };
    foot.copiesQueued++;
    this.framed.send(encodeFootRecord(header as Parameters<typeof encodeFootRecord>[0], foot.payload), () => {
      foot.copiesQueued--;
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
      if (reply.status === HelloStatus.HELLO_ACCEPT) {
        this.accepted = true;
        this.framed.maxRecordBytes = MAX_CONTROL_RECORD_BYTES;
        settle.resolve(reply.accepted);
      } else {
        const { error, fatal } = refusalError(reply.refused.reason, readText(reply.refused.text), this.target);
        settle.reject(new DialFailure(error, fatal));
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
    if (frame.kind === FrameKind.FRAME_PONG) return; // its arrival is the proof of life
    this.events.onFrame(this, frame);
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
