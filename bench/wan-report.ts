/**
 * The WAN bench's rows and its arithmetic, without I/O: which paths it runs (the WAN matrix and
 * the two-link row), how runs become a rate, which targets a row meets, and the table.
 */
import type { WanLinkSpec } from "../test/support/wan-rig.ts";
import { BenchError, median } from "./common.ts";

const MIB = 1 << 20;

/** The matrix: every round trip × loss × congestion control, each at this bottleneck rate. */
export const MATRIX_MBIT = 300;
export const MATRIX_RTTS_MS = [10, 50, 100, 200] as const;
export const MATRIX_LOSSES = [0, 0.001, 0.01] as const;
export const CONGESTION_CONTROLS = ["cubic", "bbr"] as const;
/** The two-link rows: one short and one long round trip, one `tx` clause each. */
export const TWO_LINKS: ReadonlyArray<{ mbit: number; rttMs: number }> = [
  { mbit: 100, rttMs: 10 },
  { mbit: 100, rttMs: 150 },
];

/** Share of the link rate a row must reach when iperf3 -P 16 shows the path allows it. */
export const LINK_TARGET = 0.85;

export interface WanRow {
  /** What BENCH_WAN_ROWS matches, e.g. `rtt100-loss1%-cubic`, `two-links-bbr`. */
  id: string;
  /** The table's first column. */
  label: string;
  links: WanLinkSpec[];
}

function percent(loss: number): string {
  return `${Number((loss * 100).toPrecision(3))}%`;
}

export function matrixRows(): WanRow[] {
  const rows: WanRow[] = [];
  for (const rttMs of MATRIX_RTTS_MS) {
    for (const loss of MATRIX_LOSSES) {
      for (const congestion of CONGESTION_CONTROLS) {
        rows.push({
          id: `rtt${rttMs}-loss${percent(loss)}-${congestion}`,
          label: `${rttMs} ms, ${loss === 0 ? "0" : percent(loss)}, ${congestion}`,
          links: [{ mbit: MATRIX_MBIT, rttMs, loss, congestion }],
        });
      }
    }
  }
  for (const congestion of CONGESTION_CONTROLS) {
    rows.push({
      id: `two-links-${congestion}`,
      label: `2 links: ${TWO_LINKS.map((link) => `${link.mbit} Mbit/s ${link.rttMs} ms`).join(" + ")}, ${congestion}`,
      links: TWO_LINKS.map((link) => ({ ...link, congestion })),
    });
  }
  return rows;
}

/** The rows whose id matches `filter` (a regular expression; all rows when undefined or empty). */
export function selectRows(rows: readonly WanRow[], filter: string | undefined): WanRow[] {
  if (filter === undefined || filter === "") return [...rows];
  let pattern: RegExp;
  try {
    pattern = new RegExp(filter);
  } catch (error) {
    throw new BenchError(`BENCH_WAN_ROWS=${filter}: not a regular expression (${(error as Error).message})`);
  }
  const chosen = rows.filter((row) => pattern.test(row.id));
  if (chosen.length === 0) throw new BenchError(`BENCH_WAN_ROWS=${filter} matches no row; rows are ${rows.map((row) => row.id).join(", ")}`);
  return chosen;
}

/** One timed transfer: what arrived, over how long since the sender started, and whether the cap ended it. */
export interface ToolRun {
  bytes: number;
  seconds: number;
  capped: boolean;
}

/** A tool's figure for a row: the median rate of its runs; capped when any run was; or why it failed. */
export type ToolFigure = { bytesPerSecond: number; capped: boolean } | { failed: string };

export function summariseRuns(runs: readonly ToolRun[]): ToolFigure {
  if (runs.length === 0) return { failed: "no run" };
  return { bytesPerSecond: median(runs.map((run) => run.bytes / run.seconds)), capped: runs.some((run) => run.capped) };
}

export interface RowResult {
  row: WanRow;
  /** The links' summed rate, in bytes per second. */
  linkBytesPerSecond: number;
  netcat: ToolFigure;
  iperf3: ToolFigure;
  viamillipede: ToolFigure;
}

function rate(figure: ToolFigure): number | undefined {
  return "failed" in figure ? undefined : figure.bytesPerSecond;
}

/** `value` with two decimals, or three rounded down when two would round it up to the `threshold` it missed. */
function short(value: number, threshold: number): string {
  return value.toFixed(2) === threshold.toFixed(2) ? (Math.floor(value * 1000) / 1000).toFixed(3) : value.toFixed(2);
}

/**
 * Issue 16's targets for one row: never below netcat; then ≥ 0.85 of the link where iperf3 -P 16
 * reaches 0.85 of it, else at least iperf3 -P 16. A two-link row: ≥ 0.85 of the summed rate (its
 * netcat and iperf3 ran over the short link alone).
 */
export function judge(result: RowResult): { met: boolean; misses: string[] } {
  const vm = rate(result.viamillipede);
  if (vm === undefined) return { met: false, misses: ["viamillipede failed"] };
  const misses: string[] = [];
  const nc = rate(result.netcat);
  if (nc !== undefined && vm < nc) misses.push(`${short(vm / nc, 1)}x netcat < 1.0`);
  const ofLink = vm / result.linkBytesPerSecond;
  const iperf = rate(result.iperf3);
  if (result.row.links.length > 1 || iperf === undefined || iperf / result.linkBytesPerSecond >= LINK_TARGET) {
    if (ofLink < LINK_TARGET) misses.push(`${short(ofLink, LINK_TARGET)} of link < ${LINK_TARGET}`);
  } else if (vm < iperf) {
    misses.push(`${short(vm / iperf, 1)}x iperf3 < 1.0 (iperf3 reaches ${(iperf / result.linkBytesPerSecond).toFixed(2)} of link)`);
  }
  return { met: misses.length === 0, misses };
}

function cell(figure: ToolFigure): string {
  if ("failed" in figure) return "failed";
  return `${(figure.bytesPerSecond / MIB).toFixed(1)}${figure.capped ? " (capped)" : ""}`;
}

function ratio(numerator: ToolFigure, denominator: ToolFigure | number): string {
  const top = rate(numerator);
  const bottom = typeof denominator === "number" ? denominator : rate(denominator);
  if (top === undefined || bottom === undefined || bottom === 0) return "–";
  const value = top / bottom;
  return typeof denominator === "number" ? value.toFixed(2) : `${value < 10 ? value.toFixed(2) : value.toFixed(0)}x`;
}

/** A Markdown table, one line per row, that README can take as it is. Rates in MiB/s. */
export function table(results: readonly RowResult[]): string {
  const lines = [
    "| path (RTT, loss, congestion control) | link MiB/s | netcat | iperf3 -P 16 | viamillipede | vs netcat | vs iperf3 | vs link | target |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const result of results) {
    const { met, misses } = judge(result);
    lines.push(
      `| ${result.row.label} | ${(result.linkBytesPerSecond / MIB).toFixed(1)} | ${cell(result.netcat)} | ${cell(result.iperf3)} | ${cell(result.viamillipede)} | ` +
        `${ratio(result.viamillipede, result.netcat)} | ${ratio(result.viamillipede, result.iperf3)} | ${ratio(result.viamillipede, result.linkBytesPerSecond)} | ` +
        `${met ? "met" : `**not met**: ${misses.join("; ")}`} |`,
    );
  }
  return lines.join("\n");
}
