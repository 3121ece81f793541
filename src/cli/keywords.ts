/**
 * The command-line grammar: the original's keywords and conventional flags,
 * both turned into one validated Invocation. Pure: no I/O, no process exit.
 *
 *   viamillipede rx 8834 verbose 5
 *   viamillipede verbose 3 tx host 8834 threads 0x10
 *   viamillipede tx a.example 8834 tx b.example 8834
 *   viamillipede rx --port 8834 --verbose 5
 *   viamillipede tx host 8834 prbs 0x1234 leglimit 100 ratelimit 50M
 *   viamillipede rx 7788 tx host2 9900 terminate 2222
 *
 * 1. Each flag is rewritten as the keyword it stands for (`--threads 8` is
 *    `threads 8`, `--tx h:1` is `tx h 1`), so both forms meet one parser.
 * 2. Keywords are read left to right in any order; `tx HOST PORT` repeats.
 * 3. The clauses are checked against each other (role-only keywords, what a
 *    tunnel needs) and defaults are filled in. rx and tx together are a
 *    full-duplex pipe.
 * Every problem is a VmError("usage") whose one-line message names the fix.
 */
import type { ArgsDef } from "citty";
import { VmError } from "../errors.ts";
import { hostProblem, quoted } from "../net/address.ts";
import {
  DEFAULT_FOOT_BYTES,
  DEFAULT_PATIENCE_S,
  DEFAULT_THREADS,
  DEFAULT_TIMEOUT_S,
  MAX_CHAOS_EVERY,
  MAX_TIMEOUT_S,
  MIN_TIMEOUT_S,
  DEFAULT_WINDOW_FEET,
  MAX_DELAY_US,
  MAX_LEG_LIMIT,
  MAX_RATE_BYTES_PER_S,
  MAX_THREADS,
  MAX_VERBOSE,
  MIN_THREADS,
  COMPRESSION_LEVELS,
  type Compression,
  type Invocation,
  type TransmitterOptions,
  type TunnelOptions,
  type TxTarget,
} from "../options.ts";
import { MAX_PRBS_SEED } from "../tx/prbs.ts";
import { AUTO_MAX_THREADS, AUTO_START_THREADS } from "../tx/thread-tuner.ts";

export const MIN_PORT = 1;
export const MAX_PORT = 65535;
/** `rx 0` asks the system for a free port; the receiver prints the one it got. */
export const ANY_PORT = 0;
export const MAX_CHECKPHRASE_BYTES = 64;
/** The longest wait a JS timer can express (2^31 - 1 ms), in whole seconds. */
export const MAX_PATIENCE_S = 2_147_483;

/** `ratelimit` and `size` suffixes: powers of 1024. */
const BYTE_UNITS: Readonly<Record<string, number>> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** The keywords understood today, in the order the help text lists them. */
export const KEYWORDS = [
  "rx",
  "tx",
  "threads",
  "verbose",
  "checkphrase",
  "checksums",
  "key",
  "encrypt",
  "compress",
  "bind",
  "patience",
  "timeout",
  "chaos",
  "prbs",
  "leglimit",
  "delayus",
  "ratelimit",
  "charmode",
  "terminate",
  "initiate",
  "size",
  "progress",
  "quiet",
  "stats",
] as const;
type Keyword = (typeof KEYWORDS)[number];

/**
 * The flag form, as a citty argument schema. Each flag is named after the
 * keyword it stands for; `--tx` takes HOST:PORT in one word.
 */
export const FLAG_ARGS = {
  rx: { type: "string", alias: "port", valueHint: "PORT", description: "receive on PORT (0 picks a free one)" },
  tx: { type: "string", valueHint: "HOST:PORT", description: "send to HOST:PORT; repeatable, in order of preference" },
  threads: {
    type: "string",
    valueHint: "N|auto",
    description: `connections to keep, ${MIN_THREADS}..${MAX_THREADS}, or auto: start with ${AUTO_START_THREADS} and add connections while they raise throughput (up to ${AUTO_MAX_THREADS})`,
  },
  verbose: { type: "string", valueHint: "N", description: `log detail, 0..${MAX_VERBOSE}` },
  checkphrase: { type: "string", valueHint: "WORD", description: "a word both ends must share" },
  checksums: { type: "boolean", alias: "checksum", description: "accepted for compatibility; always on" },
  key: { type: "string", valueHint: "FILE", description: "a pre-shared key both ends must hold (or VIAMILLIPEDE_KEY_FILE)" },
  encrypt: { type: "boolean", description: "seal every foot with AES-256-GCM (needs a key)" },
  compress: { type: "string", valueHint: "zstd|gzip[:LEVEL]", description: "tx: compress each foot (raw when it does not shrink)" },
  bind: { type: "string", valueHint: "ADDRESS", description: "rx: listen on this address only" },
  patience: { type: "string", valueHint: "SECONDS", description: "give up after this long with no connection up; 0 = never" },
  timeout: { type: "string", valueHint: "SECONDS", description: "a connection silent this long is dead" },
  chaos: { type: "string", valueHint: "N", description: "rehearse: close, reset or stall a connection every N feet" },
  prbs: { type: "string", valueHint: "SEED", description: "tx: send the prbs stream of SEED; rx: check it" },
  leglimit: { type: "string", valueHint: "N", description: "tx: stop after N feet" },
  delayus: { type: "string", valueHint: "N", description: "tx: wait N microseconds before each foot" },
  ratelimit: { type: "string", valueHint: "RATE", description: "tx: read at most RATE bytes/s (50M = 50 MiB/s)" },
  charmode: { type: "boolean", description: "tx: send what the input has at once (interactive)" },
  terminate: { type: "string", valueHint: "PORT", description: "tunnel: carry one local connection accepted on PORT" },
  initiate: { type: "string", valueHint: "HOST:PORT", description: "tunnel: connect the pipe to the service at HOST:PORT" },
  size: { type: "string", valueHint: "BYTES", description: "the expected stream size, for the progress ETA (e.g. from zfs send -nP; K, M, G, T suffixes)" },
  progress: { type: "boolean", description: "draw the live progress line even when stderr is not a terminal" },
  quiet: { type: "boolean", description: "print nothing but errors: no progress, warnings or summary" },
  stats: { type: "string", valueHint: "FILE", description: "write a JSON summary to FILE at the end (schema in README)" },
} as const satisfies ArgsDef & Record<Keyword, unknown>;

/** `--rx (--port), --tx, ...`: the flag list for error messages. */
const FLAG_LIST = Object.entries(FLAG_ARGS)
  .map(([name, def]) => ("alias" in def ? `--${name} (--${def.alias})` : `--${name}`))
  .join(", ");

/** Long flag name or alias → the keyword it stands for. */
const FLAG_TO_KEYWORD: ReadonlyMap<string, Keyword> = new Map(
  Object.entries(FLAG_ARGS).flatMap(([name, def]) => {
    const keyword = name as Keyword;
    const aliases: readonly string[] = "alias" in def ? [def.alias] : [];
    return [name, ...aliases].map((flag) => [flag, keyword] as const);
  }),
);

function usage(message: string): VmError {
  return new VmError("usage", message);
}

/** A token that starts a flag (`-x`, `--x`), as opposed to a value such as `-1`. */
function looksLikeFlag(token: string): boolean {
  return /^--?[A-Za-z]/.test(token);
}

/** Decimal or 0x-hex, digits only: no sign, fraction, exponent or trailing junk. */
const NUMBER_TEXT = /^(?:0[xX][0-9a-fA-F]+|[0-9]+)$/;

export function parseNumber(text: string, what: string, min: number, max: number): number {
  if (!NUMBER_TEXT.test(text)) {
    throw usage(`${what} '${text}' is not a number; write it in decimal or 0x-hex`);
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw usage(`${what} ${text} is out of range; use ${min}..${max}`);
  }
  return value;
}

/** `[::1]` → `::1`; other hosts unchanged. */
function unbracket(host: string): string {
  return /^\[.*\]$/.test(host) ? host.slice(1, -1) : host;
}

/**
 * A host to dial: an IP address or a name that could resolve. One that never
 * can (bad characters, too long, not UTF-8) is a usage error here, not
 * something the transmitter retries for `patience`.
 */
function parseHost(text: string, keyword = "tx"): string {
  const host = unbracket(text);
  if (host === "") throw usage(`${keyword} needs a HOST, got '${text}'; e.g. '${keyword} 127.0.0.1 8834'`);
  const problem = hostProblem(host);
  if (problem !== undefined) throw usage(`${keyword} host ${quoted(host)} is not an IP address or a host name: ${problem}`);
  return host;
}

/** `50M` → 52428800, `0x10` → 16: decimal or 0x-hex with an optional K, M, G or T; undefined when it is neither. */
function byteCount(text: string): number | undefined {
  const match = /^(0[xX][0-9a-fA-F]+|[0-9]+)([kKmMgGtT]?)$/.exec(text);
  return match === null ? undefined : Number(match[1]) * (BYTE_UNITS[(match[2] ?? "").toLowerCase()] ?? 1);
}

/** `50M` → 52428800: bytes per second, decimal or 0x-hex, with an optional K, M, G or T (powers of 1024). */
export function parseRate(text: string): number {
  const rate = byteCount(text);
  if (rate === undefined) {
    throw usage(`ratelimit '${text}' is not a rate; write bytes per second, e.g. 'ratelimit 50M' (K, M, G, T are powers of 1024)`);
  }
  if (!Number.isSafeInteger(rate) || rate < 1 || rate > MAX_RATE_BYTES_PER_S) {
    throw usage(`ratelimit ${text} is out of range; use 1..${MAX_RATE_BYTES_PER_S} bytes per second (1T)`);
  }
  return rate;
}

/** `size 3G` → 3221225472: bytes, decimal or 0x-hex, with an optional K, M, G or T (powers of 1024). */
export function parseSize(text: string): number {
  const bytes = byteCount(text);
  if (bytes === undefined || !Number.isSafeInteger(bytes)) {
    throw usage(`size '${text}' is not a byte count; write bytes, e.g. 'size 1073741824' or 'size 1G' (K, M, G, T are powers of 1024)`);
  }
  return bytes;
}

/** `zstd`, `gzip:9`: the algorithm and, optionally, its level. */
export function parseCompression(text: string): Compression {
  const match = /^(zstd|gzip)(?::(.*))?$/.exec(text);
  if (match === null) throw usage(`compress '${text}' is not known; use zstd or gzip, optionally with a level: 'compress zstd:3'`);
  const kind = match[1] as Compression["kind"];
  const levels = COMPRESSION_LEVELS[kind];
  const level = match[2] === undefined ? levels.default : parseNumber(match[2], `${kind} level`, levels.min, levels.max);
  return { kind, level };
}

/** `--tx HOST:PORT` (or `--initiate`), with IPv6 literals in brackets: `[::1]:8834`. */
function splitHostPort(text: string, flag: string): [host: string, port: string] {
  const bracketed = /^\[([^\]]*)\]:(.*)$/.exec(text);
  if (bracketed) return [bracketed[1] ?? "", bracketed[2] ?? ""];
  const colon = text.lastIndexOf(":");
  if (colon < 0) throw usage(`--${flag} needs HOST:PORT, got '${text}'; e.g. '--${flag} 127.0.0.1:8834'`);
  const host = text.slice(0, colon);
  if (host.includes(":")) {
    throw usage(`--${flag} '${text}' is ambiguous; put an IPv6 address in brackets: '--${flag} [::1]:8834'`);
  }
  return [host, text.slice(colon + 1)];
}

/**
 * A command-line word after flags are rewritten. `keyword` and `value` come
 * from a flag and are known for what they are; `word` is from the user's
 * keyword form and is judged by position.
 */
interface Token {
  kind: "word" | "keyword" | "value";
  text: string;
}

/**
 * Rewrites flags as keyword tokens, leaving keyword-form words as they are.
 * `--name=value` and `--name value` both work; in the second form the value
 * may not look like a flag (write `--checkphrase=-x` for that).
 */
function flagsToKeywords(argv: readonly string[]): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] ?? "";
    if (!looksLikeFlag(token)) {
      if (token === "--") throw usage("'--' is not used by viamillipede; remove it");
      out.push({ kind: "word", text: token });
      continue;
    }
    const match = /^--([^=]+)(?:=(.*))?$/s.exec(token);
    const name = match?.[1];
    if (name === undefined) throw usage(`unknown flag '${token}'; flags are ${FLAG_LIST}`);
    const keyword = FLAG_TO_KEYWORD.get(name);
    if (keyword === undefined) {
      const near = closest(name, [...FLAG_TO_KEYWORD.keys()]);
      throw usage(near === undefined ? `unknown flag '--${name}'; flags are ${FLAG_LIST}` : `unknown flag '--${name}'; did you mean '--${near}'?`);
    }
    const inline = match?.[2];
    if (FLAG_ARGS[keyword].type === "boolean") {
      if (inline !== undefined) throw usage(`flag '--${name}' takes no value; write just '--${name}'`);
      out.push({ kind: "keyword", text: keyword });
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      if (next !== undefined && !looksLikeFlag(next)) {
        value = next;
        i++;
      }
    }
    if (value === undefined) {
      throw usage(`flag '--${name}' needs a value: '--${name} ${FLAG_ARGS[keyword].valueHint}'`);
    }
    out.push({ kind: "keyword", text: keyword });
    if (keyword === "tx" || keyword === "initiate") {
      const [host, port] = splitHostPort(value, keyword);
      out.push({ kind: "value", text: host }, { kind: "value", text: port });
    } else {
      out.push({ kind: "value", text: value });
    }
  }
  return out;
}

/** What the clauses said, before defaults and cross-checks. */
interface Clauses {
  rx: boolean;
  rxPort: number | undefined;
  tx: boolean;
  targets: TxTarget[];
  threads: number | "auto" | undefined;
  verbose: number | undefined;
  checkphrase: string | undefined;
  checksums: boolean;
  keyFile: string | undefined;
  encrypt: boolean;
  compress: Compression | undefined;
  bind: string | undefined;
  patienceS: number | undefined;
  timeoutS: number | undefined;
  chaosEvery: number | undefined;
  prbsSeed: number | undefined;
  legLimit: number | undefined;
  delayUs: number | undefined;
  rateBytesPerS: number | undefined;
  charmode: boolean;
  tunnel: TunnelOptions | undefined;
  size: number | undefined;
  progress: boolean;
  quiet: boolean;
  statsFile: string | undefined;
}

/** Reads keyword clauses left to right; keywords may come in any order. */
function readClauses(tokens: readonly Token[]): Clauses {
  const seen: Clauses = {
    rx: false,
    rxPort: undefined,
    tx: false,
    targets: [],
    threads: undefined,
    verbose: undefined,
    checkphrase: undefined,
    checksums: false,
    keyFile: undefined,
    encrypt: false,
    compress: undefined,
    bind: undefined,
    patienceS: undefined,
    timeoutS: undefined,
    chaosEvery: undefined,
    prbsSeed: undefined,
    legLimit: undefined,
    delayUs: undefined,
    rateBytesPerS: undefined,
    charmode: false,
    tunnel: undefined,
    size: undefined,
    progress: false,
    quiet: false,
    statsFile: undefined,
  };
  let i = 0;
  /** The next token if it can be a value (not a flag's keyword), consuming it. */
  const takeValue = (): string | undefined => {
    const next = tokens[i];
    if (next === undefined || next.kind === "keyword") return undefined;
    i++;
    return next.text;
  };
  const required = (keyword: string, hint: string): string => {
    const value = takeValue();
    if (value === undefined) throw usage(`${keyword} needs a value: '${keyword} ${hint}'`);
    return value;
  };
  const once = <T>(keyword: string, previous: T | undefined, value: T): T => {
    if (previous !== undefined) throw usage(`${keyword} is given twice; give it once`);
    return value;
  };
  /** `keyword NUMBER`, given at most once, within min..max. */
  const numberFor = (keyword: string, hint: string, min: number, max: number, previous: number | undefined): number =>
    once(keyword, previous, parseNumber(required(keyword, hint), keyword, min, max));
  /** `keyword FILE`, given at most once, not empty. */
  const fileFor = (keyword: string, example: string, previous: string | undefined): string => {
    const file = required(keyword, "FILE");
    if (file === "") throw usage(`${keyword} needs a FILE: '${keyword} ${example}'`);
    return once(keyword, previous, file);
  };

  while (i < tokens.length) {
    const keyword = tokens[i++]?.text ?? "";
    switch (keyword) {
      case "rx": {
        // A bare `rx` (before flags) only names the role; `--port` supplies the port.
        seen.rx = true;
        const port = takeValue();
        if (port === undefined) break;
        if (seen.rxPort !== undefined) throw usage("rx PORT is given twice; one receiver listens on one port");
        seen.rxPort = parseNumber(port, "rx port", ANY_PORT, MAX_PORT);
        break;
      }
      case "tx": {
        seen.tx = true;
        const hostText = takeValue();
        // A bare `tx` (before flags) only names the role; `--tx` supplies targets.
        if (hostText === undefined) break;
        const host = parseHost(hostText);
        const port = takeValue();
        if (port === undefined) throw usage(`tx ${hostText} needs a PORT: 'tx ${hostText} 8834'`);
        seen.targets.push({ host, port: parseNumber(port, "tx port", MIN_PORT, MAX_PORT) });
        break;
      }
      case "threads": {
        const value = required("threads", "N");
        if (value !== "auto" && !NUMBER_TEXT.test(value)) {
          throw usage(`threads '${value}' is neither a number (${MIN_THREADS}..${MAX_THREADS}) nor auto`);
        }
        const threads = value === "auto" ? value : parseNumber(value, "threads", MIN_THREADS, MAX_THREADS);
        seen.threads = once("threads", seen.threads, threads);
        break;
      }
      case "verbose":
        seen.verbose = numberFor("verbose", "N", 0, MAX_VERBOSE, seen.verbose);
        break;
      case "patience":
        seen.patienceS = numberFor("patience", "SECONDS", 0, MAX_PATIENCE_S, seen.patienceS);
        break;
      case "timeout":
        seen.timeoutS = numberFor("timeout", "SECONDS", MIN_TIMEOUT_S, MAX_TIMEOUT_S, seen.timeoutS);
        break;
      case "chaos":
        seen.chaosEvery = numberFor("chaos", "N", 1, MAX_CHAOS_EVERY, seen.chaosEvery);
        break;
      case "checkphrase": {
        const phrase = required("checkphrase", "WORD");
        const bytes = new TextEncoder().encode(phrase).length;
        if (bytes < 1 || bytes > MAX_CHECKPHRASE_BYTES) {
          throw usage(`checkphrase is ${bytes} bytes; use 1..${MAX_CHECKPHRASE_BYTES} bytes`);
        }
        // The wire's strings carry no zero bytes (protocol/README.md): C peers read them as C strings.
        if (phrase.includes("\0")) throw usage("checkphrase contains a NUL byte; use a word without one");
        seen.checkphrase = once("checkphrase", seen.checkphrase, phrase);
        break;
      }
      case "checksums":
      case "checksum": // the original's README spells it so
        seen.checksums = true;
        break;
      case "key":
        seen.keyFile = fileFor("key", "/etc/viamillipede.key", seen.keyFile);
        break;
      case "encrypt":
        seen.encrypt = true;
        break;
      case "compress":
        seen.compress = once("compress", seen.compress, parseCompression(required("compress", "zstd|gzip[:LEVEL]")));
        break;
      case "prbs":
        seen.prbsSeed = numberFor("prbs", "SEED", 0, MAX_PRBS_SEED, seen.prbsSeed);
        break;
      case "leglimit":
        seen.legLimit = numberFor("leglimit", "N", 1, MAX_LEG_LIMIT, seen.legLimit);
        break;
      case "delayus":
        seen.delayUs = numberFor("delayus", "N", 0, MAX_DELAY_US, seen.delayUs);
        break;
      case "ratelimit":
        seen.rateBytesPerS = once("ratelimit", seen.rateBytesPerS, parseRate(required("ratelimit", "RATE")));
        break;
      case "size":
        seen.size = once("size", seen.size, parseSize(required("size", "BYTES")));
        break;
      case "progress":
        seen.progress = true;
        break;
      case "quiet":
        seen.quiet = true;
        break;
      case "stats":
        seen.statsFile = fileFor("stats", "/tmp/transfer.json", seen.statsFile);
        break;
      case "charmode":
        seen.charmode = true;
        break;
      case "terminate": {
        const port = parseNumber(required("terminate", "PORT"), "terminate port", ANY_PORT, MAX_PORT);
        seen.tunnel = onlyTunnel(seen.tunnel, { kind: "terminate", port });
        break;
      }
      case "initiate": {
        const hostText = required("initiate", "HOST PORT");
        const host = parseHost(hostText, "initiate");
        const port = takeValue();
        if (port === undefined) throw usage(`initiate ${hostText} needs a PORT: 'initiate ${hostText} 22'`);
        seen.tunnel = onlyTunnel(seen.tunnel, { kind: "initiate", host, port: parseNumber(port, "initiate port", MIN_PORT, MAX_PORT) });
        break;
      }
      case "bind": {
        const address = unbracket(required("bind", "ADDRESS"));
        if (address === "") throw usage("bind needs an ADDRESS: 'bind ::1' or 'bind 127.0.0.1'");
        const problem = hostProblem(address);
        if (problem !== undefined) throw usage(`bind address ${quoted(address)} is not an IP address or a host name: ${problem}`);
        seen.bind = once("bind", seen.bind, address);
        break;
      }
      default: {
        const near = closest(keyword, [...KEYWORDS, "checksum"]);
        throw usage(near === undefined ? `unknown keyword '${keyword}'; keywords are ${KEYWORDS.join(", ")}` : `unknown keyword '${keyword}'; did you mean '${near}'?`);
      }
    }
  }
  return seen;
}

/** A tunnel has one end per side: a second terminate or initiate is a mistake. */
function onlyTunnel(previous: TunnelOptions | undefined, tunnel: TunnelOptions): TunnelOptions {
  if (previous === undefined) return tunnel;
  if (previous.kind === tunnel.kind) throw usage(`${tunnel.kind} is given twice; a tunnel carries one connection`);
  throw usage("terminate and initiate are the two ends of one tunnel; give terminate on one side and initiate on the other");
}

/** Keywords that shape what tx sends and that a receiver alone ignores, in the order the help lists them. */
function txOnlyGiven(seen: Clauses): string[] {
  const given: [keyword: string, present: boolean][] = [
    ["threads", seen.threads !== undefined],
    ["compress", seen.compress !== undefined],
    ["leglimit", seen.legLimit !== undefined],
    ["delayus", seen.delayUs !== undefined],
    ["ratelimit", seen.rateBytesPerS !== undefined],
    ["charmode", seen.charmode],
  ];
  return given.filter(([, present]) => present).map(([keyword]) => keyword);
}

/** Words closer than this (edit distance) to a keyword get a "did you mean"; a third of the word's length, at least 1, at most 2. */
function suggestionDistance(word: string): number {
  return Math.min(2, Math.max(1, Math.floor(word.length / 3)));
}

/**
 * The candidate nearest to `word` (case-insensitive optimal string alignment
 * distance: insertions, deletions, substitutions and swaps of neighbours each
 * cost 1), when it is close enough to be a typo; the first on a tie.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const limit = suggestionDistance(word);
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { candidate, distance };
  }
  return best?.candidate;
}

/** Optimal string alignment distance between two strings (UTF-16 units). */
export function editDistance(a: string, b: string): number {
  // Rows i-2, i-1 and i of the usual dynamic-programming table.
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) distance = Math.min(distance, before[j - 2]! + 1);
      current.push(distance);
    }
    before = previous;
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * Turns a command line (without the program name) into an Invocation.
 * `--help` and `--version` are the caller's business and are refused here.
 * Throws VmError("usage") naming the problem and the fix.
 */
export function parseArguments(argv: readonly string[]): Invocation {
  const seen = readClauses(flagsToKeywords(argv));
  const warnings: string[] = [];

  if (!seen.rx && !seen.tx) {
    throw usage("nothing to do; say 'rx PORT' to receive or 'tx HOST PORT' to send");
  }
  if (seen.tunnel !== undefined) {
    if (!seen.rx || !seen.tx) {
      throw usage(`${seen.tunnel.kind} carries a TCP connection over a full-duplex pipe; give both 'rx PORT' and 'tx HOST PORT'`);
    }
    if (seen.prbsSeed !== undefined) throw usage(`prbs replaces the data a tunnel carries; drop prbs or ${seen.tunnel.kind}`);
  }
  const common = {
    verbose: seen.verbose ?? 0,
    checkphrase: seen.checkphrase ?? "",
    checksums: true,
    patienceS: seen.patienceS ?? DEFAULT_PATIENCE_S,
    timeoutS: seen.timeoutS ?? DEFAULT_TIMEOUT_S,
    chaosEvery: seen.chaosEvery ?? 0,
    ...(seen.keyFile === undefined ? {} : { keyFile: seen.keyFile }),
    ...(seen.encrypt ? { encrypt: true } : {}),
  };

  let receive: Invocation["receive"];
  if (seen.rx) {
    if (seen.rxPort === undefined) throw usage("rx needs a PORT: 'rx 8834' or '--port 8834'");
    const txOnly = txOnlyGiven(seen);
    // The original ignores these on rx, and scripts hand one option string to both ends.
    if (!seen.tx && txOnly.length > 0) {
      warnings.push(`${txOnly.join(", ")} ${txOnly.length === 1 ? "applies" : "apply"} to tx only; the receiver ignores ${txOnly.length === 1 ? "it" : "them"}`);
    }
    receive = { ...common, port: seen.rxPort, bind: seen.bind, windowFeet: DEFAULT_WINDOW_FEET };
    if (seen.prbsSeed !== undefined) receive.prbsSeed = seen.prbsSeed;
  }

  let transmit: TransmitterOptions | undefined;
  if (seen.tx) {
    if (seen.targets.length === 0) throw usage("tx needs a HOST and PORT: 'tx 127.0.0.1 8834' or '--tx 127.0.0.1:8834'");
    if (!seen.rx && seen.bind !== undefined) throw usage("bind applies to rx only; remove it from the tx side");
    transmit = {
      ...common,
      targets: seen.targets,
      threads: seen.threads ?? DEFAULT_THREADS,
      footBytes: DEFAULT_FOOT_BYTES,
    };
    // A tunnel carries interactive traffic: it always sends what it has.
    if (seen.charmode || seen.tunnel !== undefined) transmit.charmode = true;
    if (seen.prbsSeed !== undefined) transmit.prbsSeed = seen.prbsSeed;
    if (seen.legLimit !== undefined) transmit.legLimit = seen.legLimit;
    if (seen.delayUs !== undefined) transmit.delayUs = seen.delayUs;
    if (seen.rateBytesPerS !== undefined) transmit.rateBytesPerS = seen.rateBytesPerS;
    if (seen.compress !== undefined) transmit.compress = seen.compress;
  }

  if (seen.quiet && seen.progress) throw usage("quiet and progress contradict each other; give one");
  const report = {
    progress: seen.quiet ? ("off" as const) : seen.progress ? ("on" as const) : ("auto" as const),
    quiet: seen.quiet,
    expectedBytes: seen.size ?? null,
    statsFile: seen.statsFile ?? null,
  };

  return {
    report,
    ...(receive === undefined ? {} : { receive }),
    ...(transmit === undefined ? {} : { transmit }),
    ...(seen.tunnel === undefined ? {} : { tunnel: seen.tunnel }),
    ...(warnings.length === 0 ? {} : { warnings }),
  };
}
