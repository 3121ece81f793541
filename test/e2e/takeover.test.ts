/**
 * End to end, the takeover rule (src/rx/takeover.ts): what a transmitter of
 * another session meets at a receiver that holds one.
 *
 * Proves, with the real CLI over loopback:
 * - a transmitter SIGKILLed before its first foot, re-run at once: the re-run
 *   waits (saying so once) and completes with identical output within seconds,
 *   instead of exiting 11 for `patience`;
 * - a raw hello that is never followed by data (a squatter) does not lock an
 *   idle receiver: a real transmitter gets through;
 * - the transmitter of a session given up while its path was down is refused
 *   "session over" (exit 10) when it comes back, and the newcomer's transfer
 *   is untouched;
 * - a live transfer is never displaced: a second transmitter waits its bounded
 *   time and exits 11, and the first completes;
 * - a session whose transmitter vanished after bytes reached stdout is never
 *   spliced: the newcomer is turned away (exit 10) and the receiver exits 10
 *   within seconds, its output the old stream's first bytes only.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { EXIT_CODES } from "../../src/errors.ts";
import { DEFAULT_FOOT_BYTES } from "../../src/options.ts";
import { encodeHello } from "../../src/protocol/messages.ts";
import { CAP_NONE, VM_MAGIC, VM_PROTOCOL_VERSION } from "../../src/protocol/xdr.generated.ts";
import { expectDelivered, expectOneLineError } from "../support/e2e.ts";
import { startFaultProxy } from "../support/fault-proxy.ts";
import {
  killLeftovers,
  makeInput,
  makeTempDir,
  runTransmitter,
  startReceiver,
  startTransmitter,
  within,
  type Input,
  type Receiver,
} from "../support/spawn.ts";
import { MIB } from "../support/sizes.ts";

const HOST = "127.0.0.1";
/** The receiver's log line for a new session (at verbose 1). */
const SESSION_LINE = /session [0-9a-f]+ from /;

let temp: ReturnType<typeof makeTempDir>;
let input: Input;
beforeAll(async () => {
  temp = makeTempDir("e2e-takeover");
  input = await makeInput(temp.path, 8 * MIB, "takeover");
});
afterAll(() => temp.remove());
afterEach(killLeftovers);

/** Resolves once the receiver's stderr matches `pattern` (it logs as things happen). */
async function stderrShows(receiver: Receiver, pattern: RegExp, ms = 10_000): Promise<void> {
  // Rejects, with the whole stderr, if rx exits first.
  await within(ms, `rx stderr to show ${pattern}`, receiver.stderr.until(pattern));
}

/** A transmitter whose stdin stays open and empty: it connects, says hello and never sends a foot. */
function idleTransmitter(args: readonly string[]) {
  const gone = Promise.withResolvers<void>();
  const transmitter = startTransmitter(args, { feed: () => gone.promise });
  void transmitter.proc.exited.then(() => gone.resolve());
  return transmitter;
}

test(
  "a transmitter SIGKILLed before its first foot and re-run at once: the re-run waits, then completes, identical, within seconds",
  async () => {
    const receiver = await startReceiver(["rx", "0", "bind", HOST, "verbose", "1"]);
    const first = idleTransmitter(["tx", HOST, `${receiver.port}`]);
    await stderrShows(receiver, SESSION_LINE);
    first.proc.kill("SIGKILL");
    await first.proc.exited;

    const tx = await runTransmitter(["tx", HOST, `${receiver.port}`], { file: input.path });
    const rx = await within(10_000, "rx after the re-run", receiver.done());
    console.log(`re-run after kill -9: completed in ${(tx.elapsedMs / 1000).toFixed(2)} s`);
    expectDelivered({ rx, tx }, input);
    // It said once that it waits, and why; the receiver said what it gave up.
    expect(tx.stderr.match(/waiting up to 15s/g)?.length, tx.stderr).toBe(1);
    expect(rx.stderr).toMatch(/gave up session [0-9a-f]+, which wrote nothing: no connection for/);
    // rx gives up the abandoned session after its timeout (5 s); a retry follows within 1.5 s.
    expect(tx.elapsedMs).toBeLessThan(10_000);
  },
  30_000,
);

test(
  "a raw hello that never sends data does not lock the receiver: a real transmitter gets through",
  async () => {
    const receiver = await startReceiver(["rx", "0", "bind", HOST, "timeout", "2"]);
    let answered = 0;
    const squatter = await Bun.connect({ hostname: HOST, port: receiver.port, socket: { data: (_, bytes) => void (answered += bytes.length) } });
    const hello = encodeHello({
      magic: VM_MAGIC,
      protocolVersion: VM_PROTOCOL_VERSION,
      sessionId: 0x5157_4154n,
      checkphrase: new Uint8Array(),
      footBytes: DEFAULT_FOOT_BYTES,
      capabilities: CAP_NONE,
      connectionId: 0,
    });
    squatter.write(hello);
    try {
      const tx = await runTransmitter(["tx", HOST, `${receiver.port}`], { file: input.path });
      const rx = await within(10_000, "rx", receiver.done());
      console.log(`after a squatter's hello: completed in ${(tx.elapsedMs / 1000).toFixed(2)} s`);
      expectDelivered({ rx, tx }, input);
      expect(answered).toBeGreaterThan(0); // the squatter's hello had been accepted: it held the session
      expect(tx.elapsedMs).toBeLessThan(8_000);
    } finally {
      squatter.terminate();
    }
  },
  30_000,
);

test(
  "the transmitter of a session given up during its outage is refused 'session over' when it returns; the newcomer's transfer is untouched",
  async () => {
    const receiver = await startReceiver(["rx", "0", "bind", HOST, "timeout", "2", "verbose", "1"]);
    const proxy = await startFaultProxy({ target: { host: HOST, port: receiver.port } });
    try {
      const old = idleTransmitter(["tx", HOST, `${proxy.port}`, "threads", "2"]);
      await stderrShows(receiver, SESSION_LINE);
      proxy.startOutage(); // its connections are reset, new ones refused: it keeps re-dialling

      // The newcomer's input stays open until the old transmitter has come back and been turned away.
      const oldDone = Promise.withResolvers<void>();
      const newcomer = startTransmitter(["tx", HOST, `${receiver.port}`], {
        feed: async (sink) => {
          sink.write(readFileSync(input.path));
          await oldDone.promise;
        },
      });
      await stderrShows(receiver, /gave up session/);
      await proxy.endOutage();
      const oldOutcome = await within(15_000, "the old transmitter's return", old.done());
      oldDone.resolve();
      const [tx, rx] = await within(20_000, "the newcomer's transfer", Promise.all([newcomer.done(), receiver.done()]));

      expect(oldOutcome.exitCode).toBe(EXIT_CODES.peerLost);
      expectOneLineError(oldOutcome.stderr, /turned the connection away: this receiver gave the transfer up/);
      expectDelivered({ rx, tx }, input);
    } finally {
      proxy.close();
    }
  },
  45_000,
);

test(
  "a live transfer is never displaced: a second transmitter waits its bounded time and exits 11; the first completes",
  async () => {
    const big = await makeInput(temp.path, 40 * MIB, "takeover live");
    const receiver = await startReceiver(["rx", "0", "bind", HOST]);
    // ratelimit keeps the first transfer running (about 5 s) while the second one knocks.
    const first = startTransmitter(["tx", HOST, `${receiver.port}`, "ratelimit", "8M"], { file: big.path });
    await receiver.stdout.untilBytes(1);

    // timeout 1: the second one waits 3 timeouts, 3 s.
    const second = await runTransmitter(["tx", HOST, `${receiver.port}`, "timeout", "1"], { file: input.path });
    const [tx, rx] = await within(30_000, "the first transfer", Promise.all([first.done(), receiver.done()]));

    expect(second.exitCode).toBe(EXIT_CODES.busy);
    expectOneLineError(second.stderr, /busy with another transfer \(it is running\); still busy after 3s/);
    expect(second.stderr).toMatch(/waiting up to 3s/);
    expect(second.elapsedMs).toBeGreaterThanOrEqual(2_900);
    expect(second.elapsedMs).toBeLessThan(8_000);
    expectDelivered({ rx, tx }, big);
  },
  45_000,
);

test(
  "a transmitter that vanished after bytes reached stdout is never spliced: the newcomer is turned away (exit 10), rx exits 10 within seconds with the old prefix only",
  async () => {
    const big = await makeInput(temp.path, 40 * MIB, "takeover partial");
    const receiver = await startReceiver(["rx", "0", "bind", HOST, "timeout", "2"]);
    const first = startTransmitter(["tx", HOST, `${receiver.port}`, "ratelimit", "8M"], { file: big.path });
    await receiver.stdout.untilBytes(4 * MIB);
    first.proc.kill("SIGKILL");
    await first.proc.exited;
    const killedAt = performance.now();

    const newcomer = await runTransmitter(["tx", HOST, `${receiver.port}`], { file: input.path });
    const rx = await within(15_000, "rx after the newcomer", receiver.done());
    const rxExitedAfterMs = performance.now() - killedAt;
    console.log(`partial session: rx exited ${(rxExitedAfterMs / 1000).toFixed(2)} s after the kill, after ${rx.stdoutBytes} bytes`);

    expect({ newcomer: newcomer.exitCode, rx: rx.exitCode }).toEqual({ newcomer: EXIT_CODES.peerLost, rx: EXIT_CODES.peerLost });
    expectOneLineError(newcomer.stderr, /its previous transfer was abandoned .* restart the receiver/);
    expectOneLineError(rx.stderr, /the transmitter vanished \(no connection for .*\) after [\d,]+ bytes were written; a new transmitter .* was turned away/);
    // The output is the old stream's first bytes, nothing of the newcomer's.
    const prefix = readFileSync(big.path).subarray(0, rx.stdoutBytes);
    expect(rx.stdoutBytes % DEFAULT_FOOT_BYTES).toBe(0);
    expect(rx.stdoutSha256).toBe(createHash("sha256").update(prefix).digest("hex"));
    // Not `patience` (300 s): rx's timeout (2 s) after the kill, plus the newcomer's retry.
    expect(rxExitedAfterMs).toBeLessThan(8_000);
  },
  45_000,
);
