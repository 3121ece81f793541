/**
 * What the transmitter says about itself in its hello, and what it hears
 * about the receiver's command (`exec` on rx): the verdict frame, sent once,
 * ahead of the confirmation or an abort, on connections that negotiated
 * CAP_VERDICT (protocol/README.md, "Versions and capabilities").
 *
 * State it owns: the verdict once heard, and the host it came from (for the
 * one-line message: `on backup.example, 'zfs recv -F pool/ds' exited 1: ...`).
 */
import { VmError } from "../errors.ts";
import type { TransmitterOptions } from "../options.ts";
import { consumerSucceeded, describeVerdict, readText, type AnyHello, type ConsumerVerdict } from "../protocol/messages.ts";
import {
  AbortCode,
  CAP_COMPRESS,
  CAP_ENCRYPT,
  CAP_KEY,
  CAP_NONE,
  CAP_PRODUCER_FAILED,
  CAP_VERDICT,
  VM_MAGIC,
  VM_PROTOCOL_VERSION,
} from "../protocol/xdr.generated.ts";
import { abortError } from "./refusals.ts";

/**
 * The hello every connection of this transfer sends: one `sessionId` and
 * foot size for all. Every transmitter offers CAP_VERDICT (it cannot know
 * whether the receiver runs a command) and CAP_PRODUCER_FAILED; a receiver
 * that knows neither ignores them. Only a label changes the hello's layout
 * (version 2).
 */
export function transmitterHello(options: TransmitterOptions, sessionId: bigint, footBytes: number): AnyHello {
  return {
    magic: VM_MAGIC,
    protocolVersion: VM_PROTOCOL_VERSION,
    sessionId,
    checkphrase: new TextEncoder().encode(options.checkphrase),
    footBytes,
    capabilities:
      (options.key === undefined ? CAP_NONE : CAP_KEY) |
      (options.encrypt ? CAP_ENCRYPT : CAP_NONE) |
      (options.compress === undefined ? CAP_NONE : CAP_COMPRESS) |
      CAP_VERDICT |
      CAP_PRODUCER_FAILED,
    connectionId: 0,
    ...(options.label !== undefined && { label: options.label }),
  };
}

export class ReceiverVerdict {
  private verdict: ConsumerVerdict | undefined;
  private host = "";

  /** How the receiver's command ended, once it said so. */
  get value(): ConsumerVerdict | undefined {
    return this.verdict;
  }

  /** A verdict frame from `host` (the first one counts: every connection carries the same). */
  heard(verdict: ConsumerVerdict, host: string): void {
    if (this.verdict !== undefined) return;
    this.verdict = verdict;
    this.host = host;
  }

  /** Before a confirmation on a connection with `capabilities`: the promised verdict must have come first. */
  missingBefore(capabilities: number): VmError | undefined {
    if ((capabilities & CAP_VERDICT) === 0 || this.verdict !== undefined) return undefined;
    return new VmError("protocol", "the receiver confirmed the stream without saying how its command ended");
  }

  /** The command failed (every byte may have arrived, but that is not a success). */
  failure(): VmError | undefined {
    const { verdict } = this;
    return verdict === undefined || consumerSucceeded(verdict) ? undefined : new VmError("consumerFailed", `on ${this.host}, ${describeVerdict(verdict)}`);
  }

  /** What the receiver's abort means: a command that went away and failed says why in its own words. */
  abortReason(abort: { code: number; text: Uint8Array }): VmError {
    const { verdict } = this;
    const failed = this.failure();
    if (failed !== undefined && abort.code === AbortCode.ABORT_OUTPUT_CLOSED) return failed;
    const why = readText(abort.text);
    return abortError(abort.code, verdict === undefined ? why : `${why}; ${describeVerdict(verdict)}`);
  }
}
