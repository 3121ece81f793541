/**
 * The one error type. Every failure a user can meet is a VmError with a code;
 * only the CLI turns codes into exit statuses (see EXIT_CODES).
 */

export const EXIT_CODES = {
  /** Bad keywords, flags or values on the command line. */
  usage: 2,
  /** No connection to the receiver within `patience`. */
  unreachable: 3,
  /** The receiver refused our checkphrase. */
  checkphrase: 4,
  /** The peer speaks another protocol version, or is not viamillipede at all. */
  protocol: 5,
  /** The receiver's stdout was closed by its consumer. */
  outputClosed: 6,
  /** Reading stdin failed. */
  input: 7,
  /** The receiver could not listen on its port (in use, no permission). */
  listen: 8,
  /** Totals, digest or a foot's checksum did not match and could not be repaired. */
  integrity: 9,
  /** The peer went away or aborted the session before it was complete. */
  peerLost: 10,
  /** The receiver is serving another session. */
  busy: 11,
  /** The peer does not hold the same key, one side has none, or they disagree on encrypt. */
  key: 12,
  /** The command whose output is the stream (tx's `exec`) exited non-zero or was killed: the transfer was aborted, never ended. */
  producerFailed: 13,
  /** The command that read the stream (rx's `exec`) exited non-zero, was killed or could not be started. */
  consumerFailed: 14,
  /** Interrupted by a signal: 130 is SIGINT's; main.ts exits 129 for SIGHUP and 143 for SIGTERM. */
  interrupted: 130,
  /** A bug: anything not covered above. */
  internal: 1,
} as const;

export type ErrorCode = keyof typeof EXIT_CODES;

export class VmError extends Error {
  override readonly name = "VmError";
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }

  get exitCode(): number {
    return EXIT_CODES[this.code];
  }
}

/** Wraps anything thrown into a VmError, keeping VmErrors as they are. */
export function asVmError(error: unknown): VmError {
  if (error instanceof VmError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new VmError("internal", `internal error: ${message}`);
}

/**
 * Calls `interrupt` with the signal's reason when it aborts, or at once if it
 * already has: a listener added after the abort never runs, and a role that
 * missed its stop would wait forever (a tunnel's far end can fail while our
 * receiver is still starting).
 */
export function onInterrupt(signal: AbortSignal | undefined, interrupt: (reason: string) => void): void {
  if (signal === undefined) return;
  const fire = (): void => interrupt(String(signal.reason ?? "signal"));
  if (signal.aborted) fire();
  else signal.addEventListener("abort", fire, { once: true });
}
