/**
 * The end of a receiving session, either way (session.ts, steps 4 and 5):
 * the output is dealt with first, then the transmitter hears how it ended.
 *
 *  4. `finish`: the stream is whole and matched its digest. The output is
 *     finished (a command sees the end of its input and is waited for), then
 *     every connection gets the confirmation, preceded by the command's
 *     verdict where the welcome promised one (CAP_VERDICT), and the session
 *     is complete. A connection that joins later gets them too.
 *  5. `fail`: the output is aborted first (a command is stopped before it
 *     could read an end of input, consumer.ts), then every connection gets
 *     the abort notice, with the command's verdict ahead of it where
 *     promised. A command that went away by itself is the reason.
 *
 * State it owns: the session's lifecycle (open → finishing → complete, or
 * failed from open or finishing), and the confirmation and verdict frames
 * kept for a transmitter that comes back for them.
 */
import { VmError } from "../errors.ts";
import { abortFrame, closingFrames, type ConsumerVerdict, type ControlFrame } from "../protocol/messages.ts";
import { FrameKind, type EndOfStream } from "../protocol/xdr.generated.ts";
import { consumerFailure } from "./consumer.ts";
import type { SessionOutput } from "./output.ts";
import type { SessionConnection, SessionEvents } from "./session.ts";

/** "finishing": the stream is whole and matched; the output is being finished before the confirmation. */
export type SessionState = "open" | "finishing" | "complete" | "failed";

export class SessionEnd {
  private current: SessionState = "open";
  private confirmation: ControlFrame | undefined;
  /** The output command's verdict, once it ended (sent ahead of the confirmation or the abort). */
  private verdict: ControlFrame | undefined;

  constructor(
    private readonly output: SessionOutput,
    /** The session's joined connections, as they are when each closing frame goes out. */
    private readonly connections: ReadonlyMap<number, SessionConnection>,
    private readonly events: SessionEvents,
  ) {}

  get state(): SessionState {
    return this.current;
  }

  /** A transmitter that lost every connection just before the confirmation comes back for it. */
  joined(connection: SessionConnection): void {
    if (this.confirmation !== undefined) for (const frame of closingFrames(this.confirmation, connection.capabilities, this.verdict)) connection.send(frame);
  }

  /** Step 4: the whole stream, announced by `end`, is written and matched. */
  finish(end: EndOfStream): void {
    this.current = "finishing";
    void this.finishOutput(end);
  }

  /** The output finished (a command ended), the transmitter hears it, then the confirmation. */
  private async finishOutput(end: EndOfStream): Promise<void> {
    let verdict: ConsumerVerdict | undefined;
    try {
      verdict = await this.output.finish();
    } catch (error) {
      return this.fail(error instanceof VmError ? error : new VmError("outputClosed", `the output could not be finished: ${(error as Error).message}`));
    }
    if (this.current !== "finishing") return; // failed meanwhile (interrupted): the abort has gone out
    this.current = "complete";
    this.verdict = verdict === undefined ? undefined : { kind: FrameKind.FRAME_VERDICT, verdict };
    const confirm: ControlFrame = {
      kind: FrameKind.FRAME_CONFIRM,
      confirm: { totalFeet: end.totalFeet, totalBytes: end.totalBytes, digest: end.digest },
    };
    this.confirmation = confirm;
    for (const connection of this.connections.values()) for (const frame of closingFrames(confirm, connection.capabilities, this.verdict)) connection.send(frame);
    this.events.onComplete(verdict);
  }

  /** Step 5: ends the session; `tellPeer` sends the reason to the transmitter. The output is aborted first. */
  fail(error: VmError, tellPeer = true): void {
    if (this.current !== "open" && this.current !== "finishing") return;
    this.current = "failed";
    void this.abortOutput(error, tellPeer);
  }

  private async abortOutput(error: VmError, tellPeer: boolean): Promise<void> {
    let verdict: ConsumerVerdict | undefined;
    try {
      verdict = await this.output.abort(error);
    } catch {
      // Nothing more can be done for the output; the session's reason stands.
    }
    // A command that went away by itself (it exited, or stopped reading) failed the session: its own words are the reason.
    const reason = (verdict !== undefined && error.code === "outputClosed" && consumerFailure(verdict)) || error;
    if (tellPeer) {
      const said = verdict === undefined ? undefined : ({ kind: FrameKind.FRAME_VERDICT, verdict } as const);
      for (const connection of this.connections.values()) {
        for (const frame of closingFrames(abortFrame(reason, connection.capabilities), connection.capabilities, said)) connection.send(frame);
      }
    }
    this.events.onFail(reason);
  }
}
