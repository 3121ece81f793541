/**
 * The receiver's figures for status output: its connections (live and
 * closed), the bytes each local address took (the receiver's side of a link)
 * and their recent rates, and the sessions' progress: the one session, or,
 * serving, every session held now plus the last MAX_PAST_SESSIONS that ended,
 * with the totals of all of them.
 */
import { MAX_PAST_CONNECTIONS } from "../constants.ts";
import type { VmError } from "../errors.ts";
import { roundTripFigure, type ConnectionFigures, type LinkFigures, type SessionFigures, type TransferFigures } from "../status/figures.ts";
import { RateMeter } from "../status/rate-meter.ts";
import type { RxConnection } from "./connection.ts";
import type { SessionInfo } from "./output.ts";
import type { Session } from "./session.ts";

/** Ended sessions whose figures status output keeps (serving); their bytes and feet stay in the totals. */
export const MAX_PAST_SESSIONS = 64;

/** What the figures read of a session the receiver holds. */
export interface HostedFigures {
  readonly info: SessionInfo;
  readonly session: Session;
  readonly startedMs: number;
  /** When it completed or failed, on the receiver's clock. */
  endedMs: number | null;
  outcome: { error?: VmError } | undefined;
}

/** What the snapshot needs besides the sessions. */
export interface SnapshotContext {
  /** The receiver's window in feet, shown before any session. */
  windowFeet: number;
  /** When the first session began. */
  startedMs: number | null;
  nowMs: number;
  /** List every session (serve); else the figures are the one session's. */
  serving: boolean;
}

export class ReceiverFigures {
  private readonly live = new Set<RxConnection>();
  private readonly past: ConnectionFigures[] = [];
  /** Bytes and feet of closed connections, per local address. */
  private readonly closedTotals = new Map<string, { bytes: number; feet: number }>();
  /** Per local address, the rate of what arrived there. */
  private readonly addresses = new Map<string, RateMeter>();
  /** Sessions no longer held, newest last, and the totals of every one that ended. */
  private readonly pastSessions: SessionFigures[] = [];
  private readonly endedTotals = { bytes: 0, feet: 0 };

  joined(connection: RxConnection): void {
    this.live.add(connection);
    if (!this.addresses.has(connection.localAddress)) this.addresses.set(connection.localAddress, new RateMeter());
  }

  gone(connection: RxConnection): void {
    if (!this.live.delete(connection)) return;
    this.past.push(this.connectionFigures(connection, "closed"));
    if (this.past.length > MAX_PAST_CONNECTIONS) this.past.shift();
    const totals = this.closedTotals.get(connection.localAddress) ?? { bytes: 0, feet: 0 };
    totals.bytes += connection.carried.bytes;
    totals.feet += connection.carried.feet;
    this.closedTotals.set(connection.localAddress, totals);
  }

  /** A session is no longer held: its figures go to the past, its bytes to the totals. */
  ended(hosted: HostedFigures): void {
    this.endedTotals.bytes += Number(hosted.session.bytesWritten);
    this.endedTotals.feet += Number(hosted.session.feetWritten);
    this.pastSessions.push(sessionFigures(hosted, hosted.endedMs ?? hosted.startedMs));
    if (this.pastSessions.length > MAX_PAST_SESSIONS) this.pastSessions.shift();
  }

  /** Advances the per-address rates; `elapsedMs` since the last tick. */
  tick(elapsedMs: number): void {
    for (const [address, meter] of this.addresses) {
      meter.advanceTo(this.carriedOn(address).bytes);
      meter.tick(elapsedMs);
    }
  }

  private carriedOn(address: string): { bytes: number; feet: number; connections: number } {
    const closed = this.closedTotals.get(address) ?? { bytes: 0, feet: 0 };
    let bytes = closed.bytes;
    let feet = closed.feet;
    let connections = 0;
    for (const connection of this.live) {
      if (connection.localAddress !== address) continue;
      bytes += connection.carried.bytes;
      feet += connection.carried.feet;
      connections++;
    }
    return { bytes, feet, connections };
  }

  private connectionFigures(connection: RxConnection, state: ConnectionFigures["state"]): ConnectionFigures {
      return {
      id: connection.id,
      link: connection.localAddress,
      state,
      ...connection.carried,
      roundTripMs: roundTripFigure(connection.roundTripMs),
    };
  }

  /** The figures now, of the sessions `held` and (serving) those that ended before. */
  snapshot(held: readonly HostedFigures[], context: SnapshotContext): TransferFigures {
    const connections = [...this.past, ...[...this.live].map((connection) => this.connectionFigures(connection, "up"))];
    const links: LinkFigures[] = [...this.addresses].map(([address, meter], i) => {
      const carried = this.carriedOn(address);
      return {
        link: i + 1,
        address,
        state: carried.connections > 0 ? "up" : "down",
        connections: carried.connections,
        bytesSent: carried.bytes,
        feetSent: carried.feet,
        bytesDelivered: carried.bytes,
        feetDelivered: carried.feet,
        bytesPerSecond: Math.round(meter.bytesPerSecond),
      };
    });
    const sessions = held.map((hosted) => hosted.session);
    const open = sessions.filter((session) => session.isOpen);
    const sum = (of: (session: Session) => number): number => sessions.reduce((total, session) => total + of(session), 0);
    const reorderFeet = sum((session) => session.reorderFeet);
    // The sessions' own windows are smaller when their feet are large.
    const windowFeet = open.length > 0 ? open.reduce((total, session) => total + session.windowFeet, 0) : (sessions[0]?.windowFeet ?? context.windowFeet);
    const figures: TransferFigures = {
      role: "rx",
      startedMs: context.startedMs,
      bytes: this.endedTotals.bytes + sum((session) => Number(session.bytesWritten)),
      feet: this.endedTotals.feet + sum((session) => Number(session.feetWritten)),
      feetInFlight: reorderFeet,
      windowFeet,
      reorderFeet,
      retransmits: connections.reduce((sum, connection) => sum + connection.retransmits, 0),
      connections,
      connectionsWanted: null,
      links,
      // Serving, each session has its own digest (in `sessions`).
      digest: context.serving ? null : (sessions[0]?.digestHex ?? null),
    };
    if (!context.serving) return figures;
    return { ...figures, sessions: [...this.pastSessions, ...held.map((hosted) => sessionFigures(hosted, hosted.endedMs ?? context.nowMs))] };
  }
}

/** One session's line in the status block and the stats file. */
function sessionFigures(hosted: HostedFigures, untilMs: number): SessionFigures {
  const { session, info, outcome } = hosted;
  return {
    id: session.sessionId.toString(16),
    label: info.label ?? null,
    peer: info.peer,
    state: outcome === undefined ? "running" : outcome.error === undefined ? "complete" : "failed",
    bytes: Number(session.bytesWritten),
    feet: Number(session.feetWritten),
    elapsedSeconds: Math.max(0, Math.round(untilMs - hosted.startedMs)) / 1000,
    digest: session.digestHex,
    error: outcome?.error?.message ?? null,
  };
}
