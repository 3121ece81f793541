/**
 * Shared steps and expectations for the end-to-end tests (test/e2e):
 *
 * - `transfer(rxArgs, txArgs, input)` starts a receiver on port 0, runs a
 *   transmitter to it with `txArgs(port)`, and returns both outcomes once
 *   both processes have exited, all under one deadline.
 * - `expectCleanTransfer(...)` asserts on everything a successful transfer at
 *   verbose 0 leaves behind: both exit codes 0, the receiver's stdout hashes
 *   to the input, the transmitter's stdout is empty, each stderr ends with
 *   its one-line summary and carries no error line, warning or stack trace.
 * - `expectOneLineError(stderr, pattern)` asserts a failure was reported as
 *   exactly one `viamillipede:` line matching `pattern`, with no stack trace.
 */
import { expect } from "bun:test";
import {
  errorLines,
  runTransmitter,
  STACK_LINE,
  startReceiver,
  within,
  type CliOutcome,
  type Receiver,
  type ReceiverOptions,
  type ReceiverOutcome,
  type TransmitterInput,
} from "./spawn.ts";

export interface TransferOutcome {
  port: number;
  rx: ReceiverOutcome;
  tx: CliOutcome;
}

/** Runs the transmitter against an already started receiver and waits for both to exit. */
export async function transferTo(receiver: Receiver, txArgs: readonly string[], input: TransmitterInput, deadlineMs: number): Promise<TransferOutcome> {
  const [tx, rx] = await within(deadlineMs, `transfer (tx ${txArgs.join(" ")})`, Promise.all([runTransmitter(txArgs, input), receiver.done()]));
  return { port: receiver.port, rx, tx };
}

/** Starts `rxArgs` (which should ask for port 0), then runs `txArgs(port)` with `input`. */
export async function transfer(
  rxArgs: readonly string[],
  txArgs: (port: number) => readonly string[],
  input: TransmitterInput,
  deadlineMs: number,
  receiverOptions: ReceiverOptions = {},
): Promise<TransferOutcome> {
  const receiver = await startReceiver(rxArgs, receiverOptions);
  return transferTo(receiver, txArgs(receiver.port), input, deadlineMs);
}

/** The receiver's stderr at verbose 0 after a clean transfer, summary aside: only its port. */
export function listeningOnly(port: number): string {
  return `viamillipede: listening on port ${port}\n`;
}

/** The end summary each role prints on success (src/status/format.ts summaryLine). */
export function summaryLine(stderr: string, role: "tx" | "rx"): string | undefined {
  return new RegExp(`^viamillipede ${role}: (?:sent|received) [^\n]*$`, "m").exec(stderr)?.[0];
}

/** A stderr without the end summaries, to compare the rest exactly. */
export function withoutSummaries(stderr: string): string {
  return stderr.replace(/^viamillipede (?:tx|rx): (?:sent|received) [^\n]*\n/gm, "");
}

export function expectCleanTransfer(outcome: TransferOutcome, expected: { sha256: string; bytes: number }): void {
  const { rx, tx, port } = outcome;
  // All at once, so a failure shows every stream.
  expect({
    rxExit: rx.exitCode,
    rxSignal: rx.signalCode,
    rxStdoutBytes: rx.stdoutBytes,
    rxStdoutSha256: rx.stdoutSha256,
    rxStderr: withoutSummaries(rx.stderr),
    txExit: tx.exitCode,
    txSignal: tx.signalCode,
    txStdout: tx.stdout,
    txStderr: withoutSummaries(tx.stderr),
  }).toEqual({
    rxExit: 0,
    rxSignal: null,
    rxStdoutBytes: expected.bytes,
    rxStdoutSha256: expected.sha256,
    rxStderr: listeningOnly(port),
    txExit: 0,
    txSignal: null,
    txStdout: "",
    txStderr: "",
  });
  // Each end ends with its one-line summary, naming the exact byte count.
  expect(summaryLine(tx.stderr, "tx")).toContain(`(${expected.bytes} bytes)`);
  expect(summaryLine(rx.stderr, "rx")).toContain(`(${expected.bytes} bytes)`);
}

/** Both ends exited 0 and the receiver's stdout is the input: the same length and sha256. */
export function expectDelivered(
  outcome: { rx: Pick<ReceiverOutcome, "exitCode" | "stdoutBytes" | "stdoutSha256">; tx: { exitCode: number | null } },
  input: { bytes: number; sha256: string },
): void {
  expect({ rx: outcome.rx.exitCode, tx: outcome.tx.exitCode, bytes: outcome.rx.stdoutBytes, sha256: outcome.rx.stdoutSha256 }).toEqual({
    rx: 0,
    tx: 0,
    bytes: input.bytes,
    sha256: input.sha256,
  });
}

/** Exactly one `viamillipede:` error line, matching `pattern`, and no stack trace. */
export function expectOneLineError(stderr: string, pattern: RegExp): void {
  const lines = errorLines(stderr);
  expect(lines, `stderr was:\n${stderr}`).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(stderr).not.toMatch(STACK_LINE);
}
