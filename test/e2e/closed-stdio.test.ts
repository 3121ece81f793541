/**
 * End to end, a stdin or stdout that the user's shell closed (`<&-`, `>&-`):
 * the real CLI under `sh -c 'exec ... REDIRECT'`.
 *
 * Proves: rx with stdout closed exits 6 before it listens, and tx with stdin
 * closed exits 7 before it dials (a receiver waiting for it gets nothing),
 * each with one line that names the fix; instead of Bun's /dev/null stand-in
 * silently swallowing (rx) or sending (tx) an empty stream with exit 0. A
 * user's own /dev/null (`>/dev/null`, `</dev/null`, `<>/dev/null`) keeps
 * working, and tx with prbs does not need stdin.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { expectDelivered, expectOneLineError, summaryLine, transferTo } from "../support/e2e.ts";
import { errorLines, killLeftovers, makeInput, makeTempDir, sha256, startReceiver, startTransmitter, within, type Input } from "../support/spawn.ts";

const DEADLINE_MS = 15_000;
/** Bun's start-up plus the check: the refusal comes long before any patience or timeout. */
const REFUSAL_MS = 8_000;
const EMPTY = { bytes: 0, sha256: sha256(new Uint8Array(0)) };

let temp: ReturnType<typeof makeTempDir>;
let input: Input;
beforeAll(async () => {
  temp = makeTempDir("e2e-closed-stdio");
  input = await makeInput(temp.path, 3 * 1024 * 1024 + 17);
});
afterAll(() => temp.remove());
afterEach(killLeftovers);

describe("a closed descriptor the role uses fails at once", () => {
  test(
    "rx PORT >&-: exit 6 without listening, one line naming the fix",
    async () => {
      const rx = await within(REFUSAL_MS, "rx with stdout closed to exit", startTransmitter(["rx", "0"], { empty: true }, { redirect: ">&-" }).done());
      expect({ exitCode: rx.exitCode, stdout: rx.stdout }).toEqual({ exitCode: 6, stdout: "" });
      expect(rx.stderr).not.toContain("listening");
      expectOneLineError(rx.stderr, /^viamillipede: stdout is closed \(>&-\), so the stream would go nowhere: redirect it to a file, a pipe or \/dev\/null$/);
    },
    DEADLINE_MS,
  );

  test(
    "tx HOST PORT <&-: exit 7 without dialling; the waiting receiver hears nothing",
    async () => {
      const receiver = await startReceiver(["rx", "0"]);
      const tx = await within(REFUSAL_MS, "tx with stdin closed to exit", startTransmitter(["tx", "127.0.0.1", `${receiver.port}`], { empty: true }, { redirect: "<&-" }).done());
      expect({ exitCode: tx.exitCode, stdout: tx.stdout }).toEqual({ exitCode: 7, stdout: "" });
      expectOneLineError(tx.stderr, /^viamillipede: stdin is closed \(<&-\), so there is no stream to send: redirect it from a file, a pipe or \/dev\/null, or use prbs$/);
      // Still waiting for a transmitter: no session began, nothing was confirmed.
      receiver.proc.kill("SIGTERM");
      const rx = await within(REFUSAL_MS, "receiver to exit after SIGTERM", receiver.done());
      expect({ exitCode: rx.exitCode, stdoutBytes: rx.stdoutBytes }).toEqual({ exitCode: 143, stdoutBytes: 0 });
      expect(summaryLine(rx.stderr, "rx")).toBeUndefined();
    },
    DEADLINE_MS,
  );
});

describe("a user's own /dev/null and roles that do not use the fd keep working", () => {
  for (const redirect of ["</dev/null", "<>/dev/null"]) {
    test(
      `tx ${redirect}: an empty stream, both exit 0`,
      async () => {
        const receiver = await startReceiver(["rx", "0"]);
        const [tx, rx] = await within(
          DEADLINE_MS - 2_000,
          `tx ${redirect}`,
          Promise.all([startTransmitter(["tx", "127.0.0.1", `${receiver.port}`], { empty: true }, { redirect }).done(), receiver.done()]),
        );
        expectDelivered({ rx, tx }, EMPTY);
        expect(errorLines(tx.stderr)).toEqual([]);
      },
      DEADLINE_MS,
    );
  }

  for (const redirect of [">/dev/null", "1<>/dev/null"]) {
    test(
      `rx ${redirect}: the stream is written there, both exit 0`,
      async () => {
        const receiver = await startReceiver(["rx", "0"], { redirect });
        const { rx, tx } = await transferTo(receiver, ["tx", "127.0.0.1", `${receiver.port}`], { file: input.path }, DEADLINE_MS - 2_000);
        expect({ rx: rx.exitCode, tx: tx.exitCode }).toEqual({ rx: 0, tx: 0 });
        expect(summaryLine(rx.stderr, "rx")).toContain(`(${input.bytes} bytes)`);
        expect(summaryLine(tx.stderr, "tx")).toContain(`(${input.bytes} bytes)`);
      },
      DEADLINE_MS,
    );
  }

  test(
    "tx with prbs does not read stdin: <&- is fine",
    async () => {
      const receiver = await startReceiver(["rx", "0", "prbs", "7"]);
      const [tx, rx] = await within(
        DEADLINE_MS - 2_000,
        "prbs transfer with stdin closed",
        Promise.all([startTransmitter(["tx", "127.0.0.1", `${receiver.port}`, "prbs", "7", "leglimit", "1"], { empty: true }, { redirect: "<&-" }).done(), receiver.done()]),
      );
      expect({ rx: rx.exitCode, tx: tx.exitCode, bytes: rx.stdoutBytes }).toEqual({ rx: 0, tx: 0, bytes: 2 * 1024 * 1024 });
    },
    DEADLINE_MS,
  );
});
