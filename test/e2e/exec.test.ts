/**
 * End to end, `exec` on both ends and `label`: the real CLI as separate
 * processes over loopback, each running real commands (sh, cat, head).
 *
 * Proves: a consumer that reads the whole stream and exits 3 with a message
 * makes both ends exit 14 (consumerFailed), tx printing `on HOST, 'CMD'
 * exited 3: MESSAGE`; a producer killed after 10 MiB makes both ends exit 13
 * (producerFailed) and rx's consumer never reads a clean end of input (its
 * `echo clean-eof > marker` never runs); a command's own arguments that look
 * like our keywords and flags reach it untouched, in the keyword and the
 * flag form, on both ends; the label, the peer's address and the session id
 * reach the consumer's environment (and a stale VIAMILLIPEDE_LABEL does
 * not); exec on both ends with `key` and `encrypt` delivers the stream
 * intact; a consumer that exits 0 early is an output closed early (exit 6);
 * a command that cannot be found is a usage error at once.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXIT_CODES } from "../../src/errors.ts";
import { expectOneLineError, transfer, withoutSummaries } from "../support/e2e.ts";
import { errorLines, killLeftovers, makeInput, makeTempDir, runCli, sha256, type Input } from "../support/spawn.ts";
import { MIB } from "../support/sizes.ts";

const HOST = "127.0.0.1";
const DEADLINE_MS = 30_000;

let temp: ReturnType<typeof makeTempDir>;
let input: Input;
let large: Input;
let key: string;

beforeAll(async () => {
  temp = makeTempDir("e2e-exec");
  input = await makeInput(temp.path, 5 * MIB + 3, "exec");
  large = await makeInput(temp.path, 16 * MIB, "exec-large");
  key = join(temp.path, "k.key");
  writeFileSync(key, crypto.getRandomValues(new Uint8Array(32)));
});
afterAll(() => temp.remove());
afterEach(killLeftovers);

const path = (name: string): string => join(temp.path, name);
const fileSha256 = (file: string): string => sha256(readFileSync(file));

test(
  "a consumer that reads everything and exits 3 with a message: both ends exit 14, tx with the consumer's own words",
  async () => {
    const out = path("exit3.out");
    const consumer = ["sh", "-c", 'cat > "$0"; echo "cannot receive new filesystem stream: destination has been modified" >&2; exit 3', out];
    const { rx, tx } = await transfer(["rx", "0", "bind", HOST, "exec", ...consumer], (port) => ["tx", HOST, `${port}`, "exec", "cat", input.path], {
      empty: true,
    }, DEADLINE_MS);
    expect({ rx: rx.exitCode, tx: tx.exitCode }).toEqual({ rx: EXIT_CODES.consumerFailed, tx: EXIT_CODES.consumerFailed });
    expectOneLineError(tx.stderr, /^viamillipede: on 127\.0\.0\.1, 'sh -c .*' exited 3: cannot receive new filesystem stream: destination has been modified$/);
    expectOneLineError(rx.stderr, /^viamillipede: 'sh -c .*' exited 3: cannot receive new filesystem stream: destination has been modified$/);
    // Its stderr passed through to rx's, as it wrote it; it read the whole stream; rx's stdout stayed empty.
    expect(rx.stderr).toContain("\ncannot receive new filesystem stream: destination has been modified\n");
    expect({ sha256: fileSha256(out), stdout: rx.stdoutBytes }).toEqual({ sha256: input.sha256, stdout: 0 });
  },
  DEADLINE_MS + 5_000,
);

test(
  "a producer killed after 10 MiB: both ends exit 13, and rx's consumer never reads a clean end of input",
  async () => {
    const out = path("cut.out");
    const marker = path("cut.marker");
    // A pipeline, as `zstd -d | zfs recv` would be: the part that reads the stream is not the process rx started.
    const consumer = ["sh", "-c", '{ cat > "$0"; echo clean-eof > "$1"; } | cat', out, marker];
    const producer = ["sh", "-c", 'head -c 10485760 "$0"; kill -KILL $$', large.path];
    const { rx, tx } = await transfer(["rx", "0", "bind", HOST, "exec", ...consumer], (port) => ["tx", HOST, `${port}`, "exec", ...producer], { empty: true }, DEADLINE_MS);
    expect({ rx: rx.exitCode, tx: tx.exitCode }).toEqual({ rx: EXIT_CODES.producerFailed, tx: EXIT_CODES.producerFailed });
    expectOneLineError(tx.stderr, /^viamillipede: the sending command failed: 'sh -c .*' was killed by SIGKILL$/);
    expectOneLineError(rx.stderr, /^viamillipede: the transmitter aborted, so the stream is incomplete: the sending command failed: 'sh -c .*' was killed by SIGKILL$/);
    // The consumer was stopped before its input closed: the line after `cat` never ran, and cat had at most what was sent.
    expect(existsSync(marker)).toBe(false);
    expect(statSync(out).size).toBeLessThanOrEqual(10 * MIB);
  },
  DEADLINE_MS + 5_000,
);

test(
  "a command's arguments that look like our keywords and flags are its own, on both ends and in both forms",
  async () => {
    const rxArgs = path("rx.args");
    // exec takes the rest of the line: `threads 4`, `verbose 3`, `--tx h:1`, `--` and `exec` go to sh.
    const consumer = ["sh", "-c", 'printf "%s\\n" "$@" > "$0"; cat > "$0.out"', rxArgs, "threads", "4", "verbose", "3", "--tx", "h:1", "--", "exec"];
    const producer = ["sh", "-c", 'printf "tx-arg %s\\n" "$@" >&2; cat "$0"', input.path, "threads", "4", "--threads=8", "rx", "1", "key"];
    const { rx, tx } = await transfer(["--port", "0", "--bind", HOST, "--exec", "--", ...consumer], (port) => ["tx", HOST, `${port}`, "threads", "2", "exec", ...producer], {
      empty: true,
    }, DEADLINE_MS);
    expect({ rx: rx.exitCode, tx: tx.exitCode, rxErrors: errorLines(rx.stderr), txErrors: errorLines(tx.stderr) }).toEqual({ rx: 0, tx: 0, rxErrors: [], txErrors: [] });
    expect(readFileSync(rxArgs, "utf8")).toBe("threads\n4\nverbose\n3\n--tx\nh:1\n--\nexec\n");
    expect(withoutSummaries(tx.stderr)).toBe("tx-arg threads\ntx-arg 4\ntx-arg --threads=8\ntx-arg rx\ntx-arg 1\ntx-arg key\n");
    expect(fileSha256(`${rxArgs}.out`)).toBe(input.sha256);
  },
  DEADLINE_MS + 5_000,
);

test(
  "label, the peer's address and the session id reach the consumer's environment, never its arguments",
  async () => {
    const env = path("label.env");
    const consumer = ["sh", "-c", 'env > "$0"; cat > /dev/null', env];
    const { rx, tx } = await transfer(["rx", "0", "bind", HOST, "exec", ...consumer], (port) => ["tx", HOST, `${port}`, "label", "backup-1:tank.home", "exec", "cat", input.path], {
      empty: true,
    }, DEADLINE_MS);
    expect({ rx: rx.exitCode, tx: tx.exitCode }).toEqual({ rx: 0, tx: 0 });
    const seen = readFileSync(env, "utf8");
    expect(seen).toContain("\nVIAMILLIPEDE_LABEL=backup-1:tank.home\n");
    expect(seen).toMatch(/\nVIAMILLIPEDE_PEER=(::ffff:)?127\.0\.0\.1(:\d+)?\n/);
    expect(seen).toMatch(/\nVIAMILLIPEDE_SESSION=[0-9a-f]{16}\n/);
  },
  DEADLINE_MS + 5_000,
);

test(
  "without a label the consumer sees none, even when rx itself inherited a VIAMILLIPEDE_LABEL",
  async () => {
    const env = path("nolabel.env");
    const consumer = ["sh", "-c", 'env > "$0"; cat > /dev/null', env];
    const { rx, tx } = await transfer(["rx", "0", "bind", HOST, "exec", ...consumer], (port) => ["tx", HOST, `${port}`, "exec", "cat", input.path], { empty: true }, DEADLINE_MS, {
      env: { VIAMILLIPEDE_LABEL: "stale-from-the-parent" },
    });
    expect({ rx: rx.exitCode, tx: tx.exitCode }).toEqual({ rx: 0, tx: 0 });
    const seen = readFileSync(env, "utf8");
    expect(seen).not.toContain("VIAMILLIPEDE_LABEL");
    expect(seen).toMatch(/\nVIAMILLIPEDE_SESSION=[0-9a-f]{16}\n/);
  },
  DEADLINE_MS + 5_000,
);

test(
  "exec on both ends with key and encrypt: the stream arrives intact and both exit 0",
  async () => {
    const out = path("sealed.out");
    const { rx, tx } = await transfer(
      ["rx", "0", "bind", HOST, "key", key, "encrypt", "exec", "sh", "-c", 'cat > "$0"', out],
      (port) => ["tx", HOST, `${port}`, "key", key, "encrypt", "threads", "3", "exec", "cat", input.path],
      { empty: true },
      DEADLINE_MS,
    );
    expect({ rx: rx.exitCode, tx: tx.exitCode, rxErrors: errorLines(rx.stderr), txErrors: errorLines(tx.stderr), stdout: rx.stdoutBytes }).toEqual({
      rx: 0,
      tx: 0,
      rxErrors: [],
      txErrors: [],
      stdout: 0,
    });
    expect(fileSha256(out)).toBe(input.sha256);
  },
  DEADLINE_MS + 5_000,
);

test(
  "a consumer that exits 0 without reading the whole stream: an output closed early, both ends exit 6 with one line",
  async () => {
    const { rx, tx } = await transfer(["rx", "0", "bind", HOST, "exec", "head", "-c", "1000"], (port) => ["tx", HOST, `${port}`, "exec", "cat", input.path], { empty: true }, DEADLINE_MS);
    expect({ rx: rx.exitCode, tx: tx.exitCode, head: rx.stdoutBytes }).toEqual({ rx: EXIT_CODES.outputClosed, tx: EXIT_CODES.outputClosed, head: 1000 });
    expectOneLineError(rx.stderr, /^viamillipede: 'head -c 1000' stopped reading before the stream ended$/);
    expectOneLineError(tx.stderr, /^viamillipede: receiver's output was closed: 'head -c 1000' stopped reading before the stream ended; 'head -c 1000' exited 0$/);
  },
  DEADLINE_MS + 5_000,
);

test("a command that cannot be found is a usage error before anything listens or dials", async () => {
  const [rx, tx] = await Promise.all([runCli(["rx", "0", "exec", "no-such-command-here", "-F"]), runCli(["tx", HOST, "1", "exec", "no-such-command-here"])]);
  expect({ rx: rx.exitCode, tx: tx.exitCode }).toEqual({ rx: EXIT_CODES.usage, tx: EXIT_CODES.usage });
  expectOneLineError(rx.stderr, /^viamillipede: rx: exec cannot find 'no-such-command-here' on PATH; give the command's name or path \(see 'viamillipede --help'\)$/);
  expectOneLineError(tx.stderr, /^viamillipede: tx: exec cannot find 'no-such-command-here' on PATH/);
});
