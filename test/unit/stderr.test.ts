/**
 * The stderr writer (src/stderr.ts) over real descriptors: a FIFO whose reader
 * stopped reading, /dev/full, a pipe whose reader has gone. It never throws,
 * never waits, holds at most its backlog, drops whole texts and counts the
 * lines it drops, and what it does deliver arrives whole and in order.
 * Retries are driven by the test (an injected schedule), not by a timer.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, constants, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { StderrWriter } from "../../src/stderr.ts";
import { makeTempDir } from "../support/spawn.ts";

let temp: ReturnType<typeof makeTempDir>;
const opened: number[] = [];

beforeAll(() => {
  temp = makeTempDir("stderr");
});
afterAll(() => temp.remove());
afterEach(() => {
  for (const fd of opened.splice(0)) closeSync(fd);
});

function open(path: string, flags: number): number {
  const fd = openSync(path, flags);
  opened.push(fd);
  return fd;
}

/** A FIFO with both ends open and non-blocking; nothing reads it until the test does. */
function fifo(name: string): { reader: number; writer: number } {
  const path = join(temp.path, name);
  expect(Bun.spawnSync(["mkfifo", path]).exitCode).toBe(0);
  const reader = open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = open(path, constants.O_WRONLY | constants.O_NONBLOCK);
  return { reader, writer };
}

/** Everything the FIFO holds right now. */
function readAvailable(fd: number): string {
  const buffer = Buffer.alloc(1 << 20);
  let text = "";
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buffer, 0, buffer.length, null);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EAGAIN") return text;
      throw error;
    }
    if (n === 0) return text;
    text += buffer.subarray(0, n).toString("utf8");
  }
}

/** A schedule the test fires by hand. */
function manualRetries(): { schedule: (retry: () => void) => void; fire(): void; pending(): number } {
  const waiting: (() => void)[] = [];
  return {
    schedule: (retry) => waiting.push(retry),
    fire: () => waiting.splice(0).forEach((retry) => retry()),
    pending: () => waiting.length,
  };
}

const line = (i: number): string => `line ${String(i).padStart(5, "0")} ${"x".repeat(1000)}\n`;

describe("the stderr writer", () => {
  test("a reader that stopped reading: nothing waits, the backlog is bounded, whole lines arrive in order once it reads again", () => {
    const { reader, writer } = fifo("stuck");
    const retries = manualRetries();
    const out = new StderrWriter(writer, { backlogBytes: 16 * 1024, schedule: retries.schedule });
    const written = 400; // 400 KB: far more than a 64 KiB pipe and the 16 KiB backlog
    for (let i = 0; i < written; i++) out.write(line(i));
    expect(out.waitingBytes).toBeGreaterThan(0);
    expect(out.waitingBytes).toBeLessThanOrEqual(16 * 1024);
    expect(out.droppedLines).toBeGreaterThan(0);
    expect(retries.pending()).toBe(1);

    let received = readAvailable(reader);
    while (retries.pending() > 0) {
      retries.fire();
      received += readAvailable(reader);
    }
    expect(out.waitingBytes).toBe(0);
    const lines = received.split("\n").slice(0, -1);
    // Whole lines only, in order; every line written either arrived or was counted as dropped.
    for (const text of lines) expect(text).toMatch(/^line \d{5} x{1000}$/);
    const numbers = lines.map((text) => Number(text.slice(5, 10)));
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(lines.length + out.droppedLines).toBe(written);

    // Room again: a new line goes straight through.
    out.write("after\n");
    expect(readAvailable(reader)).toBe("after\n");
  });

  test("a text larger than the backlog is dropped whole, never cut", () => {
    const { reader, writer } = fifo("big");
    const retries = manualRetries();
    const out = new StderrWriter(writer, { backlogBytes: 100_000, schedule: retries.schedule });
    out.write("x".repeat(200_000) + "\n");
    expect(out.droppedLines).toBe(1);
    expect(readAvailable(reader)).toBe("");
  });

  test("/dev/full: every write fails with ENOSPC; nothing throws, the lines are counted", () => {
    const out = new StderrWriter(open("/dev/full", constants.O_WRONLY));
    out.write("a warning\n");
    out.write("a status block\n  of three\n  lines\n");
    out.write("\r\x1b[2Ka progress line without a newline");
    expect(out.droppedLines).toBe(1 + 3 + 1);
    expect(out.waitingBytes).toBe(0);
  });

  test("a pipe whose reader has gone: EPIPE; nothing throws, the lines are counted, later lines too", () => {
    const { reader, writer } = fifo("closed");
    const out = new StderrWriter(writer);
    out.write("seen\n");
    expect(readAvailable(reader)).toBe("seen\n");
    closeSync(opened.splice(opened.indexOf(reader), 1)[0]!);
    out.write("lost 1\n");
    out.write("lost 2\n");
    expect(out.droppedLines).toBe(2);
  });
});
