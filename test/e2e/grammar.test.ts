/**
 * End to end, the original's grammar: scripts hand one option string to both
 * ends, so rx must take tx-only keywords (with one warning) and `checksum`,
 * the spelling of the original README.
 *
 * Proves: the same words on both ends, tx-only ones and `checksum` among
 * them, give a clean transfer; the receiver's stderr has exactly one warning
 * line for all the tx-only words, and the transmitter's none.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { expectDelivered, listeningOnly, transfer, withoutSummaries } from "../support/e2e.ts";
import { killLeftovers, makeInput, makeTempDir, type Input } from "../support/spawn.ts";

const DEADLINE_MS = 20_000;

let temp: ReturnType<typeof makeTempDir>;
let input: Input;
beforeAll(async () => {
  temp = makeTempDir("e2e-grammar");
  input = await makeInput(temp.path, 3 * 1024 * 1024 + 7, "grammar");
});
afterAll(() => temp.remove());
afterEach(killLeftovers);

test(
  "one option string for both ends: tx-only keywords and 'checksum' on rx give one warning line and a clean transfer",
  async () => {
    const options = ["threads", "2", "checksum", "compress", "zstd", "charmode"];
    const outcome = await transfer(["rx", "0", ...options], (port) => ["tx", "127.0.0.1", `${port}`, ...options], { file: input.path }, DEADLINE_MS);
    expectDelivered(outcome, input);
    expect(withoutSummaries(outcome.rx.stderr)).toBe(
      `[warn] threads, compress, charmode apply to tx only; the receiver ignores them\n${listeningOnly(outcome.port)}`,
    );
    expect(withoutSummaries(outcome.tx.stderr)).toBe("");
  },
  DEADLINE_MS,
);
