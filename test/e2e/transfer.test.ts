/**
 * End to end, successful transfers: `viamillipede rx 0` and `viamillipede tx`
 * as two processes over loopback, the receiver's port read from its stderr.
 * Each test compares the sha256 of what went in with what came out and
 * asserts on both processes' exit codes, stdout and stderr.
 *
 * Proves: sizes at and around the foot boundary (0 and 1 byte, one foot,
 * one foot + 1, three feet); `foot SIZE` at the protocol's smallest, an odd size
 * and the largest, and `foot auto`'s 2 MiB on loopback; a stdin pipe fed in odd-sized writes with
 * pauses; verbose 20 keeps the log off stdout; the keyword and flag command
 * lines; IPv6 loopback.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { expectCleanTransfer, expectDelivered, listeningOnly, summaryLine, transfer, withoutSummaries } from "../support/e2e.ts";
import {
  errorLines,
  ipv6LoopbackAvailable,
  keystream,
  killLeftovers,
  makeInput,
  makeTempDir,
  STACK_LINE,
  type Input,
} from "../support/spawn.ts";

const FOOT_BYTES = 2 * 1024 * 1024;
/** Small transfers take well under a second; this allows for a loaded machine. */
const SMALL_DEADLINE_MS = 15_000;

let temp: ReturnType<typeof makeTempDir>;
beforeAll(() => {
  temp = makeTempDir("e2e-transfer");
});
afterAll(() => temp.remove());
afterEach(killLeftovers);

describe("sizes around the foot boundary", () => {
  const sizes: [string, number][] = [
    ["0 bytes", 0],
    ["1 byte", 1],
    ["exactly one foot", FOOT_BYTES],
    ["one foot + 1 byte", FOOT_BYTES + 1],
    ["exactly 3 feet", 3 * FOOT_BYTES],
  ];
  for (const [name, bytes] of sizes) {
    test(
      name,
      async () => {
        const input = await makeInput(temp.path, bytes);
        const outcome = await transfer(
          ["rx", "0", "bind", "127.0.0.1"],
          (port) => ["tx", "127.0.0.1", `${port}`, "threads", "4"],
          { file: input.path },
          SMALL_DEADLINE_MS - 2_000,
        );
        expectCleanTransfer(outcome, input);
      },
      SMALL_DEADLINE_MS,
    );
  }
});

describe("foot SIZE: the stream cut into other sizes", () => {
  /** The feet the transmitter's `stats FILE` says it sent. */
  async function feetSent(stats: string): Promise<number> {
    return (JSON.parse(await Bun.file(stats).text()) as { transfers: { feet: number }[] }).transfers[0]!.feet;
  }

  // 4K is the protocol's smallest; 100001 bytes is no power of two and not a multiple of four (XDR pads
  // every foot's payload); 16M is the largest, so one foot is most of the window.
  const cases: [string, number, number][] = [
    ["4K", 4096, 3 * 4096 + 5],
    ["100001", 100_001, 7 * 100_001 + 3],
    ["16M", 16 * 1024 * 1024, 16 * 1024 * 1024 + 1],
  ];
  for (const [size, footBytes, bytes] of cases) {
    test(
      `foot ${size}, ${bytes} bytes`,
      async () => {
        const input = await makeInput(temp.path, bytes);
        const stats = `${temp.path}/foot-${size}.json`;
        const outcome = await transfer(
          ["rx", "0", "bind", "127.0.0.1"],
          (port) => ["tx", "127.0.0.1", `${port}`, "threads", "4", "foot", size, "stats", stats],
          { file: input.path },
          SMALL_DEADLINE_MS - 2_000,
        );
        expectCleanTransfer(outcome, input);
        expect(await feetSent(stats)).toBe(Math.ceil(bytes / footBytes));
      },
      SMALL_DEADLINE_MS,
    );
  }

  test(
    "foot auto (the default) keeps 2 MiB feet on loopback's short round trip",
    async () => {
      const input = await makeInput(temp.path, 2 * FOOT_BYTES + 1);
      const stats = `${temp.path}/foot-auto.json`;
      const outcome = await transfer(
        ["rx", "0", "bind", "127.0.0.1"],
        (port) => ["tx", "127.0.0.1", `${port}`, "threads", "4", "stats", stats],
        { file: input.path },
        SMALL_DEADLINE_MS - 2_000,
      );
      expectCleanTransfer(outcome, input);
      expect(await feetSent(stats)).toBe(3);
    },
    SMALL_DEADLINE_MS,
  );
});

test(
  "a stdin pipe with odd-sized writes and pauses arrives intact",
  async () => {
    // Sizes cycle; a pause follows every write whose index is in PAUSES_AFTER.
    const sizes = [1, 7, 100_000, 3_000_000, 13, 65_536, FOOT_BYTES, 1, 4_093, 500_000, FOOT_BYTES - 1, 2, 1_048_577];
    const pausesMs = [0, 30, 0, 50, 0, 0, 20, 40, 0, 0, 30, 0, 10];
    const rounds = 2;
    const next = keystream("odd writes");
    const hasher = new Bun.CryptoHasher("sha256");
    let bytes = 0;
    const outcome = await transfer(
      ["rx", "0", "bind", "127.0.0.1"],
      (port) => ["tx", "127.0.0.1", `${port}`, "threads", "3"],
      {
        feed: async (sink) => {
          for (let round = 0; round < rounds; round++) {
            for (const [index, size] of sizes.entries()) {
              const chunk = next(size);
              hasher.update(chunk);
              bytes += size;
              sink.write(chunk);
              await sink.flush();
              const pause = pausesMs[index]!;
              if (pause > 0) await Bun.sleep(pause);
            }
          }
        },
      },
      SMALL_DEADLINE_MS - 2_000,
    );
    expectCleanTransfer(outcome, { sha256: hasher.digest("hex"), bytes });
  },
  SMALL_DEADLINE_MS,
);

test(
  "verbose 20 on both ends logs to stderr only",
  async () => {
    const input = await makeInput(temp.path, 5 * 1024 * 1024 + 12_345, "verbose");
    const { rx, tx } = await transfer(
      ["rx", "0", "bind", "127.0.0.1", "verbose", "20"],
      (port) => ["tx", "127.0.0.1", `${port}`, "threads", "4", "verbose", "20"],
      { file: input.path },
      SMALL_DEADLINE_MS - 2_000,
    );
    expect({ rxExit: rx.exitCode, txExit: tx.exitCode }).toEqual({ rxExit: 0, txExit: 0 });
    // Byte-identical output: not one log line leaked into the receiver's stdout.
    expect({ bytes: rx.stdoutBytes, sha256: rx.stdoutSha256 }).toEqual({ bytes: input.bytes, sha256: input.sha256 });
    expect(tx.stdout).toBe("");
    // The logs exist, on stderr, and report no failure.
    for (const stderr of [rx.stderr, tx.stderr]) {
      expect(stderr.split("\n").length).toBeGreaterThan(3);
      expect(errorLines(stderr)).toEqual([]);
      expect(stderr).not.toMatch(STACK_LINE);
    }
  },
  SMALL_DEADLINE_MS,
);

/** The transmitter connection ids ("tx N") the receiver logs at verbose ≥ 5 as they join. */
function joinedConnectionIds(rxStderr: string): Set<number> {
  return new Set([...rxStderr.matchAll(/\(tx (\d+)\) from .* joined/g)].map((match) => Number(match[1])));
}

describe("command line forms", () => {
  let input: Input;
  beforeAll(async () => {
    input = await makeInput(temp.path, 3 * FOOT_BYTES + 777, "forms");
  });

  test(
    "keywords: verbose 3 tx HOST PORT threads 0x4",
    async () => {
      const { rx, tx, port } = await transfer(
        ["rx", "0", "bind", "127.0.0.1", "verbose", "5"],
        (port) => ["verbose", "3", "tx", "127.0.0.1", `${port}`, "threads", "0x4"],
        { file: input.path },
        SMALL_DEADLINE_MS - 2_000,
      );
      expect({ rxExit: rx.exitCode, txExit: tx.exitCode, txStdout: tx.stdout }).toEqual({ rxExit: 0, txExit: 0, txStdout: "" });
      expect({ bytes: rx.stdoutBytes, sha256: rx.stdoutSha256 }).toEqual({ bytes: input.bytes, sha256: input.sha256 });
      expect(rx.stderr).toContain(listeningOnly(port));
      expect([...errorLines(rx.stderr), ...errorLines(tx.stderr)]).toEqual([]);
      expect(tx.stderr).not.toMatch(STACK_LINE);
      // threads 0x4 means at most 4 connections (each connection has its own id; none dropped here).
      const ids = joinedConnectionIds(rx.stderr);
      expect(ids.size).toBeGreaterThan(0);
      expect(ids.size).toBeLessThanOrEqual(4);
    },
    SMALL_DEADLINE_MS,
  );

  test(
    "flags: --tx HOST:PORT --threads 2",
    async () => {
      const { rx, tx, port } = await transfer(
        ["--rx", "0", "--bind", "127.0.0.1", "--verbose", "5"],
        (port) => ["--tx", `127.0.0.1:${port}`, "--threads", "2"],
        { file: input.path },
        SMALL_DEADLINE_MS - 2_000,
      );
      expect({ rxExit: rx.exitCode, txExit: tx.exitCode, txStdout: tx.stdout, txStderr: withoutSummaries(tx.stderr) }).toEqual({
        rxExit: 0,
        txExit: 0,
        txStdout: "",
        txStderr: "",
      });
      expect({ bytes: rx.stdoutBytes, sha256: rx.stdoutSha256 }).toEqual({ bytes: input.bytes, sha256: input.sha256 });
      expect(rx.stderr).toContain(listeningOnly(port));
      expect(errorLines(rx.stderr)).toEqual([]);
      const ids = joinedConnectionIds(rx.stderr);
      expect(ids.size).toBeGreaterThan(0);
      expect(ids.size).toBeLessThanOrEqual(2);
    },
    SMALL_DEADLINE_MS,
  );
});

const hasIpv6 = ipv6LoopbackAvailable();
if (!hasIpv6) console.warn("skipping the IPv6 loopback test: this host cannot listen on ::1");

test.skipIf(!hasIpv6)(
  "IPv6 loopback: rx 0 bind ::1, tx ::1 PORT",
  async () => {
    const input = await makeInput(temp.path, FOOT_BYTES + 4_321, "ipv6");
    const outcome = await transfer(
      ["rx", "0", "bind", "::1"],
      (port) => ["tx", "::1", `${port}`, "threads", "4"],
      { file: input.path },
      SMALL_DEADLINE_MS - 2_000,
    );
    expectCleanTransfer(outcome, input);
  },
  SMALL_DEADLINE_MS,
);

test.skipIf(!hasIpv6)(
  "two links, IPv6 and IPv4 loopback (tx ::1 PORT tx 127.0.0.1 PORT): identical, both links named in the summary",
  async () => {
    const input = await makeInput(temp.path, 24 * FOOT_BYTES + 99, "two-links");
    const outcome = await transfer(
      ["rx", "0"],
      (port) => ["tx", "::1", `${port}`, "tx", "127.0.0.1", `${port}`, "threads", "4", "verbose", "1"],
      { file: input.path },
      SMALL_DEADLINE_MS - 2_000,
    );
    const { tx } = outcome;
    expectDelivered(outcome, input);
    expect(errorLines(tx.stderr)).toEqual([]);
    expect(tx.stderr).toContain("links in order of preference: [::1]:");
    expect(summaryLine(tx.stderr, "tx")).toMatch(/; links \[::1\]:\d+ \d+%, 127\.0\.0\.1:\d+ \d+%$/);
  },
  SMALL_DEADLINE_MS,
);
