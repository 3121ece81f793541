/**
 * End to end, failures: the real CLI as separate processes over loopback,
 * each failure reported as one `viamillipede:` line (no stack trace) with
 * its exit code, quickly, and without hanging the other end.
 *
 * Proves: no receiver (3, unreachable); a wrong checkphrase (4) leaves the
 * receiver serving the right transmitter; a consumer that closes the
 * receiver's stdout early ends both ends with 6 (outputClosed); a taken port
 * (8, listen); garbage on the receiver's port does not stop it; a server that
 * is not viamillipede is recognised at once (5, protocol); unreadable input
 * ends the transmitter with 7 and, told, the receiver with 10.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import type { Socket } from "bun";
import { EXIT_CODES } from "../../src/errors.ts";
import { expectOneLineError, listeningOnly, transferTo, withoutSummaries } from "../support/e2e.ts";
import {
  errorLines,
  freePort,
  killLeftovers,
  MAIN,
  makeInput,
  makeTempDir,
  runCli,
  runTransmitter,
  STACK_LINE,
  startReceiver,
  within,
  type Input,
} from "../support/spawn.ts";

const DEADLINE_MS = 20_000;

let temp: ReturnType<typeof makeTempDir>;
let small: Input;
beforeAll(async () => {
  temp = makeTempDir("e2e-failures");
  small = await makeInput(temp.path, 5 * 1024 * 1024 + 99, "small");
});
afterAll(() => temp.remove());
afterEach(killLeftovers);

test(
  "no receiver: exit 3 (unreachable) after patience 2, naming the receiver",
  async () => {
    const port = freePort();
    const tx = await within(DEADLINE_MS - 2_000, "tx to nobody", runTransmitter(["tx", "127.0.0.1", `${port}`, "patience", "2"], { file: small.path }));
    expect({ exit: tx.exitCode, stdout: tx.stdout }).toEqual({ exit: EXIT_CODES.unreachable, stdout: "" });
    expectOneLineError(tx.stderr, new RegExp(`127\\.0\\.0\\.1:${port}.*not reachable`));
    // It waited its patience, and not much longer.
    expect(tx.elapsedMs).toBeGreaterThanOrEqual(1_900);
    expect(tx.elapsedMs).toBeLessThan(6_000);
  },
  DEADLINE_MS,
);

test(
  "checkphrase mismatch: tx exits 4; the receiver keeps serving and takes the right transfer",
  async () => {
    const receiver = await startReceiver(["rx", "0", "bind", "127.0.0.1", "checkphrase", "alpha"]);
    const wrongInput = await makeInput(temp.path, 1024 * 1024, "wrong checkphrase");
    const wrong = await within(
      10_000,
      "tx with the wrong checkphrase",
      runTransmitter(["tx", "127.0.0.1", `${receiver.port}`, "checkphrase", "beta"], { file: wrongInput.path }),
    );
    expect({ exit: wrong.exitCode, stdout: wrong.stdout }).toEqual({ exit: EXIT_CODES.checkphrase, stdout: "" });
    expectOneLineError(wrong.stderr, /checkphrase/);
    expect(wrong.elapsedMs).toBeLessThan(5_000);
    // Still running, still listening: the right transmitter completes through the same port.
    expect(receiver.proc.exitCode).toBeNull();
    const { rx, tx } = await transferTo(receiver, ["tx", "127.0.0.1", `${receiver.port}`, "checkphrase", "alpha"], { file: small.path }, DEADLINE_MS - 8_000);
    expect({ rxExit: rx.exitCode, txExit: tx.exitCode, txStdout: tx.stdout, txStderr: withoutSummaries(tx.stderr) }).toEqual({
      rxExit: 0,
      txExit: 0,
      txStdout: "",
      txStderr: "",
    });
    // Exactly the right transfer, nothing of the refused one.
    expect({ bytes: rx.stdoutBytes, sha256: rx.stdoutSha256 }).toEqual({ bytes: small.bytes, sha256: small.sha256 });
    // The receiver noted the refusals as warnings, not errors.
    expect(rx.stderr).toContain(listeningOnly(receiver.port));
    expect(rx.stderr).toMatch(/checkphrase/);
    expect(errorLines(rx.stderr)).toEqual([]);
    expect(rx.stderr).not.toMatch(STACK_LINE);
  },
  DEADLINE_MS,
);

test(
  "the consumer closes the receiver's stdout early: both ends exit 6 (outputClosed), no hang",
  async () => {
    const large = await makeInput(temp.path, 100 * 1024 * 1024, "consumer");
    // Like `viamillipede rx 0 | head -c 1000`: the test reads ~1000 bytes of stdout, then closes the pipe.
    const receiver = await startReceiver(["rx", "0", "bind", "127.0.0.1"], { output: "consumer", consumeBytes: 1000 });
    const started = performance.now();
    const { rx, tx } = await transferTo(receiver, ["tx", "127.0.0.1", `${receiver.port}`, "threads", "4"], { file: large.path }, DEADLINE_MS - 5_000);
    const elapsedMs = performance.now() - started;
    expect({ rxExit: rx.exitCode, txExit: tx.exitCode, txStdout: tx.stdout }).toEqual({
      rxExit: EXIT_CODES.outputClosed,
      txExit: EXIT_CODES.outputClosed,
      txStdout: "",
    });
    expect(rx.stdoutBytes).toBeGreaterThanOrEqual(1000);
    expect(rx.stdoutBytes).toBeLessThan(large.bytes);
    expectOneLineError(tx.stderr, /receiver's output was closed/);
    expectOneLineError(rx.stderr, /(stdout|output) was closed/);
    expect(elapsedMs).toBeLessThan(10_000);
  },
  DEADLINE_MS,
);

test(
  "port in use: a second rx on the same port exits 8 (listen)",
  async () => {
    const first = await startReceiver(["rx", "0"]);
    const second = await within(10_000, "second rx", runCli(["rx", `${first.port}`]));
    expect({ exit: second.exitCode, stdout: second.stdout }).toEqual({ exit: EXIT_CODES.listen, stdout: "" });
    expectOneLineError(second.stderr, new RegExp(`port ${first.port}.*in use`));
    // The first receiver was not disturbed; SIGTERM ends it as a signal should.
    expect(first.proc.exitCode).toBeNull();
    first.proc.kill("SIGTERM");
    const rx = await within(5_000, "first rx after SIGTERM", first.done());
    expect({ exit: rx.exitCode, stdoutBytes: rx.stdoutBytes }).toEqual({ exit: 143, stdoutBytes: 0 });
    expectOneLineError(rx.stderr, /interrupted by SIGTERM/);
  },
  DEADLINE_MS,
);

/** Connects to the receiver, sends `bytes`, and resolves once the receiver has closed the connection. */
async function sendGarbage(port: number, bytes: Uint8Array): Promise<void> {
  let closed!: () => void;
  const gone = new Promise<void>((resolve) => (closed = resolve));
  const socket: Socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: { data() {}, close: () => closed(), end: (s) => void s.end(), error: () => closed() },
  });
  socket.write(bytes);
  await within(5_000, "receiver dropping a garbage connection", gone);
}

test(
  "garbage on the receiver's port: dropped, and a real transfer then succeeds",
  async () => {
    const receiver = await startReceiver(["rx", "0", "bind", "127.0.0.1"]);
    // Not a record at all: "GET " read as a record mark is a fragment of ~1.2 GB.
    await sendGarbage(receiver.port, new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
    // A well-formed record (last fragment, 16 bytes) that is not a hello.
    const junk = new Uint8Array([0x80, 0, 0, 16, ...new TextEncoder().encode("not a hello, no!")]);
    await sendGarbage(receiver.port, junk);
    expect(receiver.proc.exitCode).toBeNull();
    const { rx, tx } = await transferTo(receiver, ["tx", "127.0.0.1", `${receiver.port}`], { file: small.path }, DEADLINE_MS - 8_000);
    expect({ rxExit: rx.exitCode, txExit: tx.exitCode, txStdout: tx.stdout, txStderr: withoutSummaries(tx.stderr) }).toEqual({
      rxExit: 0,
      txExit: 0,
      txStdout: "",
      txStderr: "",
    });
    expect({ bytes: rx.stdoutBytes, sha256: rx.stdoutSha256 }).toEqual({ bytes: small.bytes, sha256: small.sha256 });
    expect(errorLines(rx.stderr)).toEqual([]);
    expect(rx.stderr).not.toMatch(STACK_LINE);
  },
  DEADLINE_MS,
);

test(
  "a server that is not viamillipede: tx exits 5 (protocol) at once, not after its patience",
  async () => {
    // Long enough to tell "at once" from "gave up after the patience", short enough that a failure is quick.
    const PATIENCE_S = 8;
    const held = new Set<Socket>();
    const server = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(socket) {
          held.add(socket);
          socket.write("SSH-2.0-OpenSSH_9.0\r\n");
        },
        data() {},
        close: (socket) => void held.delete(socket),
      },
    });
    try {
      const tx = await within(
        DEADLINE_MS - 2_000,
        "tx to an SSH server",
        runTransmitter(["tx", "127.0.0.1", `${server.port}`, "patience", `${PATIENCE_S}`], { file: small.path }),
      );
      expect({ exit: tx.exitCode, stdout: tx.stdout }).toEqual({ exit: EXIT_CODES.protocol, stdout: "" });
      expectOneLineError(tx.stderr, /not a viamillipede receiver/);
      // Well before both the patience and the handshake deadline (10 s).
      expect(tx.elapsedMs).toBeLessThan(4_000);
    } finally {
      server.stop(true);
    }
  },
  DEADLINE_MS,
);

test(
  "unreadable input: tx exits 7 (input) and tells the receiver, which exits 10 (peerLost)",
  async () => {
    const receiver = await startReceiver(["rx", "0", "bind", "127.0.0.1"]);
    // A directory on stdin (Bun.spawn refuses one, the shell does not): the first read fails with EISDIR.
    const proc = Bun.spawn(["sh", "-c", `exec "$0" "$1" tx 127.0.0.1 ${receiver.port} < "$2"`, process.execPath, MAIN, temp.path], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const [exit, stdout, stderr] = await within(10_000, "tx reading a directory", Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]));
    expect({ exit, stdout }).toEqual({ exit: EXIT_CODES.input, stdout: "" });
    expectOneLineError(stderr, /cannot read stdin: EISDIR/);
    const rx = await within(10_000, "rx after the transmitter's abort", receiver.done());
    expect({ exit: rx.exitCode, bytes: rx.stdoutBytes }).toEqual({ exit: EXIT_CODES.peerLost, bytes: 0 });
    expectOneLineError(rx.stderr.replace(listeningOnly(receiver.port), ""), /transmitter aborted: cannot read stdin/);
  },
  DEADLINE_MS,
);
