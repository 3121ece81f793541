/**
 * The loopback bench's rows: which tool, with which arguments, fed how. A row runs in one of two
 * sections, and the plumbing functions turn it into the receiver's and the sender's commands:
 *
 * - file:  `sender < FILE`, `receiver > /dev/null` (or > the verification file)
 * - pipes: `cat FILE | sender`, `receiver | cat > /dev/null`, each end one `bash -c` pipeline,
 *          so its CPU time adds up over both members and its peak RSS is the larger one's.
 */
import { join } from "node:path";
import type { Plumbing } from "./measured.ts";

export const HOST = "127.0.0.1";
export const ROOT = join(import.meta.dir, "..");
const ENTRY = join(ROOT, "src/cli/main.ts");

/** A point-to-point pipe: the receiver writes the stream to stdout, the sender reads stdin. */
export interface Tool {
  /** The receiver's argv; once it listens it prints a line on stderr that `ready` matches, port in group 1. */
  receiver: string[];
  ready: RegExp;
  sender(port: number): string[];
}

export type Section = "file" | "pipes";

export interface Row {
  /** Shown in the table and matched by BENCH_ONLY; unique. */
  name: string;
  section: Section;
  tool: Tool;
  /** The random (incompressible) file, or the compressible text one. */
  input: "random" | "text";
  /** viamillipede's output is checked by sha256 (untimed) before anything is timed. */
  verify: boolean;
  /** What the verdict looks for: each section's netcat row and viamillipede default row. */
  role?: "netcat" | "default";
}

// ---- tools ------------------------------------------------------------------------------

function netcat(): Tool {
  return {
    // -n: no DNS; -v: say "Listening on 127.0.0.1 PORT" once bound (port 0: the kernel picks).
    receiver: ["nc", "-l", "-n", "-v", HOST, "0"],
    ready: /Listening on \S+ (\d+)/,
    // -N: shut the socket down at end of input, so the receiver sees EOF and exits.
    sender: (port) => ["nc", "-N", "-n", HOST, String(port)],
  };
}

function socat(): Tool {
  return {
    // -u: one direction only, so each end exits at EOF without the 0.5 s half-close wait;
    // -d -d: the notice "listening on AF=2 127.0.0.1:PORT" (socat 1.7 and 1.8), port 0 picked by the kernel.
    receiver: ["socat", "-d", "-d", "-u", `TCP-LISTEN:0,bind=${HOST},reuseaddr`, "STDOUT"],
    ready: /listening on .*:(\d+)\s*$/m,
    sender: (port) => ["socat", "-u", "STDIN", `TCP:${HOST}:${port}`],
  };
}

function viamillipede(txArgs: string[], rxArgs: string[] = []): Tool {
  return {
    receiver: [process.execPath, ENTRY, "rx", "0", "bind", HOST, ...rxArgs],
    ready: /listening on port (\d+)/,
    sender: (port) => [process.execPath, ENTRY, "tx", HOST, String(port), ...txArgs],
  };
}

/** Why OpenBSD netcat cannot be used here, or undefined when it can. */
export function netcatUnavailable(): string | undefined {
  const nc = Bun.which("nc");
  if (nc === null) return "not installed (apt-get install netcat-openbsd)";
  const help = Bun.spawnSync([nc, "-h"], { stdout: "pipe", stderr: "pipe" });
  const text = help.stdout.toString() + help.stderr.toString();
  if (!text.includes("OpenBSD")) return `${nc} is not OpenBSD netcat (needs -N; apt-get install netcat-openbsd)`;
  return undefined;
}

export function socatUnavailable(): string | undefined {
  return Bun.which("socat") === null ? "not installed (apt-get install socat)" : undefined;
}

/**
 * The default row's name, from what the CLI's help says `threads` defaults to ("threads N …
 * (default auto)"), so the row stays true when the default changes. The help entry may wrap onto
 * lines indented past its keyword.
 */
export function defaultRowName(): string {
  const help = Bun.spawnSync([process.execPath, ENTRY, "--help"], { stdout: "pipe", stderr: "pipe" });
  const lines = (help.stdout.toString() + help.stderr.toString()).split("\n");
  const start = lines.findIndex((line) => /^\s*threads\b/.test(line));
  if (start < 0) return "viamillipede (default settings)";
  const indent = lines[start]!.search(/\S/);
  let entry = lines[start]!;
  for (const line of lines.slice(start + 1)) {
    if (line.search(/\S/) <= indent) break;
    entry += ` ${line.trim()}`;
  }
  const threads = entry.match(/\(default ([^)]+)\)/)?.[1];
  return threads === undefined ? "viamillipede (default settings)" : `viamillipede default (threads ${threads})`;
}

// ---- rows -------------------------------------------------------------------------------

export interface Available {
  netcat: boolean;
  socat: boolean;
  /** From defaultRowName(). */
  defaultName: string;
  /** A pre-shared key for the encrypt row. */
  keyFile: string;
}

/** Every row, in the order they run and print. */
export function allRows(have: Available): Row[] {
  const plain = (name: string, tool: Tool, extra: Partial<Row> = {}): Row => ({
    name,
    section: "file",
    tool,
    input: "random",
    verify: true,
    ...extra,
  });
  const baselines = (section: Section, prefix: string): Row[] => [
    ...(have.netcat ? [plain(`${prefix}netcat`, netcat(), { section, verify: false, role: "netcat" })] : []),
    ...(have.socat ? [plain(`${prefix}socat`, socat(), { section, verify: false })] : []),
  ];
  const key = ["key", have.keyFile];
  return [
    ...baselines("file", ""),
    plain(have.defaultName, viamillipede([]), { role: "default" }),
    ...["1", "4", "16", "auto"].map((n) => plain(`viamillipede threads ${n}`, viamillipede(["threads", n]))),
    plain("viamillipede encrypt", viamillipede([...key, "encrypt"], [...key, "encrypt"])),
    plain("viamillipede compress zstd (random)", viamillipede(["compress", "zstd"])),
    plain("viamillipede compress zstd (text)", viamillipede(["compress", "zstd"]), { input: "text" }),
    plain("viamillipede plain (text)", viamillipede([]), { input: "text" }),
    // The pipes section's names start "pipes: ", so BENCH_ONLY=pipes selects it.
    ...baselines("pipes", "pipes: "),
    plain(`pipes: ${have.defaultName}`, viamillipede([]), { section: "pipes", role: "default" }),
  ];
}

// ---- plumbing ---------------------------------------------------------------------------

// bash, not sh: Debian's dash has no pipefail, and a failure on either side of a pipe must fail the run.
// The paths travel as $0 and the tool's argv as "$@", so nothing is quoted by hand.
const RECEIVE_INTO_CAT = 'set -o pipefail; "$@" | cat > "$0"';
const SEND_FROM_CAT = 'set -o pipefail; cat -- "$0" | "$@"';

/** The receiver of `row`, writing into `output` (a file to verify) or /dev/null. */
export function receiverPlumbing(row: Row, output: string | undefined): Plumbing {
  if (row.section === "pipes") {
    return { cmd: ["bash", "-c", RECEIVE_INTO_CAT, output ?? "/dev/null", ...row.tool.receiver], stdin: "ignore", stdout: "ignore" };
  }
  return { cmd: row.tool.receiver, stdin: "ignore", stdout: output === undefined ? "ignore" : Bun.file(output) };
}

/** The sender of `row`, to `port`, reading `input`. */
export function senderPlumbing(row: Row, port: number, input: string): Plumbing {
  if (row.section === "pipes") {
    return { cmd: ["bash", "-c", SEND_FROM_CAT, input, ...row.tool.sender(port)], stdin: "ignore", stdout: "ignore" };
  }
  return { cmd: row.tool.sender(port), stdin: Bun.file(input), stdout: "ignore" };
}
