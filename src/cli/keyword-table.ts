/**
 * Every keyword, once: its name and spellings, its value and how that value
 * is read, which end uses it, the option field it sets, and its help line.
 * The parser (keywords.ts), the flag form, the role checks and `--help`
 * (command.ts) are all driven from KEYWORD_TABLE; what an entry is, in
 * keyword-entry.ts; the value readers are in values.ts. Pure data.
 *
 * Adding a keyword is one entry here (plus its field in options.ts when it
 * sets a new one): the flag `--name` comes with it, its value lands in
 * `field` of the options of each role it is for, and the help lists it in
 * its section. Only a rule that joins several keywords (quiet against
 * progress, prbs against a tunnel) is written in parseArguments.
 */
import type { ArgsDef } from "citty";
import {
  COMPRESSION_LEVELS,
  DEFAULT_BUFFER_BYTES,
  DEFAULT_FOOT_BYTES,
  DEFAULT_PATIENCE_S,
  DEFAULT_THREADS,
  DEFAULT_TIMEOUT_S,
  MAX_CHAOS_EVERY,
  MAX_DELAY_US,
  DEFAULT_SESSIONS,
  MAX_LEG_LIMIT,
  MAX_SESSIONS,
  MAX_THREADS,
  MAX_TIMEOUT_S,
  MAX_VERBOSE,
  MIN_THREADS,
  MIN_TIMEOUT_S,
} from "../options.ts";
import { labelProblem } from "../protocol/messages.ts";
import { MAX_CHECKPHRASE_BYTES, MAX_LABEL_BYTES } from "../protocol/xdr.generated.ts";
import { MAX_KEY_BYTES, MIN_KEY_BYTES } from "../protocol/keys.ts";
import { parseCongestionName } from "../net/congestion.ts";
import { MAX_PRBS_SEED } from "../tx/prbs.ts";
import { AUTO_MAX_THREADS, AUTO_START_THREADS } from "../tx/tuner-settings.ts";
import { LONG_PATH_FOOT_BYTES, LONG_PATH_ROUND_TRIP_MS } from "../tx/foot-size.ts";
import {
  ANY_PORT,
  file,
  hostAndPort,
  MAX_PATIENCE_S,
  MAX_PORT,
  NUMBER_TEXT,
  numberIn,
  onlyTunnel,
  parseBindAddress,
  parseBuffer,
  parseCheckphrase,
  parseCompression,
  parseFoot,
  parseNumber,
  parseRate,
  parseSize,
  usage,
} from "./values.ts";
import { flagHint, keyword, type KeywordEntry } from "./keyword-entry.ts";

export { flagHint, flagNames, type Fields, type HelpSection, type KeywordEntry, type KeywordRoles } from "./keyword-entry.ts";

const FOOT_MIB = DEFAULT_FOOT_BYTES / 1024 ** 2;
const ZSTD = COMPRESSION_LEVELS.zstd;
const GZIP = COMPRESSION_LEVELS.gzip;

/** In the order `--help` and "unknown keyword" list them. */
export const KEYWORD_TABLE: readonly KeywordEntry[] = [
  keyword({
    name: "rx",
    flagAlias: "port",
    roles: "rx",
    value: {
      hint: "PORT",
      example: "5",
      read: (r) => {
        const port = r.optional();
        // A bare `rx` (before flags) only names the role; `--port` supplies the port.
        if (port === undefined) return undefined;
        if (r.repeated) throw usage("rx PORT is given twice; one receiver listens on one port");
        return parseNumber(port, "rx port", ANY_PORT, MAX_PORT);
      },
    },
    field: "port",
    section: "keywords",
    help: "receive on PORT and write the stream to stdout; rx 0 picks a free port and prints it",
  }),
  keyword({
    name: "tx",
    roles: "tx",
    // A bare `tx` (before flags) only names the role; `--tx` supplies targets.
    value: { hint: "HOST PORT", hostPort: true, example: "h 9", read: (r) => { const host = r.optional(); return host === undefined ? undefined : [hostAndPort(r, host, 8834)]; } },
    field: "targets",
    again: (previous, next) => [...previous, ...next],
    section: "keywords",
    help: "send stdin to HOST PORT; repeat for more addresses of the receiver, in order of preference (IPv6: tx ::1 8834)",
  }),
  keyword({
    name: "threads",
    roles: "tx",
    value: {
      hint: "N|auto",
      example: "4",
      read: (r) => {
        const value = r.required("N");
        if (value === "auto") return value;
        if (!NUMBER_TEXT.test(value)) throw usage(`threads '${value}' is neither a number (${MIN_THREADS}..${MAX_THREADS}) nor auto`);
        return parseNumber(value, "threads", MIN_THREADS, MAX_THREADS);
      },
    },
    field: "threads",
    default: DEFAULT_THREADS,
    section: "keywords",
    help: `connections to keep, ${MIN_THREADS}..${MAX_THREADS}, or auto: start with ${AUTO_START_THREADS} and add more while they raise throughput, up to ${AUTO_MAX_THREADS} (default ${DEFAULT_THREADS})`,
  }),
  keyword({
    name: "verbose",
    roles: "both",
    value: { hint: "N", example: "3", read: numberIn(0, MAX_VERBOSE) },
    field: "verbose",
    default: 0,
    section: "keywords",
    help: `0..${MAX_VERBOSE} (default 0): 0 warnings and errors, 1-4 info, 5-9 debug, 10+ trace; the log goes to stderr`,
  }),
  keyword({
    name: "checkphrase",
    roles: "both",
    value: { hint: "WORD", example: "sesame", read: (r) => parseCheckphrase(r.required()) },
    field: "checkphrase",
    default: "",
    section: "keywords",
    help: `1..${MAX_CHECKPHRASE_BYTES} bytes both ends must share (default none)`,
  }),
  keyword({
    name: "checksums",
    alias: "checksum", // the original's README spells it so
    roles: "both",
    section: "keywords",
    help: "accepted for compatibility; checksums are always on",
  }),
  keyword({
    name: "key",
    roles: "both",
    value: { hint: "FILE", example: "/etc/viamillipede.key", read: file },
    field: "keyFile",
    section: "keywords",
    help: `a pre-shared key (the file's bytes, ${MIN_KEY_BYTES}..${MAX_KEY_BYTES}; make one with head -c 32 /dev/urandom): every connection proves it both ways (or VIAMILLIPEDE_KEY_FILE=FILE, VIAMILLIPEDE_KEY=TEXT)`,
  }),
  keyword({
    name: "encrypt",
    roles: "both",
    field: "encrypt",
    section: "keywords",
    help: "seal every foot with AES-256-GCM (needs a key); rx: refuse transmitters that do not encrypt",
  }),
  keyword({
    name: "compress",
    roles: "tx",
    value: { hint: "zstd|gzip[:LEVEL]", example: "gzip", read: (r) => parseCompression(r.required()) },
    field: "compress",
    section: "keywords",
    usage: "compress ALG[:N]",
    help: `compress each foot with zstd (level ${ZSTD.min}..${ZSTD.max}, default ${ZSTD.default}) or gzip (${GZIP.min}..${GZIP.max}, default ${GZIP.default}); a foot that does not shrink goes raw`,
  }),
  keyword({
    name: "congestion",
    roles: "both",
    value: { hint: "ALG", example: "reno", read: (r) => parseCongestionName(r.required()) },
    field: "congestion",
    section: "keywords",
    help: "the TCP congestion control for this end's connections, from /proc/sys/net/ipv4/tcp_available_congestion_control (Linux; e.g. bbr on long lossy paths; default the kernel's)",
  }),
  keyword({
    name: "label",
    roles: "tx",
    value: {
      hint: "NAME",
      example: "host-1:tank.home",
      read: (r) => {
        const label = r.required();
        const problem = labelProblem(label);
        if (problem !== undefined) throw usage(`label '${label}': ${problem}`);
        return label;
      },
    },
    field: "label",
    section: "keywords",
    help: `name the transfer (1..${MAX_LABEL_BYTES} of A-Z a-z 0-9 . _ : -); a receiver with exec hands it to its command as VIAMILLIPEDE_LABEL`,
  }),
  keyword({
    name: "exec",
    roles: "both",
    value: {
      hint: "COMMAND [ARG...]",
      rest: true,
      example: "cat",
      read: (r) => {
        const argv = r.rest();
        if (argv.length === 0 || argv[0] === "") throw usage("exec needs a command: 'exec COMMAND [ARG...]', last on the line");
        return argv;
      },
    },
    field: "exec",
    section: "keywords",
    help: "last on the line: run COMMAND (no shell; every word after exec is its own) instead of stdin or stdout. tx: its output is the stream, and if it fails the transfer is aborted (exit 13). rx: its input is the stream, and tx hears how it ended (exit 14 unless 0)",
  }),
  keyword({
    name: "bind",
    roles: "rx",
    value: { hint: "ADDRESS", example: "::1", read: (r) => parseBindAddress(r.required()) },
    field: "bind",
    default: undefined,
    section: "keywords",
    help: "listen on ADDRESS only (default every address)",
  }),
  keyword({
    name: "serve",
    roles: "rx",
    field: "serve",
    section: "keywords",
    help: "keep listening after a transfer and run several at once, each into its own exec command (needs exec); SIGTERM stops taking new ones and lets the running ones finish within patience",
  }),
  keyword({
    name: "sessions",
    roles: "rx",
    value: { hint: "N", example: "3", read: numberIn(1, MAX_SESSIONS) },
    field: "sessions",
    section: "keywords",
    help: `with serve: transfers at once, 1..${MAX_SESSIONS} (default ${DEFAULT_SESSIONS}); one more is refused busy`,
  }),
  keyword({
    name: "patience",
    roles: "both",
    value: { hint: "SECONDS", example: "60", read: numberIn(0, MAX_PATIENCE_S) },
    field: "patienceS",
    default: DEFAULT_PATIENCE_S,
    section: "keywords",
    help: `give up after SECONDS with no connection up (tx keeps dialling, rx keeps its place); 0 = forever (default ${DEFAULT_PATIENCE_S})`,
  }),
  keyword({
    name: "timeout",
    roles: "both",
    value: { hint: "SECONDS", example: "2", read: numberIn(MIN_TIMEOUT_S, MAX_TIMEOUT_S) },
    field: "timeoutS",
    default: DEFAULT_TIMEOUT_S,
    section: "keywords",
    help: `a connection that hears nothing (or cannot write) this long is dead and its feet go elsewhere (default ${DEFAULT_TIMEOUT_S})`,
  }),
  keyword({
    name: "chaos",
    roles: "both",
    value: { hint: "N", example: "7", read: numberIn(1, MAX_CHAOS_EVERY) },
    field: "chaosEvery",
    default: 0,
    section: "keywords",
    help: "rehearse failures: every N feet, close, reset or stall a connection in turn; the output must stay identical",
  }),
  keyword({
    name: "prbs",
    roles: "both",
    value: { hint: "SEED", example: "0x1234", read: numberIn(0, MAX_PRBS_SEED) },
    field: "prbsSeed",
    section: "keywords",
    help: "tx: send the pseudorandom stream of a 16-bit SEED instead of stdin (endless without leglimit); rx: check that stream, still writing it out (a mismatch fails naming the foot)",
  }),
  keyword({
    name: "leglimit",
    roles: "tx",
    value: { hint: "N", example: "100", read: numberIn(1, MAX_LEG_LIMIT) },
    field: "legLimit",
    section: "keywords",
    help: `stop after N feet (N x ${FOOT_MIB} MiB of input, or N x SIZE with foot SIZE)`,
  }),
  keyword({
    name: "delayus",
    roles: "tx",
    value: { hint: "N", example: "250", read: numberIn(0, MAX_DELAY_US) },
    field: "delayUs",
    section: "keywords",
    help: "wait N microseconds before each foot",
  }),
  keyword({
    name: "ratelimit",
    roles: "tx",
    value: { hint: "RATE", example: "50M", read: (r) => parseRate(r.required()) },
    field: "rateBytesPerS",
    section: "keywords",
    help: "read the input at most RATE bytes/s, all connections together (50M = 50 MiB/s; K, M, G, T are powers of 1024)",
  }),
  keyword({
    name: "charmode",
    roles: "tx",
    field: "charmode",
    section: "keywords",
    help: "send what the input has at once instead of waiting for a full foot (interactive use)",
  }),
  keyword({
    name: "terminate",
    roles: "duplex",
    value: { hint: "PORT", example: "2222", read: (r) => ({ kind: "terminate", port: parseNumber(r.required(), "terminate port", ANY_PORT, MAX_PORT) }) },
    field: "tunnel",
    again: onlyTunnel,
    section: "duplex",
    help: "accept one TCP connection on loopback PORT (0: pick one and print it) and carry it over the pipe",
  }),
  keyword({
    name: "initiate",
    roles: "duplex",
    value: { hint: "HOST PORT", hostPort: true, example: "localhost 22", read: (r) => ({ kind: "initiate", ...hostAndPort(r, r.required(), 22) }) },
    field: "tunnel",
    again: onlyTunnel,
    section: "duplex",
    help: "the other side: connect to the service at HOST PORT once the pipe is up; the tunnel ends when both sides close",
  }),
  keyword({
    name: "size",
    roles: "both",
    value: { hint: "BYTES", example: "3G", read: (r) => parseSize(r.required()) },
    field: "expectedBytes",
    default: null,
    section: "seeing",
    help: "the expected stream size, for percent done and an ETA (e.g. from zfs send -nP; K, M, G, T are powers of 1024)",
  }),
  keyword({
    name: "progress",
    roles: "both",
    field: "progress",
    on: "on",
    default: "auto",
    section: "seeing",
    help: "draw the live progress line even when stderr is not a terminal (it is drawn on a terminal by default)",
  }),
  keyword({
    name: "quiet",
    roles: "both",
    field: "quiet",
    default: false,
    section: "seeing",
    help: "print nothing but errors: no progress, warnings, summary",
  }),
  keyword({
    name: "stats",
    roles: "both",
    value: { hint: "FILE", example: "/tmp/transfer.json", read: file },
    field: "statsFile",
    default: null,
    section: "seeing",
    help: "at the end, write the figures as JSON to FILE",
  }),
  keyword({
    name: "buffer",
    roles: "both",
    value: { hint: "SIZE", example: "512M", read: (r) => parseBuffer(r.required()) },
    field: "bufferBytes",
    section: "keywords",
    help: `the most memory the window may hold at this end; it grows to cover the path up to SIZE (default ${DEFAULT_BUFFER_BYTES / 2 ** 20}M; K, M, G are powers of 1024)`,
  }),
  keyword({
    name: "foot",
    roles: "tx",
    value: { hint: "SIZE", example: "512K", read: (r) => parseFoot(r.required()) },
    field: "footBytes",
    default: "auto",
    section: "keywords",
    help:
      `the size of the blocks the stream is cut into: auto (the default: ${FOOT_MIB}M, or ${LONG_PATH_FOOT_BYTES / 1024}K where the first connection's round trip ` +
      `is ${LONG_PATH_ROUND_TRIP_MS} ms or more, so a long, lossy path keeps more connections busy) or 4K..16M`,
  }),
];

/** The keywords, in table order. */
export const KEYWORDS: readonly string[] = KEYWORD_TABLE.map((entry) => entry.name);

/** The flag form, as a citty argument schema (citty only carries it; keywords.ts parses). */
export const FLAG_ARGS: ArgsDef = Object.fromEntries(
  KEYWORD_TABLE.map((entry) => {
    const alias = entry.flagAlias ?? entry.alias;
    const common = { description: entry.help, ...(alias === undefined ? {} : { alias }) };
    return [entry.name, entry.value === undefined ? { type: "boolean", ...common } : { type: "string", valueHint: flagHint(entry), ...common }];
  }),
);
