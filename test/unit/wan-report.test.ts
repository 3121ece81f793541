/**
 * bench/wan-report.ts, the WAN bench's arithmetic: its rows (the WAN matrix and the two-link
 * rows), the BENCH_WAN_ROWS filter, medians of capped runs, the targets a row meets, and the table.
 */
import { describe, expect, test } from "bun:test";
import { BenchError } from "../../bench/common.ts";
import { judge, matrixRows, selectRows, summariseRuns, table, type RowResult, type ToolFigure } from "../../bench/wan-report.ts";

const MIB = 1 << 20;
const LINK = (300e6 / 8) as number;

function result(id: string, netcat: ToolFigure, iperf3: ToolFigure, viamillipede: ToolFigure, linkBytesPerSecond = LINK): RowResult {
  const row = matrixRows().find((r) => r.id === id)!;
  return { row, linkBytesPerSecond, netcat, iperf3, viamillipede };
}
const at = (share: number, capped = false): ToolFigure => ({ bytesPerSecond: share * LINK, capped });

describe("rows", () => {
  test("RTT 10/50/100/200 × loss 0/0.1/1 % × cubic/bbr at 300 Mbit/s, then two links per congestion control", () => {
    const rows = matrixRows();
    expect(rows).toHaveLength(4 * 3 * 2 + 2);
    expect(new Set(rows.map((row) => row.id)).size).toBe(rows.length);
    expect(rows[0]).toEqual({ id: "rtt10-loss0%-cubic", label: "10 ms, 0, cubic", links: [{ mbit: 300, rttMs: 10, loss: 0, congestion: "cubic" }] });
    expect(rows.find((row) => row.id === "rtt200-loss0.1%-bbr")?.links).toEqual([{ mbit: 300, rttMs: 200, loss: 0.001, congestion: "bbr" }]);
    expect(rows.at(-1)!.links).toEqual([
      { mbit: 100, rttMs: 10, congestion: "bbr" },
      { mbit: 100, rttMs: 150, congestion: "bbr" },
    ]);
  });

  test("BENCH_WAN_ROWS picks rows by a regular expression on their id; one that matches nothing lists them", () => {
    const rows = matrixRows();
    expect(selectRows(rows, undefined)).toHaveLength(rows.length);
    expect(selectRows(rows, "").length).toBe(rows.length);
    expect(selectRows(rows, "^rtt100-loss1%").map((row) => row.id)).toEqual(["rtt100-loss1%-cubic", "rtt100-loss1%-bbr"]);
    expect(selectRows(rows, "two-links").map((row) => row.id)).toEqual(["two-links-cubic", "two-links-bbr"]);
    expect(() => selectRows(rows, "rtt999")).toThrow(/matches no row; rows are rtt10-loss0%-cubic, /);
    expect(() => selectRows(rows, "(")).toThrow(BenchError);
  });
});

describe("figures", () => {
  test("the median rate of the runs; capped when any run was", () => {
    expect(
      summariseRuns([
        { bytes: 100 * MIB, seconds: 10, capped: false },
        { bytes: 30 * MIB, seconds: 60, capped: true },
        { bytes: 100 * MIB, seconds: 20, capped: false },
      ]),
    ).toEqual({ bytesPerSecond: 5 * MIB, capped: true });
    expect(summariseRuns([])).toEqual({ failed: "no run" });
  });
});

describe("targets", () => {
  test("where iperf3 -P 16 reaches 0.85 of the link, viamillipede must too, and beat netcat", () => {
    expect(judge(result("rtt100-loss0%-cubic", at(0.6), at(0.93), at(0.86)))).toEqual({ met: true, misses: [] });
    expect(judge(result("rtt100-loss0%-cubic", at(0.4), at(0.93), at(0.5)))).toEqual({ met: false, misses: ["0.50 of link < 0.85"] });
    expect(judge(result("rtt100-loss0%-cubic", at(0.9), at(0.93), at(0.86)))).toEqual({ met: false, misses: ["0.96x netcat < 1.0"] });
    // A miss never reads as the threshold itself.
    expect(judge(result("rtt100-loss0%-cubic", at(0.6), at(0.93), at(0.8495)))).toEqual({ met: false, misses: ["0.849 of link < 0.85"] });
  });

  test("where iperf3 -P 16 does not, viamillipede must reach iperf3's rate", () => {
    expect(judge(result("rtt200-loss1%-cubic", at(0.01, true), at(0.3, true), at(0.3)))).toEqual({ met: true, misses: [] });
    expect(judge(result("rtt200-loss1%-cubic", at(0.01, true), at(0.4), at(0.2)))).toEqual({
      met: false,
      misses: ["0.50x iperf3 < 1.0 (iperf3 reaches 0.40 of link)"],
    });
  });

  test("two links: 0.85 of their summed rate, whatever iperf3 reached on the short one", () => {
    const sum = 2 * (100e6 / 8);
    expect(judge(result("two-links-cubic", { bytesPerSecond: 0.5 * sum, capped: false }, { bytesPerSecond: 0.5 * sum, capped: false }, { bytesPerSecond: 0.9 * sum, capped: false }, sum)).met).toBe(true);
    expect(judge(result("two-links-cubic", { bytesPerSecond: 0.5 * sum, capped: false }, { bytesPerSecond: 0.2 * sum, capped: false }, { bytesPerSecond: 0.6 * sum, capped: false }, sum))).toEqual({
      met: false,
      misses: ["0.60 of link < 0.85"],
    });
  });

  test("a failed viamillipede run meets nothing; a failed iperf3 run leaves the link target", () => {
    expect(judge(result("rtt10-loss0%-bbr", at(0.9), at(0.95), { failed: "exit 1" }))).toEqual({ met: false, misses: ["viamillipede failed"] });
    expect(judge(result("rtt10-loss0%-bbr", at(0.5), { failed: "x" }, at(0.6)))).toEqual({ met: false, misses: ["0.60 of link < 0.85"] });
  });
});

describe("table", () => {
  test("Markdown, MiB/s, capped runs and misses named", () => {
    const text = table([result("rtt200-loss1%-cubic", at(0.01, true), at(0.4), at(0.2))]);
    const lines = text.split("\n");
    expect(lines[0]).toBe("| path (RTT, loss, congestion control) | link MiB/s | netcat | iperf3 -P 16 | viamillipede | vs netcat | vs iperf3 | vs link | target |");
    expect(lines[1]).toBe("|---|---|---|---|---|---|---|---|---|");
    expect(lines[2]).toBe("| 200 ms, 1%, cubic | 35.8 | 0.4 (capped) | 14.3 | 7.2 | 20x | 0.50x | 0.20 | **not met**: 0.50x iperf3 < 1.0 (iperf3 reaches 0.40 of link) |");
  });
});
