/**
 * End to end, large transfers: 300 MiB of incompressible bytes from a file
 * through `viamillipede tx` with 1, 4 and 16 connections into
 * `viamillipede rx 0`, whose stdout is a pipe hashed as it arrives.
 *
 * Proves: ordering and integrity over many feet and connections (sha256 of
 * input and output), both exit codes 0, nothing on the transmitter's stdout,
 * and no error or warning on either stderr.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { expectCleanTransfer, transfer } from "../support/e2e.ts";
import { killLeftovers, makeInput, makeTempDir, type Input } from "../support/spawn.ts";

const LARGE_BYTES = 300 * 1024 * 1024;
/** One 300 MiB transfer takes a few seconds here; a slow CI machine gets plenty more. */
const LARGE_DEADLINE_MS = 60_000;

let temp: ReturnType<typeof makeTempDir>;
let input: Input;
beforeAll(async () => {
  temp = makeTempDir("e2e-large");
  input = await makeInput(temp.path, LARGE_BYTES, "large");
}, 30_000);
afterAll(() => temp.remove());
afterEach(killLeftovers);

for (const threads of [1, 4, 16]) {
  test(
    `300 MiB over threads ${threads}`,
    async () => {
      const outcome = await transfer(
        ["rx", "0", "bind", "127.0.0.1"],
        (port) => ["tx", "127.0.0.1", `${port}`, "threads", `${threads}`],
        { file: input.path },
        LARGE_DEADLINE_MS - 5_000,
      );
      expectCleanTransfer(outcome, input);
      // Transfers of this size should be quick; report the time with the test.
      console.log(`300 MiB, threads ${threads}: transmitter ran ${(outcome.tx.elapsedMs / 1000).toFixed(2)} s`);
      expect(outcome.tx.elapsedMs).toBeLessThan(LARGE_DEADLINE_MS);
    },
    LARGE_DEADLINE_MS,
  );
}
