/**
 * `serve` in one process over the in-memory network: one receiver hosting
 * several transfers at once, each into its own output (a per-session memory
 * output from an OutputFactory, as `exec` gives each session its command),
 * the real transmitter on the other end. What it proves: concurrent streams
 * arrive identical and apart; past `sessions N` a newcomer is refused busy
 * while a place frees up for the next; a drain (SIGTERM) refuses new
 * transfers, lets the running ones finish, and says how they went; an
 * abandoned session gives its place away and its output is aborted.
 */
import { describe, expect, test } from "bun:test";
import { VmError } from "../../src/errors.ts";
import type { ReceiverOptions, TransmitterOptions } from "../../src/options.ts";
import type { OutputFactory, SessionInfo } from "../../src/rx/output.ts";
import { receive, type ReceiverIo, type ReceiveSummary } from "../../src/rx/receiver.ts";
import { memorySink } from "../../src/rx/stdout.ts";
import type { TransferFigures } from "../../src/status/figures.ts";
import type { ByteSource } from "../../src/tx/stdin.ts";
import { transmit } from "../../src/tx/transmitter.ts";
import { footChecksum } from "../../src/protocol/digest.ts";
import { encodeFootRecord, encodeHello } from "../../src/protocol/messages.ts";
import { CAP_NONE, ChecksumKind, VM_MAGIC, VM_PROTOCOL_VERSION, type Hello } from "../../src/protocol/xdr.generated.ts";
import { memorySource } from "../support/memory-source.ts";
import { pattern } from "../support/pattern.ts";
import { VirtualClock } from "../support/virtual-clock.ts";
import { MemoryNetwork } from "./memory-network.ts";

const FOOT = 64 * 1024;
const common = { verbose: 0, checkphrase: "", patienceS: 10, timeoutS: 1, chaosEvery: 0 };

/** Each session's output in memory, by label, and how each ended. */
function memoryOutputs() {
  const outputs = new Map<string, { info: SessionInfo; sink: ReturnType<typeof memorySink>; end: "finished" | VmError | undefined }>();
  const factory: OutputFactory = (info) => {
    const record = { info, sink: memorySink(), end: undefined as "finished" | VmError | undefined };
    outputs.set(info.label ?? info.sessionId.toString(16), record);
    return {
      sink: record.sink,
      hasVerdict: false,
      finish: async () => {
        record.end = "finished";
        return undefined;
      },
      abort: async (reason) => {
        record.end = reason;
        return undefined;
      },
    };
  };
  return { outputs, factory };
}

/** A serving receiver on `network`, once it listens; `drain` stops it as SIGTERM would. */
async function servingReceiver(network: MemoryNetwork, options: Partial<ReceiverOptions>, io: Partial<ReceiverIo>) {
  let listening!: (port: number) => void;
  const ready = new Promise<number>((resolve) => (listening = resolve));
  const drain = new AbortController();
  let figures: () => TransferFigures = () => {
    throw new Error("the receiver never said how to read its figures");
  };
  const rx: Promise<ReceiveSummary> = receive(
    { ...common, port: 0, bind: undefined, windowFeet: 8, serve: true, ...options },
    { network, drain: drain.signal, observe: (read) => (figures = read), ...io, onListening: listening },
  );
  return { port: await ready, rx, drain: () => drain.abort("SIGTERM"), figures: () => figures() };
}

function txOptions(port: number, label: string, extra: Partial<TransmitterOptions> = {}): TransmitterOptions {
  return { ...common, targets: [{ host: "memory", port }], threads: 2, footBytes: FOOT, label, ...extra };
}

/** A hello for session `sessionId` (no checkphrase, no capabilities), for a transmitter written by hand. */
function helloFor(sessionId: bigint): Hello {
  return { magic: VM_MAGIC, protocolVersion: VM_PROTOCOL_VERSION, sessionId, checkphrase: new Uint8Array(), footBytes: FOOT, capabilities: CAP_NONE, connectionId: 0 };
}

/** A source that gives `bytes` up to `holdAt`, then waits for `release()` before the rest. */
function heldSource(bytes: Uint8Array, holdAt: number): { source: ByteSource; reached: Promise<void>; release(): void } {
  let at = 0;
  let release!: () => void;
  let reached!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const atHold = new Promise<void>((resolve) => (reached = resolve));
  return {
    reached: atHold,
    release,
    source: {
      async read(into) {
        if (at === holdAt) {
          reached();
          await released;
        }
        const end = at < holdAt ? holdAt : bytes.length;
        const n = Math.min(into.length, end - at);
        into.set(bytes.subarray(at, at + n));
        at += n;
        return n;
      },
    },
  };
}

/**
 * A transmitter that will be refused "busy", on a virtual clock of its own:
 * its wait (3 x timeout) passes in no wall time, while the receiver it
 * knocks on keeps the wall clock.
 */
function refusedAfterItsWait(send: typeof transmit, options: TransmitterOptions, io: Parameters<typeof transmit>[1]): Promise<unknown> {
  const clock = new VirtualClock();
  return clock.until(send(options, { ...io, clock }), 60_000);
}

/** Waits until `condition` holds, checking at each macrotask (no timed sleep), up to `ms`. */
async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe("serve: many transfers on one port", () => {
  test("three transmitters at once, each stream identical in its own output; the figures list every session", async () => {
    const network = new MemoryNetwork();
    const { outputs, factory } = memoryOutputs();
    const receiver = await servingReceiver(network, { sessions: 3 }, { output: factory });
    const inputs = { alpha: pattern(9 * FOOT + 11, 1), beta: pattern(13 * FOOT, 2), gamma: pattern(1, 3) };
    // Each holds after its first foot until all three are in, so they really overlap.
    const held = Object.entries(inputs).map(([label, input]) => ({ label, input, ...heldSource(input, Math.min(FOOT, input.length)) }));
    const transmitters = held.map(({ label, source }) => transmit(txOptions(receiver.port, label), { network, source }));
    await Promise.all(held.map((one) => one.reached));
    await until(() => outputs.size === 3, "three sessions started");
    expect(receiver.figures().sessions?.filter((session) => session.state === "running")).toHaveLength(3);
    for (const one of held) one.release();
    await Promise.all(transmitters);
    for (const { label, input } of held) {
      const output = outputs.get(label)!;
      expect({ label, identical: Buffer.from(output.sink.bytes()).equals(Buffer.from(input)), end: output.end }).toEqual({ label, identical: true, end: "finished" });
    }
    // The receiver serves on after them; a drain with nothing running settles at once.
    receiver.drain();
    const summary = await receiver.rx;
    const total = Object.values(inputs).reduce((sum, input) => sum + input.length, 0);
    expect({ bytes: summary.bytes, sessions: summary.sessions }).toEqual({ bytes: BigInt(total), sessions: 3 });
    const figures = receiver.figures();
    expect(figures.bytes).toBe(total);
    expect(figures.sessions?.map((session) => [session.label, session.state, session.bytes]).sort()).toEqual(
      Object.entries(inputs).map(([label, input]) => [label, "complete", input.length]).sort(),
    );
  }, 30_000);

  test("past sessions N a newcomer is refused busy (the transmitter exits 11); once a place is free the next gets in", async () => {
    const network = new MemoryNetwork();
    const { outputs, factory } = memoryOutputs();
    const receiver = await servingReceiver(network, { sessions: 2 }, { output: factory });
    const running = ["one", "two"].map((label, i) => {
      const input = pattern(6 * FOOT, 10 + i);
      const hold = heldSource(input, FOOT);
      return { label, input, hold, done: transmit(txOptions(receiver.port, label), { network, source: hold.source }) };
    });
    await Promise.all(running.map((one) => one.hold.reached));
    await until(() => outputs.size === 2, "two sessions started");
    // Live sessions are never displaced: the third waits 3 x timeout (3 s of its own, virtual, clock), then gives up.
    const third = await refusedAfterItsWait(transmit, txOptions(receiver.port, "three"), { network, source: memorySource(pattern(FOOT, 3)) }).then(
      () => undefined,
      (error: unknown) => error as VmError,
    );
    expect({ code: third?.code, message: third?.message }).toMatchObject({ code: "busy", message: expect.stringContaining("busy with 2 transfers, its 'sessions 2'") });
    expect(outputs.has("three")).toBe(false);
    running[0]!.hold.release();
    await running[0]!.done;
    // The finished session's place is free (after its transmitter hung up): a fourth gets in.
    const fourth = pattern(3 * FOOT + 5, 4);
    await transmit(txOptions(receiver.port, "four"), { network, source: memorySource(fourth) });
    expect(Buffer.from(outputs.get("four")!.sink.bytes()).equals(Buffer.from(fourth))).toBe(true);
    running[1]!.hold.release();
    await running[1]!.done;
    for (const { label, input } of running) expect(Buffer.from(outputs.get(label)!.sink.bytes()).equals(Buffer.from(input))).toBe(true);
    receiver.drain();
    expect((await receiver.rx).sessions).toBe(3);
  }, 30_000);

  test("drain (SIGTERM) during two transfers: a new one is refused, the two finish, the receiver resolves", async () => {
    const network = new MemoryNetwork();
    const { outputs, factory } = memoryOutputs();
    const receiver = await servingReceiver(network, { sessions: 3 }, { output: factory });
    const running = ["a", "b"].map((label, i) => {
      const input = pattern(5 * FOOT + 7, 20 + i);
      const hold = heldSource(input, 2 * FOOT);
      return { label, input, hold, done: transmit(txOptions(receiver.port, label), { network, source: hold.source }) };
    });
    await Promise.all(running.map((one) => one.hold.reached));
    await until(() => outputs.size === 2, "two sessions started");
    receiver.drain();
    let settled = false;
    void receiver.rx.finally(() => (settled = true));
    const refused = await refusedAfterItsWait(transmit, txOptions(receiver.port, "late"), { network, source: memorySource(pattern(10)) }).then(
      () => undefined,
      (error: unknown) => error as VmError,
    );
    expect(refused?.code).toBe("busy");
    expect(refused?.message).toContain("shutting down (SIGTERM)");
    expect(settled).toBe(false); // still waiting on the two
    for (const one of running) one.hold.release();
    await Promise.all(running.map((one) => one.done));
    const summary = await receiver.rx;
    expect(summary.sessions).toBe(2);
    for (const { label, input } of running) expect(Buffer.from(outputs.get(label)!.sink.bytes()).equals(Buffer.from(input))).toBe(true);
    expect(outputs.has("late")).toBe(false);
  }, 30_000);

  test("a drain that outlasts patience stops what is left: the receiver rejects 'interrupted', the output is aborted", async () => {
    const network = new MemoryNetwork();
    const { outputs, factory } = memoryOutputs();
    const receiver = await servingReceiver(network, { sessions: 2, patienceS: 1 }, { output: factory });
    const input = pattern(4 * FOOT, 30);
    const hold = heldSource(input, FOOT);
    const tx = transmit(txOptions(receiver.port, "stuck", { patienceS: 1 }), { network, source: hold.source }).then(
      () => undefined,
      (error: unknown) => error as VmError,
    );
    await hold.reached;
    await until(() => outputs.size === 1, "the session started");
    receiver.drain();
    const error = await receiver.rx.then(
      () => undefined,
      (failure: unknown) => failure as VmError,
    );
    expect({ code: error?.code, message: error?.message }).toEqual({ code: "interrupted", message: "stopped 1 transfer still running 1s (patience) after SIGTERM" });
    expect((outputs.get("stuck")!.end as VmError).message).toContain("shutting down");
    hold.release();
    expect((await tx)?.code).toBe("peerLost"); // its transmitter was told
  }, 30_000);

  test("with every place taken, an abandoned session gives way even after writing: its output is aborted, never continued", async () => {
    const network = new MemoryNetwork();
    const { outputs, factory } = memoryOutputs();
    const receiver = await servingReceiver(network, { sessions: 1 }, { output: factory });
    // A transmitter that says hello, sends one foot and vanishes (kill -9, a pulled cable).
    const foot = pattern(FOOT, 40);
    const channel = await network.dial("memory", receiver.port, { onData() {}, onDrain() {}, onClose() {} });
    const pieces = [
      encodeHello({ ...helloFor(0x60e5n), label: "gone" }),
      ...encodeFootRecord({ footId: 0n, streamOffset: 0n, length: FOOT, sum: { kind: ChecksumKind.CHECKSUM_XXH3_64, xxh3: footChecksum(0n, 0n, foot) }, flags: 0 }, foot),
    ];
    const flush = (): void => {
      while (pieces.length > 0) {
        const taken = channel.write(pieces[0]!);
        if (taken < pieces[0]!.length) {
          pieces[0] = pieces[0]!.subarray(taken);
          return;
        }
        pieces.shift();
      }
    };
    flush();
    await until(() => {
      flush();
      return (outputs.get("gone")?.sink.bytes().length ?? 0) === FOOT;
    }, "the first session wrote its foot");
    channel.destroy();
    // After `timeout` (1 s) alone it is abandoned: the newcomer, refused busy until then, takes its place.
    const next = pattern(3 * FOOT, 41);
    await transmit(txOptions(receiver.port, "next", { timeoutS: 2 }), { network, source: memorySource(next) });
    expect(Buffer.from(outputs.get("next")!.sink.bytes()).equals(Buffer.from(next))).toBe(true);
    const gone = outputs.get("gone")!;
    expect(gone.end).toBeInstanceOf(VmError);
    expect((gone.end as VmError).message).toContain("gave this transfer up");
    expect(gone.sink.bytes().length).toBe(FOOT); // nothing of the newcomer's stream went there
    receiver.drain();
    expect((await receiver.rx).sessions).toBe(1);
  }, 30_000);
});
