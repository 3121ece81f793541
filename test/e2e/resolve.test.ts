/**
 * End to end, host names: the real CLI inside a resolver sandbox (a network
 * namespace whose DNS is a stub that says NXDOMAIN or SERVFAIL,
 * test/support/dns-stub.ts), so nothing depends on this machine's DNS.
 *
 * Proves: a name that does not exist ends tx at once with exit 3 and one line
 * naming it (not after `patience`); with another link, that name is left out
 * with one warning and the transfer completes; a resolver failure that may
 * pass (SERVFAIL) is still retried for `patience`; a host that cannot be a
 * name at all is a usage error before any lookup.
 *
 * Needs root and `ip`; without them the sandboxed tests are skipped with the
 * reason printed.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { EXIT_CODES } from "../../src/errors.ts";
import { createResolverSandbox, sandboxUnavailable, type ResolverSandbox } from "../support/dns-stub.ts";
import { expectDelivered, expectOneLineError } from "../support/e2e.ts";
import { errorLines, killLeftovers, MAIN, makeInput, makeTempDir, runCli, startReceiver, startTransmitter, within, type Input } from "../support/spawn.ts";

const DEADLINE_MS = 20_000;
/** A definitive answer needs no retry: well under this, where the old code retried for `patience` (300 s). */
const PROMPT_MS = 5_000;

const unavailable = sandboxUnavailable();
if (unavailable !== undefined) console.log(`skipping the resolver sandbox tests: ${unavailable}`);

let temp: ReturnType<typeof makeTempDir>;
let input: Input;
let sandbox: ResolverSandbox | undefined;
beforeAll(async () => {
  temp = makeTempDir("e2e-resolve");
  input = await makeInput(temp.path, 3 * 1024 * 1024 + 5, "resolve");
  if (unavailable === undefined) sandbox = await createResolverSandbox();
});
afterAll(async () => {
  await sandbox?.destroy();
  temp.remove();
});
afterEach(killLeftovers);

test.skipIf(unavailable !== undefined)(
  "a name that does not exist (NXDOMAIN): exit 3 at once, one line naming it",
  async () => {
    const tx = await within(PROMPT_MS, "tx to a name that does not exist", startTransmitter(["tx", "no-such-host.invalid", "8834"], { file: input.path }, { netns: sandbox!.namespace }).done());
    expect({ exit: tx.exitCode, stdout: tx.stdout }).toEqual({ exit: EXIT_CODES.unreachable, stdout: "" });
    expectOneLineError(tx.stderr, /^viamillipede: cannot resolve no-such-host\.invalid: no such host \(ENOTFOUND\); check the name, or give an IP address$/);
  },
  DEADLINE_MS,
);

test.skipIf(unavailable !== undefined)(
  "a name that does not exist beside a working link: one warning, and the other link carries the transfer",
  async () => {
    const receiver = await startReceiver(["rx", "0"], { netns: sandbox!.namespace });
    const args = ["tx", "no-such-host.invalid", `${receiver.port}`, "tx", "127.0.0.1", `${receiver.port}`];
    const [tx, rx] = await within(DEADLINE_MS - 2_000, "transfer beside an unknown name", Promise.all([startTransmitter(args, { file: input.path }, { netns: sandbox!.namespace }).done(), receiver.done()]));
    expectDelivered({ rx, tx }, input);
    expect(tx.stderr.split("\n").filter((line) => line.includes("no-such-host.invalid"))).toEqual([
      "[warn] tx no-such-host.invalid: no such host (ENOTFOUND); it is left out and the other links carry the transfer",
    ]);
    expect(errorLines(tx.stderr)).toEqual([]);
  },
  DEADLINE_MS,
);

test.skipIf(unavailable !== undefined)(
  "a resolver failure that may pass (SERVFAIL, EAI_AGAIN) is retried for patience, then exit 3",
  async () => {
    const tx = await within(DEADLINE_MS - 2_000, "tx to a name the resolver fails on", startTransmitter(["tx", "servfail.example", "8834", "patience", "2"], { file: input.path }, { netns: sandbox!.namespace }).done());
    expect({ exit: tx.exitCode, stdout: tx.stdout }).toEqual({ exit: EXIT_CODES.unreachable, stdout: "" });
    expectOneLineError(tx.stderr, /servfail\.example:8834 not reachable within 2s: .*EAI_AGAIN/);
    expect(tx.elapsedMs).toBeGreaterThanOrEqual(1_900);
  },
  DEADLINE_MS,
);

test("a host that can never resolve (100,000 characters; not UTF-8) is a usage error (exit 2) before any lookup", async () => {
  for (const args of [["tx", "a".repeat(100_000), "8834"], [`--tx=${"a".repeat(100_000)}:8834`]]) {
    const outcome = await within(PROMPT_MS, "tx with a 100,000-character host", runCli(args));
    expect({ exit: outcome.exitCode, stdout: outcome.stdout }).toEqual({ exit: EXIT_CODES.usage, stdout: "" });
    expectOneLineError(outcome.stderr, /^viamillipede: tx host 'a{32}…' \(100000 characters\) is not an IP address or a host name: it is 100000 bytes long; a host name has at most 253 /);
  }
  // The byte 0xff cannot be passed as a JS string: the shell puts it in the argument.
  const proc = Bun.spawn(["sh", "-c", 'exec "$0" "$1" tx "$(printf "bad\\377name")" 8834', process.execPath, MAIN], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [exit, stdout, stderr] = await within(PROMPT_MS, "tx with a host that is not UTF-8", Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]));
  expect({ exit, stdout }).toEqual({ exit: EXIT_CODES.usage, stdout: "" });
  expectOneLineError(stderr, /^viamillipede: tx host 'bad\uFFFDname' is not an IP address or a host name: it is not valid UTF-8 /);
});
