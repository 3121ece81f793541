/**
 * Whether the receiver can be reached, for `patience` and busy refusals.
 *
 *  1. A failed dial is remembered (the message patience gives), and said
 *     once while nothing is up.
 *  2. A busy refusal opens a wait (busy-wait.ts), said once; once the wait
 *     is over the transfer gives up with exit 11.
 *  3. A connection up ends both; the last one down starts the patience count.
 *  4. `givenUp`: no connection for `patience` seconds, with the reason.
 *
 * State it owns: since when nothing is up, whether anything ever was, the
 * last dial error and the busy wait. The pool says when nothing is up.
 */
import type { Clock } from "../clock.ts";
import { VmError } from "../errors.ts";
import { log } from "../log.ts";
import type { TransmitterOptions } from "../options.ts";
import { busyWaitMs, BusyWait } from "./busy-wait.ts";
import type { Link } from "./links.ts";

export class Reachability {
  private everConnected = false;
  private downSinceMs: number;
  private lastDialError = "";
  private warnedUnreachable = false;
  private readonly busyWait: BusyWait;
  /** The receiver's last busy refusal, as the error a give-up reports. */
  private busyError: VmError | undefined;

  constructor(
    private readonly options: Pick<TransmitterOptions, "timeoutS" | "patienceS">,
    private readonly clock: Clock,
    private readonly links: readonly Link[],
  ) {
    this.downSinceMs = clock.now();
    this.busyWait = new BusyWait(busyWaitMs(options.timeoutS, options.patienceS));
  }

  /** A dial failed (not busy); `nothingUp`: no connection is up. */
  dialFailed(message: string, nothingUp: boolean): void {
    this.busyError = undefined; // patience reports what failed last
    this.lastDialError = message;
    if (!this.warnedUnreachable && nothingUp) {
      this.warnedUnreachable = true;
      const patience = this.options.patienceS === 0 ? "forever" : `for up to ${this.options.patienceS}s`;
      log.warn(`${message}; retrying ${patience}`);
    }
  }

  /**
   * The receiver holds another transfer: wait, saying so once, since it gives
   * up one that was abandoned. Returns the error to give up with once the wait is over.
   */
  busy(refusal: VmError): VmError | undefined {
    const waitS = this.busyWait.limitMs / 1000;
    this.busyError = new VmError("busy", `${refusal.message}; still busy after ${waitS}s: wait for that transfer to finish or use another port`);
    const verdict = this.busyWait.refused(this.clock.now());
    if (verdict === "first") log.warn(`${refusal.message}; waiting up to ${waitS}s for it to finish or be given up`);
    return verdict === "over" ? this.busyError : undefined;
  }

  /** A connection got in. */
  connected(): void {
    this.everConnected = true;
    this.busyWait.reset();
    this.busyError = undefined;
  }

  /** The last connection went down. */
  down(): void {
    this.downSinceMs = this.clock.now();
  }

  /** Why the transfer gives up, once nothing has been up for `patience` (call only while nothing is up). */
  givenUp(): VmError | undefined {
    if (this.options.patienceS === 0) return undefined;
    if ((this.clock.now() - this.downSinceMs) / 1000 < this.options.patienceS) return undefined;
    if (this.busyError !== undefined) return this.busyError;
    const targets = this.links.map((link) => link.address).join(", ");
    return this.everConnected
      ? new VmError("peerLost", `lost every connection to the receiver (${targets}) for ${this.options.patienceS}s: ${this.lastDialError || "no answer"}`)
      : new VmError("unreachable", `receiver ${targets} not reachable within ${this.options.patienceS}s: ${this.lastDialError || "no answer"}`);
  }
}
