/**
 * What the kernel says of the transmitter's connections, for `threads auto`
 * (thread-tuner.ts), read at each of its ticks: bytes that reached the
 * receiver's TCP, a running total kept from each connection's count as it
 * grows (what a connection moved between its last reading and its close is
 * left out), how far their round trips stand above the least
 * (round-trips.ts), and the least itself; nothing where the transport cannot
 * tell.
 */
import type { ConnectionRecord } from "./pool-records.ts";
import { leastRoundTrip, roundTripInflation, type RoundTripSample } from "./round-trips.ts";
import type { TunerProgress } from "./tuner-settings.ts";

export type KernelReading = Pick<TunerProgress, "tcpDeliveredBytes" | "roundTripInflation" | "queueInflation" | "leastRoundTripMs">;

export class KernelReadings {
  /** Bytes delivered on every connection so far. */
  private deliveredTotal = 0;

  /** Reads the live connections' figures; each record keeps the count last seen on it. */
  read(records: Iterable<ConnectionRecord>): KernelReading {
    let known = false;
    let any = false;
    const samples: RoundTripSample[] = [];
    for (const record of records) {
      any = true;
      const figures = record.connection.tcpFigures;
      if (figures === undefined) continue; // closing: its descriptor may be gone
      known = true;
      if (figures.bytesDelivered > record.tcpBytesDeliveredSeen) this.deliveredTotal += figures.bytesDelivered - record.tcpBytesDeliveredSeen;
      record.tcpBytesDeliveredSeen = figures.bytesDelivered;
      samples.push({ link: record.link.index, roundTripMs: figures.roundTripMs, minRoundTripMs: figures.minRoundTripMs, congestion: figures.congestion });
    }
    return {
      tcpDeliveredBytes: known || !any ? this.deliveredTotal : undefined,
      roundTripInflation: roundTripInflation(samples),
      queueInflation: roundTripInflation(samples, "any"),
      leastRoundTripMs: leastRoundTrip(samples),
    };
  }
}
