/**
 * Where a session's stream goes: the process's stdout, or a command the
 * receiver runs for that session (`exec`), one per session when serving.
 *
 * The receiver asks its OutputFactory for one SessionOutput when a session
 * starts, writes the verified stream into `sink` in order, then either
 * `finish()`es it (the whole stream was written and matched its digest: the
 * consumer sees a clean end, and its verdict, if it is a command, travels
 * back inside the confirmation) or `abort()`s it (the session failed: the
 * consumer must never take a shorter stream for a whole one).
 */
import type { VmError } from "../errors.ts";
import type { ConsumerVerdict } from "../protocol/xdr.generated.ts";
import type { ByteSink } from "./stdout.ts";

/** What a session's output is told about the session it serves. */
export interface SessionInfo {
  sessionId: bigint;
  /** The transmitter's label (a version 2 hello), if it sent one. */
  label: string | undefined;
  /** The transmitter's address, as the first connection saw it. */
  peer: string;
}

export interface SessionOutput {
  /** The stream's bytes, in order; a write rejects with VmError("outputClosed") if the consumer went away. */
  readonly sink: ByteSink;
  /** A command reads the stream and will have a verdict: the welcome promises it (CAP_VERDICT) to a transmitter that asks. */
  readonly hasVerdict: boolean;
  /** The stream is complete: end the consumer's input cleanly and wait for it; its verdict (undefined for stdout). */
  finish(): Promise<ConsumerVerdict | undefined>;
  /**
   * The session failed: the consumer must not see a clean end of input.
   * Resolves once it is dealt with, with how a command ended (it went away
   * by itself, or was stopped), undefined for stdout.
   */
  abort(reason: VmError): Promise<ConsumerVerdict | undefined>;
}

export type OutputFactory = (session: SessionInfo) => SessionOutput;

/** A plain sink (stdout, a test's memory) as an output: nothing to wait for, no verdict. */
export function sinkOutput(sink: ByteSink): SessionOutput {
  return { sink, hasVerdict: false, finish: async () => undefined, abort: async () => undefined };
}
