import { describe, expect, test } from "bun:test";
import schema from "../../src/status/stats.schema.json";
import { StatusBoard } from "../../src/status/board.ts";
import type { TransferFigures } from "../../src/status/figures.ts";
import { formatBytes, formatClock, progressLine, statusBlock, summaryLine, type Snapshot } from "../../src/status/format.ts";
import { statsDocument } from "../../src/status/stats.ts";
import { validate } from "../support/json-schema.ts";

const MIB = 1024 * 1024;

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

describe("status text", () => {
  test("units and clocks", () => {
    expect([formatBytes(0), formatBytes(1023), formatBytes(1536), formatBytes(300 * MIB), formatBytes(3 * 1024 * MIB)]).toEqual(["0 B", "1023 B", "1.5 KiB", "300 MiB", "3.0 GiB"]);
    expect([formatClock(5.2), formatClock(65), formatClock(3725)]).toEqual(["0:05", "1:05", "1:02:05"]);
  });

  test("the progress line: bytes, size and percent, rate, elapsed, connections, links in use, ETA", () => {
    expect(progressLine(snapshot(figures(4 * MIB), 8 * MIB))).toBe("tx 4.0 MiB of 8.0 MiB (50%) 2.0 MiB/s 1:05 conns 1/4 links 1/2 ETA 0:02");
    expect(progressLine(snapshot(figures(4 * MIB)))).toBe("tx 4.0 MiB 2.0 MiB/s 1:05 conns 1/4 links 1/2");
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
  function board(options: { progress?: "auto" | "on" | "off"; quiet?: boolean; isTerminal?: boolean } = {}) {
    let now = 0;
    const written: string[] = [];
    const b = new StatusBoard({
      progress: options.progress ?? "auto",
      quiet: options.quiet ?? false,
      expectedBytes: null,
      statsFile: null,
      isTerminal: options.isTerminal ?? false,
      write: (text) => written.push(text),
      now: () => now,
    });
    return { b, written, advance: (ms: number) => (now += ms) };
  }

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
    const document = statsDocument([snapshot(figures(4 * MIB, { digest: "0123456789abcdef" }), 8 * MIB)], { exitCode: 0, error: null }, new Date(0));
    expect(validate(schema as Parameters<typeof validate>[0], document)).toEqual([]);
    expect(validate(schema as Parameters<typeof validate>[0], { ...document, version: 2 })).toEqual(["$.version: is 2, expected 1"]);
  });
});
