/**
 * How fast one connection's TCP delivers what it is handed, measured only
 * while it has bytes to send: an idle connection's rate says nothing of what
 * it could do. Fed from the kernel's figures (bytes the peer's TCP holds)
 * on every watchdog tick; dispatch places the last feet by it (last-feet.ts).
 */

/** What a connection's TCP has delivered and what it still holds (TxConnection.delivery). */
export interface Delivery {
  deliveredBytes: number;
  backlogBytes: number;
}

/** Weight of a new reading: at a 250 ms tick, the rate follows the last second or so. */
const RATE_WEIGHT = 0.5;

export class DeliveryRate {
  private lastMs: number | undefined;
  private lastDelivered = 0;
  private lastBacklog = 0;
  /** Smoothed bytes per second while busy; undefined until one busy interval was read. */
  bytesPerSecond: number | undefined;
  /**
   * Whether the last interval read, with bytes to send at both its ends,
   * delivered any: false in a retransmission timeout or on a dead path;
   * undefined when the connection ran dry or was idle at either end.
   */
  moving: boolean | undefined;

  /**
   * A reading at `nowMs`: bytes the peer's TCP holds so far, and bytes handed
   * over that it does not hold yet. The interval since the last reading
   * counts when the connection had bytes to send at both its ends (it may
   * have run dry between, which only makes the rate lower: a connection
   * gets its next foot as soon as its queue empties, whenever one waits).
   */
  read(nowMs: number, deliveredBytes: number, backlogBytes: number): void {
    if (this.lastMs !== undefined && nowMs > this.lastMs) {
      const moved = deliveredBytes - this.lastDelivered;
      const busy = this.lastBacklog > 0 && backlogBytes > 0;
      this.moving = busy ? moved > 0 : undefined;
      if (moved >= 0 && busy) {
        const sample = (moved * 1000) / (nowMs - this.lastMs);
        this.bytesPerSecond = this.bytesPerSecond === undefined ? sample : this.bytesPerSecond + RATE_WEIGHT * (sample - this.bytesPerSecond);
      }
    }
    this.lastMs = nowMs;
    this.lastDelivered = deliveredBytes;
    this.lastBacklog = backlogBytes;
  }
}
