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
import {
  DEFAULT_PATIENCE_S,
  DEFAULT_TIMEOUT_S,
  DEFAULT_THREADS,
  MAX_THREADS,
  MAX_VERBOSE,
  MIN_THREADS,
  type Invocation,
} from "../options.ts";
import { FLAG_ARGS, MAX_CHECKPHRASE_BYTES, parseArguments } from "./keywords.ts";
import { AUTO_START_THREADS } from "../tx/thread-tuner.ts";

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
  78,
);

/** The --help text: every keyword, its flag twin, and examples. */
export function helpText(): string {
  const name = pkg.name;
  return `${name} ${pkg.version}: ${DESCRIPTION}.
What tx reads from stdin, rx writes to stdout, in order.

Usage:
  ${name} rx PORT [KEYWORD...]
  ${name} tx HOST PORT [tx HOST PORT...] [KEYWORD...]
  ${name} rx PORT tx HOST PORT [KEYWORD...]    (full duplex)

Keywords (any order; numbers in decimal or 0x-hex):
  rx PORT            receive on PORT and write the stream to stdout;
                     rx 0 picks a free port and prints it
  tx HOST PORT       send stdin to HOST PORT; repeat for more addresses of
                     the receiver, in order of preference (IPv6: tx ::1 8834)
  threads N|auto     tx: connections to keep, ${MIN_THREADS}..${MAX_THREADS}, or auto: start with
                     ${AUTO_START_THREADS} and add more while they raise throughput (default ${DEFAULT_THREADS})
  verbose N          0..${MAX_VERBOSE} (default 0): 0 warnings and errors, 1-4 info,
                     5-9 debug, 10+ trace; the log goes to stderr
  checkphrase WORD   1..${MAX_CHECKPHRASE_BYTES} bytes both ends must share (default none)
  checksums          accepted for compatibility; checksums are always on
  key FILE           a pre-shared key (the file's bytes, 16..4096; make one with
                     head -c 32 /dev/urandom): every connection proves it both
                     ways (or VIAMILLIPEDE_KEY_FILE=FILE, VIAMILLIPEDE_KEY=TEXT)
  encrypt            seal every foot with AES-256-GCM (needs a key); rx:
                     refuse transmitters that do not encrypt
  compress ALG[:N]   tx: compress each foot with zstd (level 1..22, default 3)
                     or gzip (1..9, default 6); a foot that does not shrink
                     goes raw
  bind ADDRESS       rx: listen on ADDRESS only (default every address)
  patience SECONDS   give up after SECONDS with no connection up (tx keeps
                     dialling, rx keeps its place); 0 = forever (default ${DEFAULT_PATIENCE_S})
  timeout SECONDS    a connection that hears nothing (or cannot write) this
                     long is dead and its feet go elsewhere (default ${DEFAULT_TIMEOUT_S})
  chaos N            rehearse failures: every N feet, close, reset or stall a
                     connection in turn; the output must stay identical
  prbs SEED          tx: send the pseudorandom stream of a 16-bit SEED instead
                     of stdin (endless without leglimit); rx: check that stream
                     (a mismatch fails naming the foot) and still write it
  leglimit N         tx: stop after N feet (N x 2 MiB of input)
  delayus N          tx: wait N microseconds before each foot
  ratelimit RATE     tx: read the input at most RATE bytes/s, all connections
                     together (50M = 50 MiB/s; K, M, G, T are powers of 1024)
  charmode           tx: send what the input has at once instead of waiting
                     for a full foot (interactive use)

Seeing the transfer (either end; all on stderr, never stdout):
  size BYTES         the expected stream size, for percent done and an ETA
                     (e.g. from zfs send -nP; K, M, G, T are powers of 1024)
  progress           draw the live progress line even when stderr is not a
                     terminal (it is drawn on a terminal by default)
  quiet              print nothing but errors: no progress, warnings, summary
  stats FILE         at the end, write the figures as JSON to FILE
  kill -USR1 PID     print a status block (connections, links, rates); ^T
                     (SIGINFO) does the same where the system has it
  kill -USR2 PID     step the verbosity: 0, 1, 5, 10, then 0 again

Full duplex and tunnels (rx and tx in one process):
  rx PORT tx HOST PORT   stdin goes to HOST PORT, what arrives on PORT goes
                         to stdout; both directions at once
  terminate PORT     accept one TCP connection on loopback PORT (0: pick one
                     and print it) and carry it over the pipe
  initiate HOST PORT the other side: connect to the service at HOST PORT once
                     the pipe is up; the tunnel ends when both sides close

Flags (the same options; --name VALUE or --name=VALUE):
  --rx PORT, --port PORT   --threads N   --verbose N   --checkphrase WORD
  --tx HOST:PORT (repeatable; IPv6 in brackets: --tx [::1]:8834)
  --key FILE   --encrypt   --compress ALG[:N]
  --checksums   --bind ADDRESS   --patience SECONDS   --timeout SECONDS
  --chaos N   --prbs SEED   --leglimit N   --delayus N   --ratelimit RATE
  --charmode   --terminate PORT   --initiate HOST:PORT   --size BYTES
  --progress   --quiet   --stats FILE
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
