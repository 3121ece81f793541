/**
 * The reader: the input, cut into feet, into the scheduler.
 *
 *  1. While the receiver's window has room for the next foot, and this end
 *     holds fewer than `buffer` bytes of feet not yet acknowledged, the
 *     chunker cuts one from the input; otherwise the input is not read (the
 *     producer feels the backpressure) until `wake` says credit came (credit
 *     for a foot follows its acknowledgement on the same connection).
 *  2. Each foot gets its checksum and joins the stream digest.
 *  3. With `compress`, up to MAX_COMPRESSING_FEET feet are compressed at once
 *     (on the thread pool) and handed on in read order; a foot that does not
 *     shrink goes as it is.
 *  4. At the end of the input, end-of-stream (totals and digest) is handed on.
 *
 * State it owns: the chunker, the stream digest, the feet being compressed,
 * and the wait for window room.
 */
import type { Clock } from "../clock.ts";
import type { BufferPool } from "../net/buffer-pool.ts";
import { log } from "../log.ts";
import { DEFAULT_BUFFER_BYTES, MIN_WINDOW_FEET, type Compression } from "../options.ts";
import { footChecksum, StreamDigest } from "../protocol/digest.ts";
import { DigestKind, type EndOfStream } from "../protocol/xdr.generated.ts";
import { Chunker } from "./chunker.ts";
import { compressFoot } from "./compress.ts";
import type { OutboundFoot, SendScheduler } from "./scheduler.ts";
import type { ByteSource } from "./stdin.ts";

/** `compress`: feet compressed at once (on the thread pool), at least 2, else one per core. */
const MAX_COMPRESSING_FEET = Math.max(2, navigator.hardwareConcurrency);

export interface ReaderSettings {
  footBytes: number;
  /** `buffer`: bytes of feet held (read, not yet acknowledged) at most; at least MIN_WINDOW_FEET feet. */
  bufferBytes?: number;
  compress?: Compression;
  charmode?: boolean;
}

export class Reader {
  private readonly chunker: Chunker;
  private readonly digest = new StreamDigest();
  /** Feet being compressed, in read order; handed to the scheduler in that order. */
  private readonly compressing: Promise<OutboundFoot>[] = [];
  private wakeUp: (() => void) | undefined;
  private stopped = false;
  /** Feet held at most, from `buffer`. */
  private readonly maxHeldFeet: number;

  constructor(
    source: ByteSource,
    private readonly settings: ReaderSettings,
    private readonly pool: BufferPool,
    private readonly scheduler: SendScheduler,
    /** A foot joined the scheduler. */
    private readonly added: () => void,
    /** The input ended: everything is in the scheduler. */
    private readonly ended: (end: EndOfStream) => void,
    clock: Clock,
  ) {
    this.chunker = new Chunker(source, settings.footBytes, pool, settings.charmode ?? false, undefined, clock);
    this.maxHeldFeet = Math.max(MIN_WINDOW_FEET, Math.floor((settings.bufferBytes ?? DEFAULT_BUFFER_BYTES) / settings.footBytes));
  }

  /** Room for the next foot: in the receiver's window, and in `buffer`, counting the feet still being compressed. */
  private hasRoom(): boolean {
    const ahead = this.compressing.length;
    return this.scheduler.canRead(ahead) && this.scheduler.heldCount + ahead < this.maxHeldFeet;
  }

  /** The stream digest so far (the whole stream's once the input ended). */
  get digestValue(): bigint {
    return this.digest.value;
  }

  /** The window may have room again. */
  wake(): void {
    this.wakeUp?.();
  }

  stop(): void {
    this.stopped = true;
    this.wakeUp?.();
  }

  async run(): Promise<void> {
    const compression = this.settings.compress;
    for (;;) {
      while (!this.hasRoom() || this.compressing.length >= MAX_COMPRESSING_FEET) {
        if (this.compressing.length > 0) {
          if (!this.addCompressed(await this.compressing.shift()!)) return;
          continue;
        }
        await new Promise<void>((resolve) => (this.wakeUp = resolve));
        this.wakeUp = undefined;
        if (this.stopped) return;
      }
      const cut = await this.chunker.next();
      if (this.stopped) return;
      if (cut === undefined) break;
      const checksum = footChecksum(cut.id, cut.offset, cut.payload);
      this.digest.add(checksum, cut.payload.length);
      const foot: OutboundFoot = { ...cut, checksum, sends: 0, connectionId: undefined, copiesQueued: 0, acknowledged: false, lastSentMs: 0, hedges: 0 };
      if (compression === undefined) {
        this.scheduler.add(foot);
        this.added();
      } else {
        const compressed = this.compress(foot, compression);
        compressed.catch(() => {}); // awaited in order below; one left behind by a failure must not be unhandled
        this.compressing.push(compressed);
      }
    }
    while (this.compressing.length > 0) if (!this.addCompressed(await this.compressing.shift()!)) return;
    const end: EndOfStream = {
      totalFeet: this.digest.totalFeet,
      totalBytes: this.digest.totalBytes,
      digest: { kind: DigestKind.DIGEST_XXH3_CHAIN, xxh3Chain: this.digest.value },
    };
    log.debug(`end of input: ${end.totalFeet} feet, ${end.totalBytes} bytes`);
    this.ended(end);
  }

  /** The foot with its payload compressed, when that makes it smaller (the stream bytes go back to the pool). */
  private async compress(foot: OutboundFoot, compression: Compression): Promise<OutboundFoot> {
    const compressed = await compressFoot(foot.payload, compression);
    if (compressed === undefined) return foot;
    this.pool.give(foot.payload);
    return { ...foot, payload: compressed.bytes, streamLength: foot.payload.length, encoding: compressed.flag };
  }

  /** Hands a compressed foot to the scheduler; false once the transfer is over. */
  private addCompressed(foot: OutboundFoot): boolean {
    if (this.stopped) return false;
    this.scheduler.add(foot);
    this.added();
    return true;
  }
}
