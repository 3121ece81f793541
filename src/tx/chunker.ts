/**
 * Cuts the input into feet: blocks of exactly `footBytes`, except the last.
 * Short reads (pipes deliver whatever the producer wrote) are merged until
 * the foot is full or the input ends, so foot boundaries never depend on how
 * the bytes arrived.
 */
import type { ByteSource } from "./stdin.ts";

export interface Cut {
  id: bigint;
  offset: bigint;
  payload: Uint8Array;
}

export class Chunker {
  private nextId = 0n;
  private offset = 0n;
  private ended = false;

  constructor(
    private readonly source: ByteSource,
    private readonly footBytes: number,
    /** Where foot memory comes from (a pool); `release` takes back an unused one. */
    private readonly memory: { take(): Uint8Array; give(buffer: Uint8Array): void } = {
      take: () => Buffer.allocUnsafe(footBytes),
      give: () => {},
    },
    /** `charmode`: hand over what the input has instead of waiting for a full foot. */
    private readonly charmode = false,
  ) {}

  /** The next foot, or undefined once the input has ended. */
  async next(): Promise<Cut | undefined> {
    if (this.ended) return undefined;
    const buffer = this.memory.take();
    let fill = 0;
    while (fill < this.footBytes) {
      const n = await this.source.read(buffer.subarray(fill));
      if (n === 0) {
        this.ended = true;
        break;
      }
      fill += n;
    }
    if (fill === 0) {
      this.memory.give(buffer);
      return undefined;
    }
    const cut: Cut = { id: this.nextId, offset: this.offset, payload: buffer.subarray(0, fill) };
    this.nextId++;
    this.offset += BigInt(fill);
    return cut;
  }
}
