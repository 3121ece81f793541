import type { ReceiverOptions } from "../options.ts";
import { VmError } from "../errors.ts";

/** Receives one session and writes it to stdout; resolves once it is confirmed. */
export async function receive(_options: ReceiverOptions): Promise<void> {
  throw new VmError("internal", "receiver under construction");
}
