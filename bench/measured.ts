/**
 * One benchmarked process: spawned (under GNU time when we read rusage that way), its stderr
 * collected and watched for a readiness line, its CPU time and peak RSS read after it exits,
 * and, when it is stuck, it and everything it started ended by pid.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BenchError } from "./common.ts";
import { descendants } from "../test/support/spawn.ts";

export const TIME_BIN = "/usr/bin/time";

/** Where CPU time and peak RSS come from: GNU time's report, or Bun's resourceUsage(). */
export type RusageSource = "time" | "bun";

export interface Usage {
  /** user + sys, of the process and every child it waited for. */
  cpuSeconds: number;
  /** The largest single process among them (wait4's ru_maxrss is a maximum, not a sum). */
  maxRssBytes: number;
}

export interface Outcome {
  exitCode: number | null;
  signal: string | number | null;
  stderr: string;
  usage: Usage | undefined;
}

/** How a process is started: its argv and where its stdin and stdout go. */
export interface Plumbing {
  cmd: string[];
  stdin: "ignore" | Bun.BunFile;
  stdout: "ignore" | Bun.BunFile;
}

export class Measured {
  readonly proc: Bun.Subprocess<"ignore" | Bun.BunFile, "ignore" | Bun.BunFile, "pipe">;
  private stderrText = "";
  private readonly stderrDone: Promise<void>;
  private readonly listeners = new Set<() => void>();
  private readonly timeFile: string | undefined;

  constructor(
    readonly label: string,
    plumbing: Plumbing,
    rusage: RusageSource,
    scratch: string,
    cwd: string,
  ) {
    let cmd = plumbing.cmd;
    if (rusage === "time") {
      this.timeFile = join(scratch, `time-${Math.random().toString(36).slice(2)}`);
      cmd = [TIME_BIN, "-o", this.timeFile, "-f", "%U %S %M", ...cmd];
    }
    this.proc = Bun.spawn(cmd, { cwd, stdin: plumbing.stdin, stdout: plumbing.stdout, stderr: "pipe" });
    this.stderrDone = this.collectStderr();
  }

  private async collectStderr(): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of this.proc.stderr) {
      this.stderrText += decoder.decode(chunk, { stream: true });
      for (const notify of this.listeners) notify();
    }
    this.stderrText += decoder.decode();
    for (const notify of this.listeners) notify();
  }

  private get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Resolves with the first match of `pattern` on stderr; rejects if the process exits first or on timeout. */
  waitForStderr(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new BenchError(`${this.label}: not ready after ${timeoutMs} ms`)), timeoutMs);
      const finish = (error?: Error, match?: RegExpMatchArray): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (match) resolve(match);
        else reject(error);
      };
      const check = (): void => {
        const match = this.stderrText.match(pattern);
        if (match) finish(undefined, match);
      };
      this.listeners.add(check);
      check();
      void this.proc.exited.then(async () => {
        await this.stderrDone;
        check();
        if (this.listeners.has(check)) {
          finish(new BenchError(`${this.label} exited (${this.proc.exitCode}) before it was ready: ${oneLine(this.stderrText)}`));
        }
      });
    });
  }

  /**
   * Ends this process and everything it started, by pid. A pipeline (`bash -c 'cat F | nc …'`)
   * would otherwise leave its members running after bash is gone. Under GNU time, time itself is
   * spared: it exits when its child does, and still writes its figures.
   */
  kill(): void {
    if (!this.running) return;
    const tree = descendants(this.proc.pid);
    const targets = this.timeFile !== undefined && tree.length > 0 ? tree : [this.proc.pid, ...tree];
    for (const pid of targets) {
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
  }

  async outcome(): Promise<Outcome> {
    await this.proc.exited;
    await this.stderrDone;
    let usage: Usage | undefined;
    let stderr = this.stderrText;
    if (this.timeFile !== undefined) {
      // GNU time writes "Command exited with non-zero status N" etc. before the format line.
      const lines = existsSync(this.timeFile) ? readFileSync(this.timeFile, "utf8").trim().split("\n") : [];
      const fields = (lines.at(-1) ?? "").trim().split(/\s+/).map(Number);
      if (fields.length === 3 && fields.every(Number.isFinite)) {
        const [user, sys, rssKiB] = fields as [number, number, number];
        usage = { cpuSeconds: user + sys, maxRssBytes: rssKiB * 1024 };
      }
      if (lines.length > 1) stderr += lines.slice(0, -1).join("\n");
    } else {
      const ru = this.proc.resourceUsage();
      if (ru) usage = { cpuSeconds: Number(ru.cpuTime.user + ru.cpuTime.system) / 1e6, maxRssBytes: ru.maxRSS };
    }
    return { exitCode: this.proc.exitCode, signal: this.proc.signalCode, stderr, usage };
  }
}

export function oneLine(text: string): string {
  const flat = text.trim().replace(/\s*\n\s*/g, " | ");
  return flat === "" ? "(no stderr)" : flat.slice(0, 600);
}
