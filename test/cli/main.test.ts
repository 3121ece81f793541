/**
 * The entry point in-process: the help text, and calls to main() with
 * stand-in roles, which prove the error → exit status mapping. The spawned
 * entry (`bun src/cli/main.ts ...`, signals, stray errors) is proved in
 * test/e2e/entry.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import pkg from "../../package.json";
import { EXIT_CODES, VmError } from "../../src/errors.ts";
import { log } from "../../src/log.ts";
import type { ReceiverOptions, TransmitterOptions } from "../../src/options.ts";
import { helpText } from "../../src/cli/command.ts";
import { FLAG_ARGS, flagNames, KEYWORD_TABLE, KEYWORDS } from "../../src/cli/keyword-table.ts";
import { main, type MainIo, type Roles } from "../../src/cli/main.ts";

describe("help text", () => {
  test("lists every keyword and every flag, in lines of at most 80 columns", () => {
    const text = helpText();
    for (const keyword of KEYWORDS) expect(text).toMatch(new RegExp(`^  ${keyword}\\b`, "m"));
    for (const [name, def] of Object.entries(FLAG_ARGS)) {
      expect(text).toContain(`--${name}`);
      if ("alias" in def) expect(text).toContain(`--${def.alias}`);
    }
    for (const line of text.split("\n")) expect(line.length).toBeLessThanOrEqual(80);
  });

  test("is generated from the keyword table: each entry's usage, the one end it is for, its other spellings and flags", () => {
    const text = helpText();
    for (const entry of KEYWORD_TABLE) {
      const usage = entry.usage ?? (entry.value === undefined ? entry.name : `${entry.name} ${entry.value.hint}`);
      const row = new RegExp(`^  ${RegExp.escape(usage)} +(.*)$`, "m").exec(text);
      expect({ usage, found: row !== null }).toEqual({ usage, found: true });
      const oneEnd = (entry.roles === "tx" || entry.roles === "rx") && entry.name !== entry.roles;
      expect({ usage, role: row?.[1]?.startsWith(`${entry.roles}: `) }).toEqual({ usage, role: oneEnd });
      if (entry.alias !== undefined) expect(text.replace(/\s+/g, " ")).toContain(`(also spelt ${entry.alias})`);
      for (const flag of flagNames(entry)) expect(text).toMatch(new RegExp(`--${flag}\\b`));
    }
  });

  test("says that rx alone ignores the tx keywords with a warning, and that checksum is checksums", () => {
    const text = helpText().replace(/\s+/g, " ");
    expect(text).toContain('rx alone checks the "tx:" keywords, then ignores them with a warning');
    expect(text).toContain("checksums are always on (also spelt checksum)");
    expect(text).toMatch(/--checksum\b/);
  });

  test("lists every exit status", () => {
    const text = helpText();
    for (const [name, code] of Object.entries(EXIT_CODES)) expect(text).toContain(`${code} ${name}`);
  });
});

/** Captures what main writes. */
function captureIo(): MainIo & { out: string; err: string } {
  const io = {
    out: "",
    err: "",
    stdout: async (text: string) => {
      io.out += text;
    },
    stderr: (text: string) => {
      io.err += text;
    },
  };
  return io;
}

/** Roles that record their options and then behave as `outcome` says. */
function stubRoles(outcome: () => Promise<void>) {
  const calls: { role: "transmit" | "receive"; options: TransmitterOptions | ReceiverOptions }[] = [];
  const roles: Roles = {
    transmit: (options) => {
      calls.push({ role: "transmit", options });
      return outcome();
    },
    receive: (options) => {
      calls.push({ role: "receive", options });
      return outcome();
    },
  };
  return { roles, calls };
}

describe("main() in-process", () => {
  test("rx runs receive with the parsed options and exits 0", async () => {
    const io = captureIo();
    const { roles, calls } = stubRoles(async () => {});
    expect(await main(["rx", "0", "verbose", "5"], { io, roles })).toBe(0);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.role).toBe("receive");
    expect((calls[0]?.options as ReceiverOptions).port).toBe(0);
    expect(log.level).toBe(4); // verbose 5 → debug
    expect({ out: io.out, err: io.err }).toEqual({ out: "", err: "" });
  });

  test("tx runs transmit", async () => {
    const io = captureIo();
    const { roles, calls } = stubRoles(async () => {});
    expect(await main(["--tx", "[::1]:9", "--threads", "2"], { io, roles })).toBe(0);
    expect(calls.map((call) => call.role)).toEqual(["transmit"]);
    expect((calls[0]?.options as TransmitterOptions).targets).toEqual([{ host: "::1", port: 9 }]);
  });

  test("an unwritable stats FILE fails at once (exit 2), before any role starts", async () => {
    const io = captureIo();
    const { roles, calls } = stubRoles(async () => {});
    expect(await main(["rx", "1", "stats", "/nonexistent-dir/stats.json"], { io, roles })).toBe(2);
    expect(calls).toEqual([]);
    expect(io.err).toBe("viamillipede: cannot write the stats file /nonexistent-dir/stats.json: ENOENT; give a writable path (see 'viamillipede --help')\n");
  });

  // /dev/full takes the empty file written at the start and refuses the document at the end (ENOSPC).
  const devFull = existsSync("/dev/full");
  const statsWarning = (status: number): string =>
    `viamillipede: warning: cannot write the stats file /dev/full: ENOSPC; give a writable path (only the status output is lost: the exit status stays ${status})\n`;

  test.skipIf(!devFull)("a stats FILE that cannot be written at the end: one warning line, a success stays exit 0", async () => {
    const io = captureIo();
    const { roles, calls } = stubRoles(async () => {});
    expect(await main(["rx", "1", "stats", "/dev/full"], { io, roles })).toBe(0);
    expect(calls).toHaveLength(1);
    expect({ out: io.out, err: io.err }).toEqual({ out: "", err: statsWarning(0) });
  });

  test.skipIf(!devFull)("a stats FILE that cannot be written at the end: a failure keeps its own code and its error line comes last", async () => {
    const io = captureIo();
    const { roles } = stubRoles(async () => {
      throw new VmError("peerLost", "the transmitter went away");
    });
    expect(await main(["rx", "1", "stats", "/dev/full", "quiet"], { io, roles })).toBe(10);
    expect({ out: io.out, err: io.err }).toEqual({ out: "", err: `${statsWarning(10)}viamillipede: the transmitter went away\n` });
  });

  test("a usage error never starts a role", async () => {
    const io = captureIo();
    const { roles, calls } = stubRoles(async () => {});
    expect(await main(["rx", "1", "thread", "2"], { io, roles })).toBe(2);
    expect(calls).toEqual([]);
    expect(io.err).toBe("viamillipede: unknown keyword 'thread'; did you mean 'threads'? (see 'viamillipede --help')\n");
  });

  test("rx and tx together run both roles at once and exit 0 once both are done", async () => {
    const io = captureIo();
    let finishRx!: () => void;
    const rxDone = new Promise<void>((resolve) => (finishRx = resolve));
    const started: string[] = [];
    const roles: Roles = {
      transmit: async () => {
        started.push("transmit");
        finishRx(); // rx was already running: the roles run side by side
      },
      receive: async () => {
        started.push("receive");
        await rxDone;
      },
    };
    expect(await main(["rx", "1", "tx", "h", "2"], { io, roles })).toBe(0);
    expect(started).toEqual(["receive", "transmit"]);
    expect({ out: io.out, err: io.err }).toEqual({ out: "", err: "" });
  });

  test("full duplex: the first failure stops the other direction and sets the exit status", async () => {
    const io = captureIo();
    let rxStopped: unknown;
    const roles: Roles = {
      transmit: async () => {
        throw new VmError("unreachable", "receiver h:2 not reachable");
      },
      receive: (_options, signal) =>
        new Promise((_, reject) =>
          signal.addEventListener("abort", () => {
            rxStopped = signal.reason;
            reject(new VmError("interrupted", `interrupted by ${signal.reason}`));
          }),
        ),
    };
    expect(await main(["rx", "1", "tx", "h", "2"], { io, roles })).toBe(3);
    expect(rxStopped).toBe("a failure in the other direction (receiver h:2 not reachable)");
    expect(io.err).toBe("viamillipede: receiver h:2 not reachable\n");
  });

  const failures: [what: string, thrown: unknown, exitCode: number, err: string][] = [
    ["unreachable", new VmError("unreachable", "no connection to h:1 within 300 s"), 3, "viamillipede: no connection to h:1 within 300 s\n"],
    ["checkphrase", new VmError("checkphrase", "the receiver refused our checkphrase"), 4, "viamillipede: the receiver refused our checkphrase\n"],
    ["outputClosed", new VmError("outputClosed", "stdout closed"), 6, "viamillipede: stdout closed\n"],
    ["a multi-line message", new VmError("peerLost", "peer went\n  away"), 10, "viamillipede: peer went away\n"],
    ["a plain Error", new Error("boom"), 1, "viamillipede: internal error: boom\n"],
    ["a thrown string", "oops", 1, "viamillipede: internal error: oops\n"],
  ];
  for (const [what, thrown, exitCode, err] of failures) {
    test(`${what} → exit ${exitCode}, one line on stderr`, async () => {
      const io = captureIo();
      const { roles } = stubRoles(async () => {
        throw thrown;
      });
      expect(await main(["tx", "h", "1"], { io, roles })).toBe(exitCode);
      expect({ out: io.out, err: io.err }).toEqual({ out: "", err });
    });
  }

  test("an internal error shows its stack only at verbose >= 10", async () => {
    const { roles } = stubRoles(async () => {
      throw new Error("deep");
    });
    const quiet = captureIo();
    expect(await main(["tx", "h", "1", "verbose", "9"], { io: quiet, roles })).toBe(1);
    expect(quiet.err).toBe("viamillipede: internal error: deep\n");
    const loud = captureIo();
    expect(await main(["tx", "h", "1", "verbose", "10"], { io: loud, roles })).toBe(1);
    expect(loud.err).toStartWith("viamillipede: internal error: deep\nError: deep\n    at ");
  });

  test("--help and --version write to stdout only", async () => {
    const help = captureIo();
    expect(await main(["--help"], { io: help })).toBe(0);
    expect({ out: help.out, err: help.err }).toEqual({ out: helpText(), err: "" });
    const version = captureIo();
    expect(await main(["-v"], { io: version })).toBe(0);
    expect({ out: version.out, err: version.err }).toEqual({ out: `${pkg.version}\n`, err: "" });
  });
});
