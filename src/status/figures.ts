/**
 * What either end knows about its transfer, as plain data: the status block
 * (SIGUSR1), the progress line, the end summary and the `stats FILE` JSON
 * are all drawn from it.
 */
/** What status output and summaries show for a link. */
export type LinkState = "connecting" | "up" | "down";

/** One link's figures (tx: an address of the receiver; rx: a local address). */
export interface LinkFigures {
  /** 1 is the most preferred. */
  link: number;
  address: string;
  state: LinkState;
  connections: number;
  /** Foot bytes handed to its connections, re-sends included. */
  bytesSent: number;
  feetSent: number;
  /** Foot bytes the receiver acknowledged from this link. */
  bytesDelivered: number;
  feetDelivered: number;
  /** Delivery rate over the last two seconds. */
  bytesPerSecond: number;
}

/** One connection, as status output shows it. */
export interface ConnectionFigures {
  id: number;
  /** tx: the link's address; rx: the local address the connection arrived on. */
  link: string;
  state: "up" | "draining" | "closed";
  /** Foot payload bytes carried (sent by tx, received by rx), copies included. */
  bytes: number;
  feet: number;
  /** Feet carried again: re-sends and hedged copies. */
  retransmits: number;
  /** Heartbeat round trip, once one was measured. */
  roundTripMs: number | null;
}

/** A serving receiver's session (rx `serve`): one transfer among several on its port. */
export interface SessionFigures {
  /** The transmitter's session id, hex. */
  id: string;
  /** The transmitter's `label`, if it sent one. */
  label: string | null;
  /** The transmitter's address, as its first connection saw it. */
  peer: string;
  state: "running" | "complete" | "failed";
  /** Stream bytes written to its output. */
  bytes: number;
  feet: number;
  /** From its first hello to its end (or now). */
  elapsedSeconds: number;
  /** Its stream digest, hex, once complete. */
  digest: string | null;
  /** Why it failed. */
  error: string | null;
}

/** One end of a transfer at one moment. */
export interface TransferFigures {
  role: "tx" | "rx";
  /** When the transfer began (the role's clock, in ms; rx: when a transmitter connected), or null before. */
  startedMs: number | null;
  /** Stream bytes done: tx acknowledged by the receiver, rx written to stdout. */
  bytes: number;
  feet: number;
  /** Feet read and not yet acknowledged (tx), or received and waiting for their turn (rx). */
  feetInFlight: number;
  /** The receiver's window, in feet. */
  windowFeet: number;
  /** rx: feet held in the reorder buffer. */
  reorderFeet: number | null;
  /** Feet sent (tx) or received (rx) more than once. */
  retransmits: number;
  connections: ConnectionFigures[];
  /** tx: connections it keeps (`threads`, at least one per link); rx: null (it takes what comes). */
  connectionsWanted: number | null;
  /** tx: per link in preference order; rx: per local address. */
  links: LinkFigures[];
  /** The end-of-stream digest, hex, once the stream is complete (serving: per session, in `sessions`). */
  digest: string | null;
  /** rx with `serve`: the sessions held now and the last ones that ended; the totals above cover every session. */
  sessions?: SessionFigures[];
}

/** Something that can say, at any moment, how its transfer stands. */
export type FiguresSource = () => TransferFigures;

/** A heartbeat round trip as the figures show it: to the microsecond, null before the first. */
export function roundTripFigure(roundTripMs: number | undefined): number | null {
  return roundTripMs === undefined ? null : Math.round(roundTripMs * 1000) / 1000;
}
