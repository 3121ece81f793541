/**
 * The published package works once installed, away from this checkout.
 *
 * 1. `bun pm pack` makes the tarball; it holds the bin (executable), src/, protocol/ and
 *    README.md (when the repo has one), and no tests.
 * 2. The tarball is installed the two usual ways, each in its own temp dir under os.tmpdir()
 *    (so nothing resolves from this checkout's node_modules):
 *    - `npm install -g --prefix <tmp>`  → <tmp>/bin/viamillipede   (skipped, saying why, without npm)
 *    - `bun add <tarball>` in a project → node_modules/.bin/viamillipede
 * 3. Through each installed command: `viamillipede --version` prints package.json's version, and
 *    `rx 0 bind 127.0.0.1` + `tx 127.0.0.1 PORT` move a few MiB whose sha256 must match, both
 *    exiting 0 with nothing unexpected on stdout or stderr.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomFillSync } from "node:crypto";
import { existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import pkg from "../../package.json";
import { withoutSummaries } from "../support/e2e.ts";

const ROOT = join(import.meta.dir, "../..");
const TRANSFER_BYTES = 6 * 1024 * 1024 + 12_345; // several feet and a ragged tail
/** Per test: packing, installing (maybe from the registry) and a transfer, with room to spare. */
const TEST_TIMEOUT_MS = 120_000;
/** How long one spawned step may take before the test names it as late. */
const STEP_TIMEOUT_MS = 90_000;
const LISTENING_LINE = /^viamillipede: listening on port (\d+)$/m;

const npm = Bun.which("npm");
const tar = Bun.which("tar");
if (npm === null) console.warn("install.test.ts: skipping the npm install, npm is not on PATH");
if (tar === null) console.warn("install.test.ts: skipping the tarball listing, tar is not on PATH");

/** The installed command's `#!/usr/bin/env bun` must find the bun running these tests. */
const ENV = {
  ...process.env,
  PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`,
  NO_COLOR: "1",
  FORCE_COLOR: "0",
  npm_config_update_notifier: "false",
  npm_config_fund: "false",
  npm_config_audit: "false",
};

const running = new Set<Bun.Subprocess>();

interface Finished {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

function spawn(cmd: string[], options: { cwd: string; stdin?: Bun.BunFile; stdout?: Bun.BunFile }) {
  const proc = Bun.spawn(cmd, {
    cwd: options.cwd,
    env: ENV,
    stdin: options.stdin ?? "ignore",
    stdout: options.stdout ?? "pipe",
    stderr: "pipe",
  });
  running.add(proc);
  void proc.exited.finally(() => running.delete(proc));
  return proc;
}

async function within<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function finish(proc: Bun.Subprocess, stderr: Promise<string>): Promise<Finished> {
  const stdout = proc.stdout instanceof ReadableStream ? new Response(proc.stdout).text() : Promise.resolve("");
  const [exitCode, out, err] = await Promise.all([proc.exited, stdout, stderr]);
  return { exitCode, stdout: out, stderr: err };
}

/** Runs a command to its end. */
function run(cmd: string[], cwd: string): Promise<Finished> {
  const proc = spawn(cmd, { cwd });
  return within(cmd.join(" "), finish(proc, new Response(proc.stderr).text()));
}

async function sha256(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
  return hasher.digest("hex");
}

const scratch = mkdtempSync(join(tmpdir(), "vm-package-"));
let tarball = "";
let input = "";

beforeAll(async () => {
  const packed = await run([process.execPath, "pm", "pack", "--destination", scratch, "--quiet"], ROOT);
  expect(packed.exitCode).toBe(0);
  tarball = join(scratch, `${pkg.name}-${pkg.version}.tgz`);
  expect(existsSync(tarball)).toBe(true);
  input = join(scratch, "input.bin");
  writeFileSync(input, randomFillSync(Buffer.alloc(TRANSFER_BYTES)));
}, TEST_TIMEOUT_MS);

afterAll(async () => {
  // Whatever a failed test left running is ended by its own pid.
  const left = [...running];
  for (const proc of left) proc.kill("SIGKILL");
  await Promise.all(left.map((proc) => proc.exited));
  rmSync(scratch, { recursive: true, force: true });
});

test.skipIf(tar === null)("the tarball holds the executable bin, src/, protocol/ and no tests", async () => {
  const listing = await run([tar!, "-tzvf", tarball], scratch);
  expect(listing).toMatchObject({ exitCode: 0, stderr: "" });
  const modes = new Map(
    listing.stdout
      .trim()
      .split("\n")
      .map((line) => {
        const fields = line.trim().split(/\s+/);
        return [fields.at(-1)!, fields[0]!] as const;
      }),
  );
  const bin = `package/${pkg.bin.viamillipede}`;
  expect(modes.get(bin)).toMatch(/^-rwx/);
  expect(modes.has("package/package.json")).toBe(true);
  expect(modes.has("package/protocol/viamillipede.x")).toBe(true);
  expect(modes.has("package/src/protocol/xdr.generated.ts")).toBe(true);
  expect(modes.has("package/README.md")).toBe(existsSync(join(ROOT, "README.md")));
  expect([...modes.keys()].filter((path) => /^package\/(test|bench|scripts|\.ci)\//.test(path))).toEqual([]);
});

/** `viamillipede --version`, then a loopback transfer, through the installed command `bin`. */
async function exercise(bin: string, installDir: string): Promise<void> {
  // The command is the installed copy, not this checkout.
  expect(realpathSync(bin).startsWith(realpathSync(installDir))).toBe(true);

  expect(await run([bin, "--version"], scratch)).toEqual({ exitCode: 0, stdout: `${pkg.version}\n`, stderr: "" });
  // Whatever lies in the directory it is started from is not ours to run or read: a
  // bunfig.toml preload and a .env there (Bun loads both by default) change nothing.
  const hostile = mkdtempSync(join(scratch, "cwd-"));
  writeFileSync(join(hostile, "pre.ts"), 'console.error("preload from bunfig.toml ran");\n');
  writeFileSync(join(hostile, "bunfig.toml"), 'preload = ["./pre.ts"]\n');
  writeFileSync(join(hostile, ".env"), "VIAMILLIPEDE_KEY_FILE=/nonexistent/set-by-dotenv\n");
  expect(await run([bin, "--version"], hostile)).toEqual({ exitCode: 0, stdout: `${pkg.version}\n`, stderr: "" });
  expect((await run([bin, "rx", "0", "encrypt"], hostile)).stderr).toMatch(/^viamillipede: encrypt needs a key/);

  const output = join(installDir, "output.bin");
  const rx = spawn([bin, "rx", "0", "bind", "127.0.0.1"], { cwd: scratch, stdout: Bun.file(output) });
  let rxText = "";
  let onText: () => void = () => {};
  const rxStderr = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of rx.stderr) {
      rxText += decoder.decode(chunk, { stream: true });
      onText();
    }
    return (rxText += decoder.decode());
  })();
  const port = await within(
    "the receiver's listening line",
    new Promise<number>((resolve, reject) => {
      onText = () => {
        const match = rxText.match(LISTENING_LINE);
        if (match) resolve(Number(match[1]));
      };
      onText();
      void rxStderr.then(() => reject(new Error(`receiver ended before listening: ${rxText}`)));
    }),
  );

  const tx = spawn([bin, "tx", "127.0.0.1", String(port)], { cwd: scratch, stdin: Bun.file(input) });
  const [txDone, rxDone] = await within(
    "the transfer",
    Promise.all([finish(tx, new Response(tx.stderr).text()), finish(rx, rxStderr)]),
  );
  expect({ ...txDone, stderr: withoutSummaries(txDone.stderr) }).toEqual({ exitCode: 0, stdout: "", stderr: "" });
  expect(txDone.stderr).toMatch(/^viamillipede tx: sent .* \(\d+ bytes\)/);
  expect({ ...rxDone, stderr: withoutSummaries(rxDone.stderr) }).toEqual({ exitCode: 0, stdout: "", stderr: `viamillipede: listening on port ${port}\n` });
  expect(Bun.file(output).size).toBe(TRANSFER_BYTES);
  expect(await sha256(output)).toBe(await sha256(input));
}

describe("installed from the packed tarball", () => {
  test.skipIf(npm === null)(
    "npm install -g --prefix: the viamillipede command works",
    async () => {
      const prefix = join(scratch, "npm-prefix");
      const installed = await run(
        [npm!, "install", "--global", "--prefix", prefix, "--prefer-offline", "--no-audit", "--no-fund", tarball],
        scratch,
      );
      expect(installed.exitCode, installed.stderr).toBe(0);
      await exercise(join(prefix, "bin", "viamillipede"), prefix);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "bun add into a fresh project: node_modules/.bin/viamillipede works",
    async () => {
      const project = join(scratch, "bun-project");
      await Bun.write(join(project, "package.json"), JSON.stringify({ name: "vm-install-check", private: true }));
      const added = await run([process.execPath, "add", tarball], project);
      expect(added.exitCode, added.stderr).toBe(0);
      await exercise(join(project, "node_modules", ".bin", "viamillipede"), project);
    },
    TEST_TIMEOUT_MS,
  );
});
