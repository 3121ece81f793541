#!/usr/bin/env bun
/**
 * Several links against one: netcat over a single link of the multi-link rig
 * (test/support/netns-rig.ts: two namespace hosts, three tbf-shaped veth links
 * of 80, 160 and 240 Mbit/s) against viamillipede over all three, in one run.
 *
 * 1. A file of random bytes (BENCH_LINKS_BYTES, default 128 MiB), cached in os.tmpdir() like
 *    `bun run bench`'s (bench/common.ts inputFile).
 * 2. Each configuration runs BENCH_RUNS times (default 1), interleaved: netcat
 *    over link 1, netcat over link 3 (the fastest), viamillipede with
 *    `tx link1 tx link2 tx link3` (default threads). The receiving side hashes
 *    what arrived; a run whose sha256 differs, or whose process fails, fails the bench.
 * 3. Timed from the sender's spawn until both ends have exited; median per
 *    configuration; the table ends with the ratios against netcat over link 1,
 *    and viamillipede's rate as a share of the three links' summed rate.
 *
 * Needs root, ip and tc (the rig) and OpenBSD netcat; says why and exits 0
 * when they are missing. Run: `bun run bench:links`.
 */
import { join } from "node:path";
import { createRig, rigUnavailable, type Rig } from "../test/support/netns-rig.ts";
import { BenchError, inputFile, median, positiveInt, sha256 } from "./common.ts";

const ROOT = join(import.meta.dir, "..");
const ENTRY = join(ROOT, "src/cli/main.ts");
const MIB = 1 << 20;
const NC_PORT = 9000;
const DEADLINE_MS = 300_000;

interface Outcome {
  seconds: number;
  sha256: string;
}

async function exited(proc: Bun.Subprocess, what: string): Promise<string> {
  const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout as ReadableStream).text(), new Response(proc.stderr as ReadableStream).text()]);
  if (code !== 0) throw new BenchError(`${what} exited ${code}: ${err.trim()}`);
  return out;
}

function inNamespace(namespace: string, shell: string, stdin: Bun.BunFile | "ignore" = "ignore"): Bun.Subprocess {
  return Bun.spawn(["ip", "netns", "exec", namespace, "sh", "-c", shell], { stdin, stdout: "pipe", stderr: "pipe" });
}

async function netcat(rig: Rig, link: number, file: string): Promise<Outcome> {
  const address = rig.links[link - 1]!.rxAddress;
  const receiver = inNamespace(rig.rxNamespace, `nc -l -N -s ${address} -p ${NC_PORT} | sha256sum`);
  const received = exited(receiver, "nc receiver");
  await Bun.sleep(200); // nc has no "listening" line to wait for
  const started = performance.now();
  const sender = inNamespace(rig.txNamespace, `nc -N ${address} ${NC_PORT}`, Bun.file(file));
  const [, out] = await Promise.all([exited(sender, "nc sender"), received]);
  return { seconds: (performance.now() - started) / 1000, sha256: out.split(" ")[0]! };
}

async function viamillipede(rig: Rig, file: string): Promise<Outcome> {
  const receiver = inNamespace(rig.rxNamespace, `bun ${ENTRY} rx 0 | sha256sum`);
  const stderr = receiver.stderr as ReadableStream<Uint8Array>;
  const decoder = new TextDecoder();
  let port = 0;
  let text = "";
  for await (const chunk of stderr) {
    text += decoder.decode(chunk);
    const match = /listening on port (\d+)/.exec(text);
    if (match) {
      port = Number(match[1]);
      break;
    }
  }
  if (port === 0) throw new BenchError(`receiver did not listen: ${text}`);
  const targets = rig.links.map((link) => `tx ${link.rxAddress} ${port}`).join(" ");
  const started = performance.now();
  const sender = inNamespace(rig.txNamespace, `bun ${ENTRY} ${targets}`, Bun.file(file));
  const [, rxCode, out] = await Promise.all([exited(sender, "viamillipede tx"), receiver.exited, new Response(receiver.stdout as ReadableStream).text()]);
  if (rxCode !== 0) throw new BenchError(`viamillipede rx exited ${rxCode}`);
  return { seconds: (performance.now() - started) / 1000, sha256: out.split(" ")[0]! };
}

async function main(): Promise<void> {
  const unavailable = rigUnavailable();
  if (unavailable !== undefined) {
    console.log(`bench:links skipped: ${unavailable}`);
    return;
  }
  if (Bun.spawnSync(["sh", "-c", "command -v nc"]).exitCode !== 0) {
    console.log("bench:links skipped: nc not found (Debian: netcat-openbsd)");
    return;
  }
  const bytes = positiveInt("BENCH_LINKS_BYTES", 128 * MIB);
  const runs = positiveInt("BENCH_RUNS", 1);
  const file = inputFile(bytes).path;
  const expected = await sha256(file);
  const rig = createRig([80, 160, 240]);
  try {
    const configurations: Array<[string, () => Promise<Outcome>]> = [
      ["netcat, link 1 (80 Mbit/s)", () => netcat(rig, 1, file)],
      ["netcat, link 3 (240 Mbit/s)", () => netcat(rig, 3, file)],
      ["viamillipede, links 1+2+3", () => viamillipede(rig, file)],
    ];
    const seconds = new Map<string, number[]>(configurations.map(([name]) => [name, []]));
    const deadline = setTimeout(() => {
      console.error(`bench:links took longer than ${DEADLINE_MS / 1000}s`);
      rig.destroy();
      process.exit(1);
    }, DEADLINE_MS);
    for (let run = 0; run < runs; run++) {
      for (const [name, go] of configurations) {
        const outcome = await go();
        if (outcome.sha256 !== expected) throw new BenchError(`${name}: output differs from the input (sha256 ${outcome.sha256})`);
        seconds.get(name)!.push(outcome.seconds);
      }
    }
    clearTimeout(deadline);
    const rate = (name: string): number => bytes / MIB / median(seconds.get(name)!);
    const base = rate("netcat, link 1 (80 Mbit/s)");
    console.log(`${(bytes / MIB).toFixed(0)} MiB over the rig, median of ${runs}`);
    for (const [name] of configurations) {
      console.log(`${name.padEnd(30)} ${rate(name).toFixed(1).padStart(7)} MiB/s  ${(rate(name) / base).toFixed(2)}x netcat on link 1`);
    }
    const sum = rig.totalBytesPerSecond / MIB;
    const vm = rate("viamillipede, links 1+2+3");
    console.log(`viamillipede over three links: ${(vm / base).toFixed(2)}x netcat on link 1, ${((100 * vm) / sum).toFixed(0)}% of the links' summed ${sum.toFixed(1)} MiB/s (whole run, start-up included)`);
  } finally {
    rig.destroy();
  }
}

main().catch((error) => {
  console.error(error instanceof BenchError ? `bench:links: ${error.message}` : error);
  process.exit(1);
});
