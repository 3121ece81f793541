/**
 * growPipe and blockingWrites on real file descriptors, in child processes:
 * a pipe on stdout is grown to 1 MiB, a file is left alone; a pipe made
 * non-blocking blocks again, a socket is left alone.
 */
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WANTED_PIPE_BYTES } from "../../src/stdio-pipes.ts";

const MODULE = join(import.meta.dir, "../../src/stdio-pipes.ts");
const SCRIPT = `import { growPipe } from ${JSON.stringify(MODULE)}; process.stderr.write(String(growPipe(1)));`;
/** Bun's `stdout: "pipe"` is a socket pair, not a pipe: the shell makes a real one. */
const IN_SHELL_PIPE = ["sh", "-c", `"$0" -e "$1" | cat`, process.execPath, SCRIPT];

test.skipIf(process.platform !== "linux")("a pipe on stdout grows to 1 MiB (or the system's limit)", async () => {
  const child = Bun.spawn(IN_SHELL_PIPE, { stdout: "ignore", stderr: "pipe" });
  const [said] = await Promise.all([new Response(child.stderr).text(), child.exited]);
  const limit = Number(await Bun.file("/proc/sys/fs/pipe-max-size").text());
  expect(Number(said)).toBe(Math.min(WANTED_PIPE_BYTES, limit));
});

test("a file on stdout is not a pipe and is left alone", async () => {
  const dir = mkdtempSync(join(tmpdir(), "vm-pipe-"));
  try {
    const child = Bun.spawn([process.execPath, "-e", SCRIPT], { stdout: Bun.file(join(dir, "out")), stderr: "pipe" });
    const [said] = await Promise.all([new Response(child.stderr).text(), child.exited]);
    expect(said).toBe("undefined");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A child that touches process.stdout (which makes fd 1 non-blocking, as
 * consola's full import does), maybe asks for blocking writes, then writes
 * 8 MiB synchronously into a pipe whose reader is asleep: a non-blocking fd
 * fails with EAGAIN, a blocking one waits.
 */
function blockingScript(ask: boolean): string {
  return `import fs from "node:fs";
process.stdout;
import { blockingWrites } from ${JSON.stringify(MODULE)};
const said = ${ask} ? String(blockingWrites(1)) : "not asked";
const bytes = new Uint8Array(8 << 20);
try {
  for (let at = 0; at < bytes.length; ) at += fs.writeSync(1, bytes, at);
  process.stderr.write(said + ", wrote 8 MiB");
} catch (error) {
  process.stderr.write(said + ", " + error.code);
}`;
}

async function inSleepyPipe(script: string): Promise<string> {
  const child = Bun.spawn(["sh", "-c", `"$0" -e "$1" | { sleep 0.3; cat > /dev/null; }`, process.execPath, script], { stdout: "ignore", stderr: "pipe" });
  const [said] = await Promise.all([new Response(child.stderr).text(), child.exited]);
  return said;
}

test.skipIf(process.platform !== "linux")("blockingWrites: a pipe on stdout made non-blocking (process.stdout touched) blocks again, and a slow reader is waited for", async () => {
  expect(await inSleepyPipe(blockingScript(false))).toBe("not asked, EAGAIN");
  expect(await inSleepyPipe(blockingScript(true))).toBe("true, wrote 8 MiB");
});

test("blockingWrites: a socket on stdout (Bun's own 'pipe' stdio) is left as it is", async () => {
  const child = Bun.spawn([process.execPath, "-e", `import { blockingWrites } from ${JSON.stringify(MODULE)}; process.stderr.write(String(blockingWrites(1)));`], { stdout: "pipe", stderr: "pipe" });
  const [said] = await Promise.all([new Response(child.stderr).text(), new Response(child.stdout).text(), child.exited]);
  expect(said).toBe("false");
});
