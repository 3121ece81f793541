/**
 * Telling a descriptor closed at start (`<&-`, `>&-`: Bun's /dev/null
 * stand-in) from a user's own /dev/null, in child processes under a real
 * shell; and which invocations use stdin and stdout at all.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { VmError } from "../../src/errors.ts";
import { parseArguments } from "../../src/cli/keywords.ts";
import { refuseClosedStdio, stdioUsed } from "../../src/cli/roles.ts";

const MODULE = join(import.meta.dir, "../../src/stdio-pipes.ts");
const LOG_MODULE = join(import.meta.dir, "../../src/log.ts");
/** As the CLI does: the logger is imported first (it touches process.stdout), then fd 0 and 1 are asked about. */
const SCRIPT = `import ${JSON.stringify(LOG_MODULE)}; import { closedAtStart } from ${JSON.stringify(MODULE)};
process.stderr.write(JSON.stringify([closedAtStart(0), closedAtStart(1)]));`;

async function underShell(redirect: string): Promise<[stdin: boolean, stdout: boolean]> {
  const child = Bun.spawn(["sh", "-c", `exec "$0" -e "$1" ${redirect}`, process.execPath, SCRIPT], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const [said, exitCode] = await Promise.all([new Response(child.stderr).text(), child.exited]);
  expect(exitCode, said).toBe(0);
  return JSON.parse(said);
}

describe.skipIf(process.platform !== "linux")("closedAtStart (Linux)", () => {
  const cases: [redirect: string, expected: [boolean, boolean]][] = [
    ["<&-", [true, false]],
    [">&-", [false, true]],
    ["<&- >&-", [true, true]],
    ["</dev/null >/dev/null", [false, false]],
    ["<>/dev/null 1<>/dev/null", [false, false]],
    ["</dev/null | cat", [false, false]],
  ];
  for (const [redirect, expected] of cases) {
    test(`${redirect} → stdin ${expected[0] ? "closed" : "open"}, stdout ${expected[1] ? "closed" : "open"}`, async () => {
      expect(await underShell(redirect)).toEqual(expected);
    });
  }
});

describe("which invocations use stdin and stdout", () => {
  const cases: [argv: string[], used: { stdin: boolean; stdout: boolean }][] = [
    [["rx", "1"], { stdin: false, stdout: true }],
    [["tx", "h", "1"], { stdin: true, stdout: false }],
    [["tx", "h", "1", "prbs", "7"], { stdin: false, stdout: false }],
    [["rx", "1", "prbs", "7"], { stdin: false, stdout: true }],
    [["rx", "1", "tx", "h", "2"], { stdin: true, stdout: true }],
    [["rx", "1", "tx", "h", "2", "terminate", "3"], { stdin: false, stdout: false }],
    [["rx", "1", "tx", "h", "2", "initiate", "s", "3"], { stdin: false, stdout: false }],
  ];
  for (const [argv, used] of cases) {
    test(argv.join(" "), () => {
      expect(stdioUsed(parseArguments(argv))).toEqual(used);
    });
  }

  test("only a closed descriptor the invocation uses is refused, with its own exit code", () => {
    const bothClosed = (): boolean => true;
    const refusal = (argv: string[]): number | undefined => {
      try {
        refuseClosedStdio(parseArguments(argv), bothClosed);
        return undefined;
      } catch (error) {
        return (error as VmError).exitCode;
      }
    };
    expect(refusal(["rx", "1"])).toBe(6);
    expect(refusal(["tx", "h", "1"])).toBe(7);
    expect(refusal(["tx", "h", "1", "prbs", "7"])).toBeUndefined();
    expect(refusal(["rx", "1", "tx", "h", "2", "terminate", "3"])).toBeUndefined();
    expect(refusal(["rx", "1", "tx", "h", "2"])).toBe(6);
  });
});
