/**
 * `bun run build` makes a standalone executable that works on a host without Bun.
 *
 * 1. `bun run build` (once for this file) writes dist/viamillipede; it is
 *    copied into a temp dir, as onto a storage host, and run from there with a
 *    PATH that holds no `bun` (checked), in a working directory of its own.
 * 2. `--version` prints package.json's version.
 * 3. `rx 0 bind 127.0.0.1` and `tx 127.0.0.1 PORT`, both the executable, move
 *    a few MiB through stdin and stdout pipes: sha256 identical, both exit 0,
 *    stderr as clean as from `bun src/cli/main.ts`.
 * 4. Through real pipes, as users run it (`cat FILE | tx 2>/dev/full`,
 *    `rx | sha256sum`; Bun's own "pipe" stdio is a socket pair): the pipes are
 *    grown through libc's fcntl, which proves bun:ffi's dlopen works inside
 *    the executable, and a stderr that refuses every write ends nothing.
 * 5. A working directory's bunfig.toml and .env are not read: a compiled Bun
 *    executable loads both by default, so `preload` in a bunfig.toml would run
 *    someone else's code in a receiver started there, and a .env would set
 *    VIAMILLIPEDE_KEY_FILE behind the user's back.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import pkg from "../../package.json";
import { expectCleanTransfer } from "../support/e2e.ts";
import {
  killShells,
  errorLines,
  killLeftovers,
  makeInput,
  makeTempDir,
  ROOT,
  startReceiver,
  startTransmitter,
  TextWatch,
  within,
  type Input,
} from "../support/spawn.ts";

const TRANSFER_BYTES = 6 * 1024 * 1024 + 12_345; // several feet and a ragged tail
/** `bun run build` took 0.25 s on an idle 2-core machine (it copies the running Bun); room for a loaded one. */
const BUILD_TIMEOUT_MS = 60_000;
const TRANSFER_TIMEOUT_MS = 20_000;
/** A PATH with the usual system directories only where none of them holds a `bun`; otherwise an empty directory. */
const SYSTEM_PATH = "/usr/bin:/bin";

const scratch = makeTempDir("standalone");
/** The "storage host": a directory holding only the copied executable. */
const host = join(scratch.path, "host");
const executable = join(host, "viamillipede");
let env: Record<string, string> = {};
let input: Input;

beforeAll(async () => {
  const build = Bun.spawn([process.execPath, "run", "build"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [exitCode, stderr] = await within(BUILD_TIMEOUT_MS, "bun run build", Promise.all([build.exited, new Response(build.stderr).text()]));
  expect(exitCode, stderr).toBe(0);
  mkdirSync(host);
  copyFileSync(join(ROOT, "dist/viamillipede"), executable);
  expect(statSync(executable).mode & 0o111).not.toBe(0);

  const empty = join(scratch.path, "empty-bin");
  mkdirSync(empty);
  const path = Bun.which("bun", { PATH: SYSTEM_PATH }) === null ? SYSTEM_PATH : empty;
  expect(Bun.which("bun", { PATH: path })).toBeNull();
  env = { PATH: path };
  input = await makeInput(scratch.path, TRANSFER_BYTES, "standalone");
}, BUILD_TIMEOUT_MS);

/** The shells of the pipe test; one that fails leaves them and their pipelines to afterEach. */
const shells = new Set<Bun.Subprocess>();

afterEach(async () => {
  await killLeftovers();
  await killShells(shells);
});
afterAll(() => scratch.remove());

/** Runs the copied executable with `args` in `cwd` to its exit. */
function runExecutable(args: readonly string[], cwd: string) {
  return startTransmitter(args, { empty: true }, { program: [executable], cwd, env }).done();
}

test("--version prints the package version, with no bun on PATH", async () => {
  const outcome = await within(TRANSFER_TIMEOUT_MS, "--version", runExecutable(["--version"], host));
  expect({ exitCode: outcome.exitCode, stdout: outcome.stdout, stderr: outcome.stderr }).toEqual({ exitCode: 0, stdout: `${pkg.version}\n`, stderr: "" });
});

test("rx and tx from the executable, with no bun on PATH, move a few MiB intact", async () => {
  const options = { program: [executable], cwd: host, env };
  const receiver = await startReceiver(["rx", "0", "bind", "127.0.0.1"], options);
  const transmitter = startTransmitter(["tx", "127.0.0.1", String(receiver.port)], { file: input.path }, options);
  const [tx, rx] = await within(TRANSFER_TIMEOUT_MS, "the transfer", Promise.all([transmitter.done(), receiver.done()]));
  expectCleanTransfer({ port: receiver.port, rx, tx }, input);
});

/**
 * `sh -c SCRIPT` with "$0" the executable, "$1" the PATH without bun it runs
 * under, "$2" the file the role writes its own exit status to (sh has no
 * pipefail) and "$3" `extra`.
 */
function shell(script: string, statusFile: string, extra: string) {
  const proc = Bun.spawn(["sh", "-c", script, executable, env.PATH!, statusFile, extra], { cwd: host, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  shells.add(proc);
  const stderr = new TextWatch(proc.stderr);
  return {
    stderr,
    async done(): Promise<{ status: number; stderr: string }> {
      const [, text] = await Promise.all([proc.exited, stderr.done]);
      return { status: Number((await Bun.file(statusFile).text()).trim()), stderr: text };
    },
  };
}

test("cat FILE | tx 2>/dev/full, rx | sha256sum: pipes grown through bun:ffi, identical, both exit 0", async () => {
  const hashFile = join(scratch.path, "pipes.sha256");
  const rx = shell(`{ PATH="$1" "$0" rx 0 bind 127.0.0.1 verbose 5; echo $? > "$2"; } | sha256sum > "$3"`, join(scratch.path, "rx.status"), hashFile);
  const port = Number((await within(TRANSFER_TIMEOUT_MS, "rx's port", rx.stderr.until(/^viamillipede: listening on port (\d+)$/m)))[1]);
  const tx = shell(`cat "$3" | { PATH="$1" "$0" tx 127.0.0.1 ${port} verbose 5 2>/dev/full; echo $? > "$2"; }`, join(scratch.path, "tx.status"), input.path);
  const [rxOut, txOut] = await within(TRANSFER_TIMEOUT_MS, "both ends to exit", Promise.all([rx.done(), tx.done()]));
  expect({ rx: rxOut.status, tx: txOut.status, txStderr: txOut.stderr }).toEqual({ rx: 0, tx: 0, txStderr: "" });
  expect((await Bun.file(hashFile).text()).split(" ")[0]).toBe(input.sha256);
  expect(errorLines(rxOut.stderr)).toEqual([]);
  // Logged only after fcntl(F_SETPIPE_SZ) through the dlopen'ed libc succeeded.
  expect(rxOut.stderr).toMatch(/fd 1: pipe grown from \d+ to \d+ bytes/);
});

test("ignores the bunfig.toml and .env of its working directory", async () => {
  const cwd = join(scratch.path, "hostile");
  mkdirSync(cwd);
  await Bun.write(join(cwd, "bunfig.toml"), 'preload = ["./preload.ts"]\n');
  await Bun.write(join(cwd, "preload.ts"), 'process.stderr.write("preload from bunfig.toml ran\\n");\n');
  await Bun.write(join(cwd, ".env"), "VIAMILLIPEDE_KEY_FILE=/nonexistent/set-by-dotenv\n");

  const version = await within(TRANSFER_TIMEOUT_MS, "--version", runExecutable(["--version"], cwd));
  expect({ exitCode: version.exitCode, stdout: version.stdout, stderr: version.stderr }).toEqual({ exitCode: 0, stdout: `${pkg.version}\n`, stderr: "" });

  // With no key anywhere, encrypt is refused for want of one, not for the .env's missing file.
  const encrypt = await within(TRANSFER_TIMEOUT_MS, "rx encrypt", runExecutable(["rx", "0", "bind", "127.0.0.1", "encrypt"], cwd));
  expect(encrypt.stderr).toMatch(/^viamillipede: encrypt needs a key on both ends/);
  expect(encrypt.exitCode).toBe(2);
});
