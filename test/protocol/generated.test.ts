/**
 * src/protocol/xdr.generated.ts is what scripts/gen-protocol.ts makes of protocol/viamillipede.x,
 * the drift check can fail (unlike a check that returns `git diff`'s status), and the parser
 * names the line of anything it does not understand.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generate } from "../../scripts/gen-protocol.ts";

const ROOT = join(import.meta.dir, "..", "..");
const X_TEXT = readFileSync(join(ROOT, "protocol/viamillipede.x"), "utf8");
const COMMITTED = readFileSync(join(ROOT, "src/protocol/xdr.generated.ts"), "utf8");

describe("generated code", () => {
  test("the committed file is what the generator makes of the .x (run bun run gen:protocol)", () => {
    expect(COMMITTED).toBe(generate(X_TEXT));
  });

  test("generation is deterministic", () => {
    expect(generate(X_TEXT)).toBe(generate(X_TEXT));
  });

  test("a changed .x changes the output, so the check above can fail", () => {
    const changed = X_TEXT.replace("const MAX_ACK_IDS = 64;", "const MAX_ACK_IDS = 65;");
    expect(changed).not.toBe(X_TEXT);
    expect(generate(changed)).not.toBe(COMMITTED);
    expect(generate(changed)).toContain("export const MAX_ACK_IDS = 65;");
  });

  test("each definition carries its .x text", () => {
    expect(COMMITTED).toContain("// union frame switch (frame_kind kind) {\n// case FRAME_FOOT:");
    expect(COMMITTED).toContain("// const VM_MAGIC = 0x564d5031;\nexport const VM_MAGIC = 0x564d5031;");
  });
});

describe("gen-protocol --check, run in a scratch copy of the tree", () => {
  const dir = mkdtempSync(join(tmpdir(), "vm-gen-check-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const files = ["scripts/gen-protocol.ts", "protocol/viamillipede.x", "src/protocol/xdr.generated.ts"];
  for (const path of files) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    cpSync(join(ROOT, path), join(dir, path));
  }
  const run = (...args: string[]) => {
    const script = join(dir, "scripts/gen-protocol.ts");
    const p = Bun.spawnSync([process.execPath, script, ...args], { cwd: dir });
    return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
  };

  test("passes on the committed file, fails once the .x changes, passes after regenerating", () => {
    expect(run("--check")).toEqual({ code: 0, stdout: "", stderr: "" });

    const xPath = join(dir, "protocol/viamillipede.x");
    writeFileSync(xPath, X_TEXT.replace("const MAX_TEXT_BYTES = 256;", "const MAX_TEXT_BYTES = 255;"));
    expect(run("--check")).toEqual({
      code: 1,
      stdout: "",
      stderr: "src/protocol/xdr.generated.ts is stale; run bun run gen:protocol\n",
    });

    expect(run()).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(run("--check").code).toBe(0);
    expect(readFileSync(join(dir, "src/protocol/xdr.generated.ts"), "utf8")).toContain(
      "export const MAX_TEXT_BYTES = 255;",
    );
  });

  test("a syntax error in the .x exits 1 naming the file and line", () => {
    writeFileSync(join(dir, "protocol/viamillipede.x"), "const A = 1;\ntypedef int b;\n");
    const r = run("--check");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("protocol/viamillipede.x: line 2:");
  });
});

describe("parser errors name the line and the token", () => {
  // [what, .x text, expected message]
  const cases: [string, string, RegExp][] = [
    ["a missing ;", "const A = 1;\nstruct s {\n  unsigned int x\n};", /^line 4: expected ";", found "}"/],
    ["an unsupported definition", "\n\ntypedef int t;", /^line 3: .*found "typedef"/],
    ["a type used before it is declared", "struct s {\n  later x;\n};", /^line 2: unknown type.*"later"/],
    ["an unbounded array", "struct s {\n\n  opaque o<>;\n};", /^line 3: unbounded/],
    [
      "a case label from another enum",
      "enum e { X = 1 };\nunion u switch (e k) {\ncase Y: void;\n};",
      /^line 3: case label is not a member of e, found "Y"/,
    ],
    ["a stray character", "const A = 1;\nconst B = 2 $", /^line 2: unexpected character "\$"/],
    ["an unterminated comment", "const A = 1;\n/* oops", /^line 2: unterminated comment/],
    ["a name defined twice", "const A = 1;\nenum e { A = 2 };", /^line 2: "A" is already defined/],
    ["a size that is not a constant", "struct s { string t<MAX>; };", /^line 1: expected length.*"MAX"/],
  ];
  for (const [what, x, message] of cases) {
    test(what, () => {
      expect(() => generate(x)).toThrow(message);
    });
  }
});
