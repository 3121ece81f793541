/**
 * End to end: a receiver whose stderr cannot be written keeps transferring.
 * In each case any host provokes a warning (a hello of another protocol
 * version, refused), then a real transfer runs with SIGUSR1 (a status block)
 * mid-way; the output is identical, both ends exit 0, and the receiver's
 * stats file counts the lines it dropped.
 *
 * 1. stderr on /dev/full: every write fails with ENOSPC. The listening line
 *    cannot be read back, so the port is fixed (freePort; the receiver then
 *    prints no port) and the provoking connection is retried until it listens.
 * 2. stderr a pipe whose reader has gone: EPIPE (the test reads up to the
 *    listening line, then closes its end).
 * 3. stderr a terminal that hung up: EIO (a pseudo-terminal, test/support/pty.ts,
 *    whose master the test closes after the listening line); the receiver
 *    draws its progress line there, so it writes every 250 ms.
 * 4. stderr a terminal nobody reads (as when held with ^S), filled by a
 *    status block every 20 ms: the transfer does not wait for it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { expectDelivered } from "../support/e2e.ts";
import { openPty, ptyAvailable } from "../support/pty.ts";
import { ByteWatch, freePort, killLeftovers, makeInput, makeTempDir, MAIN, startTransmitter, within, type Input } from "../support/spawn.ts";
import { MIB } from "../support/sizes.ts";

const HOST = "127.0.0.1";
/** A hello of protocol version 9 in its record: refused with a warning ("version 9 is not supported"). */
const OTHER_VERSION_HELLO = new Uint8Array([0x80, 0, 0, 8, 0x56, 0x4d, 0x50, 0x31, 0, 0, 0, 9]);
/** The receiver's first line with port 0. */
const LISTENING = /^viamillipede: listening on port (\d+)\r?$/m;
/** How often the stuck-terminal case asks for a status block. */
const STATUS_FLOOD_MS = 20;
/** Between attempts to reach a receiver whose listening line cannot be read. */
const CONNECT_RETRY_MS = 50;

let temp: ReturnType<typeof makeTempDir>;
let input: Input; // 24 MiB: with ratelimit 16M, about 1.5 s
const receivers = new Set<Bun.Subprocess>();

beforeAll(async () => {
  temp = makeTempDir("stderr");
  input = await makeInput(temp.path, 24 * MIB, "stderr");
});
afterAll(() => temp.remove());
afterEach(async () => {
  for (const proc of receivers) proc.kill("SIGKILL");
  await Promise.all([...receivers].map((proc) => proc.exited));
  receivers.clear();
  await killLeftovers();
});

if (!ptyAvailable()) console.log("skipping the hung-up terminal test: no pseudo-terminal through libc.so.6 here");

/** `rx PORT stats FILE` with stderr on `stderr` (a descriptor or a pipe to the test); stdout hashed as it arrives. */
function spawnReceiver(port: number, stderr: number | "pipe", statsFile: string, extra: string[] = []) {
  const proc = Bun.spawn([process.execPath, MAIN, "rx", String(port), "stats", statsFile, ...extra], {
    stdin: "ignore",
    stdout: "pipe",
    stderr,
    env: { ...process.env, NO_COLOR: "1" },
  });
  receivers.add(proc);
  const watch = new ByteWatch(proc.stdout, { keep: false });
  const stdout = watch.done.then(() => ({ sha256: watch.sha256(), bytes: watch.length }));
  return { proc, stdout, bytesSoFar: () => watch.length };
}

/**
 * Sends the other-version hello and resolves once the receiver has closed the
 * connection (it refused it, with a warning). Until the receiver listens the
 * connection is refused and tried again; if the receiver exits first, rejects.
 */
async function provokeWarning(port: number, receiver: Bun.Subprocess): Promise<void> {
  let exited = false;
  void receiver.exited.then(() => (exited = true));
  for (;;) {
    const outcome = await new Promise<"refused" | "closed">((resolve) => {
      Bun.connect({
        hostname: HOST,
        port,
        socket: {
          open: (socket) => void socket.write(OTHER_VERSION_HELLO),
          data: () => {},
          close: () => resolve("closed"),
          error: () => {},
          connectError: () => resolve("refused"),
        },
      }).catch(() => resolve("refused"));
    });
    if (outcome === "closed") return;
    if (exited) throw new Error(`the receiver exited (${receiver.exitCode}) before it listened`);
    await Bun.sleep(CONNECT_RETRY_MS);
  }
}

/** A transfer to `port`, with SIGUSR1 to the receiver once 8 MiB are through unless `status` is false; both outcomes. */
async function transferWithStatus(port: number, receiver: ReturnType<typeof spawnReceiver>, status = true) {
  const transmitter = startTransmitter(["tx", HOST, String(port), "threads", "4", "ratelimit", "16M"], { file: input.path });
  await within(15_000, "8 MiB through", (async () => {
    while (receiver.bytesSoFar() < 8 * MIB) {
      if (receiver.proc.exitCode !== null) throw new Error(`the receiver exited (${receiver.proc.exitCode}) mid-transfer`);
      await Bun.sleep(20);
    }
  })());
  if (status) receiver.proc.kill("SIGUSR1");
  const exitCode = await within(30_000, "the receiver's exit", receiver.proc.exited);
  // A receiver that died leaves the transmitter waiting for `patience`: say so now.
  if (exitCode !== 0) throw new Error(`the receiver exited (${exitCode}) mid-transfer`);
  const [tx, out] = await within(30_000, "the transfer", Promise.all([transmitter.done(), receiver.stdout]));
  return { tx, rx: { exitCode, stdoutBytes: out.bytes, stdoutSha256: out.sha256 } };
}

/** The receiver's stats file says it succeeded; returns how many stderr lines it dropped. */
function droppedLines(statsFile: string): number {
  const document = JSON.parse(readFileSync(statsFile, "utf8"));
  expect(document).toMatchObject({ exitCode: 0, error: null });
  return document.stderrLinesDropped;
}

describe("an unwritable stderr does not stop the receiver", () => {
  for (const provocation of ["a refused hello", "SIGUSR1 mid-transfer"] as const) {
    test(`stderr on /dev/full (ENOSPC), ${provocation}: identical output, both exit 0`, async () => {
      const statsFile = join(temp.path, "full.json");
      const port = freePort();
      const full = openSync("/dev/full", "w");
      const receiver = spawnReceiver(port, full, statsFile);
      closeSync(full);
      const hello = provocation === "a refused hello";
      // Without the hello, the transmitter's own connections find the port once it listens.
      if (hello) await within(10_000, "the refused hello", provokeWarning(port, receiver.proc));
      const outcome = await transferWithStatus(port, receiver, !hello);
      expectDelivered(outcome, input);
      // The warning and the summary; or the status block's 12 lines and the summary (no listening line: the port was given).
      expect(droppedLines(statsFile)).toBeGreaterThanOrEqual(hello ? 2 : 13);
    }, 45_000);
  }

  test("stderr a pipe whose reader has gone (EPIPE): the same", async () => {
    const statsFile = join(temp.path, "closed.json");
    const receiver = spawnReceiver(0, "pipe", statsFile);
    const stderr = (receiver.proc.stderr as ReadableStream<Uint8Array>).getReader();
    let text = "";
    while (LISTENING.exec(text) === null) {
      const { done, value } = await within(10_000, "the listening line", stderr.read());
      if (done) throw new Error(`the receiver's stderr ended: ${text}`);
      text += new TextDecoder().decode(value);
    }
    const port = Number(LISTENING.exec(text)![1]);
    await stderr.cancel(); // the reader goes away: the pipe has no reader now
    await within(10_000, "the refused hello", provokeWarning(port, receiver.proc));
    const outcome = await transferWithStatus(port, receiver);
    expectDelivered(outcome, input);
    expect(droppedLines(statsFile)).toBeGreaterThanOrEqual(11);
  }, 45_000);

  test.skipIf(!ptyAvailable())("stderr a terminal that hung up (EIO), with the progress line on it: the same", async () => {
    const statsFile = join(temp.path, "hungup.json");
    const pty = openPty();
    const receiver = spawnReceiver(0, pty.slave, statsFile);
    pty.childStarted();
    // On a terminal the receiver draws its progress line: the first drawing shows it is there.
    const screen = await within(10_000, "the listening line and a progress line", pty.readUntil(/listening on port \d+\r?\n[^]*\x1b\[2Krx /));
    const port = Number(LISTENING.exec(screen)![1]);
    pty.hangUp();
    await within(10_000, "the refused hello", provokeWarning(port, receiver.proc));
    const outcome = await transferWithStatus(port, receiver);
    expectDelivered(outcome, input);
    expect(droppedLines(statsFile)).toBeGreaterThanOrEqual(11);
  }, 45_000);

  test.skipIf(!ptyAvailable())("stderr a terminal nobody reads (held with ^S), a status block every 20 ms: the transfer does not wait for it", async () => {
    const statsFile = join(temp.path, "stuck.json");
    const pty = openPty();
    const receiver = spawnReceiver(0, pty.slave, statsFile);
    pty.childStarted();
    const screen = await within(10_000, "the listening line", pty.readUntil(LISTENING));
    const port = Number(LISTENING.exec(screen)![1]);
    // From here on nothing reads the terminal. It holds about 20 KB; a status block is about 700 bytes,
    // so it is full within a second, after which every write to it would wait.
    const transmitter = startTransmitter(["tx", HOST, String(port), "threads", "4", "ratelimit", "16M"], { file: input.path });
    const statusEvery = setInterval(() => receiver.proc.kill("SIGUSR1"), STATUS_FLOOD_MS);
    try {
      const [tx, exitCode, out] = await within(20_000, "the transfer", Promise.all([transmitter.done(), receiver.proc.exited, receiver.stdout]));
      expectDelivered({ tx, rx: { exitCode, stdoutBytes: out.bytes, stdoutSha256: out.sha256 } }, input);
    } finally {
      clearInterval(statusEvery);
      pty.hangUp();
    }
    // What still waited for the terminal (up to 64 KiB) was lost at exit: nothing to count on, beyond the run's success.
    droppedLines(statsFile);
  }, 45_000);
});
