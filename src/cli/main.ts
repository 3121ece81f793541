#!/usr/bin/env bun
/**
 * The entry point, and the only place that decides exit statuses.
 *
 * 1. `--help` / `--version` are answered on stdout (exit 0).
 * 2. The command line becomes an Invocation; a usage error is one line on
 *    stderr ending in a pointer to --help (exit 2).
 * 3. The verbosity is applied, then the roles run (roles.ts): `receive`,
 *    `transmit`, or both at once (full duplex, perhaps around a tunnel).
 * 4. The outcome becomes the exit status: 0, a VmError's code (the first
 *    failure's, when both roles run), or 1 for anything else (a bug), each
 *    failure as one line on stderr.
 *
 * `main` returns the status and has no process-wide effects beyond the log
 * level, so tests can call it; `runAsEntry` adds the signal and crash handlers
 * and calls process.exit, and runs only when this file is the entry.
 */
import { VmError, asVmError } from "../errors.ts";
import { setVerbose } from "../log.ts";
import type { Invocation } from "../options.ts";
import { builtinRequest, helpText, parseCommandLine, versionText } from "./command.ts";
import { loadKeys } from "./key-file.ts";
import { realRoles, runInvocation, type Roles } from "./roles.ts";

export type { Roles } from "./roles.ts";

const PROGRAM = "viamillipede";
/** At this verbosity an internal error also prints its stack. */
export const STACK_VERBOSE = 10;
/** Exit statuses for signals follow the shell's 128 + signal number. */
export const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
/** After a signal, how long the roles get to tell their peer before we exit anyway. */
const INTERRUPT_GRACE_MS = 2_000;

/** Where main writes; tests pass their own. */
export interface MainIo {
  /** Resolves once the text is handed to the OS (or stdout is gone). */
  stdout(text: string): Promise<void>;
  stderr(text: string): void;
}

export interface MainDeps {
  io: MainIo;
  roles: Roles;
  /** main records the verbosity here once known; the crash handlers read it. */
  state: { verbose: number };
  /** Aborted (with the signal's name as reason) when the user interrupts. */
  interrupt: AbortController;
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
  stderr: (text) => {
    process.stderr.write(text);
  },
};

const defaultRoles: Roles = realRoles((text) => processIo.stderr(`${PROGRAM}: ${text}\n`));

/**
 * What to print for a failure and the exit status it maps to: a VmError's own
 * message and code; anything else is an internal error (with its stack at
 * verbose ≥ STACK_VERBOSE).
 */
export function describeFailure(error: unknown, verbose: number): { text: string; exitCode: number } {
  const failure = asVmError(error);
  // One line, even if a message spans several.
  const message = failure.message.replace(/\s*\n\s*/g, " ");
  const hint = failure.code === "usage" ? ` (see '${PROGRAM} --help')` : "";
  let text = `${PROGRAM}: ${message}${hint}\n`;
  if (!(error instanceof VmError) && verbose >= STACK_VERBOSE && error instanceof Error && error.stack) {
    text += `${error.stack}\n`;
  }
  return { text, exitCode: failure.exitCode };
}

function verboseOf(invocation: Invocation): number {
  return (invocation.receive ?? invocation.transmit)?.verbose ?? 0;
}

/** Runs one command line and returns the exit status. Never throws. */
export async function main(argv: readonly string[], deps: Partial<MainDeps> = {}): Promise<number> {
  const io = deps.io ?? processIo;
  const roles = deps.roles ?? defaultRoles;
  const state = deps.state ?? { verbose: 0 };
  const interrupt = deps.interrupt ?? new AbortController();
  const fail = (error: unknown): number => {
    const { text, exitCode } = describeFailure(error, state.verbose);
    io.stderr(text);
    // An interrupted transfer exits as the signal that stopped it (130, 143).
    const signal = interrupt.signal.aborted ? String(interrupt.signal.reason) : "";
    return signal in SIGNAL_EXIT_CODES ? SIGNAL_EXIT_CODES[signal as keyof typeof SIGNAL_EXIT_CODES] : exitCode;
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
    setVerbose(state.verbose);
    await runInvocation(invocation, roles, interrupt.signal, (text) => io.stderr(`${PROGRAM}: ${text}\n`));
    return 0;
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
    process.on(signal, () => {
      if (interrupt.signal.aborted) process.exit(exitCode); // a second signal: stop now
      // The role tells its peer and settles; main then exits with this code.
      interrupt.abort(signal);
      setTimeout(() => {
        io.stderr(`${PROGRAM}: interrupted by ${signal}\n`);
        process.exit(exitCode);
      }, INTERRUPT_GRACE_MS).unref();
    });
  }
  process.exit(await main(argv, { ...deps, io, state, interrupt }));
}

if (import.meta.main) {
  await runAsEntry(process.argv.slice(2));
}
