/**
 * protocol/viamillipede.x → src/protocol/xdr.generated.ts (@stellar/js-xdr v5 builders).
 *
 * No npm package parses `.x` files, so this is a tokenizer and a recursive-descent parser for the
 * subset of RFC 4506 our schema uses: const, enum, struct, and union switching on an enum.
 * Anything else is an error naming its line, so a new construct in the `.x` is never silently
 * mistranslated.
 *
 *   bun scripts/gen-protocol.ts           write the generated file
 *   bun scripts/gen-protocol.ts --check   exit 1 if the committed file differs from a fresh one
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const X_PATH = "protocol/viamillipede.x";
const OUT_PATH = "src/protocol/xdr.generated.ts";
const HEADER =
  `// DO NOT EDIT. Generated from ${X_PATH} by scripts/gen-protocol.ts; ` +
  "run `bun run gen:protocol`.";

// ---- tokens ------------------------------------------------------------------------------

type Token = {
  kind: "ident" | "number" | "punct" | "eof";
  text: string;
  line: number;
  /** Offset just past the token: definitions are sliced out of the source by it. */
  end: number;
};

const KEYWORDS = new Set(
  ("bool case const default double enum float hyper int opaque quadruple string struct " +
    "switch typedef union unsigned void").split(" "),
);

// Whitespace, comments, identifiers, numbers (decimal or hex, maybe negative), punctuation.
const TOKEN =
  /\s+|\/\*[\s\S]*?\*\/|\/\/[^\n]*|[A-Za-z_]\w*|-?(?:0x[0-9a-fA-F]+|\d+)|[{}()[\]<>;:,=]/y;

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  for (let at = 0; at < src.length; ) {
    TOKEN.lastIndex = at;
    const text = TOKEN.exec(src)?.[0];
    if (text === undefined) {
      if (src.startsWith("/*", at)) throw new Error(`line ${line}: unterminated comment`);
      throw new Error(`line ${line}: unexpected character ${JSON.stringify(src[at])}`);
    }
    const c = text[0] ?? "";
    const kind = /[A-Za-z_]/.test(c) ? "ident" : /[-\d]/.test(c) ? "number" : "punct";
    // Blanks and comments are not tokens; the emitter copies them from the source by offset.
    if (!/\s|\//.test(c)) tokens.push({ kind, text, line, end: at + text.length });
    line += text.split("\n").length - 1;
    at += text.length;
  }
  tokens.push({ kind: "eof", text: "", line, end: src.length });
  return tokens;
}

// ---- names -------------------------------------------------------------------------------

// An underscore before a digit stays (`xxh3_64` → `xxh3_64`, not the ambiguous `xxh364`).
const camel = (name: string) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const pascal = (name: string) => camel(name).replace(/^[a-z]/, (c) => c.toUpperCase());

// ---- parse + emit ------------------------------------------------------------------------

/** TypeScript source for the definitions in `xText`: deterministic, a pure function. */
export function generate(xText: string): string {
  const tokens = tokenize(xText);
  let pos = 0;
  const consts = new Set<string>(); // usable as sizes and enum values
  const types = new Map<string, Set<string> | null>(); // .x type → its enum members, or null
  const taken = new Set<string>(); // every .x and TypeScript name: they share one namespace
  const builders = new Set<string>(); // js-xdr imports actually used

  const peek = (): Token => tokens[pos] ?? tokens[tokens.length - 1]!;
  const fail = (tok: Token, msg: string): never => {
    const found = tok.kind === "eof" ? "end of file" : JSON.stringify(tok.text);
    throw new Error(`line ${tok.line}: ${msg}, found ${found}`);
  };
  const next = (): Token => (peek().kind === "eof" ? peek() : tokens[pos++]!);
  const accept = (text: string): boolean => peek().text === text && (next(), true);
  const expect = (text: string): Token =>
    peek().text === text ? next() : fail(peek(), `expected "${text}"`);
  const name = (what: string): string => {
    const tok = peek();
    if (tok.kind !== "ident" || KEYWORDS.has(tok.text)) fail(tok, `expected ${what} name`);
    return next().text;
  };
  const declare = (tok: Token, ...names: string[]) => {
    for (const n of names) if (taken.has(n)) fail(tok, `"${n}" is already defined`);
    for (const n of names) taken.add(n);
  };
  const use = (builder: string, args = ""): string => {
    builders.add(builder);
    return `${builder}(${args})`;
  };

  // A literal (kept as written, so hex stays hex) or a constant declared above.
  // rpcgen reads a leading 0 as octal; TypeScript would not, so it is refused.
  const value = (what: string): string => {
    const tok = next();
    if (tok.kind === "number" && /^-?0\d/.test(tok.text)) fail(tok, "octal is not supported");
    if (tok.kind === "number" || consts.has(tok.text)) return tok.text;
    return fail(tok, `expected ${what} (a number or a declared const)`);
  };
  // `[N]` or `<MAX>`. An unbounded `<>` is refused: every length needs a limit to check against.
  const size = (open: "[" | "<"): string => {
    expect(open);
    if (open === "<" && peek().text === ">") fail(peek(), "unbounded <> is not allowed");
    const n = value("length");
    if (n.startsWith("-")) fail(tokens[pos - 1]!, "a length cannot be negative");
    expect(open === "[" ? "]" : ">");
    return n;
  };

  const typeSpecifier = (): string => {
    const tok = next();
    if (tok.text === "unsigned") {
      if (accept("int")) return use("uint32");
      if (accept("hyper")) return use("uint64");
      return fail(peek(), `expected "int" or "hyper" after "unsigned"`);
    }
    if (tok.text === "int") return use("int32");
    if (tok.text === "hyper") return use("int64");
    if (tok.text === "bool") return use("bool");
    // Only earlier types: the .x is in dependency order, as C needs too, so no `lazy`.
    if (types.has(tok.text)) return pascal(tok.text);
    const unknown = tok.kind === "ident" && !KEYWORDS.has(tok.text);
    return fail(tok, unknown ? "unknown type (declare it above its use)" : "unsupported type");
  };

  /** `T x`, `T x[N]`, `T x<MAX>`, `opaque x[N]`, `opaque x<MAX>`, `string x<MAX>`. */
  const declaration = (): { field: string; ts: string } => {
    if (accept("opaque")) {
      const field = name("field");
      const ts = peek().text === "[" ? use("opaque", size("[")) : use("varOpaque", size("<"));
      return { field, ts };
    }
    if (accept("string")) {
      const field = name("field");
      return { field, ts: use("string", size("<")) };
    }
    const type = typeSpecifier();
    const field = name("field");
    if (peek().text === "[") return { field, ts: use("fixedArray", `${type}, ${size("[")}`) };
    if (peek().text === "<") return { field, ts: use("array", `${type}, ${size("<")}`) };
    return { field, ts: type };
  };

  /** One top-level definition: its TypeScript, and the offset where its `.x` text ends. */
  const definition = (): { code: string; end: number } => {
    const keyword = next();
    const lines: string[] = [];
    let typeName: string | null = null; // types also get `export type`
    const start = (builder: string, what: string): string => {
      const tok = peek();
      const id = name(what);
      typeName = pascal(id);
      declare(tok, id, typeName);
      builders.add(builder);
      lines.push(`export const ${typeName} = ${builder}("${typeName}", {`);
      return id;
    };

    if (keyword.text === "const") {
      const tok = peek();
      const id = name("constant");
      declare(tok, id);
      expect("=");
      lines.push(`export const ${id} = ${value("value")};`);
      consts.add(id);
    } else if (keyword.text === "enum") {
      const id = start("enumType", "enum");
      const members = new Set<string>();
      expect("{");
      do {
        const tok = peek();
        const member = name("enum member");
        declare(tok, member);
        members.add(member);
        expect("=");
        lines.push(`  ${member}: ${value("enum value")},`);
      } while (accept(","));
      expect("}");
      lines.push("});");
      types.set(id, members);
    } else if (keyword.text === "struct") {
      const id = start("struct", "struct");
      const fields = new Set<string>();
      expect("{");
      do {
        const tok = peek();
        const { field, ts } = declaration();
        if (fields.has(camel(field))) fail(tok, `duplicate field "${field}"`);
        fields.add(camel(field));
        lines.push(`  ${camel(field)}: ${ts},`);
        expect(";");
      } while (peek().text !== "}");
      expect("}");
      lines.push("});");
      types.set(id, null);
    } else if (keyword.text === "union") {
      const id = start("union", "union");
      expect("switch");
      expect("(");
      const switchTok = peek();
      const switchType = name("discriminant type");
      const members = types.get(switchType);
      if (!members) return fail(switchTok, "a union must switch on an enum declared above");
      const switchKey = camel(name("discriminant"));
      expect(")");
      expect("{");
      lines.push(`  switchOn: ${pascal(switchType)},`, `  switchKey: "${switchKey}",`);
      lines.push("  cases: [");
      const labels = new Set<string>();
      do {
        expect("case");
        const labelTok = peek();
        const label = name("case label");
        if (!members.has(label)) fail(labelTok, `case label is not a member of ${switchType}`);
        if (labels.has(label)) fail(labelTok, "duplicate case");
        labels.add(label);
        expect(":");
        let arm: string;
        if (accept("void")) arm = use("voidType");
        else {
          const armTok = peek();
          const { field, ts } = declaration();
          if (camel(field) === switchKey) fail(armTok, "an arm cannot share the discriminant's name");
          arm = use("field", `"${camel(field)}", ${ts}`);
        }
        expect(";");
        const discriminant = `${pascal(switchType)}.${label}`;
        lines.push(`    ${use("unionCase", `"${label}", ${discriminant}, ${arm}`)},`);
      } while (peek().text === "case");
      if (peek().text === "default") fail(peek(), "default arms are not supported");
      expect("}");
      lines.push("  ],", "});");
      types.set(id, null);
    } else {
      fail(keyword, "expected const, enum, struct or union");
    }
    const end = expect(";").end;
    if (typeName) lines.push(`export type ${typeName} = Infer<typeof ${typeName}>;`);

    // A comment trailing the final ";" on its line belongs to this definition.
    const eol = xText.indexOf("\n", end);
    const rest = xText.slice(end, eol < 0 ? xText.length : eol);
    const trailing = /^\s*(\/\*.*?\*\/|\/\/.*)?\s*$/.test(rest);
    return { code: lines.join("\n"), end: trailing ? end + rest.length : end };
  };

  // Above each definition goes the .x text since the previous one (doc comment, section
  // headings, the definition itself) verbatim, as `//` lines: a `/* */` block could not hold
  // the .x's own comments.
  const sections: string[] = [];
  let from = 0;
  while (peek().kind !== "eof") {
    const { code, end } = definition();
    sections.push(`${asComment(xText.slice(from, end))}\n${code}`);
    from = end;
  }
  const tail = asComment(xText.slice(from));
  if (tail) sections.push(tail);

  const imports = [
    `import { ${[...builders].sort().join(", ")} } from "@stellar/js-xdr";`,
    `import type { Infer } from "@stellar/js-xdr";`,
  ].join("\n");
  return `${[HEADER, imports, ...sections].join("\n\n")}\n`;
}

/** `.x` text as `//` lines; blank lines at either end dropped, trailing spaces trimmed. */
function asComment(text: string): string {
  const lines = text.split("\n").map((l) => l.trimEnd());
  while (lines[0] === "") lines.shift();
  while (lines.at(-1) === "") lines.pop();
  return lines.map((l) => (l ? `// ${l}` : "//")).join("\n");
}

// ---- CLI ---------------------------------------------------------------------------------

if (import.meta.main) {
  const root = join(import.meta.dir, "..");
  let fresh: string;
  try {
    fresh = generate(readFileSync(join(root, X_PATH), "utf8"));
  } catch (error) {
    console.error(`${X_PATH}: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
  if (process.argv.includes("--check")) {
    let current: string | null = null;
    try {
      current = readFileSync(join(root, OUT_PATH), "utf8");
    } catch {
      // missing is as stale as different
    }
    if (current !== fresh) {
      console.error(`${OUT_PATH} is stale; run bun run gen:protocol`);
      process.exit(1);
    }
  } else {
    writeFileSync(join(root, OUT_PATH), fresh);
  }
}
