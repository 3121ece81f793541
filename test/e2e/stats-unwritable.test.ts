/**
 * End to end, a `stats FILE` whose directory disappears while the transfer
 * runs: the real CLI as two processes over loopback.
 *
 * Proves: the transfer's outcome decides the exit status. The stream is
 * delivered, both ends exit 0, and the receiver, which cannot write its
 * stats at the end, says so in one warning line; it does not exit 2 (a
 * replication script would send again a stream that arrived).
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { expectDelivered, summaryLine, transferTo } from "../support/e2e.ts";
import { errorLines, killLeftovers, makeInput, makeTempDir, startReceiver, type Input } from "../support/spawn.ts";

const DEADLINE_MS = 15_000;

let temp: ReturnType<typeof makeTempDir>;
let input: Input;
beforeAll(async () => {
  temp = makeTempDir("e2e-stats-unwritable");
  input = await makeInput(temp.path, 5 * 1024 * 1024 + 3);
});
afterAll(() => temp.remove());
afterEach(killLeftovers);

test(
  "the stats file's directory removed mid-run: delivered, both exit 0, one warning line at rx",
  async () => {
    const dir = join(temp.path, "stats-dir");
    mkdirSync(dir);
    const statsFile = join(dir, "rx.json");
    const receiver = await startReceiver(["rx", "0", "stats", statsFile]);
    // The receiver proved the path writable before it listened; now it is gone.
    expect(existsSync(statsFile)).toBe(true);
    rmSync(dir, { recursive: true });
    const outcome = await transferTo(receiver, ["tx", "127.0.0.1", `${receiver.port}`], { file: input.path }, DEADLINE_MS - 2_000);
    expectDelivered(outcome, input);
    expect(summaryLine(outcome.rx.stderr, "rx")).toContain(`(${input.bytes} bytes)`);
    expect(errorLines(outcome.rx.stderr)).toEqual([
      `viamillipede: warning: cannot write the stats file ${statsFile}: ENOENT; give a writable path (only the status output is lost: the exit status stays 0)`,
    ]);
    expect(errorLines(outcome.tx.stderr)).toEqual([]);
  },
  DEADLINE_MS,
);
