/**
 * What both roles' connections share (src/net/connection-upkeep.ts), over
 * framed connections on the in-memory network: a ping is answered with a pong
 * carrying the same nonce and clock, a pong gives the round trip, `watch`
 * pings only when due, chaos hits the connection, feet are counted.
 */
import { expect, test } from "bun:test";
import { ConnectionUpkeep } from "../../src/net/connection-upkeep.ts";
import { FramedConnection } from "../../src/net/framed-connection.ts";
import { VmError } from "../../src/errors.ts";
import { abortFrame, decodeFrame, encodeControlFrame } from "../../src/protocol/messages.ts";
import { FrameKind, MAX_CONTROL_RECORD_BYTES, type Frame } from "../../src/protocol/xdr.generated.ts";
import { MemoryNetwork } from "../pipeline/memory-network.ts";
import { VirtualClock } from "../support/virtual-clock.ts";

const TIMEOUT_MS = 8_000;

/** A dialled framed connection (the peer, which records what it hears) and the accepted side's upkeep. */
async function pair() {
  const clock = new VirtualClock();
  const network = new MemoryNetwork();
  const heard: Frame[] = [];
  let peerClosed = false;
  let accepted!: FramedConnection;
  const atAccepted: Frame[] = [];
  const upkeep = new ConnectionUpkeep(() => accepted, clock);
  const { port } = await network.listen(undefined, 0, (channel) => {
    const side = FramedConnection.accept(
      channel,
      MAX_CONTROL_RECORD_BYTES,
      {
        onRecord: (record) => {
          const frame = decodeFrame(record);
          if (!upkeep.answered(frame)) atAccepted.push(frame);
        },
        onIdle: () => {},
        onClose: () => {},
      },
      clock,
    );
    accepted = side.connection;
    return side.channelHandlers;
  });
  const peer = await FramedConnection.dial(
    network,
    "127.0.0.1",
    port,
    MAX_CONTROL_RECORD_BYTES,
    { onRecord: (record) => heard.push(decodeFrame(record)), onIdle: () => {}, onClose: () => void (peerClosed = true) },
    clock,
  );
  await network.delivered();
  return { clock, network, upkeep, peer, heard, atAccepted, peerClosed: () => peerClosed };
}

test("a ping is answered with a pong echoing it; other frames are left to the connection", async () => {
  const { network, peer, heard, atAccepted } = await pair();
  const ping = { nonce: 7n, sentUs: 123_456n };
  peer.send([encodeControlFrame({ kind: FrameKind.FRAME_PING, ping })]);
  peer.send([encodeControlFrame(abortFrame(new VmError("protocol", "not a heartbeat")))]);
  await network.delivered();
  expect(heard).toEqual([{ kind: FrameKind.FRAME_PONG, pong: ping }]);
  expect(atAccepted.map((frame) => frame.kind)).toEqual([FrameKind.FRAME_ABORT]);
});

test("watch pings once a quarter timeout has passed, and the pong gives the round trip", async () => {
  const { clock, network, upkeep, peer, heard } = await pair();
  expect(upkeep.watch(TIMEOUT_MS)).toBeUndefined();
  await network.delivered();
  expect(heard).toEqual([]); // not due yet
  await clock.advance(TIMEOUT_MS / 4);
  expect(upkeep.watch(TIMEOUT_MS)).toBeUndefined();
  await network.delivered();
  expect(heard.length).toBe(1);
  const ping = heard[0]!;
  if (ping.kind !== FrameKind.FRAME_PING) throw new Error(`expected a ping, got kind ${ping.kind}`);
  expect(upkeep.roundTripMs).toBeUndefined();
  await clock.advance(30);
  peer.send([encodeControlFrame({ kind: FrameKind.FRAME_PONG, pong: ping.ping })]);
  await network.delivered();
  expect(upkeep.roundTripMs).toBe(30);
});

test("chaos resets the connection; feet are counted with their copies", async () => {
  const { network, upkeep, peerClosed } = await pair();
  upkeep.countFoot(100, false);
  upkeep.countFoot(50, true);
  expect(upkeep.totals).toEqual({ bytes: 150, feet: 2, retransmits: 1 });
  upkeep.chaos("reset");
  await network.delivered();
  expect(peerClosed()).toBe(true);
});
