/**
 * End to end through real pipes, the way users run it: `cat FILE | tx` and
 * `rx | consumer`, each built by sh. Bun's own "pipe" stdio is a socket pair,
 * so the other e2e tests write rx's output through process.stdout; only a
 * pipe (or a file) takes the blocking-write path (src/rx/stdout.ts fdSink,
 * src/stdio-pipes.ts), and these tests are where it runs.
 *
 * Proves: 40 MiB through both pipes arrive identical with both ends exiting 0;
 * a consumer that leaves early (`| head -c 1000`) ends both ends with exit 6
 * and one line each, no hang.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { errorLines, killShells, makeInput, makeTempDir, MAIN, TextWatch, within, type Input } from "../support/spawn.ts";

const DEADLINE_MS = 20_000;

let temp: ReturnType<typeof makeTempDir>;
let input: Input;
beforeAll(async () => {
  temp = makeTempDir("e2e-pipes");
  input = await makeInput(temp.path, 40 * 1024 * 1024, "pipes");
});
afterAll(() => temp.remove());

/** The shells started by a test; a test that fails leaves them and their pipelines to afterEach. */
const shells = new Set<Bun.Subprocess>();
afterEach(async () => {
  await killShells(shells);
});

/**
 * `sh -c SCRIPT` with "$0" the Bun binary and "$1" the CLI; the script writes
 * the role's own exit status to "$2" (sh has no pipefail); "$3" is `extra`.
 */
function shell(script: string, statusFile: string, extra = "") {
  const proc = Bun.spawn(["sh", "-c", script, process.execPath, MAIN, statusFile, extra], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  shells.add(proc);
  const stderr = new TextWatch(proc.stderr);
  return {
    stderr,
    async done(): Promise<{ status: number; stderr: string }> {
      const [, text] = await Promise.all([proc.exited, stderr.done]);
      return { status: Number((await Bun.file(statusFile).text()).trim()), stderr: text };
    },
  };
}

async function portOf(rx: ReturnType<typeof shell>): Promise<number> {
  return Number((await within(10_000, "rx's port", rx.stderr.until(/^viamillipede: listening on port (\d+)$/m)))[1]);
}

test(
  "cat FILE | tx, rx | sha256sum: identical, both exit 0 with nothing on stderr but their summaries",
  async () => {
    const rxStatus = `${temp.path}/rx-ok.status`;
    const hashFile = `${temp.path}/rx-ok.sha256`;
    const rx = shell(`{ "$0" "$1" rx 0; echo $? > "$2"; } | sha256sum > "$3"`, rxStatus, hashFile);
    const port = await portOf(rx);
    const tx = shell(`cat "$3" | { "$0" "$1" tx 127.0.0.1 ${port}; echo $? > "$2"; }`, `${temp.path}/tx-ok.status`, input.path);
    const [rxOut, txOut] = await within(DEADLINE_MS - 5_000, "both ends to exit", Promise.all([rx.done(), tx.done()]));
    expect({ rx: rxOut.status, tx: txOut.status }).toEqual({ rx: 0, tx: 0 });
    expect((await Bun.file(hashFile).text()).split(" ")[0]).toBe(input.sha256);
    expect([errorLines(rxOut.stderr), errorLines(txOut.stderr)]).toEqual([[], []]);
  },
  DEADLINE_MS,
);

test(
  "rx | head -c 1000: the consumer leaves early, both ends exit 6 with one line each, no hang",
  async () => {
    const rxStatus = `${temp.path}/rx-closed.status`;
    const rx = shell(`{ "$0" "$1" rx 0; echo $? > "$2"; } | head -c 1000 > /dev/null`, rxStatus);
    const port = await portOf(rx);
    const tx = shell(`cat "$3" | { "$0" "$1" tx 127.0.0.1 ${port}; echo $? > "$2"; }`, `${temp.path}/tx-closed.status`, input.path);
    const [rxOut, txOut] = await within(DEADLINE_MS - 5_000, "both ends to exit", Promise.all([rx.done(), tx.done()]));
    expect({ rx: rxOut.status, tx: txOut.status }).toEqual({ rx: 6, tx: 6 });
    expect(errorLines(rxOut.stderr)).toEqual(["viamillipede: stdout was closed by the consumer before the stream ended"]);
    expect(errorLines(txOut.stderr)).toEqual(["viamillipede: receiver's output was closed: stdout was closed by the consumer before the stream ended"]);
  },
  DEADLINE_MS,
);
