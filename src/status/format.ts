/**
 * Status text, pure: a snapshot of one end in, lines out. The status block
 * (SIGUSR1), the live progress line and the end summary.
 */
import type { TransferFigures } from "./figures.ts";

/** One end's figures with the board's clock and rates around them. */
export interface Snapshot {
  figures: TransferFigures;
  elapsedSeconds: number;
  /** Over the last two seconds. */
  bytesPerSecond: number;
  averageBytesPerSecond: number;
  /** `size BYTES`: what the user expects the stream to be. */
  expectedBytes: number | null;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** 1536 → "1.5 KiB"; bytes below 1 KiB stay whole. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${UNITS[unit]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** 3725 → "1:02:05", 65 → "1:05", 5.2 → "0:05". */
export function formatClock(seconds: number): string {
  const whole = Math.max(0, Math.floor(seconds));
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = whole % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(s).padStart(2, "0")}`;
}

/** Seconds left at the current rate, when the expected size is known and the rate is not zero. */
export function etaSeconds(snapshot: Snapshot): number | null {
  const { expectedBytes, bytesPerSecond, figures } = snapshot;
  if (expectedBytes === null || bytesPerSecond <= 0) return null;
  return Math.max(0, expectedBytes - figures.bytes) / bytesPerSecond;
}

function percent(part: number, whole: number): string {
  return whole > 0 ? `${Math.min(100, (100 * part) / whole).toFixed(0)}%` : "0%";
}

/** " of 8.0 MiB (50%)" when the user gave the expected size, else "". */
function ofExpected(snapshot: Snapshot): string {
  const { expectedBytes, figures } = snapshot;
  return expectedBytes === null ? "" : ` of ${formatBytes(expectedBytes)} (${percent(figures.bytes, expectedBytes)})`;
}

/** Each link's share of the bytes it carried, "1 18%, 2 33%, 3 49%". */
function linkShares(figures: TransferFigures): string {
  const total = figures.links.reduce((sum, link) => sum + link.bytesSent, 0);
  return figures.links.map((link) => `${link.address} ${percent(link.bytesSent, total)}`).join(", ");
}

/**
 * The progress line's fields, in the order they are shown, each with its rank:
 * when the line is too wide, the highest rank goes first (links, then
 * connections, the expected size, elapsed time, ETA, rate, the percentage).
 * Role and bytes are never dropped.
 */
function progressFields(snapshot: Snapshot): { text: string; rank: number }[] {
  const { figures, expectedBytes } = snapshot;
  const linksInUse = figures.links.filter((link) => link.bytesPerSecond > 0).length;
  const eta = etaSeconds(snapshot);
  const conns = `${figures.connections.filter((c) => c.state !== "closed").length}${figures.connectionsWanted === null ? "" : `/${figures.connectionsWanted}`}`;
  const fields = [
    { text: `${figures.role} ${formatBytes(figures.bytes)}`, rank: 0 },
    { text: expectedBytes === null ? "" : `of ${formatBytes(expectedBytes)}`, rank: 6 },
    { text: expectedBytes === null ? "" : `(${percent(figures.bytes, expectedBytes)})`, rank: 1 },
    { text: formatRate(snapshot.bytesPerSecond), rank: 2 },
    { text: formatClock(snapshot.elapsedSeconds), rank: 4 },
    { text: `conns ${conns}`, rank: 7 },
    { text: `links ${linksInUse}/${figures.links.length}`, rank: 8 },
    { text: eta === null ? "" : `ETA ${formatClock(eta)}`, rank: 3 },
  ];
  return fields.filter((field) => field.text !== "");
}

/**
 * The live progress line for one end (without the carriage return), at most
 * `maxChars` long: as pv does on a narrow terminal, the least important
 * fields are left out first, and what still does not fit is cut.
 */
export function progressLine(snapshot: Snapshot, maxChars = Infinity): string {
  let fields = progressFields(snapshot);
  const join = (): string => fields.map((field) => field.text).join(" ");
  while (join().length > maxChars && fields.length > 1) {
    const worst = Math.max(...fields.map((field) => field.rank));
    fields = fields.filter((field) => field.rank !== worst);
  }
  return join().slice(0, Math.max(0, maxChars));
}

/** Between the progress lines of two roles (full duplex). */
const ROLE_SEPARATOR = " | ";

/**
 * The whole progress line, every role's side by side, fitted to a terminal
 * `columns` wide (undefined or 0: not a terminal, no limit). The last column
 * stays empty: a line that reaches it wraps on some terminals, and the next
 * redraw would then erase only the wrapped part.
 */
export function progressLines(snapshots: readonly Snapshot[], columns: number | undefined): string {
  const room = columns !== undefined && columns > 0 ? columns - 1 : Infinity;
  const each = Math.floor((room - ROLE_SEPARATOR.length * (snapshots.length - 1)) / snapshots.length);
  return snapshots.map((snapshot) => progressLine(snapshot, each)).join(ROLE_SEPARATOR);
}

/** The one-line summary at the end. */
export function summaryLine(snapshot: Snapshot): string {
  const { figures } = snapshot;
  const verb = figures.role === "tx" ? "sent" : "received";
  return (
    `viamillipede ${figures.role}: ${verb} ${formatBytes(figures.bytes)} (${figures.bytes} bytes) in ${snapshot.elapsedSeconds.toFixed(2)} s, ` +
    `${formatRate(snapshot.averageBytesPerSecond)}, ${figures.retransmits} retransmits; links ${linkShares(figures) || "none"}`
  );
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length)));
  return rows.map((row) => `  ${row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd()}`);
}

/** Ended sessions the status block lists, newest last (the stats file keeps more). */
export const STATUS_ENDED_SESSIONS = 8;

/** A serving receiver's sessions: every running one, then the last few that ended. */
function sessionRows(figures: TransferFigures): string[] {
  const sessions = figures.sessions;
  if (sessions === undefined) return [];
  const ended = sessions.filter((session) => session.state !== "running");
  const shown = [...ended.slice(-STATUS_ENDED_SESSIONS), ...sessions.filter((session) => session.state === "running")];
  const running = sessions.length - ended.length;
  return [
    `  sessions     ${running} running, ${ended.length} ended${ended.length > STATUS_ENDED_SESSIONS ? ` (the last ${STATUS_ENDED_SESSIONS} shown)` : ""}`,
    ...table([
      ["session", "label", "peer", "state", "bytes", "time"],
      ...shown.map((session) => [session.id, session.label ?? "-", session.peer, session.state, formatBytes(session.bytes), formatClock(session.elapsedSeconds)]),
    ]),
  ];
}

/** The status block printed on SIGUSR1 (SIGINFO): several lines, each ending in a newline. */
export function statusBlock(snapshot: Snapshot): string {
  const { figures } = snapshot;
  const total = figures.links.reduce((sum, link) => sum + link.bytesSent, 0);
  const size = ofExpected(snapshot);
  const eta = etaSeconds(snapshot);
  const lines = [
    `viamillipede ${figures.role} status after ${formatClock(snapshot.elapsedSeconds)}`,
    `  bytes        ${formatBytes(figures.bytes)} (${figures.bytes})${size}${eta === null ? "" : `, ETA ${formatClock(eta)}`}`,
    `  rate         ${formatRate(snapshot.bytesPerSecond)} now, ${formatRate(snapshot.averageBytesPerSecond)} average`,
    `  feet         ${figures.feet} done, ${figures.feetInFlight} in flight, window ${figures.windowFeet}` +
      (figures.reorderFeet === null ? "" : `, reorder buffer ${figures.reorderFeet}`),
    `  retransmits  ${figures.retransmits}`,
    ...sessionRows(figures),
    ...table([
      ["connection", "link", "state", "bytes", "feet", "retransmits", "rtt"],
      ...figures.connections.map((c) => [
        String(c.id),
        c.link,
        c.state,
        formatBytes(c.bytes),
        String(c.feet),
        String(c.retransmits),
        c.roundTripMs === null ? "-" : `${c.roundTripMs.toFixed(1)} ms`,
      ]),
    ]),
    ...table([
      ["link", "address", "state", "connections", "share", "rate"],
      ...figures.links.map((link) => [
        String(link.link),
        link.address,
        link.state,
        String(link.connections),
        percent(link.bytesSent, total),
        formatRate(link.bytesPerSecond),
      ]),
    ]),
  ];
  return `${lines.join("\n")}\n`;
}
