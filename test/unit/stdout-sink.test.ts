/**
 * fdSink, the receiver's blocking writer (src/rx/stdout.ts), on real
 * descriptors: a file gets every byte in order; a pipe whose reader has gone
 * fails the write, and every later one, with outputClosed.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VmError } from "../../src/errors.ts";
import { fdSink } from "../../src/rx/stdout.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vm-sink-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pattern(bytes: number, seed: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

test("a file gets every chunk, in order", async () => {
  const path = join(dir, "out");
  const fd = openSync(path, "w");
  const chunks = [pattern(2 << 20, 1), pattern(1, 2), pattern(3 << 20, 3)];
  try {
    const sink = fdSink(fd);
    for (const chunk of chunks) await sink.write(chunk);
  } finally {
    closeSync(fd);
  }
  expect(Buffer.compare(readFileSync(path), Buffer.concat(chunks))).toBe(0);
});

test("a pipe whose reader is gone: outputClosed, and it stays failed", async () => {
  const fifo = join(dir, "fifo");
  expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
  // The reader first (non-blocking, so the open returns), then the writer, then the reader leaves.
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(fifo, constants.O_WRONLY);
  closeSync(reader);
  try {
    const sink = fdSink(writer);
    for (let attempt = 0; attempt < 2; attempt++) {
      const error = await sink.write(pattern(4096, attempt)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(VmError);
      expect({ code: (error as VmError).code, message: (error as VmError).message }).toEqual({
        code: "outputClosed",
        message: "stdout was closed by the consumer before the stream ended",
      });
    }
  } finally {
    closeSync(writer);
  }
});
