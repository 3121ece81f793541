/**
 * End to end, seeing the transfer: the real CLI as two processes over loopback.
 *
 * 1. SIGUSR1 mid-transfer at both ends: each prints a status block with the
 *    documented fields (bytes, rates, feet in flight and window, the reorder
 *    buffer at rx, a row per connection and per link); the output is identical.
 * 2. The progress line under a pseudo-terminal (`script`): it appears, is
 *    redrawn in place several times with rate and ETA, and the final summary
 *    follows on a line of its own; on a terminal 40 columns wide (`stty cols
 *    40`) every drawing fits in 39 columns.
 * 3. `stats FILE` at both ends: valid against src/status/stats.schema.json,
 *    with the exact byte count and the same digest at both ends.
 * 4. `quiet` at both ends: nothing at all on stderr, exit 0.
 * 5. SIGUSR2 steps the verbosity.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import schema from "../../src/status/stats.schema.json";
import { expectDelivered, summaryLine } from "../support/e2e.ts";
import { validate } from "../support/json-schema.ts";
import {
  errorLines,
  freePort,
  killLeftovers,
  makeInput,
  makeTempDir,
  MAIN,
  startReceiver,
  startTransmitter,
  within,
  type Input,
} from "../support/spawn.ts";
import { MIB } from "../support/sizes.ts";

let temp: ReturnType<typeof makeTempDir>;
let input: Input; // 48 MiB: with ratelimit 16M, three seconds

beforeAll(async () => {
  temp = makeTempDir("status");
  input = await makeInput(temp.path, 48 * MIB, "status");
});
afterAll(() => temp.remove());
afterEach(killLeftovers);

const hasScript = Bun.spawnSync(["sh", "-c", "command -v script"]).exitCode === 0;
if (!hasScript) console.log("skipping the progress-line test: 'script' (util-linux) not found to give it a terminal");

describe("status and progress", () => {
  test("SIGUSR1 at both ends mid-transfer prints a status block; the output is unchanged", async () => {
    const receiver = await startReceiver(["rx", "0"]);
    const transmitter = startTransmitter(["tx", "127.0.0.1", String(receiver.port), "threads", "4", "ratelimit", "16M"], { file: input.path });
    await within(10_000, "8 MiB through", receiver.stdout.untilBytes(8 * MIB));
    receiver.proc.kill("SIGUSR1");
    transmitter.proc.kill("SIGUSR1");
    const [tx, rx] = await within(30_000, "the transfer", Promise.all([transmitter.done(), receiver.done()]));
    expectDelivered({ rx, tx }, input);
    for (const [role, stderr] of [["tx", tx.stderr], ["rx", rx.stderr]] as const) {
      expect(stderr).toMatch(new RegExp(`^viamillipede ${role} status after \\d+:\\d\\d$`, "m"));
      expect(stderr).toMatch(/^ {2}bytes {8}\d+(\.\d)? MiB \(\d+\)$/m);
      expect(stderr).toMatch(/^ {2}rate {9}.+\/s now, .+\/s average$/m);
      expect(stderr).toMatch(/^ {2}feet {9}\d+ done, \d+ in flight, window \d+/m);
      expect(stderr).toMatch(/^ {2}retransmits {2}\d+$/m);
      expect(stderr).toMatch(/^ {2}connection +link +state +bytes +feet +retransmits +rtt$/m);
      expect(stderr).toMatch(/^ {2}\d+ +127\.0\.0\.1:\d+ +up +\S+ \S+ +\d+ +\d+ +(\d+\.\d ms|-)$/m);
      expect(stderr).toMatch(/^ {2}link +address +state +connections +share +rate$/m);
      expect(stderr).toMatch(/^ {2}1 +127\.0\.0\.1:\d+ +up +\d+ +\d+% +.+\/s$/m);
      expect(errorLines(stderr).filter((line) => !line.includes("listening"))).toEqual([]);
    }
    expect(rx.stderr).toMatch(/window 32, reorder buffer \d+$/m);
  }, 45_000);

  test.skipIf(!hasScript)("on a terminal, a progress line is redrawn in place, then the summary", async () => {
    const receiver = await startReceiver(["rx", "0"]);
    const command = `'${process.execPath}' '${MAIN}' tx 127.0.0.1 ${receiver.port} ratelimit 24M size ${input.bytes} < '${input.path}'`;
    // script gives the command a pseudo-terminal; everything it writes there comes out on script's stdout.
    const terminal = Bun.spawn(["script", "-qfec", command, "/dev/null"], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
    const [screen, code, rx] = await within(30_000, "the transfer", Promise.all([new Response(terminal.stdout).text(), terminal.exited, receiver.done()]));
    expect({ code, rx: rx.exitCode, sha256: rx.stdoutSha256 }).toEqual({ code: 0, rx: 0, sha256: input.sha256 });
    const redraws = screen.split("\r\x1b[2K").slice(1);
    expect(redraws.length).toBeGreaterThanOrEqual(4);
    for (const line of redraws.slice(0, -1)) {
      expect(line).toMatch(/^tx \d+(\.\d)? (B|KiB|MiB) of 48\.0 MiB \(\d+%\) .+\/s \d+:\d\d conns \d+\/\d+ links \d\/1( ETA \d+:\d\d)?$/);
    }
    expect(redraws.some((line) => / ETA \d+:\d\d$/.test(line))).toBe(true);
    // The last drawing shows everything done, then the summary starts a line of its own.
    const last = redraws.at(-1)!;
    expect(last).toMatch(/^tx 48\.0 MiB of 48\.0 MiB \(100%\)/);
    expect(last).toMatch(/\r?\nviamillipede tx: sent 48\.0 MiB \(50331648 bytes\) in/);
  }, 45_000);

  test.skipIf(!hasScript)("on a terminal 40 columns wide, the progress line fits in 39: fields left out, none wrapped", async () => {
    const receiver = await startReceiver(["rx", "0"]);
    const command = `stty cols 40; exec '${process.execPath}' '${MAIN}' tx 127.0.0.1 ${receiver.port} ratelimit 24M size ${input.bytes} < '${input.path}'`;
    const terminal = Bun.spawn(["script", "-qfec", command, "/dev/null"], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
    const [screen, code, rx] = await within(30_000, "the transfer", Promise.all([new Response(terminal.stdout).text(), terminal.exited, receiver.done()]));
    expect({ code, rx: rx.exitCode, sha256: rx.stdoutSha256 }).toEqual({ code: 0, rx: 0, sha256: input.sha256 });
    // Each drawing up to the end of its line (the last is followed by the summary).
    const redraws = screen.split("\r\x1b[2K").slice(1).map((text) => text.split(/\r?\n/)[0]!);
    expect(redraws.length).toBeGreaterThanOrEqual(4);
    for (const line of redraws) {
      expect(line.length).toBeLessThanOrEqual(39);
      expect(line).toMatch(/^tx \d+(\.\d)? (B|KiB|MiB) \(\d+%\)/);
    }
    expect(redraws.at(-1)).toMatch(/^tx 48\.0 MiB \(100%\)/);
  }, 45_000);

  test("stats FILE at both ends is valid against its schema and agrees with the transfer", async () => {
    const txStats = join(temp.path, "tx.json");
    const rxStats = join(temp.path, "rx.json");
    const receiver = await startReceiver(["rx", "0", "stats", rxStats]);
    const transmitter = startTransmitter(["tx", "127.0.0.1", String(receiver.port), "threads", "3", "size", String(input.bytes), "stats", txStats], {
      file: input.path,
    });
    const [tx, rx] = await within(30_000, "the transfer", Promise.all([transmitter.done(), receiver.done()]));
    expect({ tx: tx.exitCode, rx: rx.exitCode, sha256: rx.stdoutSha256 }).toEqual({ tx: 0, rx: 0, sha256: input.sha256 });
    const documents = [txStats, rxStats].map((file) => JSON.parse(readFileSync(file, "utf8")));
    for (const document of documents) {
      expect(validate(schema as Parameters<typeof validate>[0], document)).toEqual([]);
      expect(document).toMatchObject({ version: 2, exitCode: 0, error: null });
      expect(document.transfers).toHaveLength(1);
      expect(document.transfers[0]).toMatchObject({ bytes: input.bytes, feet: 24 });
    }
    const [txDoc, rxDoc] = documents;
    expect(txDoc.transfers[0]).toMatchObject({ role: "tx", expectedBytes: input.bytes });
    expect(rxDoc.transfers[0]).toMatchObject({ role: "rx", expectedBytes: null });
    expect(txDoc.transfers[0].digest).toMatch(/^[0-9a-f]{16}$/);
    expect(rxDoc.transfers[0].digest).toBe(txDoc.transfers[0].digest);
    expect(txDoc.transfers[0].connections.length).toBeGreaterThanOrEqual(3);
    expect(txDoc.transfers[0].links).toHaveLength(1);
    // The summaries agree with the files.
    expect(summaryLine(tx.stderr, "tx")).toContain(`(${input.bytes} bytes)`);
    expect(summaryLine(rx.stderr, "rx")).toContain(`(${input.bytes} bytes)`);
  }, 45_000);

  test("quiet at both ends: nothing on stderr, exit 0", async () => {
    const port = freePort();
    const receiver = Bun.spawn([process.execPath, MAIN, "rx", String(port), "quiet"], { stdout: "pipe", stderr: "pipe" });
    // A fixed port and no listening line in quiet mode: the transmitter re-dials a refused port until it listens (patience).
    const transmitter = Bun.spawn([process.execPath, MAIN, "tx", "127.0.0.1", String(port), "quiet"], { stdin: Bun.file(input.path), stdout: "pipe", stderr: "pipe" });
    const [txErr, rxErr, txCode, rxCode, out] = await within(
      30_000,
      "the quiet transfer",
      Promise.all([
        new Response(transmitter.stderr).text(),
        new Response(receiver.stderr).text(),
        transmitter.exited,
        receiver.exited,
        new Response(receiver.stdout).arrayBuffer(),
      ]),
    );
    expect({ txErr, rxErr, txCode, rxCode, bytes: out.byteLength }).toEqual({ txErr: "", rxErr: "", txCode: 0, rxCode: 0, bytes: input.bytes });
  }, 45_000);

  test("SIGUSR2 steps the verbosity", async () => {
    const receiver = await startReceiver(["rx", "0"]);
    receiver.proc.kill("SIGUSR2");
    await within(5_000, "the verbosity line", receiver.stderr.until(/verbose 1/));
    receiver.proc.kill("SIGUSR2");
    await within(5_000, "the second step", receiver.stderr.until(/verbose 5/));
    receiver.proc.kill("SIGINT");
    const rx = await receiver.done();
    expect(rx.exitCode).toBe(130);
    expect(rx.stderr).toContain("viamillipede: verbose 1 (SIGUSR2 steps through 0, 1, 5, 10)");
  }, 20_000);
});
