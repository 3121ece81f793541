/**
 * The command-line grammar: the original's keywords and conventional flags,
 * both turned into one validated Invocation. Pure: no I/O, no process exit.
 *
 *   viamillipede rx 8834 verbose 5
 *   viamillipede verbose 3 tx host 8834 threads 0x10
 *   viamillipede tx a.example 8834 tx b.example 8834
 *   viamillipede rx --port 8834 --verbose 5
 *
 * 1. Each flag is rewritten as the keyword it stands for (`--threads 8` is
 *    `threads 8`, `--tx h:1` is `tx h 1`), so both forms meet one parser.
 * 2. Keywords are read left to right in any order; `tx HOST PORT` repeats.
 * 3. The clauses are checked against each other (one role, role-only keywords)
 *    and defaults are filled in.
 * Every problem is a VmError("usage") whose one-line message names the fix.
 */
import type { ArgsDef } from "citty";
import { VmError } from "../errors.ts";
import {
  DEFAULT_FOOT_BYTES,
  DEFAULT_PATIENCE_S,
  DEFAULT_THREADS,
  DEFAULT_TIMEOUT_S,
  MAX_CHAOS_EVERY,
  MAX_TIMEOUT_S,
  MIN_TIMEOUT_S,
  DEFAULT_WINDOW_FEET,
  MAX_THREADS,
  MAX_VERBOSE,
  MIN_THREADS,
  type Invocation,
  type TxTarget,
} from "../options.ts";

export const MIN_PORT = 1;
export const MAX_PORT = 65535;
/** `rx 0` asks the system for a free port; the receiver prints the one it got. */
export const ANY_PORT = 0;
export const MAX_CHECKPHRASE_BYTES = 64;
/** The longest wait a JS timer can express (2^31 - 1 ms), in whole seconds. */
export const MAX_PATIENCE_S = 2_147_483;

/**
 * Keywords of the original that later features will bring back. They get
 * "not supported yet" rather than "unknown keyword"; remove an entry when its
 * feature lands.
 */
export const NOT_YET_SUPPORTED: readonly string[] = [
  "prbs",
  "leglimit",
  "delayus",
  "charmode",
  "initiate",
  "terminate",
];

/** The keywords understood today, in the order the help text lists them. */
export const KEYWORDS = [
  "rx",
  "tx",
  "threads",
  "verbose",
  "checkphrase",
  "checksums",
  "bind",
  "patience",
  "timeout",
  "chaos",
] as const;
type Keyword = (typeof KEYWORDS)[number];

/**
 * The flag form, as a citty argument schema. Each flag is named after the
 * keyword it stands for; `--tx` takes HOST:PORT in one word.
 */
export const FLAG_ARGS = {
  rx: { type: "string", alias: "port", valueHint: "PORT", description: "receive on PORT (0 picks a free one)" },
  tx: { type: "string", valueHint: "HOST:PORT", description: "send to HOST:PORT; repeatable, in order of preference" },
  threads: { type: "string", valueHint: "N", description: `connections to keep, ${MIN_THREADS}..${MAX_THREADS}` },
  verbose: { type: "string", valueHint: "N", description: `log detail, 0..${MAX_VERBOSE}` },
  checkphrase: { type: "string", valueHint: "WORD", description: "a word both ends must share" },
  checksums: { type: "boolean", description: "accepted for compatibility; always on" },
  bind: { type: "string", valueHint: "ADDRESS", description: "rx: listen on this address only" },
  patience: { type: "string", valueHint: "SECONDS", description: "give up after this long with no connection up; 0 = never" },
  timeout: { type: "string", valueHint: "SECONDS", description: "a connection silent this long is dead" },
  chaos: { type: "string", valueHint: "N", description: "rehearse: close, reset or stall a connection every N feet" },
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
export function parseNumber(text: string, what: string, min: number, max: number): number {
  if (!/^(?:0[xX][0-9a-fA-F]+|[0-9]+)$/.test(text)) {
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

function parseHost(text: string): string {
  const host = unbracket(text);
  if (host === "") throw usage(`tx needs a HOST, got '${text}'; e.g. 'tx 127.0.0.1 8834'`);
  return host;
}

/** `--tx HOST:PORT`, with IPv6 literals in brackets: `[::1]:8834`. */
function splitHostPort(text: string): [host: string, port: string] {
  const bracketed = /^\[([^\]]*)\]:(.*)$/.exec(text);
  if (bracketed) return [bracketed[1] ?? "", bracketed[2] ?? ""];
  const colon = text.lastIndexOf(":");
  if (colon < 0) throw usage(`--tx needs HOST:PORT, got '${text}'; e.g. '--tx 127.0.0.1:8834'`);
  const host = text.slice(0, colon);
  if (host.includes(":")) {
    throw usage(`--tx '${text}' is ambiguous; put an IPv6 address in brackets: '--tx [::1]:8834'`);
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
    if (NOT_YET_SUPPORTED.includes(name)) throw usage(`flag '--${name}' is not supported yet`);
    const keyword = FLAG_TO_KEYWORD.get(name);
    if (keyword === undefined) throw usage(`unknown flag '--${name}'; flags are ${FLAG_LIST}`);
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
    if (keyword === "tx") {
      const [host, port] = splitHostPort(value);
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
  threads: number | undefined;
  verbose: number | undefined;
  checkphrase: string | undefined;
  checksums: boolean;
  bind: string | undefined;
  patienceS: number | undefined;
  timeoutS: number | undefined;
  chaosEvery: number | undefined;
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
    bind: undefined,
    patienceS: undefined,
    timeoutS: undefined,
    chaosEvery: undefined,
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
      case "threads":
        seen.threads = numberFor("threads", "N", MIN_THREADS, MAX_THREADS, seen.threads);
        break;
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
        seen.checkphrase = once("checkphrase", seen.checkphrase, phrase);
        break;
      }
      case "checksums":
        seen.checksums = true;
        break;
      case "bind": {
        const address = unbracket(required("bind", "ADDRESS"));
        if (address === "") throw usage("bind needs an ADDRESS: 'bind ::1' or 'bind 127.0.0.1'");
        seen.bind = once("bind", seen.bind, address);
        break;
      }
      default:
        if (NOT_YET_SUPPORTED.includes(keyword)) throw usage(`keyword '${keyword}' is not supported yet`);
        throw usage(`unknown keyword '${keyword}'; keywords are ${KEYWORDS.join(", ")}`);
    }
  }
  return seen;
}

/**
 * Turns a command line (without the program name) into an Invocation.
 * `--help` and `--version` are the caller's business and are refused here.
 * Throws VmError("usage") naming the problem and the fix.
 */
export function parseArguments(argv: readonly string[]): Invocation {
  const seen = readClauses(flagsToKeywords(argv));

  if (seen.rx && seen.tx) {
    throw usage("full-duplex (rx and tx together) is not supported yet; run one viamillipede per direction");
  }
  if (!seen.rx && !seen.tx) {
    throw usage("nothing to do; say 'rx PORT' to receive or 'tx HOST PORT' to send");
  }
  const common = {
    verbose: seen.verbose ?? 0,
    checkphrase: seen.checkphrase ?? "",
    checksums: true,
    patienceS: seen.patienceS ?? DEFAULT_PATIENCE_S,
    timeoutS: seen.timeoutS ?? DEFAULT_TIMEOUT_S,
    chaosEvery: seen.chaosEvery ?? 0,
  };

  if (seen.rx) {
    if (seen.rxPort === undefined) throw usage("rx needs a PORT: 'rx 8834' or '--port 8834'");
    if (seen.threads !== undefined) {
      throw usage("threads applies to tx only; the receiver serves whatever connections tx opens");
    }
    return {
      receive: { ...common, port: seen.rxPort, bind: seen.bind, windowFeet: DEFAULT_WINDOW_FEET },
    };
  }

  if (seen.targets.length === 0) throw usage("tx needs a HOST and PORT: 'tx 127.0.0.1 8834' or '--tx 127.0.0.1:8834'");
  if (seen.bind !== undefined) throw usage("bind applies to rx only; remove it from the tx side");
  return {
    transmit: {
      ...common,
      targets: seen.targets,
      threads: seen.threads ?? DEFAULT_THREADS,
      footBytes: DEFAULT_FOOT_BYTES,
    },
  };
}
