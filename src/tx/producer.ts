/**
 * `tx ... exec COMMAND [ARG...]`: the transmitter reads a command's stdout
 * instead of its own stdin (the command gets our stdin; its stderr passes
 * through, src/exec.ts).
 *
 * The input ends only when the command's stdout ends AND the command exited
 * 0. If it exited non-zero or was killed, `read` rejects with
 * VmError("producerFailed") instead of returning the end: the transmitter
 * then aborts (ABORT_PRODUCER_FAILED) rather than announce the end of a
 * shorter stream, so the receiver never presents it as complete.
 *
 * Reads happen only when the chunker asks (window room), so a fast command
 * feels the backpressure through its pipe.
 */
import { VmError } from "../errors.ts";
import { succeeded, type Command } from "../exec.ts";
import type { ByteSource } from "./stdin.ts";

export function producerSource(command: Command): ByteSource {
  const reader = command.stdout?.getReader();
  /** What the last chunk held beyond what the chunker took. */
  let leftover: Uint8Array | undefined;
  let outputEnded = reader === undefined;
  return {
    async read(into) {
      while (leftover === undefined && !outputEnded) {
        // A read that fails is the end of its output; how it ended decides what that means.
        const next = await reader!.read().catch(() => undefined);
        if (next === undefined || next.done) outputEnded = true;
        else if (next.value !== undefined && next.value.length > 0) leftover = next.value;
      }
      if (leftover !== undefined) {
        const n = Math.min(into.length, leftover.length);
        into.set(leftover.subarray(0, n));
        leftover = n === leftover.length ? undefined : leftover.subarray(n);
        return n;
      }
      const end = await command.ended;
      if (!succeeded(end)) throw new VmError("producerFailed", `the sending command failed: ${command.describe(end)}`);
      return 0;
    },
  };
}
