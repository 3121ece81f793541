/**
 * A connection's delivery rate (src/tx/delivery-rate.ts): read from the
 * kernel's figures on each tick, counted only while the connection has bytes
 * to send.
 */
import { describe, expect, test } from "bun:test";
import { DeliveryRate } from "../../src/tx/delivery-rate.ts";

describe("delivery rate", () => {
  test("unknown until an interval with bytes to send at both its ends; then smoothed", () => {
    const rate = new DeliveryRate();
    rate.read(0, 0, 1000);
    expect(rate.bytesPerSecond).toBeUndefined();
    rate.read(250, 500, 1000);
    expect(rate.bytesPerSecond).toBe(2000);
    rate.read(500, 1500, 1000); // 4000 B/s read: halfway there
    expect(rate.bytesPerSecond).toBe(3000);
  });

  test("an interval that starts or ends with nothing to send does not count: idle is not slow", () => {
    const rate = new DeliveryRate();
    rate.read(0, 0, 1000);
    rate.read(250, 1000, 1000);
    expect(rate.bytesPerSecond).toBe(4000);
    rate.read(500, 1500, 0); // ran dry
    rate.read(750, 1500, 0); // idle
    rate.read(1000, 1500, 2000); // handed more
    expect(rate.bytesPerSecond).toBe(4000);
    rate.read(1250, 2500, 1000);
    expect(rate.bytesPerSecond).toBe(4000);
  });

  test("a busy connection that delivers nothing is read as slowing down", () => {
    const rate = new DeliveryRate();
    rate.read(0, 0, 1000);
    rate.read(250, 1000, 1000);
    rate.read(500, 1000, 1000);
    expect(rate.bytesPerSecond).toBe(2000);
  });

  test("moving: whether the last busy interval delivered anything; unknown across an interval that started or ended idle", () => {
    const rate = new DeliveryRate();
    rate.read(0, 0, 1000);
    expect(rate.moving).toBeUndefined();
    rate.read(250, 10, 1000);
    expect(rate.moving).toBe(true);
    rate.read(500, 10, 1000); // a retransmission timeout: nothing arrives
    expect(rate.moving).toBe(false);
    rate.read(750, 1010, 0); // ran dry
    expect(rate.moving).toBeUndefined();
  });
});
