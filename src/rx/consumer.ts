/**
 * `rx ... exec COMMAND [ARG...]`: a session's output is a command whose
 * stdin is the stream (a SessionOutput, see output.ts).
 *
 * 1. Started when the session starts, with the session in its environment:
 *    VIAMILLIPEDE_LABEL (the transmitter's `label`, unset without one),
 *    VIAMILLIPEDE_PEER (the transmitter's address), VIAMILLIPEDE_SESSION
 *    (the session id, 16 hex digits). Values are never put into its
 *    arguments. Its stdout is ours; its stderr passes through (src/exec.ts).
 * 2. Each write waits until the pipe has taken the bytes: a slow command
 *    slows the transmitter, as a slow stdout does.
 * 3. `finish`: the whole stream was written and matched its digest. Its
 *    stdin is closed (a clean end of input) and its exit awaited: the
 *    verdict travels back with the confirmation.
 * 4. `abort`: the session failed (the producer failed, the transmitter
 *    vanished, corruption, ^C). The command is stopped before its stdin is
 *    closed (src/exec.ts, stop), so it never reads an end of input: `tar x`
 *    and `zfs recv` would take that for a complete stream.
 *
 * A command that goes away by itself before the end (it exits, or closes its
 * stdin) fails the session with its own verdict (`consumerFailure`); it is
 * given STOP_GRACE_MS to exit before it is stopped, so that verdict is its own.
 */
import { VmError } from "../errors.ts";
import { Command, STOP_GRACE_MS } from "../exec.ts";
import { consumerSucceeded, describeVerdict, type ConsumerVerdict } from "../protocol/messages.ts";
import type { SessionInfo, SessionOutput } from "./output.ts";

/** The environment a session's command runs with (see the header). */
export function consumerEnvironment(session: SessionInfo, base: Record<string, string | undefined> = process.env): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...base };
  // An inherited label would name another transfer.
  delete env.VIAMILLIPEDE_LABEL;
  if (session.label !== undefined) env.VIAMILLIPEDE_LABEL = session.label;
  env.VIAMILLIPEDE_PEER = session.peer;
  env.VIAMILLIPEDE_SESSION = session.sessionId.toString(16).padStart(16, "0");
  return env;
}

/** The output of one session: `argv` run with the session in its environment. */
export function commandOutput(argv: readonly string[], session: SessionInfo): SessionOutput {
  const command = new Command(argv, { stdin: "pipe", stdout: "inherit" }, consumerEnvironment(session));
  const stdin = command.stdin;
  let failure: VmError | undefined;
  const closeInput = async (): Promise<void> => {
    try {
      await stdin?.end();
    } catch {
      // It has gone already: there is nothing left to tell it.
    }
  };
  return {
    hasVerdict: true,
    sink: {
      async write(bytes) {
        if (failure !== undefined) throw failure;
        try {
          if (stdin === undefined) throw new Error("not running");
          // write() returns a promise when the pipe is full: unawaited, its EPIPE would be an unhandled rejection.
          await stdin.write(bytes);
          await stdin.flush();
        } catch {
          throw (failure = new VmError("outputClosed", `'${command.text}' stopped reading before the stream ended`));
        }
      },
    },
    async finish() {
      await closeInput();
      return command.verdict(await command.ended);
    },
    async abort() {
      // A command that stopped reading is leaving by itself: its own exit status, not our SIGTERM, says how it ended.
      const end = await command.stop(failure === undefined ? 0 : STOP_GRACE_MS);
      await closeInput();
      return command.verdict(end);
    },
  };
}

/**
 * The failure a session ends with when its command failed: it exited non-zero,
 * was killed, or could not be started. Undefined when it exited 0.
 */
export function consumerFailure(verdict: ConsumerVerdict): VmError | undefined {
  return consumerSucceeded(verdict) ? undefined : new VmError("consumerFailed", describeVerdict(verdict));
}
