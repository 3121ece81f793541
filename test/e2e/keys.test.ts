/**
 * End to end, keys, encryption and compression: the real CLI as separate
 * processes over loopback.
 *
 * Proves: a wrong key, no key on tx, and no key on rx are each refused at
 * once (exit 12, one line naming the key) while the receiver keeps serving,
 * and the right key then transfers; VIAMILLIPEDE_KEY_FILE works like `key`;
 * with `encrypt`, a byte flipped in transit (fault proxy) fails authentication
 * and the foot is fetched again, and a tap on the wire never sees the
 * plaintext (it does without encrypt); `compress zstd` moves compressible
 * input in several times fewer wire bytes, and `compress gzip` with encrypt
 * arrives intact.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import type { Socket } from "bun";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXIT_CODES } from "../../src/errors.ts";
import { expectDelivered, expectOneLineError, transferTo } from "../support/e2e.ts";
import { startFaultProxy } from "../support/fault-proxy.ts";
import { errorLines, killLeftovers, makeInput, makeTempDir, runTransmitter, sha256, startReceiver, startTransmitter, within, type Input } from "../support/spawn.ts";
import { MIB } from "../support/sizes.ts";

const HOST = "127.0.0.1";
const DEADLINE_MS = 30_000;

let temp: ReturnType<typeof makeTempDir>;
let keyA: string;
let keyB: string;
let random: Input;
let text: Input;
/** A line that occurs all over `text`: the tap looks for it on the wire. */
const MARKER = "viamillipede-plaintext-marker";

beforeAll(async () => {
  temp = makeTempDir("e2e-keys");
  keyA = join(temp.path, "a.key");
  keyB = join(temp.path, "b.key");
  writeFileSync(keyA, crypto.getRandomValues(new Uint8Array(32)));
  writeFileSync(keyB, crypto.getRandomValues(new Uint8Array(32)));
  random = await makeInput(temp.path, 6 * MIB + 7, "keys");
  // Compressible: numbered lines of text with the marker in each.
  const lines: string[] = [];
  for (let i = 0; lines.length < 200_000; i++) lines.push(`${i} ${MARKER} ${(i * 7919) % 1000}\n`);
  const bytes = new TextEncoder().encode(lines.join(""));
  const path = join(temp.path, "text.bin");
  writeFileSync(path, bytes);
  text = { path, bytes: bytes.length, sha256: sha256(bytes) };
});
afterAll(() => temp.remove());
afterEach(killLeftovers);

test(
  "wrong key, no key on tx, no key on rx: each refused at once (exit 12); the receiver keeps serving the right key",
  async () => {
    const receiver = await startReceiver(["rx", "0", "bind", HOST, "key", keyA]);
    const port = `${receiver.port}`;
    const attempts: Array<[string, string[], RegExp]> = [
      ["wrong key", ["tx", HOST, port, "key", keyB], /key/],
      ["no key", ["tx", HOST, port], /requires a key/],
    ];
    for (const [what, args, pattern] of attempts) {
      const tx = await within(10_000, what, runTransmitter(args, { file: random.path }));
      expect({ what, exit: tx.exitCode, stdout: tx.stdout }).toEqual({ what, exit: EXIT_CODES.key, stdout: "" });
      expectOneLineError(tx.stderr, pattern);
      expect(tx.elapsedMs).toBeLessThan(5_000);
    }
    expect(receiver.proc.exitCode).toBeNull();
    // The right key, from the environment this time (VIAMILLIPEDE_KEY_FILE).
    const transmitter = startTransmitter(["tx", HOST, port], { file: random.path }, { env: { VIAMILLIPEDE_KEY_FILE: keyA } });
    const [tx, rx] = await within(DEADLINE_MS, "the right key", Promise.all([transmitter.done(), receiver.done()]));
    expectDelivered({ rx, tx }, random);
    expect(errorLines(tx.stderr)).toEqual([]);
    expect(rx.stderr).toMatch(/wrong key/);
    expect(rx.stderr).toMatch(/requires a key/);
    expect(errorLines(rx.stderr)).toEqual([]);

    // A keyed transmitter never sends to a receiver without the key.
    const keyless = await startReceiver(["rx", "0", "bind", HOST]);
    const refused = await within(10_000, "rx without a key", runTransmitter(["tx", HOST, `${keyless.port}`, "key", keyA], { file: random.path }));
    expect(refused.exitCode).toBe(EXIT_CODES.key);
    expectOneLineError(refused.stderr, /has no key/);
    keyless.proc.kill("SIGTERM");
    expect((await keyless.done()).stdoutBytes).toBe(0);
  },
  DEADLINE_MS * 2,
);

test(
  "encrypt: bytes flipped in transit fail authentication and are fetched again; the output is identical",
  async () => {
    const input = await makeInput(temp.path, 16 * MIB, "keys flips");
    const receiver = await startReceiver(["rx", "0", "bind", HOST, "key", keyA, "encrypt", "verbose", "1"]);
    const proxy = await startFaultProxy({ target: { host: HOST, port: receiver.port }, seed: 11, flipBytes: { everyBytes: 3 * MIB } });
    try {
      const outcome = await transferTo(receiver, ["tx", HOST, `${proxy.port}`, "key", keyA, "encrypt", "threads", "4"], { file: input.path }, DEADLINE_MS);
      expectDelivered(outcome, input);
      expect(proxy.stats().flips).toBeGreaterThanOrEqual(3);
      expect(outcome.rx.stderr).toMatch(/failed authentication on connection \d+; asking for it again/);
    } finally {
      proxy.close();
    }
  },
  DEADLINE_MS,
);

/** A transparent TCP tap on loopback: forwards both ways and keeps every byte tx sent. */
async function startTap(target: number): Promise<{ port: number; upBytes(): Buffer; close(): void }> {
  const captured: Buffer[] = [];
  const server = Bun.listen<{ peer?: Socket<unknown>; queued: Uint8Array[] }>({
    hostname: HOST,
    port: 0,
    socket: {
      async open(client) {
        client.data = { queued: [] };
        client.pause();
        const peer = await Bun.connect<unknown>({
          hostname: HOST,
          port: target,
          socket: {
            data(_, bytes) {
              client.write(bytes);
            },
            close() {
              client.end();
            },
          },
        });
        client.data.peer = peer;
        client.resume();
      },
      data(client, bytes) {
        captured.push(Buffer.from(bytes));
        // Loopback takes what we give it in these sizes; a short write would corrupt the capture's use only, not the test.
        let at = 0;
        while (at < bytes.length) at += client.data.peer!.write(bytes.subarray(at)) || 0;
      },
      close(client) {
        client.data.peer?.end();
      },
    },
  });
  return { port: server.port, upBytes: () => Buffer.concat(captured), close: () => server.stop(true) };
}

async function tappedTransfer(rxArgs: string[], txArgs: string[], input: Input): Promise<Buffer> {
  const receiver = await startReceiver(["rx", "0", "bind", HOST, ...rxArgs]);
  const tap = await startTap(receiver.port);
  try {
    const outcome = await transferTo(receiver, ["tx", HOST, `${tap.port}`, "threads", "2", ...txArgs], { file: input.path }, DEADLINE_MS);
    expectDelivered(outcome, input);
    return tap.upBytes();
  } finally {
    tap.close();
  }
}

test(
  "encrypt: the plaintext never crosses the wire (and without encrypt it does)",
  async () => {
    const marker = Buffer.from(MARKER);
    const plain = await tappedTransfer([], [], text);
    expect(plain.indexOf(marker)).toBeGreaterThanOrEqual(0);
    const sealed = await tappedTransfer(["key", keyA], ["key", keyA, "encrypt"], text);
    expect(sealed.length).toBeGreaterThan(text.bytes);
    expect(sealed.indexOf(marker)).toBe(-1);
    // Nor any 16-byte window of the input's first foot.
    const input = await Bun.file(text.path).bytes();
    for (const at of [0, 4096, 1_000_000]) expect(sealed.indexOf(Buffer.from(input.subarray(at, at + 16)))).toBe(-1);
  },
  DEADLINE_MS * 2,
);

test(
  "compress zstd: compressible input crosses in several times fewer wire bytes; gzip with encrypt arrives intact",
  async () => {
    const zstd = await tappedTransfer([], ["compress", "zstd"], text);
    console.log(`compress zstd: ${text.bytes} stream bytes in ${zstd.length} wire bytes (${(text.bytes / zstd.length).toFixed(1)}x fewer)`);
    expect(zstd.length * 4).toBeLessThan(text.bytes);
    const gzip = await tappedTransfer(["key", keyA], ["key", keyA, "encrypt", "compress", "gzip:1"], text);
    expect(gzip.length * 4).toBeLessThan(text.bytes);
    expect(gzip.indexOf(Buffer.from(MARKER))).toBe(-1);
    // Random input does not shrink: it goes raw, with next to no overhead.
    const raw = await tappedTransfer([], ["compress", "zstd"], random);
    expect(raw.length).toBeLessThan(random.bytes * 1.01);
  },
  DEADLINE_MS * 2,
);
