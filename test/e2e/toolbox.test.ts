/**
 * End to end, the original's toolbox: the real CLI as separate processes
 * over loopback.
 *
 * Proves: prbs + leglimit moves exactly N feet and the receiver checks them;
 * a wrong seed, or one flipped byte, fails both ends naming prbs and the
 * foot; prbs without leglimit runs until interrupted; delayus and ratelimit
 * hold their timing; charmode carries a typed line across in well under
 * 100 ms with stdin held open; rx and tx in one process (full duplex) echo a
 * stream through a second such process, and a process can be both ends of
 * its own loop; terminate/initiate carry an HTTP download byte-identical and
 * a half-closed connection both ways, and a refused service fails cleanly.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { expectCleanTransfer, expectOneLineError, transfer, withoutSummaries } from "../support/e2e.ts";
import { errorLines, freePort, killLeftovers, makeInput, makeTempDir, peersSoFar, sha256, startPeer, within } from "../support/spawn.ts";
import { prbsPattern } from "../../src/tx/prbs.ts";

const FOOT_BYTES = 2 * 1024 * 1024;
const DEADLINE_MS = 15_000;

let temp: ReturnType<typeof makeTempDir>;
beforeAll(() => {
  temp = makeTempDir("e2e-toolbox");
});
afterAll(() => temp.remove());
afterEach(async () => {
  await killLeftovers();
});

/** The first `bytes` of the prbs stream of `seed`. */
function prbsBytes(seed: number, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  prbsPattern(seed).fill(out, 0);
  return out;
}

describe("prbs and leglimit", () => {
  test(
    "prbs 0x1234 leglimit 8: exactly 8 feet, checked by the receiver, written to its stdout",
    async () => {
      const expected = prbsBytes(0x1234, 8 * FOOT_BYTES);
      const outcome = await transfer(["rx", "0", "prbs", "0x1234"], (port) => ["tx", "127.0.0.1", `${port}`, "prbs", "0x1234", "leglimit", "8"], { empty: true }, DEADLINE_MS - 2_000);
      expectCleanTransfer(outcome, { bytes: expected.length, sha256: sha256(expected) });
    },
    DEADLINE_MS,
  );

  test(
    "a wrong seed: both ends exit 9, naming prbs and foot 0",
    async () => {
      const { rx, tx } = await transfer(["rx", "0", "prbs", "0x1234"], (port) => ["tx", "127.0.0.1", `${port}`, "prbs", "0x4321", "leglimit", "4"], { empty: true }, DEADLINE_MS - 2_000);
      expect([rx.exitCode, tx.exitCode]).toEqual([9, 9]);
      expectOneLineError(rx.stderr, /^viamillipede: prbs mismatch in foot 0 at byte 0: the stream is not prbs 0x1234; give both ends the same 'prbs SEED'$/);
      expectOneLineError(tx.stderr, /^viamillipede: receiver detected corruption: prbs mismatch in foot 0 at byte 0: /);
    },
    DEADLINE_MS,
  );

  test(
    "one flipped byte in foot 3 of a prbs stream sent from stdin: the receiver names foot 3",
    async () => {
      const stream = prbsBytes(0x0042, 5 * FOOT_BYTES);
      const flipped = 3 * FOOT_BYTES + 4321;
      stream[flipped]! ^= 0x01;
      const path = join(temp.path, "prbs-flipped.bin");
      writeFileSync(path, stream);
      const { rx, tx } = await transfer(["rx", "0", "prbs", "66"], (port) => ["tx", "127.0.0.1", `${port}`], { file: path }, DEADLINE_MS - 2_000);
      expect([rx.exitCode, tx.exitCode]).toEqual([9, 9]);
      expectOneLineError(rx.stderr, new RegExp(`^viamillipede: prbs mismatch in foot 3 at byte ${flipped}: the stream is not prbs 0x0042;`));
      // Everything up to the bad foot was written, the bad foot too.
      expect(rx.stdoutBytes).toBeGreaterThanOrEqual(4 * FOOT_BYTES);
    },
    DEADLINE_MS,
  );

  test(
    "prbs without leglimit runs until interrupted: SIGINT → tx 130, rx 10, the stream checked all along",
    async () => {
      const rx = startPeer(["rx", "0", "prbs", "9"], "ignore", { keepStdout: false });
      const port = Number((await rx.stderr.until(/listening on port (\d+)/))[1]);
      const tx = startPeer(["tx", "127.0.0.1", `${port}`, "prbs", "9"]);
      await within(DEADLINE_MS - 5_000, "40 MiB of prbs", rx.stdout.untilBytes(40 * 1024 * 1024));
      tx.proc.kill("SIGINT");
      const [txOut, rxOut] = await within(DEADLINE_MS - 3_000, "both ends to exit", Promise.all([tx.done(), rx.done()]));
      expect([txOut.exitCode, rxOut.exitCode]).toEqual([130, 10]);
      expect(txOut.stderr).toBe("viamillipede: interrupted by SIGINT\n");
      expect(rxOut.stderr).not.toContain("prbs mismatch");
      expect(rx.stdout.length).toBeGreaterThanOrEqual(40 * 1024 * 1024);
    },
    DEADLINE_MS,
  );
});

describe("pacing", () => {
  test(
    "delayus 200000 over 5 feet: at least 1.0 s, and not much more",
    async () => {
      const expected = prbsBytes(5, 5 * FOOT_BYTES);
      const outcome = await transfer(["rx", "0"], (port) => ["tx", "127.0.0.1", `${port}`, "prbs", "5", "leglimit", "5", "delayus", "200000"], { empty: true }, DEADLINE_MS - 2_000);
      expectCleanTransfer(outcome, { bytes: expected.length, sha256: sha256(expected) });
      // The transmitter's wall time includes Bun's start-up and the handshake.
      expect(outcome.tx.elapsedMs).toBeGreaterThanOrEqual(1_000);
      expect(outcome.tx.elapsedMs).toBeLessThan(2_500);
    },
    DEADLINE_MS,
  );

  test(
    "ratelimit 8M: the receiver's output flows at 8 MiB/s ± 15 % over 3 s",
    async () => {
      const rateBytesPerS = 8 * 1024 * 1024;
      const rx = startPeer(["rx", "0"]);
      const port = Number((await rx.stderr.until(/listening on port (\d+)/))[1]);
      const tx = startPeer(["tx", "127.0.0.1", `${port}`, "prbs", "3", "leglimit", "12", "ratelimit", "8M"]);
      const [rxOut, txOut] = await within(DEADLINE_MS - 2_000, "the rate-limited transfer", Promise.all([rx.done(), tx.done()]));
      expect([rxOut.exitCode, txOut.exitCode, rxOut.stdout.length]).toEqual([0, 0, 12 * FOOT_BYTES]);
      // From the first foot's arrival to the last byte: 11 feet's worth at the rate.
      const first = rx.stdout.chunks[0]!;
      const last = rx.stdout.chunks.at(-1)!;
      const firstFootAt = await rx.stdout.untilBytes(FOOT_BYTES);
      const seconds = (last.atMs - firstFootAt) / 1000;
      const measured = (11 * FOOT_BYTES) / seconds;
      expect(first.atMs).toBeLessThanOrEqual(firstFootAt);
      console.error(`ratelimit 8M: measured ${(measured / 2 ** 20).toFixed(2)} MiB/s over ${seconds.toFixed(2)} s`);
      expect(measured).toBeGreaterThan(rateBytesPerS * 0.85);
      expect(measured).toBeLessThan(rateBytesPerS * 1.15);
    },
    DEADLINE_MS,
  );
});

describe("charmode", () => {
  test(
    "a typed line reaches the other side in under 100 ms while stdin stays open",
    async () => {
      const rx = startPeer(["rx", "0"]);
      const port = Number((await rx.stderr.until(/listening on port (\d+)/))[1]);
      const tx = startPeer(["tx", "127.0.0.1", `${port}`, "charmode"], "pipe");
      let sent = "";
      const type = async (line: string): Promise<number> => {
        const started = performance.now();
        tx.stdin.write(line);
        await tx.stdin.flush();
        sent += line;
        return (await within(5_000, `line '${line.trim()}'`, rx.stdout.untilBytes(sent.length))) - started;
      };
      await type("warm-up: the first line also waits for the connection\n");
      const latencies: number[] = [];
      for (let i = 0; i < 5; i++) latencies.push(await type(`line ${i}\n`));
      expect(Math.max(...latencies)).toBeLessThan(100);
      await tx.stdin.end();
      const [rxOut, txOut] = await within(5_000, "both ends to exit", Promise.all([rx.done(), tx.done()]));
      expect([rxOut.exitCode, txOut.exitCode, withoutSummaries(txOut.stderr)]).toEqual([0, 0, ""]);
      expect(rxOut.stdout.toString()).toBe(sent);
      console.error(`charmode line latencies (ms): ${latencies.map((ms) => ms.toFixed(1)).join(", ")}`);
    },
    DEADLINE_MS,
  );

  test(
    "bulk input in charmode still arrives whole (64 MiB from a file)",
    async () => {
      const input = await makeInput(temp.path, 64 * 1024 * 1024, "charmode");
      const outcome = await transfer(["rx", "0"], (port) => ["tx", "127.0.0.1", `${port}`, "charmode"], { file: input.path }, DEADLINE_MS - 2_000);
      expectCleanTransfer(outcome, input);
    },
    DEADLINE_MS,
  );
});

describe("full duplex", () => {
  test(
    "echo hi | viamillipede rx P tx localhost P prints hi: one process, both ends of its own loop",
    async () => {
      const port = freePort();
      const path = join(temp.path, "hi.txt");
      writeFileSync(path, "hi\n");
      const self = startPeer(["rx", `${port}`, "tx", "localhost", `${port}`], { file: path });
      const out = await within(DEADLINE_MS - 2_000, "the self loop", self.done());
      expect({ exitCode: out.exitCode, stdout: out.stdout.toString(), stderr: withoutSummaries(out.stderr) }).toEqual({ exitCode: 0, stdout: "hi\n", stderr: "" });
    },
    DEADLINE_MS,
  );

  test(
    "two processes, each rx + tx: A's 20 MiB goes to B, B echoes its stdout into its stdin, A gets it back",
    async () => {
      const input = await makeInput(temp.path, 20 * 1024 * 1024, "duplex");
      const [portA, portB] = [freePort(), freePort()];
      const a = startPeer(["rx", `${portA}`, "tx", "127.0.0.1", `${portB}`, "threads", "4"], { file: input.path });
      const b = startPeer(["rx", `${portB}`, "tx", "127.0.0.1", `${portA}`, "threads", "4"], "pipe");
      // The echo: B's stdout is written back into B's stdin, and stdin closed after the last byte.
      const echo = (async () => {
        let forwarded = 0;
        while (forwarded < input.bytes) {
          await b.stdout.untilBytes(forwarded + 1);
          const all = b.stdout.chunks;
          let at = 0;
          for (const chunk of all) {
            const end = at + chunk.bytes.length;
            if (end > forwarded) b.stdin.write(chunk.bytes.subarray(Math.max(0, forwarded - at)));
            at = end;
          }
          forwarded = at;
          await b.stdin.flush();
        }
        await b.stdin.end();
      })();
      const [aOut, bOut] = await within(DEADLINE_MS - 2_000, "the duplex echo", Promise.all([a.done(), b.done(), echo]));
      // (A may dial B before B listens: a retry warning, but no error.)
      expect({ a: aOut.exitCode, b: bOut.exitCode, aErr: errorLines(aOut.stderr), bErr: errorLines(bOut.stderr) }).toEqual({ a: 0, b: 0, aErr: [], bErr: [] });
      expect(createHash("sha256").update(bOut.stdout).digest("hex")).toBe(input.sha256);
      expect(createHash("sha256").update(aOut.stdout).digest("hex")).toBe(input.sha256);
    },
    DEADLINE_MS,
  );
});

/** Writes to a Bun socket in full: what the kernel does not take now goes out on drain. */
class Writer {
  private queue: Uint8Array[] = [];
  private shutdownPending = false;
  constructor(private readonly socket: Socket<Writer>) {}
  write(bytes: Uint8Array): void {
    this.queue.push(bytes);
    this.flush();
  }
  flush(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const taken = Math.max(0, this.socket.write(head));
      if (taken < head.length) {
        this.queue[0] = head.subarray(taken);
        return;
      }
      this.queue.shift();
    }
    if (this.shutdownPending) this.socket.shutdown();
  }
  shutdownWhenFlushed(): void {
    this.shutdownPending = true;
    this.flush();
  }
}

/** The error lines of a tunnel end's stderr, without terminate's port line. */
function tunnelErrors(stderr: string): string[] {
  return errorLines(stderr).filter((line) => !/^viamillipede: terminate listening on port \d+$/.test(line));
}

/** Starts both ends of a tunnel: B initiates to the service, A terminates (its port printed). */
async function startTunnel(servicePort: number, extra: string[] = []) {
  const [portA, portB] = [freePort(), freePort()];
  const b = startPeer(["rx", `${portB}`, "tx", "127.0.0.1", `${portA}`, "initiate", "127.0.0.1", `${servicePort}`, ...extra]);
  const a = startPeer(["rx", `${portA}`, "tx", "127.0.0.1", `${portB}`, "terminate", "0", ...extra]);
  const mouth = Number((await within(10_000, "terminate's port", a.stderr.until(/^viamillipede: terminate listening on port (\d+)$/m)))[1]);
  return { a, b, mouth };
}

describe("tunnels: terminate and initiate", () => {
  test(
    "an HTTP download (5 MiB from Bun.serve) through the tunnel is byte-identical; both ends exit 0",
    async () => {
      const body = (await makeInput(temp.path, 5 * 1024 * 1024, "http")).path;
      const content = Buffer.from(await Bun.file(body).arrayBuffer());
      const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(content) });
      try {
        const { a, b, mouth } = await startTunnel(server.port ?? 0);
        const response = await within(10_000, "the download", fetch(`http://127.0.0.1:${mouth}/file`, { headers: { Connection: "close" } }));
        const got = Buffer.from(await response.arrayBuffer());
        expect(response.status).toBe(200);
        expect(sha256(got)).toBe(sha256(content));
        // The server and the client closed: the tunnel ends on both sides.
        const [aOut, bOut] = await within(10_000, "both ends to exit", Promise.all([a.done(), b.done()]), peersSoFar({ a, b }));
        expect({ a: aOut.exitCode, b: bOut.exitCode, aOut: aOut.stdout.length, bOut: bOut.stdout.length }).toEqual({ a: 0, b: 0, aOut: 0, bOut: 0 });
        expect([tunnelErrors(aOut.stderr), tunnelErrors(bOut.stderr)]).toEqual([[], []]);
        expect(aOut.stderr).toStartWith(`viamillipede: terminate listening on port ${mouth}\n`);
      } finally {
        server.stop(true);
      }
    },
    DEADLINE_MS,
  );

  test(
    "a client that half-closes: 3 MiB each way through an echo service, every byte back, both ends exit 0",
    async () => {
      // The service echoes what it gets and half-closes once the client has.
      const service = Bun.listen<Writer>({
        hostname: "127.0.0.1",
        port: 0,
        allowHalfOpen: true,
        socket: {
          open: (socket) => void (socket.data = new Writer(socket)),
          data: (socket, chunk) => socket.data.write(chunk),
          drain: (socket) => socket.data.flush(),
          end: (socket) => socket.data.shutdownWhenFlushed(),
        },
      });
      try {
        const { a, b, mouth } = await startTunnel(service.port);
        const block = crypto.getRandomValues(Buffer.alloc(65536));
        const payload = Buffer.concat(Array.from({ length: 48 }, (_, i) => Buffer.concat([block, Buffer.from([i])]))); // ~3 MiB
        const received: Uint8Array[] = [];
        let ended!: () => void;
        const gotEnd = new Promise<void>((resolve) => (ended = resolve));
        // The client sends everything, then half-closes, and reads until the echo's end.
        const client = await Bun.connect<Writer>({
          hostname: "127.0.0.1",
          port: mouth,
          allowHalfOpen: true,
          socket: {
            open: (socket) => void (socket.data = new Writer(socket)),
            data: (_socket, chunk) => void received.push(chunk),
            drain: (socket) => socket.data.flush(),
            // Bun reports the peer's FIN as `close`, not `end`, once we have shut down our side.
            end: () => ended(),
            close: () => ended(),
          },
        });
        client.data.write(payload);
        client.data.shutdownWhenFlushed();
        await within(10_000, "the echo to come back and end", gotEnd);
        client.end();
        expect(sha256(Buffer.concat(received))).toBe(sha256(payload));
        const [aOut, bOut] = await within(10_000, "both ends to exit", Promise.all([a.done(), b.done()]), peersSoFar({ a, b }));
        expect({ a: aOut.exitCode, b: bOut.exitCode, aErr: tunnelErrors(aOut.stderr), bErr: tunnelErrors(bOut.stderr) }).toEqual({ a: 0, b: 0, aErr: [], bErr: [] });
      } finally {
        service.stop(true);
      }
    },
    DEADLINE_MS,
  );

  test(
    "initiate to a service that refuses: B exits 3 naming initiate, A exits 10, the client's connection is closed",
    async () => {
      const { a, b, mouth } = await startTunnel(freePort());
      let closed!: () => void;
      const clientClosed = new Promise<void>((resolve) => (closed = resolve));
      await Bun.connect({ hostname: "127.0.0.1", port: mouth, socket: { data() {}, close: () => closed(), end: () => closed() } });
      const [aOut, bOut] = await within(10_000, "both ends to exit", Promise.all([a.done(), b.done(), clientClosed]), peersSoFar({ a, b }));
      expect([aOut.exitCode, bOut.exitCode]).toEqual([10, 3]);
      expectOneLineError(bOut.stderr, /^viamillipede: initiate cannot connect to 127\.0\.0\.1:\d+: ECONNREFUSED; start the service or fix 'initiate HOST PORT'$/);
      expect(tunnelErrors(aOut.stderr)).toHaveLength(1);
      // The abort, or (a connection of A's that reached B after the failure) the refusal carrying the same reason.
      expect(tunnelErrors(aOut.stderr)[0]).toMatch(
        /^viamillipede: (receiver aborted the transfer|receiver 127\.0\.0\.1:\d+ turned the connection away: the transfer failed there): interrupted by a failure in the other direction \(initiate cannot connect to /,
      );
    },
    DEADLINE_MS,
  );
});
