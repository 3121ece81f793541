/**
 * The entry point as a process: what reaches stdout and stderr and the exit
 * status of `bun src/cli/main.ts ...`, and inline fixtures that run
 * runAsEntry with a role that never ends, to prove signals and stray errors
 * end the process with one line. (The error → exit status mapping without a
 * process is in test/cli/main.test.ts.)
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import pkg from "../../package.json";
import { helpText } from "../../src/cli/command.ts";
const ROOT = join(import.meta.dir, "../..");
const MAIN = join(ROOT, "src/cli/main.ts");
const DEADLINE_MS = 15_000;

interface Outcome {
  stdout: string;
  stderr: string;
  exitCode: number;
}

async function collect(proc: Bun.Subprocess<"ignore", "pipe", "pipe">): Promise<Outcome> {
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { stdout, stderr, exitCode };
}

/** Runs `bun src/cli/main.ts ...args` to completion. */
function run(...args: string[]): Promise<Outcome> {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], {
    cwd: ROOT,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  return collect(proc);
}

describe("spawned: bun src/cli/main.ts", () => {
  test(
    "--help prints usage with examples on stdout, exit 0",
    async () => {
      for (const flag of ["--help", "-h"]) {
        const { stdout, stderr, exitCode } = await run(flag);
        expect({ stderr, exitCode }).toEqual({ stderr: "", exitCode: 0 });
        expect(stdout).toBe(helpText());
        expect(stdout).toContain("Examples:");
        expect(stdout).toContain("viamillipede tx a.example 8834 tx b.example 8834");
        expect(stdout).toContain("viamillipede rx --port 8834 --verbose 5");
      }
    },
    DEADLINE_MS,
  );

  test(
    "--help wins anywhere on the line, even after a bad word",
    async () => {
      const { stdout, stderr, exitCode } = await run("rx", "nonsense", "--help");
      expect({ stderr, exitCode }).toEqual({ stderr: "", exitCode: 0 });
      expect(stdout).toBe(helpText());
    },
    DEADLINE_MS,
  );

  test(
    "--version / -v print package.json's version, exit 0",
    async () => {
      for (const flag of ["--version", "-v"]) {
        expect(await run(flag)).toEqual({ stdout: `${pkg.version}\n`, stderr: "", exitCode: 0 });
      }
    },
    DEADLINE_MS,
  );

  test(
    "--version / -v with other arguments: a usage error that says so (exit 2), nothing run",
    async () => {
      const hint = " (see 'viamillipede --help')\n";
      const version = "viamillipede: --version takes no value and no other arguments: run 'viamillipede --version' on its own";
      for (const argv of [
        ["--version", "rx", "8834"],
        ["rx", "8834", "--version"],
        ["--version=2"],
      ]) {
        expect(await run(...argv)).toEqual({ stdout: "", stderr: version + hint, exitCode: 2 });
      }
      expect(await run("rx", "8834", "-v")).toEqual({
        stdout: "",
        stderr: "viamillipede: -v means --version and takes no other arguments; for more log lines say 'verbose N' or '--verbose N'" + hint,
        exitCode: 2,
      });
    },
    DEADLINE_MS,
  );

  test(
    "an unknown keyword: one line on stderr, nothing on stdout, exit 2",
    async () => {
      expect(await run("rx", "8834", "frobnicate")).toEqual({
        stdout: "",
        stderr:
          "viamillipede: unknown keyword 'frobnicate'; keywords are rx, tx, threads, verbose, checkphrase, checksums, key, encrypt, compress, congestion, label, exec, bind, serve, sessions, patience, timeout, chaos, prbs, leglimit, delayus, ratelimit, charmode, terminate, initiate, size, progress, quiet, stats, buffer, foot (see 'viamillipede --help')\n",
        exitCode: 2,
      });
    },
    DEADLINE_MS,
  );

  test(
    "threads 99: exit 2",
    async () => {
      expect(await run("tx", "127.0.0.1", "8834", "threads", "99")).toEqual({
        stdout: "",
        stderr: "viamillipede: threads 99 is out of range; use 1..64 (see 'viamillipede --help')\n",
        exitCode: 2,
      });
    },
    DEADLINE_MS,
  );

  test(
    "no arguments: exit 2 saying what to write",
    async () => {
      expect(await run()).toEqual({
        stdout: "",
        stderr:
          "viamillipede: nothing to do; say 'rx PORT' to receive or 'tx HOST PORT' to send (see 'viamillipede --help')\n",
        exitCode: 2,
      });
    },
    DEADLINE_MS,
  );
});

/**
 * An inline fixture: runAsEntry with roles that print "ready" on stderr and
 * never finish; MODE "throw"/"reject" adds a stray error after 10 ms.
 */
function startFixture(mode: "hang" | "throw" | "reject", args: string[]) {
  const script = `
    import { runAsEntry } from ${JSON.stringify(MAIN)};
    const hang = async () => {
      process.stderr.write("ready\\n");
      if (${JSON.stringify(mode)} === "throw") setTimeout(() => { throw new Error("stray"); }, 10);
      if (${JSON.stringify(mode)} === "reject") setTimeout(() => { void Promise.reject(new Error("unhandled")); }, 10);
      await new Promise(() => setInterval(() => {}, 1000));
    };
    await runAsEntry(${JSON.stringify(args)}, { roles: { transmit: hang, receive: hang } });
  `;
  return Bun.spawn([process.execPath, "-e", script], {
    cwd: ROOT,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
}

/** Reads `stream` to its end in the background; `until` waits for a marker. */
function watch(stream: ReadableStream<Uint8Array>) {
  const decoder = new TextDecoder();
  const waiters: { marker: string; resolve: () => void }[] = [];
  const state = { text: "" };
  const settle = (ended: boolean): void => {
    for (const waiter of [...waiters]) {
      if (ended || state.text.includes(waiter.marker)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };
  const done = (async () => {
    for await (const chunk of stream) {
      state.text += decoder.decode(chunk, { stream: true });
      settle(false);
    }
    settle(true);
    return state.text;
  })();
  return {
    done,
    /** Resolves once `marker` has been read (or the stream ended), with all text so far. */
    until: (marker: string) =>
      new Promise<string>((resolve) => {
        waiters.push({ marker, resolve: () => resolve(state.text) });
        settle(false);
      }),
  };
}

describe("spawned: signals and stray errors", () => {
  for (const [signal, exitCode] of [
    ["SIGHUP", 129],
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    test(
      `${signal} → exit ${exitCode} with one line`,
      async () => {
        const proc = startFixture("hang", ["rx", "0"]);
        const stderr = watch(proc.stderr);
        const stdout = new Response(proc.stdout).text();
        expect(await stderr.until("ready\n")).toBe("ready\n");
        proc.kill(signal);
        expect({ stdout: await stdout, stderr: await stderr.done, exitCode: await proc.exited }).toEqual({
          stdout: "",
          stderr: `ready\nviamillipede: interrupted by ${signal}\n`,
          exitCode,
        });
      },
      DEADLINE_MS,
    );
  }

  for (const [mode, message] of [
    ["throw", "stray"],
    ["reject", "unhandled"],
  ] as const) {
    test(
      `an ${mode === "throw" ? "uncaught exception" : "unhandled rejection"} → exit 1, one line, no dump`,
      async () => {
        expect(await collect(startFixture(mode, ["tx", "h", "1"]))).toEqual({
          stdout: "",
          stderr: `ready\nviamillipede: internal error: ${message}\n`,
          exitCode: 1,
        });
      },
      DEADLINE_MS,
    );
  }
});
