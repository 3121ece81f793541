/**
 * The pool's records: a slot (a place for one connection, on a link or
 * floating) and one record per live connection, which holds everything
 * about it in one place; and the figures a record gives the status output.
 */
import { roundTripFigure, type ConnectionFigures } from "../status/figures.ts";
import type { TxConnection } from "./connection.ts";
import type { Link } from "./links.ts";

/** A connection slot: an anchor stays on its link; a floating one goes where placement says. */
export interface Slot {
  anchor: Link | undefined;
  /** The link it dials or is connected to. */
  link: Link | undefined;
  /** Its connection, while one is up. */
  record: ConnectionRecord | undefined;
  /** `threads auto` wants fewer connections: this slot's connection drains and the slot goes away. */
  retired: boolean;
}

/** Everything about one live connection. */
export interface ConnectionRecord {
  readonly connection: TxConnection;
  readonly link: Link;
  readonly slot: Slot;
  /** Takes no new feet and closes once its feet are acknowledged (moved by rebalance, or retired). */
  draining: boolean;
  /** End-of-stream went out on it. */
  endSent: boolean;
  /** Feet acknowledged whose latest copy it carried (dispatch gives a new connection fewer feet). */
  feetDelivered: number;
  /** Its TCP's count of bytes delivered when the pool last read it (`KernelReadings.read`). */
  tcpBytesDeliveredSeen: number;
  /** Ends its slot's wait for it. */
  readonly release: () => void;
}

/** A connection's figures for the status block and the stats file. */
export function figuresOf({ connection, link }: ConnectionRecord, state: ConnectionFigures["state"]): ConnectionFigures {
  return {
    id: connection.id,
    link: link.address,
    state,
    ...connection.sent,
    roundTripMs: roundTripFigure(connection.roundTripMs),
  };
}
