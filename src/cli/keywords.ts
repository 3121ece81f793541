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
 * What each keyword is lives in one place, KEYWORD_TABLE (keyword-table.ts);
 * this file only walks it:
 * 1. Each flag is rewritten as the keyword it stands for (`--threads 8` is
 *    `threads 8`, `--tx h:1` is `tx h 1`), so both forms meet one parser.
 * 2. Keywords are read left to right in any order, each by its entry's
 *    reader; a second time is the entry's `again` (`tx HOST PORT` repeats).
 * 3. The roles given (rx, tx, or both: a full-duplex pipe) are checked
 *    against each keyword's roles, the few rules that join keywords are
 *    checked, and each entry's value or default goes into its field.
 * Every problem is a VmError("usage") whose one-line message names the fix.
 */
import {
  DEFAULT_REPORT,
  type Invocation,
  type ReceiverOptions,
  type ReportOptions,
  type TransmitterOptions,
  type TunnelOptions,
} from "../options.ts";
import { closest } from "./closest.ts";
import { flagHint, flagNames, KEYWORD_TABLE, KEYWORDS, type Fields, type KeywordEntry } from "./keyword-table.ts";
import { splitHostPort, usage, type ValueReader } from "./values.ts";

/** Keyword or alias → its entry. */
const BY_KEYWORD: ReadonlyMap<string, KeywordEntry> = new Map(
  KEYWORD_TABLE.flatMap((entry) => [entry.name, ...(entry.alias === undefined ? [] : [entry.alias])].map((word) => [word, entry] as const)),
);
/** The words "did you mean" chooses from: the keywords, then their aliases. */
const KEYWORD_WORDS = [...KEYWORDS, ...KEYWORD_TABLE.flatMap((entry) => (entry.alias === undefined ? [] : [entry.alias]))];

/** Long flag name or alias → its entry. */
const BY_FLAG: ReadonlyMap<string, KeywordEntry> = new Map(KEYWORD_TABLE.flatMap((entry) => flagNames(entry).map((flag) => [flag, entry] as const)));

/** The words and flags (`exec`, `--exec`) whose entry takes the rest of the line. */
const TAKES_REST: ReadonlyMap<string, KeywordEntry> = new Map(
  KEYWORD_TABLE.filter((entry) => entry.value?.rest).flatMap((entry) => flagNames(entry).flatMap((name) => [[name, entry] as const, [`--${name}`, entry] as const])),
);

/** `--rx (--port), --tx, ...`: the flag list for error messages. */
const FLAG_LIST = KEYWORD_TABLE.map((entry) => {
  const [name, alias] = flagNames(entry);
  return alias === undefined ? `--${name}` : `--${name} (--${alias})`;
}).join(", ");

/** A token that starts a flag (`-x`, `--x`), as opposed to a value such as `-1`. */
function looksLikeFlag(token: string): boolean {
  return /^--?[A-Za-z]/.test(token);
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
    const joined = /^(--[^=]+)=(.*)$/s.exec(token);
    const rest = TAKES_REST.get(joined?.[1] ?? token);
    if (rest !== undefined) {
      // Everything after it is its value (an entry with value.rest): nothing there is ours to read.
      out.push({ kind: "keyword", text: rest.name });
      let words = argv.slice(i + 1);
      if (joined !== null) words = [joined[2]!, ...words];
      else if (words[0] === "--") words = words.slice(1);
      for (const text of words) out.push({ kind: "value", text });
      break;
    }
    if (!looksLikeFlag(token)) {
      if (token === "--") throw usage("'--' is not used by viamillipede; remove it");
      out.push({ kind: "word", text: token });
      continue;
    }
    const match = /^--([^=]+)(?:=(.*))?$/s.exec(token);
    const name = match?.[1];
    if (name === undefined) throw usage(`unknown flag '${token}'; flags are ${FLAG_LIST}`);
    const entry = BY_FLAG.get(name);
    if (entry === undefined) {
      const near = closest(name, [...BY_FLAG.keys()]);
      throw usage(near === undefined ? `unknown flag '--${name}'; flags are ${FLAG_LIST}` : `unknown flag '--${name}'; did you mean '--${near}'?`);
    }
    const inline = match?.[2];
    if (entry.value === undefined) {
      if (inline !== undefined) throw usage(`flag '--${name}' takes no value; write just '--${name}'`);
      out.push({ kind: "keyword", text: entry.name });
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
    if (value === undefined) throw usage(`flag '--${name}' needs a value: '--${name} ${flagHint(entry)}'`);
    out.push({ kind: "keyword", text: entry.name });
    const words = entry.value.hostPort ? splitHostPort(value, entry.name) : [value];
    for (const text of words) out.push({ kind: "value", text });
  }
  return out;
}

/** What the command line said: the keywords given, and the value of each field set. */
interface Clauses {
  given: ReadonlySet<string>;
  values: ReadonlyMap<keyof Fields, unknown>;
}

/** Reads keyword clauses left to right; keywords may come in any order. */
function readClauses(tokens: readonly Token[]): Clauses {
  const given = new Set<string>();
  const values = new Map<keyof Fields, unknown>();
  let i = 0;
  /** The next token if it can be a value (not a flag's keyword), consuming it. */
  const takeValue = (): string | undefined => {
    const next = tokens[i];
    if (next === undefined || next.kind === "keyword") return undefined;
    i++;
    return next.text;
  };
  while (i < tokens.length) {
    const word = tokens[i++]?.text ?? "";
    const entry = BY_KEYWORD.get(word);
    if (entry === undefined) {
      const near = closest(word, KEYWORD_WORDS);
      throw usage(near === undefined ? `unknown keyword '${word}'; keywords are ${KEYWORDS.join(", ")}` : `unknown keyword '${word}'; did you mean '${near}'?`);
    }
    given.add(entry.name);
    let value: unknown;
    if (entry.value === undefined) {
      value = "on" in entry ? entry.on : true;
    } else {
      const { hint, example } = entry.value;
      const reader: ValueReader = {
        keyword: entry.name,
        example,
        optional: takeValue,
        repeated: entry.field !== undefined && values.has(entry.field),
        rest: () => tokens.slice(i, (i = tokens.length)).map((token) => token.text),
        required: (shown = hint) => {
          const text = takeValue();
          if (text === undefined) throw usage(`${entry.name} needs a value: '${entry.name} ${shown}'`);
          return text;
        },
      };
      value = entry.value.read(reader);
    }
    if (value === undefined || entry.field === undefined) continue;
    const previous = values.get(entry.field);
    values.set(entry.field, previous === undefined ? value : again(entry, previous, value));
  }
  return { given, values };
}

/** A keyword's second value: its entry's `again`; else a switch stays on and a value is a mistake. */
function again(entry: KeywordEntry, previous: unknown, next: unknown): unknown {
  if (entry.again !== undefined) return entry.again(previous as never, next as never);
  if (entry.value === undefined) return previous;
  throw usage(`${entry.name} is given twice; give it once`);
}

/** The given keywords of `roles`, in table order. */
function givenOf(clauses: Clauses, roles: KeywordEntry["roles"]): KeywordEntry[] {
  return KEYWORD_TABLE.filter((entry) => entry.roles === roles && clauses.given.has(entry.name));
}

/** Each field of `entries` that is given or has a default, with its value. */
function fieldsOf(clauses: Clauses, entries: readonly KeywordEntry[]): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const entry of entries) {
    if (entry.field === undefined) continue;
    if (clauses.values.has(entry.field)) fields[entry.field] = clauses.values.get(entry.field);
    else if ("default" in entry) fields[entry.field] = entry.default;
  }
  return fields;
}

/** The fields that go to the report rather than to a role's options. */
const REPORT_FIELDS: ReadonlySet<string> = new Set(Object.keys(DEFAULT_REPORT));

/** The fields of the options of one role: what the keywords for that role (or for both) set. */
function roleFields(clauses: Clauses, role: "rx" | "tx"): Record<string, unknown> {
  return fieldsOf(
    clauses,
    KEYWORD_TABLE.filter((entry) => (entry.roles === role || entry.roles === "both") && entry.field !== undefined && !REPORT_FIELDS.has(entry.field)),
  );
}

/**
 * Turns a command line (without the program name) into an Invocation.
 * `--help` and `--version` are the caller's business and are refused here.
 * Throws VmError("usage") naming the problem and the fix.
 */
export function parseArguments(argv: readonly string[]): Invocation {
  const clauses = readClauses(flagsToKeywords(argv));
  const rx = clauses.given.has("rx");
  const tx = clauses.given.has("tx");
  const tunnel = clauses.values.get("tunnel") as TunnelOptions | undefined;
  const warnings: string[] = [];

  if (!rx && !tx) throw usage("nothing to do; say 'rx PORT' to receive or 'tx HOST PORT' to send");
  for (const entry of givenOf(clauses, "duplex")) {
    if (!rx || !tx) throw usage(`${entry.name} carries a TCP connection over a full-duplex pipe; give both 'rx PORT' and 'tx HOST PORT'`);
  }
  if (tunnel !== undefined && clauses.values.has("prbsSeed")) throw usage(`prbs replaces the data a tunnel carries; drop prbs or ${tunnel.kind}`);
  if (clauses.values.has("exec")) {
    if (rx && tx) throw usage("exec takes the place of one end's stdin or stdout; in full duplex (rx and tx together) pipe a command instead");
    if (tx && clauses.values.has("prbsSeed")) throw usage("prbs and exec both say what tx sends; give one");
  }

  let receive: ReceiverOptions | undefined;
  if (rx) {
    if (!clauses.values.has("port")) throw usage("rx needs a PORT: 'rx 8834' or '--port 8834'");
    const txOnly = givenOf(clauses, "tx").map((entry) => entry.name);
    // The original ignores these on rx, and scripts hand one option string to both ends.
    if (!tx && txOnly.length > 0) {
      warnings.push(`${txOnly.join(", ")} ${txOnly.length === 1 ? "applies" : "apply"} to tx only; the receiver ignores ${txOnly.length === 1 ? "it" : "them"}`);
    }
    receive = roleFields(clauses, "rx") as unknown as ReceiverOptions;
  }

  let transmit: TransmitterOptions | undefined;
  if (tx) {
    if (!clauses.values.has("targets")) throw usage("tx needs a HOST and PORT: 'tx 127.0.0.1 8834' or '--tx 127.0.0.1:8834'");
    for (const entry of givenOf(clauses, "rx")) {
      if (!rx) throw usage(`${entry.name} applies to rx only; remove it from the tx side`);
    }
    transmit = roleFields(clauses, "tx") as unknown as TransmitterOptions;
    // A tunnel carries interactive traffic: it always sends what it has.
    if (tunnel !== undefined) transmit.charmode = true;
  }

  const report = fieldsOf(clauses, KEYWORD_TABLE.filter((entry) => entry.field !== undefined && REPORT_FIELDS.has(entry.field))) as unknown as ReportOptions;
  if (report.quiet && report.progress === "on") throw usage("quiet and progress contradict each other; give one");
  if (report.quiet) report.progress = "off";

  return {
    report,
    ...(receive === undefined ? {} : { receive }),
    ...(transmit === undefined ? {} : { transmit }),
    ...(tunnel === undefined ? {} : { tunnel }),
    ...(warnings.length === 0 ? {} : { warnings }),
  };
}
