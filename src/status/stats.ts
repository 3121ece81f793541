/**
 * The `stats FILE` document: the end summary's figures plus per-connection
 * and per-link detail and the stream digest, one entry per role that ran.
 * Its JSON Schema is stats.schema.json (README "Statistics file"); a test
 * validates real output against it.
 */
import { writeFileSync } from "node:fs";
import { VmError } from "../errors.ts";
import type { ConnectionFigures, LinkFigures, SessionFigures } from "./figures.ts";
import type { Snapshot } from "./format.ts";

export const STATS_VERSION = 2;

export interface TransferStats {
  role: "tx" | "rx";
  bytes: number;
  feet: number;
  elapsedSeconds: number;
  averageBytesPerSecond: number;
  retransmits: number;
  expectedBytes: number | null;
  /** Hex XXH3 chain over the feet's checksums (protocol/README.md), once the stream completed. */
  digest: string | null;
  connections: ConnectionFigures[];
  links: LinkFigures[];
  /** rx with `serve`: its sessions (those held at the end and the last that ended). */
  sessions?: SessionFigures[];
}

export interface StatsDocument {
  version: number;
  startedAt: string;
  exitCode: number;
  error: string | null;
  /** Lines for stderr that it could not take (full disk, closed pipe, hung-up terminal) and were dropped. */
  stderrLinesDropped: number;
  transfers: TransferStats[];
}

/**
 * Writes the stats file: empty at the start, to prove it can be written, and
 * the document at the end. Throws VmError("usage") when it cannot: at the
 * start that ends the run (exit 2) before any transfer; at the end the CLI
 * only warns, and the transfer's outcome keeps its exit status.
 */
export function writeStatsFile(file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new VmError("usage", `cannot write the stats file ${file}: ${code}; give a writable path`);
  }
}

export function statsDocument(
  snapshots: readonly Snapshot[],
  outcome: { exitCode: number; error: string | null },
  startedAt: Date,
  stderrLinesDropped = 0,
): StatsDocument {
  return {
    version: STATS_VERSION,
    startedAt: startedAt.toISOString(),
    exitCode: outcome.exitCode,
    error: outcome.error,
    stderrLinesDropped,
    transfers: snapshots.map((snapshot) => ({
      role: snapshot.figures.role,
      bytes: snapshot.figures.bytes,
      feet: snapshot.figures.feet,
      elapsedSeconds: Math.round(snapshot.elapsedSeconds * 1000) / 1000,
      averageBytesPerSecond: Math.round(snapshot.averageBytesPerSecond),
      retransmits: snapshot.figures.retransmits,
      expectedBytes: snapshot.expectedBytes,
      digest: snapshot.figures.digest,
      connections: snapshot.figures.connections,
      links: snapshot.figures.links,
      ...(snapshot.figures.sessions === undefined ? {} : { sessions: snapshot.figures.sessions }),
    })),
  };
}
