/**
 * Logging: consola, always on stderr (stdout carries the user's data only),
 * through the writer in src/stderr.ts, so a log line that stderr cannot take
 * is dropped and counted instead of ending or stalling the transfer.
 * The original's `verbose 0..20` maps onto consola's numeric levels.
 */
import { createConsola, type ConsolaInstance, type ConsolaReporter } from "consola/core";
import { processStderr, stderrIsTerminal, stderrWriter } from "./stderr.ts";

/** verbose 0 → warnings and errors; 1–4 → info; 5–9 → debug; 10+ → trace. */
export function levelForVerbose(verbose: number): number {
  if (verbose <= 0) return 1;
  if (verbose < 5) return 3;
  if (verbose < 10) return 4;
  return 5;
}

/** Called before each log line: the progress line steps aside (src/status/board.ts). */
let beforeLine: (() => void) | undefined;

export function setBeforeLogLine(hook: (() => void) | undefined): void {
  beforeLine = hook;
}

/**
 * What consola writes to: stderrWriter, with the hook in front of every write.
 * On a terminal it inherits the rest (isTTY, columns) from process.stderr for
 * consola's own reporters; elsewhere nothing reads more than `write`, and
 * process.stderr is not made (about 9 ms of every start).
 */
function logStream(terminal: boolean): NodeJS.WriteStream {
  return Object.create(terminal ? processStderr() : {}, {
    write: {
      value: (chunk: string | Uint8Array): boolean => {
        beforeLine?.();
        stderrWriter.write(chunk);
        // Never ask consola to wait for 'drain': what cannot be written is dropped.
        return true;
      },
    },
  }) as NodeJS.WriteStream;
}

/**
 * consola's basic format ("[warn] text"; every call here passes one string),
 * written without its node:util and node:tty, which add about 5 ms to every
 * start, and our starts are on the clock (bench/wan.md).
 */
const plainReporter: ConsolaReporter = {
  log: (entry, context) => {
    context.options.stderr?.write(`[${entry.type}] ${entry.args.map(String).join(" ")}\n`);
  },
};

function makeLogger(level: number): ConsolaInstance {
  const terminal = stderrIsTerminal;
  const stream = logStream(terminal);
  const logger = createConsola({
    level,
    // consola writes info and below to stdout by default; never here.
    stdout: stream,
    stderr: stream,
    throttle: 0,
    reporters: [plainReporter],
    formatOptions: { date: false, colors: terminal },
  });
  // On a terminal, consola's own icons and colours. Loaded at once, not later: its
  // import makes fd 1 non-blocking, which src/stdio-pipes.ts then undoes.
  if (terminal) logger.setReporters((require("consola") as typeof import("consola")).createConsola({ fancy: true }).options.reporters);
  return logger;
}

/** The process-wide logger; setVerbose() adjusts it once options are known. */
export const log: ConsolaInstance = makeLogger(1);

export function setVerbose(verbose: number): void {
  log.level = levelForVerbose(verbose);
}

/** `quiet`: errors only. */
export function setQuiet(): void {
  log.level = 0;
}

/** SIGUSR2 steps through these verbosities, then back to the first. */
export const VERBOSE_STEPS = [0, 1, 5, 10] as const;

/** The verbosity after `verbose` on SIGUSR2. */
export function nextVerbose(verbose: number): number {
  return VERBOSE_STEPS.find((step) => step > verbose) ?? VERBOSE_STEPS[0];
}

/** Bytes a command run by `exec` wrote to its stderr: passed to ours as they are, after the progress line steps aside. */
export function passThroughStderr(bytes: Uint8Array): void {
  beforeLine?.();
  stderrWriter.write(bytes);
}
