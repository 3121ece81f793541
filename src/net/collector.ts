/**
 * Asks the garbage collector to run after every so many bytes of garbage.
 *
 * Every socket read arrives in a fresh buffer (Bun never reuses them), so the
 * receiver makes garbage as fast as it receives, about 2 GiB/s on loopback,
 * and JavaScriptCore collects it late. A request every 8 MiB (Bun.gc(false):
 * it does not wait) took the peak RSS down by about a third at no CPU cost we
 * could measure, but still left tens of MiB of reads uncollected at full
 * rate. A full collection (Bun.gc(true): it waits) every 64 MiB bounds that
 * lag: 1 GiB over loopback, receiver peak RSS 167–189 → 127–138 MiB for
 * about 0.2 CPU s more (1.1–1.4 → 1.3 s); every 8 MiB it cost 0.9 CPU s more
 * for 127–130 MiB.
 *
 * The transmitter makes garbage the same way when it seals: node:crypto
 * returns every sealed foot in fresh memory (tx/connection.ts copies it into
 * a reused buffer at once, so it dies young). Its connections share one
 * collector (`processCollector`): one count per process is what matters.
 */

/** Garbage between two collection requests. */
export const COLLECT_EVERY_BYTES = 8 * 1024 * 1024;
/** Garbage between two full collections, which wait until the garbage is freed. */
export const FULL_COLLECT_EVERY_BYTES = 64 * 1024 * 1024;

export class Collector {
  private sinceBytes = 0;
  private sinceFullBytes = 0;

  constructor(
    private readonly everyBytes = COLLECT_EVERY_BYTES,
    /** `full: false` requests a collection without waiting for it; `true` collects everything now. */
    private readonly collect: (full: boolean) => void = (full) => Bun.gc(full),
    private readonly fullEveryBytes = FULL_COLLECT_EVERY_BYTES,
  ) {}

  /** `bytes` of memory just became garbage (or will once written). */
  discarded(bytes: number): void {
    this.sinceBytes += bytes;
    this.sinceFullBytes += bytes;
    if (this.sinceBytes < this.everyBytes) return;
    this.sinceBytes = 0;
    const full = this.sinceFullBytes >= this.fullEveryBytes;
    if (full) this.sinceFullBytes = 0;
    this.collect(full);
  }
}

/** The process's collector, for modules that have no session to hang one on (the transmitter's). */
export const processCollector = new Collector();
