// The whole transfer in one process over the in-memory network: transmitter
// and receiver are the real code; only sockets, stdin and stdout are
// replaced. Faults (resets, corrupted bytes) must never change the output.
import { describe, expect, test } from "bun:test";
import { VmError } from "../../src/errors.ts";
import type { ReceiverOptions, TransmitterOptions } from "../../src/options.ts";
import { receive, type ReceiverIo, type ReceiveSummary } from "../../src/rx/receiver.ts";
import { memorySink, type ByteSink } from "../../src/rx/stdout.ts";
import { memorySource } from "../support/memory-source.ts";
import { DialFailure, TxConnection } from "../../src/tx/connection.ts";
import { decodeFrame, decodeHelloReply, encodeControlFrame, encodeFootRecord, encodeHello } from "../../src/protocol/messages.ts";
import { footChecksum, StreamDigest } from "../../src/protocol/digest.ts";
import { RecordDecoder } from "../../src/protocol/records.ts";
import { transmit } from "../../src/tx/transmitter.ts";
import type { TransferFigures } from "../../src/status/figures.ts";
import {
  CAP_NONE,
  ChecksumKind,
  DigestKind,
  FOOT_RECORD_OVERHEAD_BYTES,
  FrameKind,
  HelloStatus,
  VM_MAGIC,
  VM_PROTOCOL_VERSION,
  type FootHeader,
  type Frame,
  type Hello,
} from "../../src/protocol/xdr.generated.ts";
import { VirtualClock } from "../support/virtual-clock.ts";
import { MemoryNetwork } from "./memory-network.ts";
import { pattern } from "../support/pattern.ts";

const FOOT = 64 * 1024;


const common = { verbose: 0, checkphrase: "", patienceS: 5, timeoutS: 2, chaosEvery: 0 };

/** A receiver on `network` (port 0, window 8, into `io.sink` or a fresh memory sink), once it listens: its port and its outcome. */
async function listeningReceiver(
  network: MemoryNetwork,
  options: Partial<ReceiverOptions> = {},
  io: Partial<ReceiverIo> = {},
): Promise<{ port: number; rx: Promise<ReceiveSummary> }> {
  let listening!: (port: number) => void;
  const ready = new Promise<number>((resolve) => (listening = resolve));
  const rx = receive({ ...common, port: 0, bind: undefined, windowFeet: 8, ...options }, { network, sink: memorySink(), ...io, onListening: listening });
  return { port: await ready, rx };
}

/** A transmitter's hello for session `sessionId` (no checkphrase, no capabilities), for tests that dial by hand. */
function helloFor(sessionId: bigint, footBytes = FOOT): Hello {
  return { magic: VM_MAGIC, protocolVersion: VM_PROTOCOL_VERSION, sessionId, checkphrase: new Uint8Array(), footBytes, capabilities: CAP_NONE, connectionId: 0 };
}

/**
 * A transmitter written by hand, for tests of what the real one never sends:
 * says hello, writes whatever it is given (continuing on drain), and hands
 * each frame the receiver sends after its hello reply to `onFrame`.
 */
async function handTransmitter(network: MemoryNetwork, port: number, hello: Hello, onFrame: (frame: Frame) => void = () => {}) {
  const queue: Uint8Array[] = [];
  const decoder = new RecordDecoder(FOOT_RECORD_OVERHEAD_BYTES + 4096);
  let replied = false;
  const flush = () => {
    while (queue.length > 0) {
      const taken = channel.write(queue[0]!);
      if (taken < queue[0]!.length) {
        queue[0] = queue[0]!.subarray(taken);
        return;
      }
      queue.shift();
    }
  };
  const channel = await network.dial("memory", port, {
    onData(bytes) {
      for (const record of decoder.push(bytes)) {
        if (replied) onFrame(decodeFrame(record));
        else if (decodeHelloReply(record).status !== HelloStatus.HELLO_ACCEPT) throw new Error("hello refused");
        replied = true;
      }
    },
    onDrain: flush,
    onClose() {},
  });
  const send = (...pieces: Uint8Array[]) => {
    queue.push(...pieces);
    flush();
  };
  send(encodeHello(hello));
  return { send, close: () => channel.destroy() };
}

/** A foot's record pieces with the header's fields filled in from `payload` (checksum as given). */
function footRecord(id: number, footBytes: number, payload: Uint8Array, sum: FootHeader["sum"]): Uint8Array[] {
  return encodeFootRecord({ footId: BigInt(id), streamOffset: BigInt(id * footBytes), length: payload.length, sum, flags: 0 }, payload);
}
const checksummed = (id: number, footBytes: number, payload: Uint8Array): FootHeader["sum"] => ({
  kind: ChecksumKind.CHECKSUM_XXH3_64,
  xxh3: footChecksum(BigInt(id), BigInt(id * footBytes), payload),
});

async function run(
  input: Uint8Array,
  opts: {
    threads?: number;
    network?: MemoryNetwork;
    txPhrase?: string;
    sink?: ByteSink;
    chunks?: number[];
    timeoutS?: number;
    txChaos?: number;
    rxChaos?: number;
    footBytes?: number;
  } = {},
) {
  const network = opts.network ?? new MemoryNetwork();
  const sink = memorySink();
  const timeoutS = opts.timeoutS ?? common.timeoutS;
  const { port, rx } = await listeningReceiver(network, { timeoutS, chaosEvery: opts.rxChaos ?? 0 }, { sink: opts.sink ?? sink });
  const txOptions: TransmitterOptions = {
    ...common,
    timeoutS,
    chaosEvery: opts.txChaos ?? 0,
    checkphrase: opts.txPhrase ?? "",
    targets: [{ host: "memory", port }],
    threads: opts.threads ?? 4,
    footBytes: opts.footBytes ?? FOOT,
  };
  let txFigures: () => TransferFigures = () => {
    throw new Error("the transmitter never said how to read its figures");
  };
  const tx = transmit(txOptions, { network, source: memorySource(input, opts.chunks), observe: (figures) => (txFigures = figures) });
  const [txResult, rxResult] = await Promise.allSettled([tx, rx]);
  return { txResult, rxResult, output: sink.bytes(), txFigures: txFigures() };
}

describe("in-process transfer over the memory network", () => {
  for (const size of [0, 1, FOOT - 1, FOOT, FOOT + 1, 3 * FOOT, 20 * FOOT + 12345]) {
    test(`${size} bytes arrive identical`, async () => {
      const input = pattern(size);
      const { txResult, rxResult, output, txFigures } = await run(input, { chunks: [1000, 1, 70000] });
      expect(txResult.status).toBe("fulfilled");
      expect(rxResult.status).toBe("fulfilled");
      expect(Buffer.from(output).equals(Buffer.from(input))).toBe(true);
      // The summary's figures: the confirmation counts every foot, acknowledged or not yet.
      expect({ bytes: txFigures.bytes, feet: txFigures.feet }).toEqual({ bytes: size, feet: Math.ceil(size / FOOT) });
    });
  }

  for (const threads of [1, 2, 16]) {
    test(`threads ${threads}`, async () => {
      const input = pattern(40 * FOOT);
      const { output } = await run(input, { threads });
      expect(Buffer.from(output).equals(Buffer.from(input))).toBe(true);
    });
  }

  test("connections reset mid-stream lose nothing: feet are re-sent on others", async () => {
    const network = new MemoryNetwork();
    // The first three connections die after 100 KB, 300 KB and 1 MB each.
    network.dialFaults.push({ resetAfterBytes: 100_000 }, { resetAfterBytes: 300_000 }, { resetAfterBytes: 1_000_000 });
    const input = pattern(60 * FOOT);
    const { txResult, rxResult, output } = await run(input, { network, threads: 3 });
    expect(txResult.status).toBe("fulfilled");
    expect(rxResult.status).toBe("fulfilled");
    expect(Buffer.from(output).equals(Buffer.from(input))).toBe(true);
    expect(network.dials).toBeGreaterThan(3); // the lost ones were re-dialled
  });

  test("more foot records start at once than the receiver's budget holds: connections wait for memory, and nothing is lost", async () => {
    // 8 MiB feet: a window of 8 feet (64 MiB) and room for 2 records beyond it. Twelve connections each start a
    // record at once (feet 0-7, then second copies of feet 0-3), so two of them must wait for a buffer.
    const footBytes = 8 * 1024 * 1024;
    const network = new MemoryNetwork();
    const sink = memorySink();
    const { port, rx } = await listeningReceiver(network, {}, { sink });
    const input = pattern(8 * footBytes);
    const feet = Array.from({ length: 8 }, (_, id) => input.subarray(id * footBytes, (id + 1) * footBytes));
    let confirmed!: () => void;
    const confirmation = new Promise<void>((resolve) => (confirmed = resolve));
    const senders = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        handTransmitter(network, port, { ...helloFor(0x8e3n, footBytes), connectionId: i }, (frame) => {
          if (frame.kind === FrameKind.FRAME_CONFIRM) confirmed();
        }),
      ),
    );
    senders.forEach((sender, i) => sender.send(...footRecord(i % 8, footBytes, feet[i % 8]!, checksummed(i % 8, footBytes, feet[i % 8]!))));
    const digest = new StreamDigest();
    feet.forEach((foot, id) => digest.add(footChecksum(BigInt(id), BigInt(id * footBytes), foot), foot.length));
    senders[0]!.send(
      encodeControlFrame({
        kind: FrameKind.FRAME_END,
        end: { totalFeet: 8n, totalBytes: BigInt(input.length), digest: { kind: DigestKind.DIGEST_XXH3_CHAIN, xxh3Chain: digest.value } },
      }),
    );
    await confirmation;
    for (const sender of senders) sender.close();
    await rx;
    expect(Buffer.from(sink.bytes()).equals(Buffer.from(input))).toBe(true);
    expect(network.accepted.reduce((sum, end) => sum + end.pauses, 0)).toBeGreaterThan(0);
  }, 60_000);

  test("an unsealed foot without a checksum is a protocol violation: the transfer fails and not a byte of it is written", async () => {
    const network = new MemoryNetwork();
    const sink = memorySink();
    const { port, rx } = await listeningReceiver(network, {}, { sink });
    const outcome = rx.catch((e) => e);
    const payload = pattern(1000);
    // The receiver settles once the transmitter has hung up: hang up when told of the failure.
    const sender = await handTransmitter(network, port, helloFor(0xc5n), (frame) => frame.kind === FrameKind.FRAME_ABORT && sender.close());
    sender.send(...footRecord(0, FOOT, payload, { kind: ChecksumKind.CHECKSUM_NONE }));
    // An end of stream that does not match either: without the rule, this is where the foot would be caught, already written.
    sender.send(
      encodeControlFrame({ kind: FrameKind.FRAME_END, end: { totalFeet: 1n, totalBytes: 1000n, digest: { kind: DigestKind.DIGEST_XXH3_CHAIN, xxh3Chain: 0n } } }),
    );
    const error = (await outcome) as VmError;
    expect({ code: error.code, message: error.message, written: sink.bytes().length }).toEqual({
      code: "protocol",
      message: "foot 0 is neither sealed nor checksummed; the transmitter does not follow the protocol",
      written: 0,
    });
  });

  test("a corrupted payload byte is caught by the checksum and the foot fetched again", async () => {
    const network = new MemoryNetwork();
    network.dialFaults.push({ corruptAtByte: 500_000 });
    const input = pattern(30 * FOOT);
    const { txResult, output } = await run(input, { network, threads: 1 });
    expect(txResult.status).toBe("fulfilled");
    expect(Buffer.from(output).equals(Buffer.from(input))).toBe(true);
  });

  test("a corrupted foot header is caught by the checksum too, and the foot fetched again", async () => {
    const network = new MemoryNetwork();
    // The hello is a 36-byte record; the first foot's record mark and kind follow (8 bytes),
    // then its 8-byte id: byte 51 is the id's last byte. Foot 0 arrives claiming to be foot 255.
    network.dialFaults.push({ corruptAtByte: 51 });
    const input = pattern(10 * FOOT);
    const { txResult, rxResult, output } = await run(input, { network, threads: 1, timeoutS: 1 });
    expect(txResult.status).toBe("fulfilled");
    expect(rxResult.status).toBe("fulfilled");
    expect(Buffer.from(output).equals(Buffer.from(input))).toBe(true);
  });

  test("a connection that goes silent is declared dead within the timeout and replaced", async () => {
    const network = new MemoryNetwork();
    // One connection only: nothing can hedge around the stall, so only the stall timeout saves the transfer.
    network.dialFaults.push({ stallAfterBytes: 300_000 });
    const input = pattern(40 * FOOT);
    const started = performance.now();
    const { txResult, rxResult, output } = await run(input, { network, threads: 1, timeoutS: 1 });
    const seconds = (performance.now() - started) / 1000;
    expect(txResult.status).toBe("fulfilled");
    expect(rxResult.status).toBe("fulfilled");
    expect(Buffer.from(output).equals(Buffer.from(input))).toBe(true);
    expect(network.dials).toBe(2);
    // Detected within timeout + 1 s (plus the re-dial backoff of at most 150 ms).
    expect(seconds).toBeGreaterThan(1);
    expect(seconds).toBeLessThan(2.5);
  });

  test("a straggling foot is copied to an idle connection long before any timeout", async () => {
    const network = new MemoryNetwork();
    network.dialFaults.push({ stallAfterBytes: 100_000 });
    const input = pattern(40 * FOOT);
    const started = performance.now();
    const { txResult, output } = await run(input, { network, threads: 3, timeoutS: 60 });
    expect(txResult.status).toBe("fulfilled");
    expect(Buffer.from(output).equals(Buffer.from(input))).toBe(true);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  for (const side of ["tx", "rx"] as const) {
    test(`chaos on ${side}: closes, resets and stalls every 4 feet change nothing in the output`, async () => {
      const input = pattern(40 * FOOT + 99);
      const chaos = side === "tx" ? { txChaos: 4 } : { rxChaos: 4 };
      const { txResult, rxResult, output } = await run(input, { threads: 3, timeoutS: 1, ...chaos });
      expect(txResult.status).toBe("fulfilled");
      expect(rxResult.status).toBe("fulfilled");
      expect(Buffer.from(output).equals(Buffer.from(input))).toBe(true);
    }, 30_000);
  }

  test("a second transmitter is refused while a session is active (busy), and the first completes", async () => {
    const network = new MemoryNetwork();
    const sink = memorySink();
    const { port, rx } = await listeningReceiver(network, {}, { sink });
    // The first transmitter's input stalls after one foot until released: its session stays open.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let stalled!: () => void;
    const stalling = new Promise<void>((resolve) => (stalled = resolve));
    const input = pattern(3 * FOOT);
    const memoryReader = memorySource(input, [FOOT]);
    let reads = 0;
    const slowSource = {
      async read(into: Uint8Array) {
        if (reads++ === 1) {
          stalled();
          await held;
        }
        return memoryReader.read(into);
      },
    };
    const first = transmit({ ...common, targets: [{ host: "memory", port }], threads: 2, footBytes: FOOT }, { network, source: slowSource });
    await stalling;
    // A busy receiver is waited on (three timeouts, at most patience: 1 s here, of the second
    // transmitter's own virtual clock) before the refusal is final.
    const secondClock = new VirtualClock();
    const second = await secondClock
      .until(
        transmit(
          { ...common, patienceS: 1, targets: [{ host: "memory", port }], threads: 2, footBytes: FOOT },
          { network, source: memorySource(pattern(10)), clock: secondClock },
        ),
        60_000,
      )
      .catch((e) => e);
    expect((second as VmError).code).toBe("busy");
    release();
    expect((await first).bytes).toBe(BigInt(input.length));
    await rx;
    expect(Buffer.from(sink.bytes()).equals(Buffer.from(input))).toBe(true);
  });

  test("a wrong checkphrase is refused: the transmitter fails with its code", async () => {
    const network = new MemoryNetwork();
    const sink = memorySink();
    const { port, rx } = await listeningReceiver(network, { checkphrase: "alpha" }, { sink });
    const error = await transmit(
      { ...common, checkphrase: "beta", targets: [{ host: "memory", port }], threads: 2, footBytes: FOOT },
      { network, source: memorySource(pattern(10)) },
    ).catch((e) => e);
    expect(error).toBeInstanceOf(VmError);
    expect((error as VmError).code).toBe("checkphrase");
    // The receiver is still serving: the right phrase gets through.
    const ok = await transmit(
      { ...common, checkphrase: "alpha", targets: [{ host: "memory", port }], threads: 2, footBytes: FOOT },
      { network, source: memorySource(pattern(10)) },
    );
    expect(ok.bytes).toBe(10n);
    await rx;
    expect(Buffer.from(sink.bytes()).equals(Buffer.from(pattern(10)))).toBe(true);
  });

  test("an output closed by its consumer fails both ends with outputClosed", async () => {
    let writes = 0;
    const closingSink: ByteSink = {
      async write() {
        if (++writes > 2) throw new VmError("outputClosed", "stdout was closed by the consumer before the stream ended");
      },
    };
    const { txResult, rxResult } = await run(pattern(40 * FOOT), { sink: closingSink });
    expect(txResult.status === "rejected" && (txResult.reason as VmError).code).toBe("outputClosed");
    expect(rxResult.status === "rejected" && (rxResult.reason as VmError).code).toBe("outputClosed");
  });

  test("no receiver: the transmitter gives up after its patience with 'unreachable'", async () => {
    const clock = new VirtualClock();
    const error = await clock
      .until(
        transmit(
          { ...common, patienceS: 1, targets: [{ host: "memory", port: 1 }], threads: 2, footBytes: FOOT },
          { network: new MemoryNetwork(), source: memorySource(pattern(10)), clock },
        ),
        10_000,
      )
      .catch((e) => e);
    expect((error as VmError).code).toBe("unreachable");
    // Within a watchdog tick or two of its patience, on its own clock.
    expect(clock.now()).toBeGreaterThanOrEqual(1_000);
    expect(clock.now()).toBeLessThan(1_600);
  });

  test("a stop that came before a role started is not missed: both settle at once as interrupted", async () => {
    // A tunnel's far end can fail while this end's receiver is still starting.
    const stopped = AbortSignal.abort("SIGTERM");
    const network = new MemoryNetwork();
    const started = performance.now();
    const rxError = await receive({ ...common, port: 0, bind: undefined, windowFeet: 8 }, { network, sink: memorySink(), signal: stopped }).catch((e) => e);
    const txError = await transmit(
      { ...common, patienceS: 30, targets: [{ host: "memory", port: 1 }], threads: 2, footBytes: FOOT },
      { network, source: memorySource(pattern(10)), signal: stopped },
    ).catch((e) => e);
    expect([(rxError as VmError).code, (txError as VmError).code]).toEqual(["interrupted", "interrupted"]);
    expect((txError as VmError).message).toBe("interrupted by SIGTERM");
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test("a connection of a transfer that failed at the receiver is turned away with the reason, as peerLost", async () => {
    // A straggler can reach the receiver after the failure, before the abort reached its siblings.
    const network = new MemoryNetwork();
    const stop = new AbortController();
    const { port, rx } = await listeningReceiver(network, {}, { signal: stop.signal });
    const rxOutcome = rx.catch((e) => e);
    const hello = helloFor(0x1234n);
    const events = { onFrame() {}, onIdle() {}, onClose() {} };
    const first = await TxConnection.open(network, { host: "memory", port }, 1, () => hello, events);
    stop.abort("SIGTERM"); // the session fails; rx lingers for the first connection to hang up
    const refused = await TxConnection.open(network, { host: "memory", port }, 2, () => hello, events).catch((e) => e);
    expect(refused).toBeInstanceOf(DialFailure);
    expect((refused as DialFailure).fatal).toBe(true);
    expect((refused as DialFailure).error).toBeInstanceOf(VmError);
    expect((refused as DialFailure).error.message).toBe(`receiver memory:${port} turned the connection away: the transfer failed there: interrupted by SIGTERM`);
    expect(((refused as DialFailure).error as VmError).code).toBe("peerLost");
    first.connection.close();
    expect(((await rxOutcome) as VmError).code).toBe("interrupted");
  });

  test("onJoined (initiate's 'the pipe is up') waits for a whole hello: a partial one is not a peer yet", async () => {
    // Were it told on the first bytes, a failure then would find no connection to carry the abort.
    const network = new MemoryNetwork();
    const stop = new AbortController();
    let joined = 0;
    const { port, rx: outcome } = await listeningReceiver(network, {}, { signal: stop.signal, onJoined: () => joined++ });
    const rx = outcome.catch((e) => e);
    const record = encodeHello(helloFor(0x5678n)); // a whole record, its mark included
    let replied!: () => void;
    const reply = new Promise<void>((resolve) => (replied = resolve));
    const channel = await network.dial("memory", port, { onData: () => replied(), onDrain() {}, onClose() {} });
    channel.write(record.subarray(0, 10));
    await network.delivered();
    expect(joined).toBe(0);
    channel.write(record.subarray(10));
    await reply;
    expect(joined).toBe(1);
    channel.destroy();
    stop.abort("SIGTERM");
    await rx;
  });
});
