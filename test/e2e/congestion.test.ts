/**
 * End to end, `congestion ALG` (Linux): both ends give every connection of
 * the transfer the congestion control asked for, and `ss -tni` (the kernel's
 * own view of each socket) shows it while the transfer runs. The algorithm is
 * one the kernel offers that is NOT its default, so the test fails if the
 * keyword does nothing. The input is fed in two halves and `ss` is read
 * between them, once the receiver has written the first: the connections
 * are up and carrying data, and the output must still be identical.
 *
 * An algorithm the kernel does not offer, or a word that cannot be one, is a
 * usage error (exit 2) at either end, one line naming what to do, before
 * anything is dialled or listened on.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { expectCleanTransfer, expectOneLineError } from "../support/e2e.ts";
import { killLeftovers, makeInput, makeTempDir, runCli, startReceiver, startTransmitter, within } from "../support/spawn.ts";
import { MIB } from "../support/sizes.ts";

const HOST = "127.0.0.1";

function kernelList(name: string): string[] {
  try {
    return readFileSync(`/proc/sys/net/ipv4/${name}`, "utf8").trim().split(/\s+/);
  } catch {
    return [];
  }
}

/** An algorithm this process may pick that is not what connections get anyway; undefined if there is none. */
function nonDefaultAlgorithm(): string | undefined {
  const current = kernelList("tcp_congestion_control")[0];
  const offered = process.getuid?.() === 0 ? kernelList("tcp_available_congestion_control") : kernelList("tcp_allowed_congestion_control");
  const others = offered.filter((alg) => alg !== current);
  return ["bbr", "cubic"].find((alg) => others.includes(alg)) ?? others[0];
}

const ALG = process.platform === "linux" ? nonDefaultAlgorithm() : undefined;
const SS = Bun.which("ss");
const skipReason = ALG === undefined ? "no congestion control other than the default is offered here" : SS === null ? "ss (iproute2) is not installed" : undefined;
if (skipReason !== undefined) console.log(`congestion.test.ts: skipping the transfer test: ${skipReason}`);

/** The algorithm of each established TCP connection to or from `port`, per `ss -tni` (its info line starts with it). */
function algorithmsOnPort(port: number): string[] {
  const out = Bun.spawnSync(["ss", "-tniH", "state", "established", `( sport = :${port} or dport = :${port} )`]).stdout.toString();
  const found: string[] = [];
  for (const line of out.split("\n")) {
    // Info lines are indented under their connection's line.
    if (/^\s/.test(line) && line.trim() !== "") found.push(line.trim().split(/\s+/)[0] ?? "");
  }
  return found;
}

let temp: ReturnType<typeof makeTempDir>;
beforeAll(() => {
  temp = makeTempDir("e2e-congestion");
});
afterAll(() => temp.remove());
afterEach(killLeftovers);

test.skipIf(skipReason !== undefined)(
  `congestion ${ALG} on both ends: ss -tni shows it on every connection during the transfer, output identical`,
  async () => {
    const alg = ALG as string;
    const half = 8 * MIB;
    const input = await makeInput(temp.path, 2 * half + 3, "congestion");
    const bytes = readFileSync(input.path);
    const receiver = await startReceiver(["rx", "0", "bind", HOST, "congestion", alg]);
    let seen: string[] = [];
    const tx = startTransmitter(["tx", HOST, `${receiver.port}`, "threads", "4", "congestion", alg], {
      feed: async (sink) => {
        sink.write(bytes.subarray(0, half));
        await sink.flush();
        await within(20_000, "the receiver's first half", receiver.stdout.untilBytes(half));
        seen = algorithmsOnPort(receiver.port);
        sink.write(bytes.subarray(half));
      },
    });
    const [txOutcome, rxOutcome] = await within(40_000, "the transfer", Promise.all([tx.done(), receiver.done()]));
    expectCleanTransfer({ port: receiver.port, tx: txOutcome, rx: rxOutcome }, input);
    console.log(`ss -tni during the transfer: ${seen.join(" ")}`);
    // Both ends of 4 data connections at least, every one of them on ALG.
    expect(seen.length).toBeGreaterThanOrEqual(8);
    expect(new Set(seen)).toEqual(new Set([alg]));
  },
  60_000,
);

test.each([
  ["rx", ["rx", "0", "congestion", "nosuch"], /^viamillipede: congestion 'nosuch': this kernel does not offer it \(available: [^)]*\)/],
  ["tx", ["tx", HOST, "1", "congestion", "nosuch"], /^viamillipede: congestion 'nosuch': this kernel does not offer it \(available: [^)]*\)/],
  ["a word that is no name", ["rx", "0", "congestion", "bb r"], /^viamillipede: congestion 'bb r' is not an algorithm name/],
])("congestion the kernel does not offer (%s): exit 2, one line naming the choices", async (_, args, pattern) => {
  const outcome = await within(20_000, args.join(" "), runCli(args));
  expect(outcome.exitCode).toBe(2);
  expect(outcome.stdout).toBe("");
  expectOneLineError(outcome.stderr, pattern);
  // Refused before listening or dialling.
  expect(outcome.stderr).not.toContain("listening on port");
});
