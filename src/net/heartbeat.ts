/**
 * Heartbeats on the control channel. Each end pings every connection a few
 * times per timeout, so a live peer is never silent for a whole timeout even
 * when it has no data to send. A ping carries the sender's clock, which its
 * pong echoes.
 */
import { PINGS_PER_TIMEOUT } from "../constants.ts";
import { systemClock } from "../clock.ts";
import type { Heartbeat as HeartbeatFrame } from "../protocol/xdr.generated.ts";
import { FrameKind } from "../protocol/xdr.generated.ts";

export class Heartbeat {
  private lastPingMs: number;
  private nonce = 0n;
  private roundTrip: number | undefined;

  /** `now`: the role's clock (src/clock.ts), in milliseconds. */
  constructor(private readonly now: () => number = systemClock.now) {
    this.lastPingMs = now();
  }

  /** The ping frame to send now, if one is due. */
  due(timeoutMs: number): { kind: typeof FrameKind.FRAME_PING; ping: HeartbeatFrame } | undefined {
    const now = this.now();
    if (now - this.lastPingMs < timeoutMs / PINGS_PER_TIMEOUT) return undefined;
    this.lastPingMs = now;
    this.nonce++;
    return { kind: FrameKind.FRAME_PING, ping: { nonce: this.nonce, sentUs: BigInt(Math.round(now * 1000)) } };
  }

  /** The peer's pong to one of our pings: its echo of our clock gives the round trip. */
  answered(pong: HeartbeatFrame): void {
    const sample = this.now() - Number(pong.sentUs) / 1000;
    if (sample >= 0 && sample < 3_600_000) this.roundTrip = sample;
  }

  /** The latest heartbeat round trip, once a pong came back. */
  get roundTripMs(): number | undefined {
    return this.roundTrip;
  }
}
