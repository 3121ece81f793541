/**
 * The status board: where both ends' figures meet the user. Roles register a
 * figures source; the board samples it for rates, draws the live progress
 * line on a terminal, prints the status block on demand (SIGUSR1/SIGINFO),
 * and at the end the one-line summary and the `stats FILE` JSON.
 *
 * Everything goes to the `write` it is given (stderr): never stdout. The
 * progress line is fitted to the terminal's width, read at every redraw so
 * that it follows resizes. Lines stderr could not take (src/stderr.ts) are
 * counted in the stats file and, should stderr take text again, after the
 * summaries.
 */
import { RateMeter } from "./rate-meter.ts";
import type { FiguresSource, TransferFigures } from "./figures.ts";
import { progressLines, statusBlock, summaryLine, type Snapshot } from "./format.ts";
import { statsDocument, writeStatsFile } from "./stats.ts";
import { processStderr, stderrWriter } from "../stderr.ts";

/** How often rates are sampled and the progress line redrawn. */
export const PROGRESS_INTERVAL_MS = 250;
/** Current rates look back this many ticks (two seconds). */
const RATE_SPAN_TICKS = 2_000 / PROGRESS_INTERVAL_MS;

export interface BoardOptions {
  /** "auto": a progress line when stderr is a terminal. */
  progress: "auto" | "on" | "off";
  /** Nothing but errors: no progress, no summary. */
  quiet: boolean;
  expectedBytes: number | null;
  statsFile: string | null;
  isTerminal: boolean;
  write(text: string): void;
  now?: () => number;
  /** The terminal's width in columns, undefined when not a terminal (default: stderr's, which follows resizes). */
  columns?: () => number | undefined;
  /** How many lines `write` has dropped so far (default: the process's stderr writer's count). */
  droppedLines?: () => number;
}

interface Entry {
  role: "tx" | "rx";
  source: FiguresSource;
  /** The current rate, fed the running byte count every tick. */
  rate: RateMeter;
  lastTickMs: number;
  final: TransferFigures | undefined;
  finalMs: number;
}

export class StatusBoard {
  private readonly entries: Entry[] = [];
  private readonly now: () => number;
  private readonly columns: () => number | undefined;
  private readonly droppedLines: () => number;
  private timer: ReturnType<typeof setInterval> | undefined;
  private drawn = false;
  private readonly wallStart = new Date();

  constructor(private readonly options: BoardOptions) {
    this.now = options.now ?? (() => performance.now());
    this.columns = options.columns ?? (() => processStderr().columns);
    this.droppedLines = options.droppedLines ?? (() => stderrWriter.droppedLines);
  }

  get showsProgress(): boolean {
    if (this.options.quiet || this.options.progress === "off") return false;
    return this.options.progress === "on" || this.options.isTerminal;
  }

  /** A role's figures (the clock in them is performance.now(), as `now` must be). */
  add(role: "tx" | "rx", source: FiguresSource): void {
    this.entries.push({ role, source, rate: new RateMeter(RATE_SPAN_TICKS), lastTickMs: this.now(), final: undefined, finalMs: 0 });
    this.timer ??= setInterval(() => this.tick(), PROGRESS_INTERVAL_MS);
    this.timer.unref?.();
  }

  /** The entry's transfer is over: its figures stop moving. */
  private finish(entry: Entry): void {
    entry.final = entry.source();
    entry.finalMs = this.now();
  }

  private figuresOf(entry: Entry): TransferFigures {
    return entry.final ?? entry.source();
  }

  private snapshot(entry: Entry): Snapshot {
    const figures = this.figuresOf(entry);
    const now = entry.final === undefined ? this.now() : entry.finalMs;
    const elapsedSeconds = figures.startedMs === null ? 0 : Math.max(0, now - figures.startedMs) / 1000;
    return {
      figures,
      elapsedSeconds,
      bytesPerSecond: entry.rate.bytesPerSecond,
      averageBytesPerSecond: elapsedSeconds > 0 ? figures.bytes / elapsedSeconds : 0,
      expectedBytes: this.options.expectedBytes,
    };
  }

  private tick(): void {
    const now = this.now();
    for (const entry of this.entries) {
      if (entry.final !== undefined) continue;
      entry.rate.advanceTo(entry.source().bytes);
      entry.rate.tick(now - entry.lastTickMs);
      entry.lastTickMs = now;
    }
    if (this.showsProgress) this.draw();
  }

  private draw(): void {
    if (this.entries.length === 0) return;
    const line = progressLines(
      this.entries.map((entry) => this.snapshot(entry)),
      this.columns(),
    );
    // \r and "erase line": the line is redrawn in place.
    this.options.write(`\r\x1b[2K${line}`);
    this.drawn = true;
  }

  /** Moves past the progress line so other output starts on a fresh line (it is redrawn at the next tick). */
  endLine(): void {
    if (!this.drawn) return;
    this.options.write("\n");
    this.drawn = false;
  }

  /** SIGUSR1 / SIGINFO: one status block per role, on its own lines. */
  printStatus(): void {
    this.endLine();
    if (this.entries.length === 0) {
      this.options.write("viamillipede status: not started yet\n");
      return;
    }
    for (const entry of this.entries) this.options.write(statusBlock(this.snapshot(entry)));
  }

  /**
   * The run is over: the progress line is drawn a last time and left in
   * place, the summaries follow (unless quiet, or after a failure), then the
   * stats file. A stats file that cannot be written is an error of its own.
   */
  close(outcome: { exitCode: number; error: string | null }): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const entry of this.entries) if (entry.final === undefined) this.finish(entry);
    if (this.showsProgress && this.entries.length > 0) this.draw();
    this.endLine();
    if (!this.options.quiet && outcome.exitCode === 0) {
      for (const entry of this.entries) this.options.write(`${summaryLine(this.snapshot(entry))}\n`);
      const dropped = this.droppedLines();
      if (dropped > 0) this.options.write(`viamillipede: ${dropped} lines could not be written to stderr and were dropped\n`);
    }
    if (this.options.statsFile !== null) {
      const document = statsDocument(
        this.entries.map((entry) => this.snapshot(entry)),
        outcome,
        this.wallStart,
        this.droppedLines(),
      );
      writeStatsFile(this.options.statsFile, `${JSON.stringify(document, null, 2)}\n`);
    }
  }
}
