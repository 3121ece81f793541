/**
 * RFC 5531 section 11 record marking: how XDR messages are delimited on TCP.
 *
 * A record is one or more fragments; each fragment is a 4-byte big-endian
 * word (top bit: last fragment; low 31 bits: fragment length) followed by
 * that many bytes. We always send a record as one fragment, and accept any
 * fragmentation a conforming peer (e.g. libtirpc's xdrrec) produces.
 *
 * Pure: bytes in, records out. No sockets, timers or logging.
 */
import { VmError } from "../errors.ts";

const LAST_FRAGMENT_BIT = 0x8000_0000;
const FRAGMENT_LENGTH_MASK = 0x7fff_ffff;
export const RECORD_MARK_BYTES = 4;

/** The 4-byte mark of a single-fragment record of `length` bytes. */
export function writeRecordMark(target: Uint8Array, offset: number, length: number): void {
  if (length > FRAGMENT_LENGTH_MASK) throw new RangeError(`record of ${length} bytes is too long`);
  new DataView(target.buffer, target.byteOffset + offset, 4).setUint32(0, (LAST_FRAGMENT_BIT | length) >>> 0);
}

/** `body` framed as one single-fragment record (copies body; for small messages). */
export function toRecord(body: Uint8Array): Uint8Array {
  const record = new Uint8Array(RECORD_MARK_BYTES + body.length);
  writeRecordMark(record, 0, body.length);
  record.set(body, RECORD_MARK_BYTES);
  return record;
}

/** Where records that span chunks are assembled. */
export interface RecordMemory {
  /** A buffer of at least `bytes`, or undefined when none may be had now. */
  allocate(bytes: number): Uint8Array | undefined;
  /** A buffer from `allocate` that no longer holds a record the decoder will hand out. */
  release(buffer: Uint8Array): void;
}

/** Fresh memory for every record, never refused: what a decoder uses unless told otherwise. */
export const freshRecordMemory: RecordMemory = {
  allocate: (bytes) => Buffer.allocUnsafe(bytes),
  release: () => {},
};

/**
 * Incremental decoder: feed it chunks of any size and boundary, get whole
 * records back. Every fragment length is checked against the current limit
 * before a byte of it is kept, so a hostile length allocates nothing.
 *
 * A record that spans chunks is copied into its own buffer as its bytes
 * arrive, so no chunk is referenced once `push` returns. Keeping views of
 * the chunks until the record was whole pinned up to a record's worth of
 * socket reads per connection, which the collector then reclaimed late.
 *
 * The allocator may refuse (a memory budget is spent). The decoder then
 * stops where the record needed its buffer and keeps the rest of that chunk,
 * and any chunk pushed after it, unread (`waiting`); `retry` goes on from
 * there. The caller stops reading from its source meanwhile, so what waits
 * here is at most the chunks already read.
 */
export class RecordDecoder {
  /** Largest record accepted; the connection layer tightens it after the handshake. */
  maxRecordBytes: number;
  /** Memory for records that span chunks (a pool can supply it; see BufferPool). */
  memory: RecordMemory = freshRecordMemory;

  private readonly markBytes = new Uint8Array(RECORD_MARK_BYTES);
  private markFill = 0;
  /** Bytes still to come in the current fragment; -1 while reading a mark. */
  private fragmentRemaining = -1;
  private lastFragment = false;
  /** Bytes the marks of the record so far announce (every fragment up to the current one). */
  private recordBytes = 0;
  /** The record being assembled, once a byte of it had to be copied. */
  private assembly: Uint8Array | undefined;
  /** Bytes of the record copied into `assembly`. */
  private assembled = 0;
  /** Chunks (or their rest) not decoded yet because the allocator refused. */
  private unread: Uint8Array[] = [];

  constructor(maxRecordBytes: number) {
    this.maxRecordBytes = maxRecordBytes;
  }

  /** Bytes of an unfinished record received so far (for diagnostics and tests). */
  get pendingBytes(): number {
    return this.assembled + this.markFill;
  }

  /** The allocator refused: decoding waits for `retry`. */
  get waiting(): boolean {
    return this.unread.length > 0;
  }

  /** Bytes received but not decoded while waiting. */
  get unreadBytes(): number {
    return this.unread.reduce((sum, chunk) => sum + chunk.length, 0);
  }

  /**
   * Consumes `chunk` and returns every record it completes, in order. A
   * single-fragment record lying wholly inside `chunk` is returned as a view
   * of it (callers must not reuse the chunk's memory; Bun hands each socket
   * read a fresh buffer); every other record is a copy.
   * Throws VmError("protocol") when a fragment exceeds the limit.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.waiting) {
      if (chunk.length > 0) this.unread.push(chunk);
      return [];
    }
    const records: Uint8Array[] = [];
    this.consume(chunk, records);
    return records;
  }

  /** Decodes what waited, once the allocator may have memory again; still `waiting` if not. */
  retry(): Uint8Array[] {
    const chunks = this.unread;
    this.unread = [];
    const records: Uint8Array[] = [];
    for (let i = 0; i < chunks.length; i++) {
      if (this.consume(chunks[i]!, records)) continue;
      this.unread.push(...chunks.slice(i + 1));
      break;
    }
    return records;
  }

  /** Gives the unfinished record's buffer back to `memory` and forgets everything pending (the source is gone). */
  discard(): void {
    if (this.assembly !== undefined) this.memory.release(this.assembly);
    this.assembly = undefined;
    this.assembled = 0;
    this.unread = [];
  }

  /** Decodes `chunk` into `records`; false if the allocator refused (the rest of `chunk` is then kept in `unread`). */
  private consume(chunk: Uint8Array, records: Uint8Array[]): boolean {
    let at = 0;
    while (at < chunk.length) {
      if (this.fragmentRemaining < 0) {
        const take = Math.min(RECORD_MARK_BYTES - this.markFill, chunk.length - at);
        this.markBytes.set(chunk.subarray(at, at + take), this.markFill);
        this.markFill += take;
        at += take;
        if (this.markFill < RECORD_MARK_BYTES) break;
        this.startFragment();
        // A zero-length last fragment completes the record right here.
        if (this.fragmentRemaining === 0) this.finishFragment(records);
        continue;
      }
      const take = Math.min(this.fragmentRemaining, chunk.length - at);
      const bytes = chunk.subarray(at, at + take);
      if (this.assembly === undefined && this.lastFragment && take === this.fragmentRemaining) {
        // Nothing copied yet and the rest of the record is here: the record is this view.
        at += take;
        records.push(bytes);
        this.fragmentRemaining = -1;
        this.recordBytes = 0;
        continue;
      }
      if (!this.copyIn(bytes)) {
        this.unread.push(chunk.subarray(at));
        return false;
      }
      at += take;
      this.fragmentRemaining -= take;
      if (this.fragmentRemaining === 0) this.finishFragment(records);
    }
    return true;
  }

  private startFragment(): void {
    const word = new DataView(this.markBytes.buffer).getUint32(0);
    this.markFill = 0;
    const length = word & FRAGMENT_LENGTH_MASK;
    if (this.recordBytes + length > this.maxRecordBytes) {
      throw new VmError(
        "protocol",
        `record of ${this.recordBytes + length} bytes exceeds the limit of ${this.maxRecordBytes}`,
      );
    }
    this.lastFragment = (word & LAST_FRAGMENT_BIT) !== 0;
    this.fragmentRemaining = length;
    this.recordBytes += length;
  }

  /**
   * Appends `bytes` to the record being assembled; false if its buffer could
   * not be had (nothing is consumed then). The buffer is allocated when the
   * first byte has to be kept, not at the mark. A record in one fragment gets
   * exactly its length. One whose total is still unknown (more fragments
   * follow) gets the limit, which the marks are checked against, so it grows
   * only if the limit is raised mid-record.
   */
  private copyIn(bytes: Uint8Array): boolean {
    let assembly = this.assembly;
    if (assembly === undefined || assembly.length < this.recordBytes) {
      const grown = this.memory.allocate(this.lastFragment ? this.recordBytes : this.maxRecordBytes);
      if (grown === undefined) return false;
      if (assembly !== undefined) {
        grown.set(assembly.subarray(0, this.assembled));
        this.memory.release(assembly);
      }
      this.assembly = assembly = grown;
    }
    assembly.set(bytes, this.assembled);
    this.assembled += bytes.length;
    return true;
  }

  private finishFragment(records: Uint8Array[]): void {
    this.fragmentRemaining = -1;
    if (!this.lastFragment) return;
    // No assembly means no byte was kept: every fragment of this record was empty.
    records.push(this.assembly?.subarray(0, this.assembled) ?? new Uint8Array(0));
    this.assembly = undefined;
    this.assembled = 0;
    this.recordBytes = 0;
  }
}
