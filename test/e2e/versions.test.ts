/**
 * End to end, the real receiver (`viamillipede rx`) against hand-built
 * handshakes over loopback: which protocol versions and capabilities it
 * takes.
 *
 * Proves: a version 2 hello (with a label) joins and its transfer is
 * confirmed; a version 1 hello offering CAP_VERDICT and CAP_PRODUCER_FAILED
 * hears CAP_PRODUCER_FAILED echoed but not CAP_VERDICT (no command reads this
 * receiver's stream), and its confirmation comes alone, as a version 1
 * transmitter expects; a version 2 hello with a bad label is refused as
 * malformed; version 3 is refused with REFUSE_VERSION naming the versions
 * spoken, and the receiver stays up for the next transmitter.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { decodeFrame, decodeHelloReply, encodeControlFrame, encodeHello, readText, type AnyHello } from "../../src/protocol/messages.ts";
import { RecordDecoder, toRecord } from "../../src/protocol/records.ts";
import {
  CAP_NONE,
  CAP_PRODUCER_FAILED,
  CAP_VERDICT,
  DigestKind,
  FrameKind,
  Hello,
  HelloStatus,
  RefuseReason,
  VM_MAGIC,
  VM_PROTOCOL_VERSION,
  VM_PROTOCOL_VERSION_2,
  type Frame,
  type HelloReply,
} from "../../src/protocol/xdr.generated.ts";
import { killLeftovers, startReceiver, within } from "../support/spawn.ts";

afterEach(killLeftovers);

const HOST = "127.0.0.1";
const STEP_MS = 10_000;

const hello = (change: Partial<AnyHello> = {}): AnyHello => ({
  magic: VM_MAGIC,
  protocolVersion: VM_PROTOCOL_VERSION,
  sessionId: 0x5eedn,
  checkphrase: new Uint8Array(),
  footBytes: 64 * 1024,
  capabilities: CAP_NONE,
  connectionId: 0,
  ...change,
});

/** One hand-driven transmitter connection: send records, read the reply and then frames. */
class RawConnection {
  private readonly decoder = new RecordDecoder(4096);
  private readonly records: Uint8Array[] = [];
  private wake: (() => void) | undefined;
  closed = false;
  private constructor(private socket: Socket<unknown> | undefined) {}

  static async open(port: number): Promise<RawConnection> {
    const connection = new RawConnection(undefined);
    connection.socket = await Bun.connect<unknown>({
      hostname: HOST,
      port,
      socket: {
        data: (_, bytes) => {
          connection.records.push(...connection.decoder.push(new Uint8Array(bytes)));
          connection.wake?.();
        },
        close: () => {
          connection.closed = true;
          connection.wake?.();
        },
      },
    });
    return connection;
  }

  send(record: Uint8Array): void {
    this.socket!.write(record);
  }

  async next(what: string): Promise<Uint8Array> {
    return within(STEP_MS, what, (async () => {
      while (this.records.length === 0) {
        if (this.closed) throw new Error(`closed while waiting for ${what}`);
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
      return this.records.shift()!;
    })());
  }

  async reply(): Promise<HelloReply> {
    return decodeHelloReply(await this.next("the hello reply"));
  }

  async frame(): Promise<Frame> {
    return decodeFrame(await this.next("a frame"));
  }

  end(): void {
    this.socket!.end();
  }
}

/** Ends an empty stream on an accepted connection; returns the frames the receiver sends until its confirmation. */
async function emptyStream(connection: RawConnection): Promise<Frame[]> {
  const digest = { kind: DigestKind.DIGEST_XXH3_CHAIN, xxh3Chain: 0n };
  connection.send(encodeControlFrame({ kind: FrameKind.FRAME_END, end: { totalFeet: 0n, totalBytes: 0n, digest } }));
  const frames: Frame[] = [];
  for (;;) {
    const frame = await connection.frame();
    if (frame.kind === FrameKind.FRAME_PING || frame.kind === FrameKind.FRAME_CREDIT) continue;
    frames.push(frame);
    if (frame.kind === FrameKind.FRAME_CONFIRM || frame.kind === FrameKind.FRAME_ABORT) return frames;
  }
}

describe("the receiver's protocol versions and capabilities", () => {
  test("a version 2 hello with a label joins; offered CAP_VERDICT is not echoed without a command, so the confirmation comes alone", async () => {
    const receiver = await startReceiver(["rx", "0", "bind", HOST]);
    const connection = await RawConnection.open(receiver.port);
    connection.send(encodeHello(hello({ label: "host-1:tank.home", capabilities: CAP_VERDICT | CAP_PRODUCER_FAILED })));
    const reply = await connection.reply();
    expect(reply.status).toBe(HelloStatus.HELLO_ACCEPT);
    if (reply.status !== HelloStatus.HELLO_ACCEPT) return;
    expect(reply.accepted.capabilities).toBe(CAP_PRODUCER_FAILED);
    const frames = await emptyStream(connection);
    expect(frames.map((frame) => frame.kind)).toEqual([FrameKind.FRAME_CONFIRM]);
    connection.end();
    const outcome = await within(STEP_MS, "the receiver's exit", receiver.done());
    expect(outcome.exitCode).toBe(0);
    expect(outcome.stdoutBytes).toBe(0);
  });

  test("a version 1 hello offering nothing new is answered as a version 1 receiver answers it", async () => {
    const receiver = await startReceiver(["rx", "0", "bind", HOST]);
    const connection = await RawConnection.open(receiver.port);
    connection.send(encodeHello(hello()));
    const reply = await connection.reply();
    expect(reply).toMatchObject({ status: HelloStatus.HELLO_ACCEPT, accepted: { capabilities: CAP_NONE, deliveredBelow: 0n } });
    expect((await emptyStream(connection)).map((frame) => frame.kind)).toEqual([FrameKind.FRAME_CONFIRM]);
    connection.end();
    expect((await within(STEP_MS, "the receiver's exit", receiver.done())).exitCode).toBe(0);
  });

  test("a bad label is refused as a malformed hello; version 3 with REFUSE_VERSION; the receiver then takes a good transmitter", async () => {
    const receiver = await startReceiver(["rx", "0", "bind", HOST]);

    const badLabel = await RawConnection.open(receiver.port);
    const label = new TextEncoder().encode("a/b");
    badLabel.send(toRecord(Buffer.concat([Hello.encode({ ...hello(), protocolVersion: VM_PROTOCOL_VERSION_2 }), Buffer.from("00000003", "hex"), label, Buffer.alloc(1)])));
    const refusedLabel = await badLabel.reply();
    expect(refusedLabel.status).toBe(HelloStatus.HELLO_REFUSE);
    if (refusedLabel.status !== HelloStatus.HELLO_REFUSE) return;
    expect(refusedLabel.refused.reason).toBe(RefuseReason.REFUSE_BAD_MAGIC);
    expect(readText(refusedLabel.refused.text)).toBe("malformed hello: a label may hold only letters, digits and . _ : -");

    const future = await RawConnection.open(receiver.port);
    future.send(toRecord(Hello.encode({ ...hello(), protocolVersion: 3 })));
    const refusedVersion = await future.reply();
    expect(refusedVersion.status).toBe(HelloStatus.HELLO_REFUSE);
    if (refusedVersion.status !== HelloStatus.HELLO_REFUSE) return;
    expect(refusedVersion.refused.reason).toBe(RefuseReason.REFUSE_VERSION);
    expect(refusedVersion.refused.receiverVersion).toBe(VM_PROTOCOL_VERSION_2);
    expect(readText(refusedVersion.refused.text)).toBe("protocol version 3 is not supported; this receiver speaks versions 1 and 2");

    const good = await RawConnection.open(receiver.port);
    good.send(encodeHello(hello({ label: "after-the-refusals" })));
    expect((await good.reply()).status).toBe(HelloStatus.HELLO_ACCEPT);
    expect((await emptyStream(good)).map((frame) => frame.kind)).toEqual([FrameKind.FRAME_CONFIRM]);
    good.end();
    expect((await within(STEP_MS, "the receiver's exit", receiver.done())).exitCode).toBe(0);
  });
});
