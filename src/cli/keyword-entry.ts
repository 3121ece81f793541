/**
 * What a keyword table entry is (KeywordEntry) and what derives from one
 * entry alone (its flag names and hint). The table itself is
 * keyword-table.ts. Pure types and functions.
 */
import type { ReceiverOptions, ReportOptions, TransmitterOptions, TunnelOptions } from "../options.ts";
import type { ValueReader } from "./values.ts";

/**
 * Which end a keyword is for. "tx": a receiver alone checks its value, then
 * ignores it with one warning (scripts hand one option string to both ends,
 * as with the original). "rx": on a transmitter alone it is a usage error.
 * "both": either end, or both at once. "duplex": needs rx and tx in one process.
 */
export type KeywordRoles = "rx" | "tx" | "both" | "duplex";

/** Where `--help` lists a keyword (command.ts gives each section its title). */
export type HelpSection = "keywords" | "seeing" | "duplex";

/** Every field a keyword can set: the roles' options, the report's, and the tunnel. */
export interface Fields extends TransmitterOptions, ReceiverOptions, ReportOptions {
  tunnel: TunnelOptions;
}

export interface KeywordEntry<K extends keyof Fields = keyof Fields> {
  /** The keyword; its flag is `--name`. */
  name: string;
  /** Another spelling, as a keyword and as a flag. */
  alias?: string;
  /** Another flag name that is not a keyword (`--port`). */
  flagAlias?: string;
  roles: KeywordRoles;
  /** The value; a keyword without one is a switch that sets `on` (default true). */
  value?: {
    /** What the value looks like, in the help and in "needs a value" messages. */
    hint: string;
    /** The keyword form takes HOST PORT, the flag form HOST:PORT (IPv6 in brackets). */
    hostPort?: true;
    /**
     * The value is every word after the keyword (or its flag), to the end of
     * the line: none of them is read as a keyword or a flag, so a command's
     * own arguments cannot be mistaken for ours. One `--` right after it is dropped.
     */
    rest?: true;
    /** A value that parses and differs from the default, in keyword form (the table test runs it). */
    example: string;
    /** Reads the value's words; undefined when a role word comes bare (`rx --port 1`). */
    read(r: ValueReader): Fields[K] | undefined;
  };
  on?: Fields[K];
  /** The option field it sets, on each role it is for; none for a keyword kept only for compatibility. */
  field?: K;
  /** The field's value when the keyword is not given; without one the field is left out. */
  default?: Fields[K];
  /** A second time: combine, or throw. Unset: a switch keeps its value, a value is "given twice". */
  again?(previous: Fields[K], next: Fields[K]): Fields[K];
  section: HelpSection;
  /** The help column's left side, when it is not `name hint`. */
  usage?: string;
  /** What it does, one sentence; `--help` adds `tx:`/`rx:` from `roles` and wraps it. */
  help: string;
}

/** Ties an entry's reader, default and field together for the type checker. */
export function keyword<K extends keyof Fields>(entry: KeywordEntry<K>): KeywordEntry {
  return entry as unknown as KeywordEntry;
}

/** The value hint a flag shows: HOST PORT is one word there. */
export function flagHint(entry: KeywordEntry): string | undefined {
  return entry.value?.hostPort ? entry.value.hint.replace(" ", ":") : entry.value?.hint;
}

/** The flag names that stand for an entry, its own first. */
export function flagNames(entry: KeywordEntry): string[] {
  return [entry.name, ...[entry.flagAlias, entry.alias].filter((name) => name !== undefined)];
}
