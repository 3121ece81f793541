import { describe, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import schema from "../../src/status/stats.schema.json";
import { StatusBoard } from "../../src/status/board.ts";
import type { TransferFigures } from "../../src/status/figures.ts";
import { formatBytes, formatClock, progressLine, progressLines, statusBlock, summaryLine, type Snapshot } from "../../src/status/format.ts";
import { statsDocument } from "../../src/status/stats.ts";
import { validate } from "../support/json-schema.ts";
import { MIB } from "../support/sizes.ts";


function figures(bytes: number, overrides: Partial<TransferFigures> = {}): TransferFigures {
  return {
    role: "tx",
    startedMs: 0,
    bytes,
    feet: bytes / (2 * MIB),
    feetInFlight: 5,
    windowFeet: 32,
    reorderFeet: null,
    retransmits: 1,
    connections: [{ id: 1, link: "10.0.0.2:8834", state: "up", bytes, feet: 3, retransmits: 1, roundTripMs: 0.4 }],
    links: [
      { link: 1, address: "10.0.0.2:8834", state: "up", connections: 1, bytesSent: 3 * MIB, feetSent: 3, bytesDelivered: 3 * MIB, feetDelivered: 3, bytesPerSecond: MIB },
      { link: 2, address: "10.0.1.2:8834", state: "down", connections: 0, bytesSent: MIB, feetSent: 1, bytesDelivered: MIB, feetDelivered: 1, bytesPerSecond: 0 },
    ],
    digest: null,
    connectionsWanted: 4,
    ...overrides,
  };
}

const snapshot = (f: TransferFigures, expectedBytes: number | null = null): Snapshot => ({
  figures: f,
  elapsedSeconds: 65,
  bytesPerSecond: 2 * MIB,
  averageBytesPerSecond: 1.5 * MIB,
  expectedBytes,
});

/** Whether `part` is `all` with some items left out. */
function isSubsequence(part: string[], all: string[]): boolean {
  let at = 0;
  for (const item of all) if (item === part[at]) at++;
  return at === part.length;
}

describe("status text", () => {
  test("units and clocks", () => {
    expect([formatBytes(0), formatBytes(1023), formatBytes(1536), formatBytes(300 * MIB), formatBytes(3 * 1024 * MIB)]).toEqual(["0 B", "1023 B", "1.5 KiB", "300 MiB", "3.0 GiB"]);
    expect([formatClock(5.2), formatClock(65), formatClock(3725)]).toEqual(["0:05", "1:05", "1:02:05"]);
  });

  test("the progress line: bytes, size and percent, rate, elapsed, connections, links in use, ETA", () => {
    expect(progressLine(snapshot(figures(4 * MIB), 8 * MIB))).toBe("tx 4.0 MiB of 8.0 MiB (50%) 2.0 MiB/s 1:05 conns 1/4 links 1/2 ETA 0:02");
    expect(progressLine(snapshot(figures(4 * MIB)))).toBe("tx 4.0 MiB 2.0 MiB/s 1:05 conns 1/4 links 1/2");
  });

  test("the progress line fits the width it is given: least important fields first, then cut", () => {
    const withSize = snapshot(figures(4 * MIB), 8 * MIB);
    // On a terminal of 20, 40, 80 and 200 columns (the last one stays empty).
    expect([20, 40, 80, 200].map((columns) => progressLines([withSize], columns))).toEqual([
      "tx 4.0 MiB (50%)",
      "tx 4.0 MiB (50%) 2.0 MiB/s ETA 0:02",
      "tx 4.0 MiB of 8.0 MiB (50%) 2.0 MiB/s 1:05 conns 1/4 links 1/2 ETA 0:02",
      "tx 4.0 MiB of 8.0 MiB (50%) 2.0 MiB/s 1:05 conns 1/4 links 1/2 ETA 0:02",
    ]);
    // Two roles share the width.
    expect(progressLines([withSize, snapshot(figures(4 * MIB, { role: "rx" }), 8 * MIB)], 80)).toBe(
      "tx 4.0 MiB (50%) 2.0 MiB/s ETA 0:02 | rx 4.0 MiB (50%) 2.0 MiB/s ETA 0:02",
    );
    // Not a terminal: nothing left out.
    expect(progressLines([withSize], undefined)).toBe(progressLine(withSize));
    const fitted = (width: number) => progressLine(withSize, width);
    // Every width from 0 to the whole line: never longer than asked; once role and bytes fit, whole fields are left out, the rest keep their order.
    const whole = progressLine(withSize);
    for (let width = 0; width <= whole.length + 1; width++) {
      const line = fitted(width);
      expect(line.length).toBeLessThanOrEqual(width);
      if (width < "tx 4.0 MiB".length) expect(line).toBe("tx 4.0 MiB".slice(0, width));
      else expect(isSubsequence(line.split(" "), whole.split(" "))).toBe(true);
    }
    // Without a size: no percentage to keep, the rate goes last.
    expect(progressLine(snapshot(figures(4 * MIB)), 20)).toBe("tx 4.0 MiB 2.0 MiB/s");
    // Narrower than role and bytes: cut.
    expect(fitted(6)).toBe("tx 4.0");
  });

  test("the summary: bytes, time, average rate, retransmits, per-link shares", () => {
    expect(summaryLine(snapshot(figures(4 * MIB)))).toBe(
      "viamillipede tx: sent 4.0 MiB (4194304 bytes) in 65.00 s, 1.5 MiB/s, 1 retransmits; links 10.0.0.2:8834 75%, 10.0.1.2:8834 25%",
    );
  });

  test("the status block has every field, a row per connection and per link", () => {
    const block = statusBlock(snapshot(figures(4 * MIB, { role: "rx", reorderFeet: 3 }), 8 * MIB));
    expect(block).toBe(
      [
        "viamillipede rx status after 1:05",
        "  bytes        4.0 MiB (4194304) of 8.0 MiB (50%), ETA 0:02",
        "  rate         2.0 MiB/s now, 1.5 MiB/s average",
        "  feet         2 done, 5 in flight, window 32, reorder buffer 3",
        "  retransmits  1",
        "  connection  link           state  bytes    feet  retransmits  rtt",
        "  1           10.0.0.2:8834  up     4.0 MiB  3     1            0.4 ms",
        "  link  address        state  connections  share  rate",
        "  1     10.0.0.2:8834  up     1            75%    1.0 MiB/s",
        "  2     10.0.1.2:8834  down   0            25%    0 B/s",
        "",
      ].join("\n"),
    );
  });
});

describe("the status board", () => {
  function board(options: { progress?: "auto" | "on" | "off"; quiet?: boolean; isTerminal?: boolean; columns?: number; statsFile?: string } = {}) {
    let now = 0;
    let dropped = 0;
    const written: string[] = [];
    const b = new StatusBoard({
      progress: options.progress ?? "auto",
      quiet: options.quiet ?? false,
      expectedBytes: null,
      statsFile: options.statsFile ?? null,
      isTerminal: options.isTerminal ?? false,
      write: (text) => written.push(text),
      now: () => now,
      columns: () => options.columns,
      droppedLines: () => dropped,
    });
    return { b, written, advance: (ms: number) => (now += ms), drop: (lines: number) => (dropped += lines) };
  }

  /** The progress lines drawn so far (what follows each "\r, erase line"). */
  const drawings = (written: string[]) => written.filter((text) => text.startsWith("\r\x1b[2K")).map((text) => text.slice("\r\x1b[2K".length));

  test("the progress line is fitted to the terminal's width as it is when drawn, one column to spare", () => {
    const columns = { now: 40 };
    let now = 0;
    const written: string[] = [];
    const b = new StatusBoard({
      progress: "on",
      quiet: false,
      expectedBytes: 8 * MIB,
      statsFile: null,
      isTerminal: true,
      write: (text) => written.push(text),
      now: () => now,
      columns: () => columns.now,
    });
    b.add("tx", () => figures(4 * MIB));
    b.add("rx", () => figures(4 * MIB, { role: "rx" }));
    now += 1000;
    columns.now = 80; // the terminal was resized: close() draws the last line at the new width
    b.close({ exitCode: 10, error: "viamillipede: gone" });
    // 79 columns: 38 for each role around " | ".
    expect(drawings(written)).toEqual(["tx 4.0 MiB of 8.0 MiB (50%) 0 B/s 0:01 | rx 4.0 MiB of 8.0 MiB (50%) 0 B/s 0:01"]);
    // Not a terminal (columns unknown): the whole line.
    const wide = board({ progress: "on" });
    wide.b.add("tx", () => figures(4 * MIB));
    wide.b.close({ exitCode: 10, error: "viamillipede: gone" });
    expect(drawings(wide.written)).toEqual(["tx 4.0 MiB 0 B/s 0:00 conns 1/4 links 1/2"]);
    // 20 columns for one role.
    const narrow = board({ progress: "on", columns: 20 });
    narrow.b.add("tx", () => figures(4 * MIB));
    narrow.advance(1000);
    narrow.b.close({ exitCode: 10, error: "viamillipede: gone" });
    expect(drawings(narrow.written)).toEqual(["tx 4.0 MiB 0 B/s"]);
  });

  test("lines stderr dropped are counted after the summary and in the stats file", () => {
    const statsFile = join(tmpdir(), `viamillipede-board-${process.pid}.json`);
    try {
      const { b, written, drop } = board({ statsFile });
      b.add("rx", () => figures(4 * MIB, { role: "rx" }));
      drop(7);
      b.close({ exitCode: 0, error: null });
      expect(written.at(-1)).toBe("viamillipede: 7 lines could not be written to stderr and were dropped\n");
      expect(JSON.parse(readFileSync(statsFile, "utf8"))).toMatchObject({ exitCode: 0, stderrLinesDropped: 7 });
      // None dropped: no such line.
      const clean = board();
      clean.b.add("rx", () => figures(4 * MIB, { role: "rx" }));
      clean.b.close({ exitCode: 0, error: null });
      expect(clean.written.some((text) => text.includes("could not be written"))).toBe(false);
    } finally {
      rmSync(statsFile, { force: true });
    }
  });

  test("progress is drawn on a terminal (or when forced), never when quiet", () => {
    expect(board({ isTerminal: true }).b.showsProgress).toBe(true);
    expect(board({ isTerminal: false }).b.showsProgress).toBe(false);
    expect(board({ progress: "on" }).b.showsProgress).toBe(true);
    expect(board({ quiet: true, isTerminal: true, progress: "off" }).b.showsProgress).toBe(false);
  });

  test("the summary on success; nothing when quiet or after a failure", () => {
    for (const [options, outcome, lines] of [
      [{}, { exitCode: 0, error: null }, 1],
      [{ quiet: true }, { exitCode: 0, error: null }, 0],
      [{}, { exitCode: 10, error: "viamillipede: gone" }, 0],
    ] as const) {
      const { b, written, advance } = board(options);
      b.add("tx", () => figures(4 * MIB));
      advance(2000);
      b.close(outcome);
      expect(written.filter((text) => text.startsWith("viamillipede tx: sent"))).toHaveLength(lines);
    }
  });
});

describe("the stats document", () => {
  test("matches its schema", () => {
    const document = statsDocument([snapshot(figures(4 * MIB, { digest: "0123456789abcdef" }), 8 * MIB)], { exitCode: 0, error: null }, new Date(0), 3);
    expect(validate(schema as Parameters<typeof validate>[0], document)).toEqual([]);
    expect(validate(schema as Parameters<typeof validate>[0], { ...document, version: 1 })).toEqual(["$.version: is 1, expected 2"]);
  });
});

describe("a serving receiver's sessions", () => {
  const sessions = [
    ...Array.from({ length: 10 }, (_, i) => ({ id: `e${i}`, label: `old${i}`, peer: "10.0.0.9:4000", state: "complete" as const, bytes: MIB, feet: 1, elapsedSeconds: 2, digest: "0123456789abcdef", error: null })),
    { id: "a1", label: null, peer: "10.0.0.7:5000", state: "failed" as const, bytes: 0, feet: 0, elapsedSeconds: 1, digest: null, error: "the transmitter vanished" },
    { id: "b2", label: "tank-home", peer: "10.0.0.8:6000", state: "running" as const, bytes: 3 * MIB, feet: 2, elapsedSeconds: 65, digest: null, error: null },
  ];
  const served = figures(14 * MIB, { role: "rx", reorderFeet: 0, connectionsWanted: null, sessions });

  test("the status block lists every running session and the last 8 that ended", () => {
    const block = statusBlock(snapshot(served));
    expect(block).toContain("  sessions     1 running, 11 ended (the last 8 shown)\n");
    const rows = block.split("\n").filter((line) => /^  (e\d|a1|b2) /.test(line));
    expect(rows.map((row) => row.trim().split(/\s+/)[0])).toEqual(["e3", "e4", "e5", "e6", "e7", "e8", "e9", "a1", "b2"].slice(-9));
    expect(rows.at(-1)).toMatch(/^  b2\s+tank-home\s+10\.0\.0\.8:6000\s+running\s+3\.0 MiB\s+1:05$/);
  });

  test("the stats document carries them, valid against its schema; without serve there is no sessions field", () => {
    const document = statsDocument([snapshot(served)], { exitCode: 0, error: null }, new Date(0));
    expect(document.transfers[0]?.sessions).toEqual(sessions);
    expect(validate(schema as Parameters<typeof validate>[0], document)).toEqual([]);
    expect(statsDocument([snapshot(figures(MIB))], { exitCode: 0, error: null }, new Date(0)).transfers[0]).not.toHaveProperty("sessions");
  });
});
