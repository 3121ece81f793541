/**
 * Logging: consola, always on stderr (stdout carries the user's data only).
 * The original's `verbose 0..20` maps onto consola's numeric levels.
 */
import { createConsola, type ConsolaInstance } from "consola";

/** verbose 0 → warnings and errors; 1–4 → info; 5–9 → debug; 10+ → trace. */
export function levelForVerbose(verbose: number): number {
  if (verbose <= 0) return 1;
  if (verbose < 5) return 3;
  if (verbose < 10) return 4;
  return 5;
}

function makeLogger(level: number): ConsolaInstance {
  return createConsola({
    level,
    // consola writes info and below to stdout by default; never here.
    stdout: process.stderr,
    stderr: process.stderr,
    throttle: 0,
    fancy: process.stderr.isTTY === true,
    formatOptions: { date: false, colors: process.stderr.isTTY === true },
  });
}

/** The process-wide logger; setVerbose() adjusts it once options are known. */
export const log: ConsolaInstance = makeLogger(1);

export function setVerbose(verbose: number): void {
  log.level = levelForVerbose(verbose);
}
