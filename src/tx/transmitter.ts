import type { TransmitterOptions } from "../options.ts";
import { VmError } from "../errors.ts";

/** Reads stdin and sends it; resolves once the receiver confirmed the whole stream. */
export async function transmit(_options: TransmitterOptions): Promise<void> {
  throw new VmError("internal", "transmitter under construction");
}
