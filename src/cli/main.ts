#!/usr/bin/env -S bun --config=/dev/null --no-env-file
/**
 * The entry point, and the only place that decides exit statuses.
 *
 * 1. `--help` / `--version` are answered on stdout (exit 0).
 * 2. The command line becomes an Invocation; a usage error is one line on
 *    stderr ending in a pointer to --help (exit 2).
 * 3. The verbosity is applied, the status board (src/status/) is set up,
 *    then the roles run (roles.ts): `receive`, `transmit`, or both at once
 *    (full duplex, perhaps around a tunnel).
 * 4. The outcome becomes the exit status: 0, a VmError's code (the first
 *    failure's, when both roles run), or 1 for anything else (a bug), each
 *    failure as one line on stderr. The board then prints the summary and
 *    writes the stats file; if that fails, one warning line says so and the
 *    status stays the transfer's.
 *
 * Signals (runAsEntry): SIGHUP/SIGINT/SIGTERM interrupt (the peer is told,
 * one line, exit 128 + the signal's number), except that a serving receiver
 * drains on its first SIGTERM (no new transfers; the running ones get
 * `patience` to finish; exit 0 if they all did) and is interrupted by a
 * second; SIGUSR1 (and SIGINFO where
 * the system has it) prints the status block; SIGUSR2 steps the verbosity.
 *
 * `main` returns the status and has no process-wide effects beyond the log
 * level, so tests can call it; `runAsEntry` adds the signal and crash handlers
 * and calls process.exit, and runs only when this file is the entry.
 */
import { VmError, asVmError } from "../errors.ts";
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { nextVerbose, setBeforeLogLine, setQuiet, setVerbose } from "../log.ts";
import { DEFAULT_REPORT, type Invocation } from "../options.ts";
import { StatusBoard } from "../status/board.ts";
import { stderrIsTerminal, stderrWriter } from "../stderr.ts";
import { writeStatsFile } from "../status/stats.ts";
import { builtinRequest, helpText, parseCommandLine, versionText } from "./command.ts";
import { loadKeys } from "./key-file.ts";
import type { OutputFactory } from "../rx/output.ts";
import { realRoles, runInvocation, type Roles } from "./roles.ts";

export type { Roles } from "./roles.ts";

const PROGRAM = "viamillipede";
/** At this verbosity an internal error also prints its stack. */
export const STACK_VERBOSE = 10;
/**
 * Exit statuses for signals follow the shell's 128 + signal number. SIGHUP
 * (a closed ssh session or terminal) is an interruption like the others: left
 * to its default it would end the process silently, and the peer would wait
 * out its `patience` before giving up.
 */
export const SIGNAL_EXIT_CODES = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;
/** Linux signal numbers of the interrupting signals, for the inherited SigIgn mask. */
const SIGNAL_NUMBERS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

/**
 * Whether `signal` was ignored when the process started (an ignored
 * disposition survives exec: `nohup`, `trap '' HUP`). Installing a handler
 * would undo that, so an ignored SIGHUP is left alone. Read from
 * /proc/self/status (Linux); elsewhere no.
 */
export function ignoredAtStart(signal: string, status = readProcStatus()): boolean {
  const number = SIGNAL_NUMBERS[signal as keyof typeof SIGNAL_NUMBERS];
  const mask = /^SigIgn:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (number === undefined || mask === undefined) return false;
  return ((BigInt(`0x${mask}`) >> BigInt(number - 1)) & 1n) === 1n;
}

function readProcStatus(): string {
  try {
    return readFileSync("/proc/self/status", "utf8");
  } catch {
    return "";
  }
}

/** After a signal, how long the roles get to tell their peer before we exit anyway. */
const INTERRUPT_GRACE_MS = 2_000;

/** Where main writes; tests pass their own. */
export interface MainIo {
  /** Resolves once the text is handed to the OS (or stdout is gone). */
  stdout(text: string): Promise<void>;
  stderr(text: string): void;
  /** Whether stderr is a terminal (the progress line is drawn there by default). */
  stderrIsTerminal?: boolean;
}

export interface MainDeps {
  io: MainIo;
  roles: Roles;
  /**
   * main records the verbosity, the status board and (serving) the drain
   * here once known; the signal and crash handlers read them.
   */
  state: { verbose: number; board?: StatusBoard; drain?: AbortController };
  /** Aborted (with the signal's name as reason) when the user interrupts. */
  interrupt: AbortController;
  /** Where the real receiver's sessions go instead of stdout (a test's files; `exec` gives each its command). */
  output: OutputFactory;
}

export const processIo: MainIo = {
  stdout: (text) =>
    new Promise((resolve) => {
      // A closed stdout (`--help | true`) must not hang or crash the process.
      const done = (): void => {
        process.stdout.off("error", done);
        resolve();
      };
      process.stdout.on("error", done);
      process.stdout.write(text, () => done());
    }),
  // Never throws or waits: what stderr cannot take is dropped and counted (src/stderr.ts).
  stderr: (text) => stderrWriter.write(text),
  stderrIsTerminal,
};

/**
 * What to print for a failure and the exit status it maps to: a VmError's own
 * message and code; anything else is an internal error (with its stack at
 * verbose ≥ STACK_VERBOSE).
 */
export function describeFailure(error: unknown, verbose: number): { text: string; exitCode: number } {
  const failure = asVmError(error);
  const message = oneLine(failure.message);
  const hint = failure.code === "usage" ? ` (see '${PROGRAM} --help')` : "";
  let text = `${PROGRAM}: ${message}${hint}\n`;
  if (!(error instanceof VmError) && verbose >= STACK_VERBOSE && error instanceof Error && error.stack) {
    text += `${error.stack}\n`;
  }
  return { text, exitCode: failure.exitCode };
}

/** A message on one line, even if it spans several. */
function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, " ");
}

function verboseOf(invocation: Invocation): number {
  return (invocation.receive ?? invocation.transmit)?.verbose ?? 0;
}

/** Runs one command line and returns the exit status. Never throws. */
export async function main(argv: readonly string[], deps: Partial<MainDeps> = {}): Promise<number> {
  const io = deps.io ?? processIo;
  const state: MainDeps["state"] = deps.state ?? { verbose: 0 };
  const interrupt = deps.interrupt ?? new AbortController();
  const drain = new AbortController();
  const statusOf = (error: unknown): number => {
    // An interrupted transfer exits as the signal that stopped it (129, 130, 143); so does a drain cut short.
    const drained = drain.signal.aborted && asVmError(error).code === "interrupted";
    const signal = interrupt.signal.aborted ? String(interrupt.signal.reason) : drained ? String(drain.signal.reason) : "";
    return signal in SIGNAL_EXIT_CODES ? SIGNAL_EXIT_CODES[signal as keyof typeof SIGNAL_EXIT_CODES] : describeFailure(error, 0).exitCode;
  };
  const fail = (error: unknown): number => {
    io.stderr(describeFailure(error, state.verbose).text);
    return statusOf(error);
  };
  try {
    const request = builtinRequest(argv);
    if (request === "help") {
      await io.stdout(helpText());
      return 0;
    }
    if (request === "version") {
      await io.stdout(versionText());
      return 0;
    }
    const invocation = await parseCommandLine(argv);
    loadKeys(invocation, process.env);
    state.verbose = verboseOf(invocation);
    if (invocation.receive?.serve === true) state.drain = drain;
    setVerbose(state.verbose);
    const report = invocation.report ?? DEFAULT_REPORT;
    if (report.quiet) setQuiet();
    // `stats FILE` must be writable before the transfer starts, not found unwritable after it.
    if (report.statsFile !== null) writeStatsFile(report.statsFile, "");
    const board = new StatusBoard({ ...report, isTerminal: io.stderrIsTerminal === true, write: (text) => io.stderr(text) });
    state.board = board;
    if (board.showsProgress) setBeforeLogLine(() => board.endLine());
    const announce = (text: string): void => io.stderr(`${PROGRAM}: ${text}\n`);
    const roles = deps.roles ?? realRoles(announce, (role, figures) => board.add(role, figures), deps.output);
    let failure: { error: unknown } | undefined;
    try {
      await runInvocation(invocation, roles, interrupt.signal, announce, drain.signal);
    } catch (error) {
      failure = { error };
    }
    // The board finishes its progress line first, so the error gets a line of its own.
    setBeforeLogLine(undefined);
    const status = failure === undefined ? 0 : statusOf(failure.error);
    try {
      board.close({ exitCode: status, error: failure === undefined ? null : describeFailure(failure.error, 0).text.trim() });
    } catch (error) {
      // Status output (summary, stats file) never changes the outcome: a
      // script must not send again a stream that arrived because its stats
      // could not be written. One line, even with `quiet`: the user asked for that file.
      io.stderr(`${PROGRAM}: warning: ${oneLine(asVmError(error).message)} (only the status output is lost: the exit status stays ${status})\n`);
    }
    return failure === undefined ? 0 : fail(failure.error);
  } catch (error) {
    return fail(error);
  }
}


/**
 * The process around main: signals and stray errors end the process with one
 * line on stderr, then main's status becomes the exit status.
 */
export async function runAsEntry(argv: readonly string[], deps: Partial<MainDeps> = {}): Promise<never> {
  const io = deps.io ?? processIo;
  const state = deps.state ?? { verbose: 0 };
  const crash = (error: unknown): void => {
    const { text, exitCode } = describeFailure(error, state.verbose);
    io.stderr(text);
    process.exit(exitCode);
  };
  process.on("uncaughtException", crash);
  process.on("unhandledRejection", crash);
  const interrupt = new AbortController();
  for (const [signal, exitCode] of Object.entries(SIGNAL_EXIT_CODES)) {
    // `nohup` and `trap '' HUP` ask for a transfer that outlives its terminal: keep their wish.
    if (signal === "SIGHUP" && ignoredAtStart(signal)) continue;
    process.on(signal, () => {
      if (interrupt.signal.aborted) process.exit(exitCode); // a second signal: stop now
      // Serving, the first SIGTERM drains: no new transfers, the running ones finish (within patience).
      if (signal === "SIGTERM" && state.drain !== undefined && !state.drain.signal.aborted) return state.drain.abort(signal);
      // The role tells its peer and settles; main then exits with this code.
      interrupt.abort(signal);
      setTimeout(() => {
        io.stderr(`${PROGRAM}: interrupted by ${signal}\n`);
        process.exit(exitCode);
      }, INTERRUPT_GRACE_MS).unref();
    });
  }
  // The status block: SIGUSR1 as dd does on Linux, SIGINFO (^T) where the system has it.
  const printStatus = (): void => {
    if (state.board === undefined) io.stderr(`${PROGRAM}: status: not started yet\n`);
    else state.board.printStatus();
  };
  process.on("SIGUSR1", printStatus);
  if ("SIGINFO" in constants.signals) process.on("SIGINFO", printStatus);
  process.on("SIGUSR2", () => {
    state.verbose = nextVerbose(state.verbose);
    setVerbose(state.verbose);
    io.stderr(`${PROGRAM}: verbose ${state.verbose} (SIGUSR2 steps through 0, 1, 5, 10)\n`);
  });
  process.exit(await main(argv, { ...deps, io, state, interrupt }));
}

if (import.meta.main) {
  await runAsEntry(process.argv.slice(2));
}
