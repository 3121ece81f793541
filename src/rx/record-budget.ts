/**
 * How much memory a receiving session's foot records may take, in records
 * of one foot: pure sizes, no state. The session (session.ts, "Memory")
 * holds the budget itself; a serving receiver cuts these to each session's
 * share (memory-share.ts).
 *
 *  1. The window starts at DEFAULT_WINDOW_BYTES in feet of the session's
 *     size (receiveWindowFeet) and may grow to `buffer` (maxWindowFeet).
 *  2. Beyond the window, ASSEMBLY_BYTES of records may be arriving on the
 *     connections, at least one record however large the feet
 *     (assemblyRecords).
 *  3. The budget is both together (budgetRecords): at most `buffer` plus
 *     ASSEMBLY_BYTES whatever the foot size or the number of connections.
 *  4. Records up to SMALL_RECORD_BYTES (control frames, short feet) are
 *     assembled outside the budget.
 */
import { DEFAULT_WINDOW_BYTES, MIN_WINDOW_FEET } from "../options.ts";

/** Room in the budget beyond the window, for records still arriving (8 feet of 2 MiB). */
export const ASSEMBLY_BYTES = 16 * 1024 * 1024;
/**
 * Records that may be arriving beyond the window however large feet are.
 * One is enough to make progress: the held feet leave the window's last slot
 * free too (the foot the output waits on is never held). A second record
 * let a peer that asks for the largest feet hold 16 MiB more.
 */
export const MIN_RECORDS_IN_ASSEMBLY = 1;
/**
 * Records up to this size (control frames, short feet) are assembled in
 * fresh memory outside the budget: a connection assembles one record at a
 * time, so they cost at most this much per connection.
 */
export const SMALL_RECORD_BYTES = 64 * 1024;

/** The window a session starts with, in feet of its size: DEFAULT_WINDOW_BYTES of them, at least MIN_WINDOW_FEET, at most `maxFeet`. */
export function receiveWindowFeet(footBytes: number, maxFeet: number): number {
  return Math.min(maxFeet, Math.max(MIN_WINDOW_FEET, Math.floor(DEFAULT_WINDOW_BYTES / footBytes)));
}

/** The most the window may grow to, in feet: `bufferBytes` of them, at least MIN_WINDOW_FEET. */
export function maxWindowFeet(footBytes: number, bufferBytes: number): number {
  return Math.max(MIN_WINDOW_FEET, Math.floor(bufferBytes / footBytes));
}

/** Records of feet of `footBytes` that may be arriving beyond the window: ASSEMBLY_BYTES of them, at least MIN_RECORDS_IN_ASSEMBLY. */
export function assemblyRecords(footBytes: number): number {
  return Math.max(MIN_RECORDS_IN_ASSEMBLY, Math.floor(ASSEMBLY_BYTES / footBytes));
}

/** Budget records for a window of `windowFeet`: the window's, and those being assembled beyond it. */
export function budgetRecords(windowFeet: number, footBytes: number): number {
  return windowFeet + assemblyRecords(footBytes);
}
