/**
 * The receiver's figures for status output: its connections (live and
 * closed), the bytes each local address took (the receiver's side of a link)
 * and their recent rates, and the session's progress.
 */
import { MAX_PAST_CONNECTIONS } from "../constants.ts";
import type { ConnectionFigures, LinkFigures, TransferFigures } from "../status/figures.ts";
import { RateMeter } from "../status/rate-meter.ts";
import type { RxConnection } from "./connection.ts";
import type { Session } from "./session.ts";

export class ReceiverFigures {
  private readonly live = new Set<RxConnection>();
  private readonly past: ConnectionFigures[] = [];
  /** Bytes and feet of closed connections, per local address. */
  private readonly closedTotals = new Map<string, { bytes: number; feet: number }>();
  /** Per local address, the rate of what arrived there. */
  private readonly addresses = new Map<string, RateMeter>();

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
    const roundTripMs = connection.roundTripMs;
    return {
      id: connection.id,
      link: connection.localAddress,
      state,
      ...connection.carried,
      roundTripMs: roundTripMs === undefined ? null : Math.round(roundTripMs * 1000) / 1000,
    };
  }

  snapshot(session: Session | undefined, windowFeet: number, startedMs: number | null): TransferFigures {
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
    return {
      role: "rx",
      startedMs,
      bytes: Number(session?.bytesWritten ?? 0n),
      feet: Number(session?.feetWritten ?? 0n),
      feetInFlight: session?.reorderFeet ?? 0,
      windowFeet: session?.windowFeet ?? windowFeet, // the session's is smaller when its feet are large
      reorderFeet: session?.reorderFeet ?? 0,
      retransmits: connections.reduce((sum, connection) => sum + connection.retransmits, 0),
      connections,
      connectionsWanted: null,
      links,
      digest: session?.digestHex ?? null,
    };
  }
}
