/**
 * End to end, running out of file descriptors: the real CLI under a low
 * `ulimit -n` (spawned through `sh -c 'ulimit -n N && exec ...'`).
 *
 * Proves: a transmitter whose dials fail for want of descriptors says EMFILE
 * and what to do (Bun itself reports them as ECONNREFUSED), and carries the
 * transfer on the connections it has; a receiver that runs out while
 * accepting turns the extra connections away with one warning, without
 * spinning a core (Bun retries a failing accept() at once, for ever), and
 * delivers the stream.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { expectDelivered, listeningOnly, transferTo, withoutSummaries } from "../support/e2e.ts";
import { killLeftovers, makeInput, makeTempDir, startReceiver, startTransmitter, within, type Input } from "../support/spawn.ts";

const DEADLINE_MS = 30_000;
/** A Bun process needs about 10 descriptors of its own; 14 leaves room for a few connections, not 16 or 32. */
const LOW_FILE_LIMIT = 14;

let temp: ReturnType<typeof makeTempDir>;
let input: Input;
beforeAll(async () => {
  temp = makeTempDir("e2e-descriptors");
  input = await makeInput(temp.path, 20 * 1024 * 1024 + 3, "descriptors");
});
afterAll(() => temp.remove());
afterEach(killLeftovers);

/** CPU seconds (user + system) a running process has used, from /proc/PID/stat; undefined once it is gone. */
function cpuSeconds(pid: number): number | undefined {
  try {
    // Fields after the command name (which may hold spaces) start at the state, field 3; utime and stime are 14 and 15.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

test(
  "tx out of descriptors: the warning says EMFILE and what to do (not ECONNREFUSED), and the transfer completes",
  async () => {
    const receiver = await startReceiver(["rx", "0"]);
    const tx = startTransmitter(["tx", "127.0.0.1", `${receiver.port}`, "threads", "16"], { file: input.path }, { fileLimit: LOW_FILE_LIMIT });
    const [txOutcome, rxOutcome] = await within(DEADLINE_MS - 2_000, "transfer from a tx short of descriptors", Promise.all([tx.done(), receiver.done()]));
    expectDelivered({ rx: rxOutcome, tx: txOutcome }, input);
    expect(txOutcome.stderr).toContain("EMFILE (too many open files: raise 'ulimit -n' or use fewer threads)");
    expect(txOutcome.stderr).not.toContain("ECONNREFUSED");
  },
  DEADLINE_MS,
);

test.skipIf(process.platform !== "linux")(
  "rx out of descriptors while accepting: one warning, no busy loop, and the stream is delivered",
  async () => {
    const receiver = await startReceiver(["rx", "0"], { fileLimit: LOW_FILE_LIMIT });
    // Paced, so the receiver lives a few seconds with connections waiting to be accepted.
    const txArgs = ["tx", "127.0.0.1", `${receiver.port}`, "threads", "32", "ratelimit", "8M"];
    let lastCpu = 0;
    const sampler = setInterval(() => (lastCpu = cpuSeconds(receiver.proc.pid) ?? lastCpu), 100);
    const started = performance.now();
    const outcome = await transferTo(receiver, txArgs, { file: input.path }, DEADLINE_MS - 2_000).finally(() => clearInterval(sampler));
    const wallSeconds = (performance.now() - started) / 1000;
    expectDelivered(outcome, input);
    expect(withoutSummaries(outcome.rx.stderr)).toBe(
      `${listeningOnly(outcome.port)}[warn] turning connections away: EMFILE (too many open files: raise 'ulimit -n' here, or use fewer threads on tx)\n`,
    );
    // Spinning on accept() used a whole core (2.7 CPU s in 2.9 s); serving the paced stream takes about 5% of one.
    expect(wallSeconds).toBeGreaterThan(2);
    expect(lastCpu / wallSeconds).toBeLessThan(0.5);
  },
  DEADLINE_MS,
);
