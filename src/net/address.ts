/**
 * Addresses as the user writes them and as messages show them. Pure: no
 * resolver, no sockets.
 */

/** One IPv4 octet in decimal, without leading zeros. */
const V4_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])";
const V4 = `(?:${V4_OCTET}\\.){3}${V4_OCTET}`;
const V6_GROUP = "[0-9a-fA-F]{1,4}";
const IPV4_LITERAL = new RegExp(`^${V4}$`);
/**
 * RFC 4291 text forms: eight groups, one "::" for a run of zero groups, an
 * IPv4 tail, and an optional zone ("%eth0"). node:net's isIP reads the same
 * forms, but importing node:net adds 7-8 ms to every start, and starts are on
 * the clock (bench/wan.md).
 */
const IPV6_LITERAL = new RegExp(
  "^(?:" +
    `(?:${V6_GROUP}:){7}(?:${V6_GROUP}|:)|` +
    `(?:${V6_GROUP}:){6}(?:${V4}|:${V6_GROUP}|:)|` +
    `(?:${V6_GROUP}:){5}(?::${V4}|(?::${V6_GROUP}){1,2}|:)|` +
    `(?:${V6_GROUP}:){4}(?:(?::${V6_GROUP}){0,1}:${V4}|(?::${V6_GROUP}){1,3}|:)|` +
    `(?:${V6_GROUP}:){3}(?:(?::${V6_GROUP}){0,2}:${V4}|(?::${V6_GROUP}){1,4}|:)|` +
    `(?:${V6_GROUP}:){2}(?:(?::${V6_GROUP}){0,3}:${V4}|(?::${V6_GROUP}){1,5}|:)|` +
    `(?:${V6_GROUP}:){1}(?:(?::${V6_GROUP}){0,4}:${V4}|(?::${V6_GROUP}){1,6}|:)|` +
    `(?::(?:(?::${V6_GROUP}){0,5}:${V4}|(?::${V6_GROUP}){1,7}|:))` +
    ")(?:%[0-9a-zA-Z.:-]+)?$",
);

/** 4 for an IPv4 literal, 6 for an IPv6 one, 0 for anything else (a name, a typo). */
export function ipVersion(host: string): 0 | 4 | 6 {
  if (IPV4_LITERAL.test(host)) return 4;
  return IPV6_LITERAL.test(host) ? 6 : 0;
}

/** "host:port" for messages, with IPv6 literals in brackets ("[::1]:8834"). */
export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** RFC 1035 / 1123: a whole name (without a trailing dot) and one label, in bytes. */
export const MAX_HOST_NAME_BYTES = 253;
export const MAX_LABEL_BYTES = 63;
/** How much of a user's text a message quotes before cutting it short. */
const MAX_QUOTED_CHARS = 40;

/**
 * `text` quoted for a one-line message: control characters escaped, and a
 * long text cut short with its length, so a 100,000-character argument gives
 * a readable line.
 */
export function quoted(text: string): string {
  const escaped = (part: string): string => JSON.stringify(part).slice(1, -1).replaceAll("'", "\\'");
  const characters = [...text];
  if (characters.length <= MAX_QUOTED_CHARS) return `'${escaped(text)}'`;
  return `'${escaped(characters.slice(0, MAX_QUOTED_CHARS - 8).join(""))}…' (${characters.length} characters)`;
}

/**
 * Why `host` can be neither an IP address nor a host name, or undefined when
 * it can be one. A name is RFC 1123 labels (letters, digits, and '-' inside a
 * label) of 1..63 bytes joined by dots, 253 bytes at most, with an optional
 * final dot. '_' is also allowed: resolvers look such names up (/etc/hosts,
 * container networks) and DNS itself carries them. Anything else cannot
 * resolve, so it is a usage error rather than something to retry.
 */
export function hostProblem(host: string): string | undefined {
  if (host === "") return "it is empty";
  if (ipVersion(host) !== 0) return undefined;
  if (host.includes("\uFFFD")) return "it is not valid UTF-8";
  const stray = /[^A-Za-z0-9._-]/u.exec(host)?.[0];
  if (stray !== undefined) {
    if (stray.codePointAt(0)! > 0x7f) return `it contains ${quoted(stray)}; write an internationalized name in its ASCII form (xn--...)`;
    if (host.includes(":")) return "it is neither an IPv4 nor an IPv6 address";
    return `it contains ${quoted(stray)}; a host name has letters, digits, '-', '_' and '.'`;
  }
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  if (name.length > MAX_HOST_NAME_BYTES) return `it is ${name.length} bytes long; a host name has at most ${MAX_HOST_NAME_BYTES}`;
  for (const label of name.split(".")) {
    if (label === "") return "it has an empty label (two dots in a row, or a dot at the start)";
    if (label.length > MAX_LABEL_BYTES) return `its label ${quoted(label)} is ${label.length} bytes long; a label has at most ${MAX_LABEL_BYTES}`;
    if (label.startsWith("-") || label.endsWith("-")) return `its label ${quoted(label)} starts or ends with '-'`;
  }
  return undefined;
}
