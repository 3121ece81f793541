/**
 * What every connection does whichever role owns it: answer the peer's
 * heartbeats (a ping gets its pong, a pong gives the round trip), ping when
 * due and say why the connection is dead on each watchdog tick, take a
 * rehearsed fault (`chaos N`), and keep the connection's foot totals for
 * status output. The transmitter's and the receiver's connections each own
 * one; the handshakes and the frames only one role handles stay with them.
 */
import type { Clock } from "../clock.ts";
import { encodeControlFrame } from "../protocol/messages.ts";
import { FrameKind, type Frame } from "../protocol/xdr.generated.ts";
import { inject, type ChaosFault } from "./chaos.ts";
import type { FramedConnection } from "./framed-connection.ts";
import { Heartbeat } from "./heartbeat.ts";

/** Foot payload bytes and feet on one connection, and how many were copies (totals, for figures). */
export interface FootTotals {
  bytes: number;
  feet: number;
  retransmits: number;
}

export class ConnectionUpkeep {
  private readonly heartbeat: Heartbeat;
  readonly totals: FootTotals = { bytes: 0, feet: 0, retransmits: 0 };

  /**
   * `framed`: the connection's framing, asked for at each use (the
   * transmitter's exists only once its dial has connected); `clock`: the role's.
   */
  constructor(
    private readonly framed: () => FramedConnection,
    clock: Clock,
  ) {
    // The first ping is due a fraction of a timeout after the connection object exists.
    this.heartbeat = new Heartbeat(() => clock.now());
  }

  /** Handles `frame` if it is a heartbeat (a ping is answered, a pong timed); false for any other frame. */
  answered(frame: Frame): boolean {
    if (frame.kind === FrameKind.FRAME_PING) {
      this.framed().send([encodeControlFrame({ kind: FrameKind.FRAME_PONG, pong: frame.ping })]);
      return true;
    }
    if (frame.kind === FrameKind.FRAME_PONG) {
      this.heartbeat.answered(frame.pong); // its arrival is also the proof of life
      return true;
    }
    return false;
  }

  /**
   * Called on every watchdog tick: sends a ping when one is due and says why
   * the connection is dead, if it is (see FramedConnection.stallReason).
   */
  watch(timeoutMs: number): string | undefined {
    const ping = this.heartbeat.due(timeoutMs);
    if (ping !== undefined) this.framed().send([encodeControlFrame(ping)]);
    return this.framed().stallReason(timeoutMs);
  }

  /** Injects a rehearsed fault (`chaos N`). */
  chaos(fault: ChaosFault): void {
    inject(fault, this.framed());
  }

  /** Counts one foot of `bytes` stream bytes; `copy`: it was a retransmission. */
  countFoot(bytes: number, copy: boolean): void {
    this.totals.bytes += bytes;
    this.totals.feet++;
    if (copy) this.totals.retransmits++;
  }

  /** The latest heartbeat round trip, once a pong came back. */
  get roundTripMs(): number | undefined {
    return this.heartbeat.roundTripMs;
  }
}
