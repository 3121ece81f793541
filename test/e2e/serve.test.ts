/**
 * End to end, `serve`: one receiver process hosting several transfers on one
 * port, real transmitter processes over loopback.
 *
 * Most scenarios run twice: once with each session written to a file of its
 * own by an in-process output (test/support/serve-files.ts: a session's file
 * gets its name only once the whole stream is in, else `.aborted`), and once
 * as a user runs it, with a real consumer command per session (`exec sh -c
 * ...`, files named by the transmitter's `label`). Proves: three
 * transmitters at once, each output identical in its own file, and the
 * receiver serving on until SIGTERM (exit 0); a fourth past `sessions 3`
 * refused busy (exit 11) while the three complete; SIGTERM during two
 * transfers refuses a newcomer and lets both finish, their consumers seeing a
 * clean end (exit 0), and one that outlasts `patience` is stopped (exit 143,
 * its transmitter 10, its file aborted); hostile and wrong-key connections
 * while serving leave the keyed transfers intact and start no command; one
 * session's consumer exiting 3 makes its transmitter exit 14 with the
 * consumer's message while the others complete and the receiver serves on;
 * serve without a per-session output (exec), sessions without serve and
 * serve with tx are usage errors.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXIT_CODES } from "../../src/errors.ts";
import { expectOneLineError } from "../support/e2e.ts";
import {
  errorLines,
  killLeftovers,
  makeInput,
  makeTempDir,
  peakRssSampler,
  ROOT,
  runCli,
  sha256,
  startReceiver,
  startTransmitter,
  within,
  type Input,
  type Receiver,
} from "../support/spawn.ts";
import { MIB } from "../support/sizes.ts";

const HOST = "127.0.0.1";
const DEADLINE_MS = 60_000;
/** What a serving receiver at the default `sessions` may peak at (README, Serving many transfers). */
const SERVE_PEAK_LIMIT_BYTES = 256 * MIB;

let temp: ReturnType<typeof makeTempDir>;
let inputs: Input[];
let keyA: string;
let keyB: string;
let runs = 0;

beforeAll(async () => {
  temp = makeTempDir("e2e-serve");
  inputs = await Promise.all([0, 1, 2, 3].map((i) => makeInput(temp.path, 12 * MIB + i * 4099, `serve-${i}`)));
  keyA = join(temp.path, "a.key");
  keyB = join(temp.path, "b.key");
  writeFileSync(keyA, crypto.getRandomValues(new Uint8Array(32)));
  writeFileSync(keyB, crypto.getRandomValues(new Uint8Array(32)));
});
afterAll(() => temp.remove());
afterEach(killLeftovers);

/** A serving receiver (`rx 0 serve ...args`) whose sessions go to files in a fresh directory. */
async function serving(args: readonly string[]): Promise<{ receiver: Receiver; dir: string }> {
  const dir = join(temp.path, `out-${++runs}`);
  mkdirSync(dir);
  const receiver = await startReceiver(["rx", "0", "bind", HOST, "serve", ...args], { program: [process.execPath, join(ROOT, "test/support/serve-files.ts"), dir] });
  return { receiver, dir };
}

/** The files the sessions left: name → sha256 of the contents. */
function outputs(dir: string): Map<string, string> {
  return new Map(readdirSync(dir).map((name) => [name, sha256(readFileSync(join(dir, name)))]));
}

/** Resolves once the receiver's stderr (at verbose ≥ 1) shows `count` sessions started. */
function sessionsStarted(receiver: Receiver, count: number): Promise<RegExpExecArray> {
  return receiver.stderr.until(new RegExp(`(?:session [0-9a-f]+(?: '[^'\\n]*')? from [^\\n]*: foot size[^\\n]*\\n[\\s\\S]*?){${count}}`));
}

function transmitter(port: number, input: Input, extra: readonly string[] = []) {
  return startTransmitter(["tx", HOST, `${port}`, ...extra], { file: input.path });
}

test(
  "three transmitters at once, each stream identical in its own file; the receiver serves on until SIGTERM, then exits 0",
  async () => {
    const stats = join(temp.path, "serve-stats.json");
    const { receiver, dir } = await serving(["sessions", "3", "verbose", "1", "stats", stats]);
    const rss = peakRssSampler(receiver.proc);
    // Paced (about 1.5 s each) so that all three are surely running at once.
    const three = inputs.slice(0, 3);
    const txs = three.map((input) => transmitter(receiver.port, input, ["ratelimit", "8M"]));
    const results = await within(DEADLINE_MS, "three transmitters", Promise.all(txs.map((tx) => tx.done())));
    expect(results.map((result) => result.exitCode)).toEqual([0, 0, 0]);
    // All three had started before the first was complete.
    const log = receiver.stderrSoFar();
    const starts = [...log.matchAll(/: foot size /g)].map((match) => match.index);
    expect(starts).toHaveLength(3);
    expect(log.indexOf("stream complete")).toBeGreaterThan(starts[2]!);
    expect(receiver.proc.exitCode).toBeNull(); // still serving
    receiver.proc.kill("SIGTERM");
    const rx = await within(DEADLINE_MS, "receiver after SIGTERM", receiver.done());
    const peak = rss.stop();
    console.log(`serve, three 12 MiB transfers at once: receiver peak RSS ${peak === null ? "unknown" : `${(peak / MIB).toFixed(0)} MiB`}`);
    expect(rx.exitCode).toBe(0);
    expect(rx.stdoutBytes).toBe(0); // stdout carries nothing when serving
    expect(rx.stderr).toMatch(/^\[warn\] serving without a key: anyone who can reach port \d+ can run a transfer into its command; give both ends the same 'key FILE'$/m);
    expect(rx.stderr).toContain("SIGTERM: taking no new transfers; none is running");
    expect(errorLines(rx.stderr).filter((line) => !line.includes("warning"))).toEqual([]);
    const files = outputs(dir);
    expect([...files.keys()].every((name) => /^[0-9a-f]+$/.test(name))).toBe(true);
    expect([...files.values()].sort()).toEqual(three.map((input) => input.sha256).sort());
    const document = JSON.parse(readFileSync(stats, "utf8"));
    const sessions = document.transfers[0].sessions as { state: string; bytes: number }[];
    expect(sessions.map((session) => [session.state, session.bytes]).sort()).toEqual(three.map((input) => ["complete", input.bytes]).sort());
    expect(document.transfers[0].bytes).toBe(three.reduce((sum, input) => sum + input.bytes, 0));
  },
  DEADLINE_MS,
);

test(
  "a fourth transmitter past sessions 3 is refused busy (exit 11) while the three run; they complete",
  async () => {
    const { receiver, dir } = await serving(["sessions", "3", "verbose", "1"]);
    // About 4 s each: longer than the fourth waits (3 x timeout 1).
    const three = inputs.slice(0, 3).map((input) => ({ input, tx: transmitter(receiver.port, input, ["ratelimit", "3M"]) }));
    await within(DEADLINE_MS, "three sessions started", sessionsStarted(receiver, 3));
    const fourth = await within(DEADLINE_MS, "the fourth transmitter", transmitter(receiver.port, inputs[3]!, ["timeout", "1"]).done());
    expect(fourth.exitCode).toBe(EXIT_CODES.busy);
    expectOneLineError(fourth.stderr, /busy with 3 transfers, its 'sessions 3'/);
    const results = await within(DEADLINE_MS, "the three", Promise.all(three.map(({ tx }) => tx.done())));
    expect(results.map((result) => result.exitCode)).toEqual([0, 0, 0]);
    receiver.proc.kill("SIGTERM");
    expect((await within(DEADLINE_MS, "receiver after SIGTERM", receiver.done())).exitCode).toBe(0);
    expect([...outputs(dir).values()].sort()).toEqual(three.map(({ input }) => input.sha256).sort());
  },
  DEADLINE_MS,
);

describe("SIGTERM while serving", () => {
  test(
    "during two transfers: a newcomer is refused busy, both finish identical, the receiver exits 0",
    async () => {
      const { receiver, dir } = await serving(["sessions", "4", "verbose", "1"]);
      // About 6 s each: longer than the newcomer waits (3 x timeout 1).
      const two = inputs.slice(0, 2).map((input) => ({ input, tx: transmitter(receiver.port, input, ["ratelimit", "2M"]) }));
      await within(DEADLINE_MS, "two sessions started", sessionsStarted(receiver, 2));
      receiver.proc.kill("SIGTERM");
      await within(DEADLINE_MS, "the drain line", receiver.stderr.until(/SIGTERM: taking no new transfers; waiting for 2 transfers to finish, up to 300s \(patience\)/));
      const late = await within(DEADLINE_MS, "a transmitter after SIGTERM", transmitter(receiver.port, inputs[2]!, ["timeout", "1", "patience", "5"]).done());
      expect(late.exitCode).toBe(EXIT_CODES.busy);
      expectOneLineError(late.stderr, /shutting down \(SIGTERM\)/);
      const results = await within(DEADLINE_MS, "the two", Promise.all(two.map(({ tx }) => tx.done())));
      expect(results.map((result) => result.exitCode)).toEqual([0, 0]);
      const rx = await within(DEADLINE_MS, "receiver", receiver.done());
      expect({ exit: rx.exitCode, errors: errorLines(rx.stderr).filter((line) => !line.includes("warning")) }).toEqual({ exit: 0, errors: [] });
      expect([...outputs(dir).values()].sort()).toEqual(two.map(({ input }) => input.sha256).sort());
    },
    DEADLINE_MS,
  );

  test(
    "a transfer that outlasts patience is stopped: the receiver exits 143, its transmitter 10, its output aborted",
    async () => {
      const { receiver, dir } = await serving(["patience", "1", "verbose", "1"]);
      const tx = transmitter(receiver.port, inputs[0]!, ["ratelimit", "1M"]);
      await within(DEADLINE_MS, "the session started", sessionsStarted(receiver, 1));
      receiver.proc.kill("SIGTERM");
      const [rx, sent] = await within(DEADLINE_MS, "both ends", Promise.all([receiver.done(), tx.done()]));
      expect({ rx: rx.exitCode, tx: sent.exitCode }).toEqual({ rx: 143, tx: EXIT_CODES.peerLost });
      expect(rx.stderr).toMatch(/^viamillipede: stopped 1 transfer still running 1s \(patience\) after SIGTERM$/m);
      expect(sent.stderr).toContain("shutting down");
      expect([...outputs(dir).keys()].every((name) => name.endsWith(".aborted"))).toBe(true);
    },
    DEADLINE_MS,
  );
});

test(
  "hostile and wrong-key connections while serving: refused or dropped, the keyed transfers complete, the receiver serves on",
  async () => {
    const { receiver, dir } = await serving(["sessions", "3", "key", keyA]);
    const good = transmitter(receiver.port, inputs[0]!, ["key", keyA, "ratelimit", "6M"]);
    const sockets: Socket<unknown>[] = [];
    for (const junk of [crypto.getRandomValues(new Uint8Array(4096)), new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), new Uint8Array([0xff, 0xff, 0xff, 0xff])]) {
      sockets.push(await Bun.connect<unknown>({ hostname: HOST, port: receiver.port, socket: { data() {}, close() {}, error() {} } }));
      sockets.at(-1)!.write(junk);
    }
    const wrongKey = await within(DEADLINE_MS, "wrong key", transmitter(receiver.port, inputs[1]!, ["key", keyB]).done());
    const noKey = await within(DEADLINE_MS, "no key", transmitter(receiver.port, inputs[1]!).done());
    expect({ wrong: wrongKey.exitCode, none: noKey.exitCode }).toEqual({ wrong: EXIT_CODES.key, none: EXIT_CODES.key });
    expectOneLineError(noKey.stderr, /requires a key/);
    // Another keyed transfer beside the first, while the junk connections are still open.
    const second = await within(DEADLINE_MS, "second keyed transfer", transmitter(receiver.port, inputs[2]!, ["key", keyA]).done());
    expect(second.exitCode).toBe(0);
    expect((await within(DEADLINE_MS, "first keyed transfer", good.done())).exitCode).toBe(0);
    for (const socket of sockets) socket.end();
    expect(receiver.proc.exitCode).toBeNull();
    receiver.proc.kill("SIGTERM");
    const rx = await within(DEADLINE_MS, "receiver after SIGTERM", receiver.done());
    expect(rx.exitCode).toBe(0);
    expect(rx.stderr).not.toContain("serving without a key");
    expect([...outputs(dir).values()].sort()).toEqual([inputs[0]!.sha256, inputs[2]!.sha256].sort());
  },
  DEADLINE_MS,
);

test("usage: serve needs a per-session output (exec), sessions needs serve, serve runs a receiver alone", async () => {
  for (const [args, pattern] of [
    [["rx", "0", "serve"], /serve runs each transfer into its own command: add 'exec COMMAND\.\.\.'/],
    [["rx", "0", "sessions", "3"], /sessions 3 applies to serve/],
    [["rx", "0", "serve", "tx", HOST, "1"], /serve runs a receiver alone/],
    [["rx", "0", "serve", "sessions", "17"], /sessions/],
  ] as const) {
    const outcome = await runCli(args);
    expect({ args, exit: outcome.exitCode }).toEqual({ args, exit: EXIT_CODES.usage });
    expectOneLineError(outcome.stderr, pattern);
  }
});

// ---- the same scenarios with real consumer commands (exec) and labels -----------------------

/**
 * Each session's command: the stream into DIR/LABEL.partial, renamed to
 * DIR/LABEL only once `cat` saw a clean end of input (a consumer that is
 * stopped never gets there), and a line on stderr saying so. A label named
 * `fail-*` reads everything, then exits 3 with a message, as `zfs recv`
 * refusing a stream would.
 */
const CONSUMER = [
  "sh",
  "-c",
  'if [ "${VIAMILLIPEDE_LABEL#fail-}" != "$VIAMILLIPEDE_LABEL" ]; then cat > /dev/null; echo "cannot receive $VIAMILLIPEDE_LABEL: destination has been modified" >&2; exit 3; fi; ' +
    'cat > "$DIR/$VIAMILLIPEDE_LABEL.partial" && mv "$DIR/$VIAMILLIPEDE_LABEL.partial" "$DIR/$VIAMILLIPEDE_LABEL" && echo "consumer $VIAMILLIPEDE_LABEL: clean end" >&2',
];

/** A serving receiver (`rx 0 serve ...args exec CONSUMER`) whose consumers write into a fresh directory. */
async function servingExec(args: readonly string[]): Promise<{ receiver: Receiver; dir: string }> {
  const dir = join(temp.path, `exec-${++runs}`);
  mkdirSync(dir);
  const receiver = await startReceiver(["rx", "0", "bind", HOST, "serve", ...args, "exec", ...CONSUMER], { env: { DIR: dir } });
  return { receiver, dir };
}

/** A transmitter with `label`. */
/** Each named transfer's stream is in DIR/LABEL, whole, and nothing else is there. */
function expectOutputs(dir: string, named: readonly { label: string; input: Input }[]): void {
  expect(Object.fromEntries(outputs(dir))).toEqual(Object.fromEntries(named.map(({ label, input }) => [label, input.sha256])));
}

function labelled(port: number, label: string, input: Input, extra: readonly string[] = []) {
  return startTransmitter(["tx", HOST, `${port}`, "label", label, ...extra], { file: input.path });
}

describe("with exec and labels", () => {
  test(
    "memory: the default sessions 4, four 64 MiB transfers at once into consumers that are slow to start reading: the receiver's peak RSS stays at most 256 MiB",
    async () => {
      const big = await Promise.all([0, 1, 2, 3].map((i) => makeInput(temp.path, 64 * MIB, `serve-big-${i}`)));
      // Each consumer reads nothing for its first 2 s, so every session's window and records arriving fill up.
      const receiver = await startReceiver(["rx", "0", "bind", HOST, "serve", "exec", "sh", "-c", "sleep 2; cat > /dev/null"]);
      const rss = peakRssSampler(receiver.proc);
      const txs = big.map((input, i) => labelled(receiver.port, `big-${i}`, input));
      const results = await within(DEADLINE_MS, "four 64 MiB transmitters", Promise.all(txs.map((tx) => tx.done())));
      const peak = rss.stop();
      receiver.proc.kill("SIGTERM");
      const rx = await within(DEADLINE_MS, "receiver after SIGTERM", receiver.done());
      console.log(`serve, sessions 4, four 64 MiB transfers into slow consumers: receiver peak RSS ${peak === null ? "unknown" : `${(peak / MIB).toFixed(0)} MiB`}`);
      expect({ tx: results.map((result) => result.exitCode), rx: rx.exitCode }).toEqual({ tx: [0, 0, 0, 0], rx: 0 });
      if (peak === null) console.log("skipped the RSS bound: no /proc/PID/status here");
      else expect(peak).toBeLessThanOrEqual(SERVE_PEAK_LIMIT_BYTES);
    },
    DEADLINE_MS,
  );

  test(
    "three labelled transmitters at once, each consumer's file identical; the receiver serves on until SIGTERM, then exits 0",
    async () => {
      const { receiver, dir } = await servingExec(["sessions", "3", "verbose", "1"]);
      const named = ["a", "b", "c"].map((label, i) => ({ label, input: inputs[i]! }));
      // Paced (about 1.5 s each) so that all three are surely running at once.
      const txs = named.map(({ label, input }) => labelled(receiver.port, label, input, ["ratelimit", "8M"]));
      const results = await within(DEADLINE_MS, "three transmitters", Promise.all(txs.map((tx) => tx.done())));
      expect(results.map((result) => [result.exitCode, errorLines(result.stderr)])).toEqual([[0, []], [0, []], [0, []]]);
      const log = receiver.stderrSoFar();
      expect(log.indexOf("stream complete")).toBeGreaterThan(Math.max(...["a", "b", "c"].map((label) => log.indexOf(` '${label}' from `))));
      expect(receiver.proc.exitCode).toBeNull(); // still serving
      receiver.proc.kill("SIGTERM");
      const rx = await within(DEADLINE_MS, "receiver after SIGTERM", receiver.done());
      expect({ exit: rx.exitCode, stdout: rx.stdoutBytes, errors: errorLines(rx.stderr) }).toEqual({ exit: 0, stdout: 0, errors: [] });
      for (const { label } of named) expect(rx.stderr).toContain(`consumer ${label}: clean end\n`);
      expectOutputs(dir, named);
    },
    DEADLINE_MS,
  );

  test(
    "sessions 3: a fourth labelled transmitter is refused busy (exit 11) while three run; they complete",
    async () => {
      const { receiver, dir } = await servingExec(["sessions", "3", "verbose", "1"]);
      // About 4 s each: longer than the fourth waits (3 x timeout 1).
      const named = ["a", "b", "c"].map((label, i) => ({ label, input: inputs[i]!, tx: labelled(receiver.port, label, inputs[i]!, ["ratelimit", "3M"]) }));
      await within(DEADLINE_MS, "three sessions started", sessionsStarted(receiver, 3));
      const fourth = await within(DEADLINE_MS, "the fourth transmitter", labelled(receiver.port, "d", inputs[3]!, ["timeout", "1"]).done());
      expect(fourth.exitCode).toBe(EXIT_CODES.busy);
      expectOneLineError(fourth.stderr, /busy with 3 transfers, its 'sessions 3'/);
      const results = await within(DEADLINE_MS, "the three", Promise.all(named.map(({ tx }) => tx.done())));
      expect(results.map((result) => result.exitCode)).toEqual([0, 0, 0]);
      receiver.proc.kill("SIGTERM");
      expect((await within(DEADLINE_MS, "receiver after SIGTERM", receiver.done())).exitCode).toBe(0);
      // The refused one never started a command.
      expectOutputs(dir, named);
    },
    DEADLINE_MS,
  );

  test(
    "SIGTERM during two labelled transfers: both consumers see a clean end and exit 0, both transmitters and the receiver exit 0",
    async () => {
      const { receiver, dir } = await servingExec(["sessions", "4", "verbose", "1"]);
      // About 6 s each, so both are surely mid-stream at SIGTERM.
      const named = ["a", "b"].map((label, i) => ({ label, input: inputs[i]!, tx: labelled(receiver.port, label, inputs[i]!, ["ratelimit", "2M"]) }));
      await within(DEADLINE_MS, "two sessions started", sessionsStarted(receiver, 2));
      receiver.proc.kill("SIGTERM");
      await within(DEADLINE_MS, "the drain line", receiver.stderr.until(/SIGTERM: taking no new transfers; waiting for 2 transfers to finish/));
      const results = await within(DEADLINE_MS, "the two", Promise.all(named.map(({ tx }) => tx.done())));
      expect(results.map((result) => [result.exitCode, errorLines(result.stderr)])).toEqual([[0, []], [0, []]]);
      const rx = await within(DEADLINE_MS, "receiver", receiver.done());
      expect({ exit: rx.exitCode, errors: errorLines(rx.stderr) }).toEqual({ exit: 0, errors: [] });
      for (const { label } of named) expect(rx.stderr).toContain(`consumer ${label}: clean end\n`);
      expectOutputs(dir, named);
    },
    DEADLINE_MS,
  );

  test(
    "key FILE: hostile and wrong-key connections while serving are refused or dropped; the keyed transfers' consumers get their whole streams",
    async () => {
      const { receiver, dir } = await servingExec(["sessions", "3", "key", keyA]);
      const good = labelled(receiver.port, "good", inputs[0]!, ["key", keyA, "ratelimit", "6M"]);
      const sockets: Socket<unknown>[] = [];
      for (const junk of [crypto.getRandomValues(new Uint8Array(4096)), new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), new Uint8Array([0xff, 0xff, 0xff, 0xff])]) {
        sockets.push(await Bun.connect<unknown>({ hostname: HOST, port: receiver.port, socket: { data() {}, close() {}, error() {} } }));
        sockets.at(-1)!.write(junk);
      }
      const wrongKey = await within(DEADLINE_MS, "wrong key", labelled(receiver.port, "wrong", inputs[1]!, ["key", keyB]).done());
      const noKey = await within(DEADLINE_MS, "no key", labelled(receiver.port, "none", inputs[1]!).done());
      expect({ wrong: wrongKey.exitCode, none: noKey.exitCode }).toEqual({ wrong: EXIT_CODES.key, none: EXIT_CODES.key });
      expectOneLineError(noKey.stderr, /requires a key/);
      const second = await within(DEADLINE_MS, "second keyed transfer", labelled(receiver.port, "second", inputs[2]!, ["key", keyA]).done());
      expect(second.exitCode).toBe(0);
      expect((await within(DEADLINE_MS, "first keyed transfer", good.done())).exitCode).toBe(0);
      for (const socket of sockets) socket.end();
      expect(receiver.proc.exitCode).toBeNull();
      receiver.proc.kill("SIGTERM");
      const rx = await within(DEADLINE_MS, "receiver after SIGTERM", receiver.done());
      expect({ exit: rx.exitCode, errors: errorLines(rx.stderr) }).toEqual({ exit: 0, errors: [] });
      expect(rx.stderr).not.toContain("serving without a key");
      // No command ran for a refused connection: only the two keyed transfers left files.
      expect(Object.fromEntries(outputs(dir))).toEqual({ good: inputs[0]!.sha256, second: inputs[2]!.sha256 });
    },
    DEADLINE_MS,
  );

  test(
    "one session's consumer exits 3: its transmitter exits 14 with the consumer's message, the others complete, the receiver serves on",
    async () => {
      const { receiver, dir } = await servingExec(["sessions", "3", "verbose", "1"]);
      const named = ["a", "fail-b", "c"].map((label, i) => ({ label, input: inputs[i]!, tx: labelled(receiver.port, label, inputs[i]!, ["ratelimit", "8M"]) }));
      const results = await within(DEADLINE_MS, "three transmitters", Promise.all(named.map(({ tx }) => tx.done())));
      expect(results.map((result) => result.exitCode)).toEqual([0, EXIT_CODES.consumerFailed, 0]);
      expectOneLineError(results[1]!.stderr, /^viamillipede: on 127\.0\.0\.1, 'sh -c .*' exited 3: cannot receive fail-b: destination has been modified$/);
      // The receiver reported it as one warning and serves on: a later transfer completes.
      expect(receiver.proc.exitCode).toBeNull();
      await within(DEADLINE_MS, "the failure's warning", receiver.stderr.until(/^\[warn\] session [0-9a-f]+ 'fail-b' from [^\n]*failed: 'sh -c .*' exited 3: cannot receive fail-b: destination has been modified$/m));
      const after = await within(DEADLINE_MS, "a transfer after the failure", labelled(receiver.port, "d", inputs[3]!).done());
      expect(after.exitCode).toBe(0);
      receiver.proc.kill("SIGTERM");
      const rx = await within(DEADLINE_MS, "receiver after SIGTERM", receiver.done());
      // A failure before SIGTERM was reported when it happened; it does not change the exit status.
      expect({ exit: rx.exitCode, errors: errorLines(rx.stderr) }).toEqual({ exit: 0, errors: [] });
      expect(Object.fromEntries(outputs(dir))).toEqual({ a: inputs[0]!.sha256, c: inputs[2]!.sha256, d: inputs[3]!.sha256 });
    },
    DEADLINE_MS,
  );
});
