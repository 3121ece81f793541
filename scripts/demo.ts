/**
 * `bun run demo`: a receiver and a transmitter on loopback, as two real
 * processes, moving a generated stream; prints what each end said, both
 * sha256 sums and the rate. Stays on 127.0.0.1.
 *
 *   DEMO_MIB=512 bun run demo      # stream size in MiB (default 256)
 *   DEMO_RATE_MIB=0 bun run demo   # full speed (default: 64 MiB/s, to watch the progress line)
 */
import { createHash } from "node:crypto";

const MIB = 1024 * 1024;
const sizeMiB = Number(process.env.DEMO_MIB ?? 256);
/** The demo paces itself so the progress line has time to move (DEMO_RATE_MIB=0: full speed). */
const rateMiB = Number(process.env.DEMO_RATE_MIB ?? 64);
const cli = new URL("../src/cli/main.ts", import.meta.url).pathname;
const bun = process.execPath;

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Reads a stream to its end, feeding each chunk to `each`. */
async function consume(stream: ReadableStream<Uint8Array>, each: (chunk: Uint8Array) => void): Promise<void> {
  for await (const chunk of stream) each(chunk);
}

say(`viamillipede demo: ${sizeMiB} MiB from a transmitter to a receiver on 127.0.0.1`);
const receiver = Bun.spawn([bun, cli, "rx", "0", "bind", "127.0.0.1", "verbose", "1"], { stdout: "pipe", stderr: "pipe" });

// The receiver prints its port on stderr once listening.
let rxLog = "";
const port = await new Promise<number>((resolve, reject) => {
  const decoder = new TextDecoder();
  void consume(receiver.stderr, (chunk) => {
    rxLog += decoder.decode(chunk);
    const match = /listening on port (\d+)/.exec(rxLog);
    if (match) resolve(Number(match[1]));
  }).then(() => reject(new Error(`receiver exited early:\n${rxLog}`)));
});
say(`  rx: listening on port ${port}`);

const received = createHash("sha256");
let receivedBytes = 0;
const output = consume(receiver.stdout, (chunk) => {
  received.update(chunk);
  receivedBytes += chunk.length;
});

const started = performance.now();
// The transmitter's stderr is ours: its live progress line (forced on with `progress`,
// paced by `ratelimit` so there is something to watch) and its summary appear as they happen.
const transmitter = Bun.spawn(
  [bun, cli, "tx", "127.0.0.1", String(port), "threads", "8", "progress", "size", String(sizeMiB * MIB), "ratelimit", `${rateMiB}M`],
  { stdin: "pipe", stdout: "inherit", stderr: "inherit" },
);
const sent = createHash("sha256");
// A generated stream: pseudo-random blocks, written as a producer would.
const block = new Uint8Array(MIB);
for (let i = 0; i < sizeMiB; i++) {
  crypto.getRandomValues(block.subarray(0, 65536));
  block.copyWithin(65536, 0, MIB - 65536);
  sent.update(block);
  transmitter.stdin.write(block);
  await transmitter.stdin.flush();
}
await transmitter.stdin.end();

const [txCode, rxCode] = await Promise.all([transmitter.exited, receiver.exited]);
await output;
const seconds = (performance.now() - started) / 1000;
for (const line of rxLog.trim().split("\n").filter(Boolean)) if (!line.includes("listening on port")) say(`  rx: ${line}`);
const [inHash, outHash] = [sent.digest("hex"), received.digest("hex")];
say(`  sent     ${inHash}  ${sizeMiB * MIB} bytes`);
say(`  received ${outHash}  ${receivedBytes} bytes`);
say(`  exit codes: tx ${txCode}, rx ${rxCode}; ${(sizeMiB / seconds).toFixed(0)} MiB/s over ${seconds.toFixed(2)} s`);
const ok = txCode === 0 && rxCode === 0 && inHash === outHash && receivedBytes === sizeMiB * MIB;
say(ok ? "demo: OK, the output is byte-identical to the input" : "demo: FAILED");
process.exit(ok ? 0 : 1);
