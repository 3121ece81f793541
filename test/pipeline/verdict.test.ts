/**
 * The transmitter's side of protocol version 2 and its capabilities, against
 * a receiver scripted from the real codecs (src/protocol/messages.ts) over the
 * in-memory network: what the hello offers, the label's version 2 hello, and
 * what the transmitter makes of FRAME_VERDICT where it was negotiated and
 * where it was not. A receiver that echoes none of the new bits is how every
 * version 1 receiver answers (src/rx/admission.ts masked unknown bits before
 * there were any), so the "old receiver" cases run the old behaviour.
 */
import { describe, expect, test } from "bun:test";
import type { VmError } from "../../src/errors.ts";
import type { Channel, ChannelHandlers } from "../../src/net/channel.ts";
import type { TransmitterOptions } from "../../src/options.ts";
import {
  decodeFrame,
  decodeHello,
  encodeControlFrame,
  encodeHelloReply,
  verdictFrame,
  type AnyHello,
  type ControlFrame,
} from "../../src/protocol/messages.ts";
import { RecordDecoder } from "../../src/protocol/records.ts";
import {
  CAP_PRODUCER_FAILED,
  CAP_VERDICT,
  ConsumerState,
  FOOT_RECORD_OVERHEAD_BYTES,
  FrameKind,
  HelloStatus,
  MAX_HELLO_RECORD_BYTES,
  type EndOfStream,
} from "../../src/protocol/xdr.generated.ts";
import { transmit } from "../../src/tx/transmitter.ts";
import { memorySource } from "../support/memory-source.ts";
import { MemoryNetwork } from "./memory-network.ts";

const FOOT = 4096;
const INPUT = new TextEncoder().encode("x".repeat(3 * FOOT + 17));
const options = (port: number, extra: Partial<TransmitterOptions> = {}): TransmitterOptions => ({
  verbose: 0,
  checkphrase: "",
  chaosEvery: 0,
  footBytes: FOOT,
  patienceS: 30,
  timeoutS: 30,
  targets: [{ host: "memory", port }],
  threads: 1,
  ...extra,
});

interface Script {
  /** The welcome's capabilities, given those the hello offered. */
  echo(offered: number): number;
  /** What the receiver sends once end-of-stream is in (the confirmation goes last). */
  closing(confirm: ControlFrame): ControlFrame[];
}

/** A receiver that takes every foot, and on end-of-stream sends `script.closing`. Keeps the hellos it read. */
async function scriptedReceiver(network: MemoryNetwork, script: Script): Promise<{ port: number; hellos: AnyHello[]; helloRecords: Uint8Array[] }> {
  const hellos: AnyHello[] = [];
  const helloRecords: Uint8Array[] = [];
  const listening = await network.listen(undefined, 0, (channel: Channel): ChannelHandlers => {
    const decoder = new RecordDecoder(MAX_HELLO_RECORD_BYTES);
    const send = (record: Uint8Array) => channel.write(record);
    let joined = false;
    return {
      onData(bytes) {
        for (const record of decoder.push(bytes)) {
          if (!joined) {
            helloRecords.push(new Uint8Array(record));
            const decoded = decodeHello(record);
            if (!decoded.ok) throw new Error(`the transmitter's hello was refused: ${decoded.text}`);
            hellos.push(decoded.hello);
            joined = true;
            decoder.maxRecordBytes = FOOT + FOOT_RECORD_OVERHEAD_BYTES;
            const capabilities = script.echo(decoded.hello.capabilities);
            send(encodeHelloReply({ status: HelloStatus.HELLO_ACCEPT, accepted: { receiverNonce: 1n, deliveredBelow: 0n, windowEnd: 1000n, capabilities } }));
            continue;
          }
          const frame = decodeFrame(record);
          if (frame.kind === FrameKind.FRAME_FOOT) {
            send(encodeControlFrame({ kind: FrameKind.FRAME_ACK, ack: { deliveredBelow: 0n, received: [frame.foot.header.footId] } }));
          } else if (frame.kind === FrameKind.FRAME_END) {
            const end: EndOfStream = frame.end;
            const confirm: ControlFrame = { kind: FrameKind.FRAME_CONFIRM, confirm: { totalFeet: end.totalFeet, totalBytes: end.totalBytes, digest: end.digest } };
            for (const closing of script.closing(confirm)) send(encodeControlFrame(closing));
          }
        }
      },
      onDrain() {},
      onClose() {},
    };
  });
  return { port: listening.port, hellos, helloRecords };
}

async function run(script: Script, extra: Partial<TransmitterOptions> = {}) {
  const network = new MemoryNetwork();
  const rx = await scriptedReceiver(network, script);
  const outcome = await transmit(options(rx.port, extra), { network, source: memorySource(INPUT) }).then(
    (summary) => ({ summary, error: undefined }),
    (error: VmError) => ({ summary: undefined, error }),
  );
  return { ...outcome, hellos: rx.hellos, helloRecords: rx.helloRecords };
}

const echoOffered = (offered: number) => offered & (CAP_VERDICT | CAP_PRODUCER_FAILED);
const oldReceiver = () => 0;
const exited = (code: number, stderr = "") => verdictFrame("zfs recv -F pool/ds", { exitCode: code }, new TextEncoder().encode(stderr));

describe("the transmitter's hello", () => {
  test("offers CAP_VERDICT and CAP_PRODUCER_FAILED in a version 1 hello when there is no label", async () => {
    const { hellos, helloRecords, error } = await run({ echo: oldReceiver, closing: (confirm) => [confirm] });
    expect(error).toBeUndefined();
    expect(hellos[0]!.protocolVersion).toBe(1);
    expect(hellos[0]!.label).toBeUndefined();
    expect(hellos[0]!.capabilities).toBe(CAP_VERDICT | CAP_PRODUCER_FAILED);
    // Version 1's layout: 4 words, the session id, an empty checkphrase, then foot size, capabilities, connection id.
    expect(helloRecords[0]!.length).toBe(4 + 4 + 8 + 4 + 4 + 4 + 4);
  });

  test("a label makes it a version 2 hello that carries it", async () => {
    const { hellos, error } = await run({ echo: oldReceiver, closing: (confirm) => [confirm] }, { label: "host-1:tank.home" });
    expect(error).toBeUndefined();
    expect(hellos[0]!.protocolVersion).toBe(2);
    expect(hellos[0]!.label).toBe("host-1:tank.home");
  });
});

describe("the receiving command's verdict", () => {
  test("a receiver that does not echo CAP_VERDICT (every version 1 receiver): the confirmation alone is success, as before", async () => {
    const { summary, error } = await run({ echo: oldReceiver, closing: (confirm) => [confirm] });
    expect(error).toBeUndefined();
    expect(summary!.bytes).toBe(BigInt(INPUT.length));
    expect(summary!.consumer).toBeUndefined();
  });

  test("the command exited 0: success, and the summary carries the verdict", async () => {
    const { summary, error } = await run({ echo: echoOffered, closing: (confirm) => [exited(0), confirm] });
    expect(error).toBeUndefined();
    expect(summary!.consumer?.consumer).toEqual({ state: ConsumerState.CONSUMER_EXITED, exitCode: 0 });
  });

  test("the command exited 1 after reading every byte: the transfer fails with its last stderr line", async () => {
    const stderr = "receiving full stream of tank@s into pool/ds@s\ncannot receive new filesystem stream: destination has been modified\n";
    const { summary, error } = await run({ echo: echoOffered, closing: (confirm) => [exited(1, stderr), confirm] });
    expect(summary).toBeUndefined();
    expect(error!.code).toBe("consumerFailed");
    expect(error!.message).toBe(
      "on memory, 'zfs recv -F pool/ds' exited 1: cannot receive new filesystem stream: destination has been modified",
    );
  });

  test("killed by a signal: the transfer fails and says which", async () => {
    const killed = verdictFrame("tar x", { signal: "SIGKILL" }, new Uint8Array());
    const { error } = await run({ echo: echoOffered, closing: (confirm) => [killed, confirm] });
    expect({ code: error!.code, message: error!.message }).toEqual({ code: "consumerFailed", message: "on memory, 'tar x' was killed by SIGKILL" });
  });

  test("a verdict where CAP_VERDICT was not negotiated is a protocol error", async () => {
    const { error } = await run({ echo: oldReceiver, closing: (confirm) => [exited(0), confirm] });
    expect(error!.code).toBe("protocol");
    expect(error!.message).toContain("unexpected frame (kind 10)");
  });

  test("a confirmation without the verdict CAP_VERDICT promised is a protocol error", async () => {
    const { error } = await run({ echo: echoOffered, closing: (confirm) => [confirm] });
    expect(error!.code).toBe("protocol");
    expect(error!.message).toBe("the receiver confirmed the stream without saying how its command ended");
  });
});
