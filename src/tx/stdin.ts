/**
 * The transmitter's input: a ByteSource over fd 0.
 *
 * fs.read runs on Bun's thread pool, so a slow producer never blocks the
 * event loop, and reads happen only when the chunker asks: while the window
 * is full nothing is read and the producer feels the backpressure.
 */
import fs from "node:fs";
import { systemClock } from "../clock.ts";
import { VmError } from "../errors.ts";

/** Something to read the stream from. `read` resolves 0 at end of stream. */
export interface ByteSource {
  read(into: Uint8Array): Promise<number>;
}

/** How long to wait before retrying when fd 0 is non-blocking and empty. */
const EAGAIN_RETRY_MS = 2;

export function stdinSource(fd = 0): ByteSource {
  return {
    read(into) {
      return new Promise((resolve, reject) => {
        const attempt = () =>
          fs.read(fd, into, 0, into.length, null, (error, bytesRead) => {
            if (error === null) return resolve(bytesRead);
            // fd 0 is the process's: its retry runs on the wall clock whatever the transmitter's clock.
            if (error.code === "EAGAIN") return void systemClock.after(EAGAIN_RETRY_MS, "stdin EAGAIN retry", attempt);
            reject(new VmError("input", `cannot read stdin: ${error.code ?? error.message}`));
          });
        attempt();
      });
    },
  };
}
