/**
 * The real CLI (`runAsEntry`: its keywords, signals, status board and exit
 * statuses) with each receiving session written to a file of its own
 * instead of a command: the in-process OutputFactory that stands in for
 * `exec` in the `serve` end-to-end tests (test/e2e/serve.test.ts).
 *
 *   bun test/support/serve-files.ts DIR rx 0 serve sessions 3 ...
 *
 * A session's bytes go to DIR/NAME.partial (NAME: its label, else its
 * session id in hex), renamed to DIR/NAME when the session finishes with the
 * whole stream, or to DIR/NAME.aborted when it fails: as a careful consumer
 * would, only a complete stream ever appears under its own name.
 */
import { closeSync, openSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import { runAsEntry } from "../../src/cli/main.ts";
import type { OutputFactory } from "../../src/rx/output.ts";

export function fileOutputs(dir: string): OutputFactory {
  return (info) => {
    const name = join(dir, info.label ?? info.sessionId.toString(16));
    const fd = openSync(`${name}.partial`, "w");
    const close = (to: string): void => {
      closeSync(fd);
      renameSync(`${name}.partial`, to);
    };
    return {
      hasVerdict: false,
      sink: {
        async write(bytes) {
          for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at);
        },
      },
      finish: async () => {
        close(name);
        return undefined;
      },
      abort: async () => {
        close(`${name}.aborted`);
        return undefined;
      },
    };
  };
}

if (import.meta.main) {
  const [dir, ...argv] = process.argv.slice(2);
  if (dir === undefined) throw new Error("usage: serve-files.ts DIR rx PORT serve ...");
  await runAsEntry(argv, { output: fileOutputs(dir) });
}
