/**
 * The citty command: name, version and description, the flag schema, and a
 * `run` that turns the raw command line into an Invocation.
 *
 * citty's own parser and runMain are not used for the arguments themselves:
 * its parser keeps only the last of a repeated flag (`--tx a:1 --tx b:1`),
 * accepts unknown flags silently and cannot read the keyword grammar; runMain
 * calls process.exit and prints usage to stdout on errors. So `run` hands the
 * raw words to our keyword parser, --help/--version follow citty's built-in
 * flag names, and the caller (main.ts) decides what is printed and the exit status.
 */
import { defineCommand, runCommand } from "citty";
import pkg from "../../package.json";
import { EXIT_CODES, VmError } from "../errors.ts";
import type { Invocation } from "../options.ts";
import { flagHint, flagNames, FLAG_ARGS, KEYWORD_TABLE, type HelpSection, type KeywordEntry } from "./keyword-table.ts";
import { parseArguments } from "./keywords.ts";

export const DESCRIPTION = "RAID for TCP: one pipe over many TCP connections";

export const command = defineCommand({
  meta: { name: pkg.name, version: pkg.version, description: DESCRIPTION },
  args: FLAG_ARGS,
  run: ({ rawArgs }): Invocation => parseArguments(rawArgs),
});

/**
 * Runs the command over `argv` (without the program name) and returns what
 * to do. Throws VmError("usage") for a bad command line.
 */
export async function parseCommandLine(argv: readonly string[]): Promise<Invocation> {
  const { result } = await runCommand(command, { rawArgs: [...argv] });
  return result as Invocation;
}

/**
 * citty's built-in flags. `--help`/`-h` anywhere on the line prints the help
 * (asking for help is never a mistake). `--version`/`-v` only on its own:
 * with other words it is a usage error that says so, not the version with a
 * transfer silently not run (`-v` is not "verbose" either, and is told so).
 */
export function builtinRequest(argv: readonly string[]): "help" | "version" | undefined {
  if (argv.some((word) => word === "--help" || word === "-h")) return "help";
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) return "version";
  if (argv.some((word) => word === "--version" || word.startsWith("--version="))) {
    throw new VmError("usage", `--version takes no value and no other arguments: run '${pkg.name} --version' on its own`);
  }
  if (argv.includes("-v")) {
    throw new VmError("usage", `-v means --version and takes no other arguments; for more log lines say 'verbose N' or '--verbose N'`);
  }
  return undefined;
}

export function versionText(): string {
  return `${pkg.version}\n`;
}

/** The help's width: every line fits an 80-column terminal with room to spare. */
const HELP_WIDTH = 78;
/** Where a help row's text starts, after two spaces and the usage column. */
const HELP_TEXT_COLUMN = 21;

/** Words into lines of at most HELP_WIDTH characters: the first after `first`, the rest after `indent` spaces. */
function wrapWords(words: readonly string[], first: string, indent: number, separator = " "): string {
  const lines: string[] = [];
  let line = first;
  let fresh = true;
  for (const word of words) {
    if (!fresh && line.length + separator.length + word.length > HELP_WIDTH) {
      lines.push(line);
      line = " ".repeat(indent) + word;
    } else {
      line = fresh ? line + word : line + separator + word;
    }
    fresh = false;
  }
  lines.push(line);
  return lines.join("\n");
}

/** One help row: `usage` in the left column, `text` wrapped beside it (further right when the usage is wide). */
function helpRow(usage: string, text: string): string {
  const left = 2 + usage.length;
  const column = left < HELP_TEXT_COLUMN ? HELP_TEXT_COLUMN : left + 3;
  return wrapWords(text.split(" "), `  ${usage}`.padEnd(column), column);
}

/** A keyword's help row: its usage, the one end it is for (rx and tx themselves name it), what it does, its other spelling. */
function keywordRow(entry: KeywordEntry): string {
  const usage = entry.usage ?? (entry.value === undefined ? entry.name : `${entry.name} ${entry.value.hint}`);
  const role = (entry.roles === "tx" || entry.roles === "rx") && entry.name !== entry.roles ? `${entry.roles}: ` : "";
  const alias = entry.alias === undefined ? "" : ` (also spelt ${entry.alias})`;
  return helpRow(usage, `${role}${entry.help}${alias}`);
}

/** The rows of one help section, in table order. */
function sectionRows(section: HelpSection): string {
  return KEYWORD_TABLE.filter((entry) => entry.section === section)
    .map(keywordRow)
    .join("\n");
}

/** `--rx PORT, --port PORT   --tx HOST:PORT   ...`: every flag with its value. */
function flagRows(): string {
  const items = KEYWORD_TABLE.map((entry) => {
    const hint = flagHint(entry);
    return flagNames(entry)
      .map((flag) => (hint === undefined ? `--${flag}` : `--${flag} ${hint}`))
      .join(", ");
  });
  return wrapWords(items, "  ", 2, "   ");
}

/** Joins words with ", " into lines of at most `width` characters, each indented. */
function wrapList(words: readonly string[], indent: string, width: number): string {
  const lines: string[] = [];
  let line = "";
  for (const [index, word] of words.entries()) {
    const piece = index < words.length - 1 ? `${word},` : word;
    if (line !== "" && indent.length + line.length + 1 + piece.length > width) {
      lines.push(indent + line);
      line = piece;
    } else {
      line = line === "" ? piece : `${line} ${piece}`;
    }
  }
  if (line !== "") lines.push(indent + line);
  return lines.join("\n");
}

/** From EXIT_CODES, so the help cannot drift from what main returns. */
const EXIT_STATUSES = wrapList(
  (
    [
      [0, "success"],
      ...Object.entries(EXIT_CODES).map(([name, code]): [number, string] => [code, name]),
      [129, "hung up (SIGHUP)"],
      [143, "terminated (SIGTERM)"],
    ] satisfies [number, string][]
  )
    .sort(([a], [b]) => a - b)
    .map(([code, name]) => `${code} ${name}`),
  "  ",
  HELP_WIDTH,
);

/** The --help text: every keyword of KEYWORD_TABLE, its flag twin, and examples. */
export function helpText(): string {
  const name = pkg.name;
  return `${name} ${pkg.version}: ${DESCRIPTION}.
What tx reads from stdin, rx writes to stdout, in order.

Usage:
  ${name} rx PORT [KEYWORD...]
  ${name} tx HOST PORT [tx HOST PORT...] [KEYWORD...]
  ${name} rx PORT tx HOST PORT [KEYWORD...]    (full duplex)

Keywords (any order; numbers in decimal or 0x-hex). One option string can
serve both ends: rx alone checks the "tx:" keywords, then ignores them with a
warning; the "rx:" ones are an error on tx alone.
${sectionRows("keywords")}

Seeing the transfer (either end; all on stderr, never stdout):
${sectionRows("seeing")}
${helpRow("kill -USR1 PID", "print a status block (connections, links, rates); ^T (SIGINFO) does the same where the system has it")}
${helpRow("kill -USR2 PID", "step the verbosity: 0, 1, 5, 10, then 0 again")}

Full duplex and tunnels (rx and tx in one process):
${helpRow("rx PORT tx HOST PORT", "stdin goes to HOST PORT, what arrives on PORT goes to stdout; both directions at once")}
${sectionRows("duplex")}

Flags (the same options; --name VALUE or --name=VALUE; HOST:PORT takes an
IPv6 address in brackets, --tx [::1]:8834):
${flagRows()}
  -h, --help       show this help
  -v, --version    print the version (only on its own: with other arguments
                   it is a usage error)

Examples:
  ${name} rx 8834 verbose 5 > copy.img
  ${name} tx 127.0.0.1 8834 threads 8 < disk.img
  ${name} verbose 3 tx host 8834 threads 0x10 < disk.img
  zfs send tank@snap | ${name} tx host 8834 size 40G stats /tmp/send.json
  ${name} tx a.example 8834 tx b.example 8834 < disk.img
  ${name} rx 8834 bind ::1 checkphrase sesame checksums
  ${name} tx ::1 8834 checkphrase sesame patience 60
  ${name} rx --port 8834 --verbose 5
  ${name} --tx 192.0.2.7:8834 --threads 4 --patience 0
  zfs send tank@snap | ${name} tx backup.example 8834
  ${name} rx 8834 | zfs receive pool/copy
  ${name} rx 8834 prbs 0x1234 > /dev/null
  ${name} tx host 8834 prbs 0x1234 leglimit 500 ratelimit 100M
  echo hi | ${name} rx 4545 tx localhost 4545
  ${name} rx 7788 tx host2 9900 terminate 2222   # ssh -p 2222 localhost
  ${name} rx 9900 tx host1 7788 initiate localhost 22

Exit status:
${EXIT_STATUSES}
`;
}
