/**
 * The value parsers behind the keyword table (keyword-table.ts): numbers in
 * decimal or 0x-hex, byte counts with K/M/G/T, hosts, compression, the
 * checkphrase, and the readers that take a keyword's words (ValueReader).
 * Pure: each turns words into a value or throws VmError("usage") with a
 * one-line message that names the fix.
 */
import { VmError } from "../errors.ts";
import { hostProblem, quoted } from "../net/address.ts";
import { COMPRESSION_LEVELS, MAX_BUFFER_BYTES, MAX_RATE_BYTES_PER_S, MIN_BUFFER_BYTES, MIN_WINDOW_FEET, type Compression, type TunnelOptions } from "../options.ts";
import { MAX_CHECKPHRASE_BYTES, MAX_FOOT_BYTES, MIN_FOOT_BYTES } from "../protocol/xdr.generated.ts";

export const MIN_PORT = 1;
export const MAX_PORT = 65535;
/** `rx 0` asks the system for a free port; the receiver prints the one it got. */
export const ANY_PORT = 0;
/** The longest wait a JS timer can express (2^31 - 1 ms), in whole seconds. */
export const MAX_PATIENCE_S = 2_147_483;

/** `ratelimit` and `size` suffixes: powers of 1024. */
const BYTE_UNITS: Readonly<Record<string, number>> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

export function usage(message: string): VmError {
  return new VmError("usage", message);
}

/** Decimal or 0x-hex, digits only: no sign, fraction, exponent or trailing junk. */
export const NUMBER_TEXT = /^(?:0[xX][0-9a-fA-F]+|[0-9]+)$/;

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
export function unbracket(host: string): string {
  return /^\[.*\]$/.test(host) ? host.slice(1, -1) : host;
}

/**
 * A host to dial: an IP address or a name that could resolve. One that never
 * can (bad characters, too long, not UTF-8) is a usage error here, not
 * something the transmitter retries for `patience`.
 */
export function parseHost(text: string, keyword: string): string {
  const host = unbracket(text);
  if (host === "") throw usage(`${keyword} needs a HOST, got '${text}'; e.g. '${keyword} 127.0.0.1 8834'`);
  const problem = hostProblem(host);
  if (problem !== undefined) throw usage(`${keyword} host ${quoted(host)} is not an IP address or a host name: ${problem}`);
  return host;
}

/** `bind ADDRESS`: where rx listens, checked like a host to dial. */
export function parseBindAddress(text: string): string {
  const address = unbracket(text);
  if (address === "") throw usage("bind needs an ADDRESS: 'bind ::1' or 'bind 127.0.0.1'");
  const problem = hostProblem(address);
  if (problem !== undefined) throw usage(`bind address ${quoted(address)} is not an IP address or a host name: ${problem}`);
  return address;
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

/** `buffer 256M` → 268435456: bytes, as `size`, within MIN_BUFFER_BYTES..MAX_BUFFER_BYTES. */
export function parseBuffer(text: string): number {
  const bytes = byteCount(text);
  if (bytes === undefined) {
    throw usage(`buffer '${text}' is not a byte count; write bytes, e.g. 'buffer 256M' (K, M, G, T are powers of 1024)`);
  }
  if (!Number.isSafeInteger(bytes) || bytes < MIN_BUFFER_BYTES || bytes > MAX_BUFFER_BYTES) {
    throw usage(`buffer ${text} is out of range; use ${MIN_BUFFER_BYTES / 2 ** 20}M..${MAX_BUFFER_BYTES / 2 ** 30}G (the window must hold ${MIN_WINDOW_FEET} feet)`);
  }
  return bytes;
}

/** `foot 512K` → 524288: bytes, as `size`, within the protocol's MIN_FOOT_BYTES..MAX_FOOT_BYTES (4K..16M); or `auto`. */
export function parseFoot(text: string): number | "auto" {
  if (text === "auto") return "auto";
  const bytes = byteCount(text);
  if (bytes === undefined) {
    throw usage(`foot '${text}' is neither auto nor a byte count; write bytes, e.g. 'foot 512K' (K, M, G, T are powers of 1024)`);
  }
  if (!Number.isSafeInteger(bytes) || bytes < MIN_FOOT_BYTES || bytes > MAX_FOOT_BYTES) {
    throw usage(`foot ${text} is out of range; use ${MIN_FOOT_BYTES / 1024}K..${MAX_FOOT_BYTES / 2 ** 20}M`);
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

/** `checkphrase WORD`: 1..MAX_CHECKPHRASE_BYTES bytes of UTF-8, no NUL. */
export function parseCheckphrase(phrase: string): string {
  const bytes = new TextEncoder().encode(phrase).length;
  if (bytes < 1 || bytes > MAX_CHECKPHRASE_BYTES) {
    throw usage(`checkphrase is ${bytes} bytes; use 1..${MAX_CHECKPHRASE_BYTES} bytes`);
  }
  // The wire's strings carry no zero bytes (protocol/README.md): C peers read them as C strings.
  if (phrase.includes("\0")) throw usage("checkphrase contains a NUL byte; use a word without one");
  return phrase;
}

/** A tunnel has one end per side: a second terminate or initiate is a mistake. */
export function onlyTunnel(previous: TunnelOptions, tunnel: TunnelOptions): TunnelOptions {
  if (previous.kind === tunnel.kind) throw usage(`${tunnel.kind} is given twice; a tunnel carries one connection`);
  throw usage("terminate and initiate are the two ends of one tunnel; give terminate on one side and initiate on the other");
}

/** `--tx HOST:PORT` (or `--initiate`), with IPv6 literals in brackets: `[::1]:8834`. */
export function splitHostPort(text: string, flag: string): [host: string, port: string] {
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

/** The words after a keyword, for its value reader. */
export interface ValueReader {
  /** The keyword being read, for messages. */
  readonly keyword: string;
  /** The entry's example value, for messages. */
  readonly example: string;
  /** The next word; a usage error `KEYWORD needs a value: 'KEYWORD HINT'` (the entry's hint by default) when there is none. */
  required(hint?: string): string;
  /** The next word if there is one that can be a value. */
  optional(): string | undefined;
  /** Whether the field already has a value, for a keyword that refuses a second before reading it. */
  readonly repeated: boolean;
  /** Every word left on the line (an entry with `value.rest`: nothing after it is a keyword or a flag). */
  rest(): string[];
}

/** `keyword NUMBER` within min..max. */
export function numberIn(min: number, max: number): (r: ValueReader) => number {
  return (r) => parseNumber(r.required(), r.keyword, min, max);
}

/** `keyword FILE`, not empty. */
export function file(r: ValueReader): string {
  const path = r.required();
  if (path === "") throw usage(`${r.keyword} needs a FILE: '${r.keyword} ${r.example}'`);
  return path;
}

/** HOST then PORT, for `tx` and `initiate`; `example` is the port suggested when it is missing. */
export function hostAndPort(r: ValueReader, hostText: string, example: number): { host: string; port: number } {
  const host = parseHost(hostText, r.keyword);
  const port = r.optional();
  if (port === undefined) throw usage(`${r.keyword} ${hostText} needs a PORT: '${r.keyword} ${hostText} ${example}'`);
  return { host, port: parseNumber(port, `${r.keyword} port`, MIN_PORT, MAX_PORT) };
}
