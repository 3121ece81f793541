/**
 * A serving receiver's memory: one byte budget for the foot memory of all
 * its sessions together (serveMemoryBytes: 160 MiB up to 13 sessions, 12 MiB
 * a session beyond), split in equal, fixed shares.
 * Pure: the receiver asks what a session of a given foot size takes, and
 * admission compares that with what the running sessions leave free.
 *
 * A session's budget is its window plus the records still arriving beyond
 * it (session.ts, "Memory"). Serving, both are cut to the session's share,
 * `total / sessions`: the window to what is left of the share after the
 * records arriving, never more than `buffer`; the records arriving to a
 * quarter of the share, never more than ASSEMBLY_BYTES. Neither goes below
 * the floor a session needs to move at all (MIN_WINDOW_FEET feet and
 * MIN_RECORDS_IN_ASSEMBLY records), so a session whose feet are too large
 * for its share takes more than a share (at most 6 feet of 16 MiB, 96 MiB):
 * it starts only while that much is free, and is otherwise refused busy.
 *
 * Fixed shares cannot deadlock: each session's budget is its own from its
 * start to its end, as for a receiver of one transfer (the foot the output
 * waits on always finds room, session.ts), and no session ever waits for
 * memory another one holds. What it costs: a lone session gets its share,
 * not the whole budget (fewer `sessions` give each a larger window).
 *
 * Bytes are counted in feet; each record also carries a header of at most
 * FOOT_RECORD_OVERHEAD_BYTES (128 bytes), beside the budget.
 */
import { DEFAULT_FOOT_BYTES, MIN_WINDOW_FEET } from "../options.ts";
import { assemblyRecords, maxWindowFeet } from "./record-budget.ts";

/** A serving session's floor beyond its window: one record in progress and one to spare (its share is fixed for its life). */
const MIN_RECORDS_IN_ASSEMBLY = 2;

/**
 * The foot memory of every session of a serving receiver together, up to 13
 * sessions. With the default 4 sessions of 2 MiB feet, 40 MiB each (a
 * 30 MiB window and 10 MiB arriving): four 64 MiB transfers at once peaked
 * at 208–213 MiB RSS into stalled consumers and 213–225 MiB into fast ones
 * (test/e2e/serve.test.ts asserts ≤ 256 MiB), against 355 and 265–301 MiB
 * with a whole 80 MiB budget per session; shares of 192 MiB peaked at
 * 238–248 MiB, too near the bound.
 */
export const SERVE_MEMORY_BYTES = 160 * 1024 * 1024;

/**
 * The shared memory of a receiver serving `sessions` at once:
 * SERVE_MEMORY_BYTES, or, where that leaves a session of 2 MiB feet less
 * than its floor (more than 13 sessions), the floors of all of them: 192 MiB
 * at the most sessions, 16.
 */
export function serveMemoryBytes(sessions: number): number {
  return Math.max(SERVE_MEMORY_BYTES, sessions * (MIN_WINDOW_FEET + MIN_RECORDS_IN_ASSEMBLY) * DEFAULT_FOOT_BYTES);
}

/** What one serving session takes: its window in feet, records beyond it, and the bytes of feet of both. */
export interface SessionShare {
  windowFeet: number;
  assemblyRecords: number;
  budgetBytes: number;
}

/** The share of a session of `footBytes` feet among `sessions`, its window at most `bufferBytes`, out of `totalBytes`. */
export function sessionShare(footBytes: number, sessions: number, bufferBytes: number, totalBytes = serveMemoryBytes(sessions)): SessionShare {
  const shareFeet = Math.floor(totalBytes / sessions / footBytes);
  const assembly = Math.max(MIN_RECORDS_IN_ASSEMBLY, Math.min(assemblyRecords(footBytes), Math.floor(shareFeet / 4)));
  const windowFeet = Math.max(MIN_WINDOW_FEET, Math.min(maxWindowFeet(footBytes, bufferBytes), shareFeet - assembly));
  return { windowFeet, assemblyRecords: assembly, budgetBytes: (windowFeet + assembly) * footBytes };
}
