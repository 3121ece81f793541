/**
 * KernelReadings: the running total of bytes that reached the receiver's TCP
 * (each connection counted from what was last seen on it, a closed one's last
 * stretch left out) and the round trips `threads auto` reads, from records
 * whose connections report figures as the kernel would.
 */
import { describe, expect, test } from "bun:test";
import type { TcpFigures } from "../../src/net/tcp-info.ts";
import { KernelReadings } from "../../src/tx/kernel-readings.ts";
import type { ConnectionRecord } from "../../src/tx/pool-records.ts";

/** A record on link `link` whose connection reports `figures` (undefined: closing, its descriptor gone). */
function record(link: number): { record: ConnectionRecord; report(figures: Partial<TcpFigures> | undefined): void } {
  let current: TcpFigures | undefined;
  const fake = {
    connection: { get tcpFigures() { return current; } },
    link: { index: link },
    tcpBytesDeliveredSeen: 0,
  } as unknown as ConnectionRecord;
  return {
    record: fake,
    report(figures) {
      current = figures === undefined ? undefined : { bytesAcked: 0, bytesDelivered: 0, roundTripMs: 10, minRoundTripMs: 10, congestion: "cubic", ...figures };
    },
  };
}

describe("KernelReadings", () => {
  test("adds what each connection delivered since it was last read; a closed connection's count stays in the total", () => {
    const readings = new KernelReadings();
    const a = record(0);
    const b = record(0);
    a.report({ bytesDelivered: 1000 });
    b.report({ bytesDelivered: 500 });
    expect(readings.read([a.record, b.record]).tcpDeliveredBytes).toBe(1500);
    a.report({ bytesDelivered: 1800 });
    expect(readings.read([a.record, b.record]).tcpDeliveredBytes).toBe(2300);
    // b closed and left the pool: what it moved stays counted, and nothing is counted twice.
    a.report({ bytesDelivered: 2000 });
    expect(readings.read([a.record]).tcpDeliveredBytes).toBe(2500);
    // A new connection counts from its own zero.
    const c = record(1);
    c.report({ bytesDelivered: 300 });
    expect(readings.read([a.record, c.record]).tcpDeliveredBytes).toBe(2800);
  });

  test("unknown while every connection is closing; the total stands with no connection at all", () => {
    const readings = new KernelReadings();
    const a = record(0);
    a.report({ bytesDelivered: 700 });
    expect(readings.read([a.record]).tcpDeliveredBytes).toBe(700);
    a.report(undefined);
    expect(readings.read([a.record]).tcpDeliveredBytes).toBeUndefined();
    expect(readings.read([]).tcpDeliveredBytes).toBe(700);
  });

  test("round trips against each link's least: queue-filling ones alone, and every one", () => {
    const readings = new KernelReadings();
    const cubic = record(0);
    const bbr = record(1);
    cubic.report({ roundTripMs: 75, minRoundTripMs: 50, congestion: "cubic" });
    bbr.report({ roundTripMs: 300, minRoundTripMs: 150, congestion: "bbr" });
    const reading = readings.read([cubic.record, bbr.record]);
    expect(reading.roundTripInflation).toBe(1.5);
    // Over both, the median of 1.5 and 2 is the upper one.
    expect(reading.queueInflation).toBe(2);
    expect(reading.leastRoundTripMs).toBe(50);
  });
});
