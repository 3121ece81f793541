/**
 * The loopback bench's report: runs → one summary per row, a table per section with the ratio
 * against that section's netcat row, and the verdict against issue 9's targets (printed plainly,
 * met or NOT met, the throughput ratios only at 1 GiB or more; the bench reports, it does not
 * fail on a miss).
 */
import { median } from "./common.ts";
import type { Row, Section } from "./loopback-rows.ts";

const MIB = 1 << 20;
const GIB = 1 << 30;

/** Issue 9: default settings, file → /dev/null, at least netcat's throughput in the same run. */
const TARGET_VS_NETCAT = 1.0;
/** Issue 9: the same through pipes, at least this share of netcat through the same pipes. */
const TARGET_PIPES_VS_NETCAT = 0.9;
/** Issue 9: peak RSS of each end at default settings. */
const TARGET_RSS_MIB = 256;

export interface RunResult {
  seconds: number;
  /** user + sys of both ends (with their pipeline members). */
  cpuSeconds: number | undefined;
  rxRssBytes: number | undefined;
  txRssBytes: number | undefined;
}

export interface Summary {
  row: Row;
  /** MiB/s at the median wall time, and every run's MiB/s. */
  rate: number;
  rates: number[];
  seconds: number;
  cpuSeconds: number | undefined;
  /** Peaks over the runs. */
  rxRssBytes: number | undefined;
  txRssBytes: number | undefined;
}

function mibPerS(bytes: number, seconds: number): number {
  return bytes / MIB / seconds;
}

function defined<T>(values: (T | undefined)[]): T[] {
  return values.filter((v): v is T => v !== undefined);
}

function peak(values: (number | undefined)[]): number | undefined {
  const known = defined(values);
  return known.length ? Math.max(...known) : undefined;
}

export function summarise(row: Row, runs: RunResult[], bytes: number): Summary {
  const seconds = median(runs.map((r) => r.seconds));
  const cpus = defined(runs.map((r) => r.cpuSeconds));
  return {
    row,
    rate: mibPerS(bytes, seconds),
    rates: runs.map((r) => mibPerS(bytes, r.seconds)),
    seconds,
    cpuSeconds: cpus.length ? median(cpus) : undefined,
    rxRssBytes: peak(runs.map((r) => r.rxRssBytes)),
    txRssBytes: peak(runs.map((r) => r.txRssBytes)),
  };
}

export function runRate(bytes: number, run: RunResult): number {
  return mibPerS(bytes, run.seconds);
}

// ---- tables -----------------------------------------------------------------------------

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

function mib(bytes: number | undefined): string {
  return bytes === undefined ? "n/a" : (bytes / MIB).toFixed(0);
}

function cpuPerGib(summary: Summary, bytes: number): number | undefined {
  return summary.cpuSeconds === undefined ? undefined : summary.cpuSeconds / (bytes / GIB);
}

function baselineOf(summaries: Summary[], section: Section): Summary | undefined {
  return summaries.find((s) => s.row.section === section && s.row.role === "netcat");
}

function defaultOf(summaries: Summary[], section: Section): Summary | undefined {
  return summaries.find((s) => s.row.section === section && s.row.role === "default");
}

/** One section's table; the ratio is against that section's netcat row (n/a when it did not run). */
export function sectionTable(summaries: Summary[], section: Section, bytes: number): string {
  const own = summaries.filter((s) => s.row.section === section);
  const netcat = baselineOf(summaries, section);
  const rows = own.map((s) => {
    const perGib = cpuPerGib(s, bytes);
    return [
      s.row.name,
      s.rate.toFixed(0),
      `${Math.min(...s.rates).toFixed(0)}–${Math.max(...s.rates).toFixed(0)}`,
      s.seconds.toFixed(2),
      s.cpuSeconds === undefined ? "n/a" : s.cpuSeconds.toFixed(2),
      perGib === undefined ? "n/a" : perGib.toFixed(2),
      mib(s.rxRssBytes),
      mib(s.txRssBytes),
      netcat === undefined ? "n/a" : `${(s.rate / netcat.rate).toFixed(2)}x`,
    ];
  });
  return table(["tool", "MiB/s", "range", "wall s", "CPU s", "CPU s/GiB", "rx RSS MiB", "tx RSS MiB", "vs netcat"], rows);
}

// ---- verdict ----------------------------------------------------------------------------

function judged(met: boolean): string {
  return met ? "met" : "NOT met";
}

/**
 * The throughput targets are for 1 GiB: on less, process start-up dominates
 * (the CI smoke run's 64 MiB), so a ratio there is printed but not judged.
 */
function ratioLine(label: string, subject: Summary | undefined, netcat: Summary | undefined, target: number, bytes: number): string {
  if (subject === undefined || netcat === undefined) {
    return `${label}: not measured (${subject === undefined ? "the default row" : "the netcat row"} did not run)`;
  }
  const ratio = subject.rate / netcat.rate;
  return `${label}: ${ratio.toFixed(2)}x (${subject.rate.toFixed(0)} vs ${netcat.rate.toFixed(0)} MiB/s, target ≥ ${target.toFixed(1)}) ${bytes >= GIB ? judged(ratio >= target) : "not judged below 1 GiB"}`;
}

function rssLine(subjects: Summary[]): string {
  const rx = peak(subjects.map((s) => s.rxRssBytes));
  const tx = peak(subjects.map((s) => s.txRssBytes));
  if (rx === undefined || tx === undefined) return "peak RSS at default settings: not measured (the default rows did not run, or no rusage)";
  const where = subjects.map((s) => s.row.section).join(" and ");
  const met = rx <= TARGET_RSS_MIB * MIB && tx <= TARGET_RSS_MIB * MIB;
  return `peak RSS at default settings (${where}): rx ${mib(rx)} / tx ${mib(tx)} MiB (target ≤ ${TARGET_RSS_MIB} each) ${judged(met)}`;
}

function cpuLine(label: string, subject: Summary | undefined, netcat: Summary | undefined, bytes: number): string {
  const ours = subject && cpuPerGib(subject, bytes);
  const theirs = netcat && cpuPerGib(netcat, bytes);
  if (ours === undefined || theirs === undefined) return `${label}: not measured`;
  return `${label}: viamillipede ${ours.toFixed(2)} s/GiB, netcat ${theirs.toFixed(2)} s/GiB (${(ours / theirs).toFixed(1)}x; no target, reported)`;
}

/** The targets, one line each. */
export function verdict(summaries: Summary[], bytes: number): string[] {
  const defaults = defined([defaultOf(summaries, "file"), defaultOf(summaries, "pipes")]);
  return [
    ratioLine("default vs netcat", defaultOf(summaries, "file"), baselineOf(summaries, "file"), TARGET_VS_NETCAT, bytes),
    ratioLine("pipes: default vs netcat through pipes", defaultOf(summaries, "pipes"), baselineOf(summaries, "pipes"), TARGET_PIPES_VS_NETCAT, bytes),
    rssLine(defaults),
    cpuLine("CPU per GiB, default", defaultOf(summaries, "file"), baselineOf(summaries, "file"), bytes),
    cpuLine("CPU per GiB, default through pipes", defaultOf(summaries, "pipes"), baselineOf(summaries, "pipes"), bytes),
  ];
}

/** The feature rows against plain viamillipede, when they all ran. */
export function featuresLine(summaries: Summary[]): string | undefined {
  const rate = (name: string): number | undefined => summaries.find((s) => s.row.name === name)?.rate;
  const plain = defaultOf(summaries, "file")?.rate;
  const encrypt = rate("viamillipede encrypt");
  const zstdRandom = rate("viamillipede compress zstd (random)");
  const zstdText = rate("viamillipede compress zstd (text)");
  const plainText = rate("viamillipede plain (text)");
  if (plain === undefined || encrypt === undefined || zstdRandom === undefined || zstdText === undefined || plainText === undefined) return undefined;
  return (
    `encrypt ${encrypt.toFixed(0)} MiB/s = ${(encrypt / plain).toFixed(2)}x default; ` +
    `compress zstd: random ${zstdRandom.toFixed(0)} MiB/s, text ${zstdText.toFixed(0)} MiB/s (plain on text ${plainText.toFixed(0)} MiB/s)`
  );
}
