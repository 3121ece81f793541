/**
 * Asks the garbage collector to run after every so many bytes of garbage,
 * and collects fully, waiting, only while the process is near its bound.
 *
 * Every socket read arrives in a fresh buffer (Bun never reuses them), so the
 * receiver makes garbage as fast as it receives, about 2 GiB/s on loopback,
 * and JavaScriptCore collects it late. A request every 8 MiB (Bun.gc(false):
 * it does not wait) costs nothing we could measure but leaves tens of MiB of
 * reads uncollected at full rate.
 *
 * What bounds that lag in bytes is a full collection that waits, every
 * 64 MiB of garbage. It is needed only where the lag could take the process
 * past its bound: once the record budget is allocated (a peer that grows the
 * window to `buffer` and streams at full rate, several serving sessions),
 * the process's resident memory is above FULL_COLLECT_ABOVE_RESIDENT_BYTES.
 * Below that, memory is short of the bound by more than the lag, so the
 * collector only requests; a transfer over loopback, whose budget stays
 * mostly unallocated, stays there and so pays for no full collection.
 *
 * The full collection is JavaScriptCore's (bun:jsc fullGC): it marks
 * everything and waits, and the buffers it finds dead are swept as memory is
 * next needed. Bun.gc(true) also sweeps at once and hands the pages back to
 * the kernel, so every later read faults its pages in again: about three
 * times the page faults and 0.2 CPU s per GiB received, for the same peak.
 *
 * The transmitter makes garbage the same way when it seals: node:crypto
 * returns every sealed foot in fresh memory (tx/connection.ts copies it into
 * a reused buffer at once, so it dies young). Its connections share one
 * collector (`processCollector`): one count per process is what matters.
 */
import { fullGC } from "bun:jsc";

/** Garbage between two collection requests. */
export const COLLECT_EVERY_BYTES = 8 * 1024 * 1024;
/** Garbage between two full collections, which wait for the collector, while the process is near its bound. */
export const FULL_COLLECT_EVERY_BYTES = 64 * 1024 * 1024;
/**
 * Resident memory from which the process counts as near its bound (256 MiB
 * for a receiver at default settings, test/e2e/memory.test.ts): the bound
 * less about the lag a full collection every FULL_COLLECT_EVERY_BYTES leaves.
 */
export const FULL_COLLECT_ABOVE_RESIDENT_BYTES = 160 * 1024 * 1024;

/** How a collection is asked for: `full: false` requests one without waiting; `true` collects everything now. */
export type Collect = (full: boolean) => void;

const collectWithJsc: Collect = (full) => {
  if (full) fullGC();
  else Bun.gc(false);
};

export class Collector {
  private sinceBytes = 0;
  private sinceFullBytes = 0;

  constructor(
    private readonly everyBytes = COLLECT_EVERY_BYTES,
    private readonly collect: Collect = collectWithJsc,
    private readonly fullEveryBytes = FULL_COLLECT_EVERY_BYTES,
    /** The process's resident memory in bytes, read at most once per request. */
    private readonly residentBytes: () => number = () => process.memoryUsage.rss(),
    private readonly fullAboveResidentBytes = FULL_COLLECT_ABOVE_RESIDENT_BYTES,
  ) {}

  /** `bytes` of memory just became garbage (or will once written). */
  discarded(bytes: number): void {
    this.sinceBytes += bytes;
    this.sinceFullBytes += bytes;
    if (this.sinceBytes < this.everyBytes) return;
    this.sinceBytes = 0;
    const full = this.sinceFullBytes >= this.fullEveryBytes && this.residentBytes() >= this.fullAboveResidentBytes;
    if (full) this.sinceFullBytes = 0;
    this.collect(full);
  }
}

/** The process's collector, for modules that have no session to hang one on (the transmitter's). */
export const processCollector = new Collector();
