/**
 * The receiver's refusals and aborts, as the errors the user sees: each
 * names its exit code (src/errors.ts) and what to do.
 */
import { VmError } from "../errors.ts";
import { AbortCode, RefuseReason } from "../protocol/xdr.generated.ts";

/** Turns a refusal into the error the user sees; `fatal` ends the transfer, `busy` is waited on (busy-wait.ts). */
export function refusalError(reason: RefuseReason, text: string, target: string): { error: VmError; fatal: boolean; busy?: boolean } {
  switch (reason) {
    case RefuseReason.REFUSE_CHECKPHRASE:
      return {
        error: new VmError("checkphrase", `receiver ${target} refused the checkphrase; give both ends the same 'checkphrase WORD'`),
        fatal: true,
      };
    case RefuseReason.REFUSE_VERSION:
      return { error: new VmError("protocol", `receiver ${target}: ${text}; run the same viamillipede version on both ends`), fatal: true };
    case RefuseReason.REFUSE_SESSION_BUSY:
      return { error: new VmError("busy", `receiver ${target} refused: ${text}`), fatal: false, busy: true };
    case RefuseReason.REFUSE_KEY:
    case RefuseReason.REFUSE_CAPABILITY:
      return { error: new VmError("key", `receiver ${target} refused: ${text}`), fatal: true };
    case RefuseReason.REFUSE_SESSION_OVER:
      return { error: new VmError("peerLost", `receiver ${target} turned the connection away: ${text}`), fatal: true };
    case RefuseReason.REFUSE_TOO_MANY_CONNECTIONS:
      return { error: new VmError("protocol", `receiver ${target} has enough connections: ${text}`), fatal: false };
    default:
      return { error: new VmError("protocol", `receiver ${target} refused the connection: ${text}`), fatal: true };
  }
}

/** A dial that failed: `fatal` when retrying cannot help (wrong checkphrase, version...); `busy`: the receiver holds another transfer. */
export class DialFailure extends Error {
  constructor(
    readonly error: VmError | Error,
    readonly fatal: boolean,
    readonly busy = false,
  ) {
    super(error.message);
  }
}

/** The receiver aborted the transfer (an ABORT frame) with `code`. */
export function abortError(code: number, text: string): VmError {
  switch (code) {
    case AbortCode.ABORT_OUTPUT_CLOSED:
      return new VmError("outputClosed", `receiver's output was closed: ${text}`);
    case AbortCode.ABORT_INTEGRITY:
      return new VmError("integrity", `receiver detected corruption: ${text}`);
    case AbortCode.ABORT_PROTOCOL:
      return new VmError("protocol", `receiver reported a protocol error: ${text}`);
    default:
      return new VmError("peerLost", `receiver aborted the transfer: ${text}`);
  }
}
