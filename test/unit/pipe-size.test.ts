/**
 * growPipe on real file descriptors: a child process whose stdout is a pipe
 * (grown to 1 MiB), and one whose stdout is a file (left alone).
 */
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WANTED_PIPE_BYTES } from "../../src/pipe-size.ts";

const MODULE = join(import.meta.dir, "../../src/pipe-size.ts");
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
