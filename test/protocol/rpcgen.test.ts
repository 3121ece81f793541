/**
 * protocol/viamillipede.x stays in the subset rpcgen accepts, and the C it yields compiles: the
 * schema is usable by a C peer, not only by our generator. Skips, saying why, where rpcgen or a
 * C compiler with the TI-RPC headers is missing.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const X_PATH = join(import.meta.dir, "..", "..", "protocol", "viamillipede.x");
const TIRPC = "/usr/include/tirpc";
const hasRpcgen = Bun.which("rpcgen") !== null;
const hasCompiler = Bun.which("gcc") !== null && existsSync(join(TIRPC, "rpc", "rpc.h"));

if (!hasRpcgen) console.warn("rpcgen.test.ts: skipping, rpcgen is not on PATH (apt: rpcsvc-proto)");
else if (!hasCompiler) {
  console.warn(
    `rpcgen.test.ts: skipping the C compile, needs gcc and ${TIRPC}/rpc/rpc.h (apt: libtirpc-dev)`,
  );
}

describe("rpcgen", () => {
  // rpcgen names the header it #includes after its input, so the copy keeps the .x's name.
  const dir = mkdtempSync(join(tmpdir(), "vm-rpcgen-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(X_PATH, join(dir, "viamillipede.x"));

  const run = (cmd: string[]) => {
    const p = Bun.spawnSync(cmd, { cwd: dir });
    return { code: p.exitCode, stderr: p.stderr.toString() };
  };

  test.skipIf(!hasRpcgen)("accepts the .x (-h header, -c XDR routines)", () => {
    const ok = { code: 0, stderr: "" };
    expect(run(["rpcgen", "-h", "-o", "viamillipede.h", "viamillipede.x"])).toEqual(ok);
    expect(run(["rpcgen", "-c", "-o", "viamillipede_xdr.c", "viamillipede.x"])).toEqual(ok);
    expect(existsSync(join(dir, "viamillipede.h"))).toBe(true);
    expect(existsSync(join(dir, "viamillipede_xdr.c"))).toBe(true);
  });

  test.skipIf(!hasRpcgen || !hasCompiler)("its C compiles against TI-RPC", () => {
    if (!existsSync(join(dir, "viamillipede_xdr.c"))) {
      run(["rpcgen", "-h", "-o", "viamillipede.h", "viamillipede.x"]);
      run(["rpcgen", "-c", "-o", "viamillipede_xdr.c", "viamillipede.x"]);
    }
    const cc = run(["gcc", "-c", `-I${TIRPC}`, "-o", "viamillipede_xdr.o", "viamillipede_xdr.c"]);
    expect(cc).toEqual({ code: 0, stderr: "" });
  });
});
