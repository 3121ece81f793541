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

/**
 * Incremental decoder: feed it chunks of any size and boundary, get whole
 * records back. Every fragment length is checked against the current limit
 * before a byte of it is kept, so a hostile length allocates nothing.
 */
export class RecordDecoder {
  /** Largest record accepted; the connection layer tightens it after the handshake. */
  maxRecordBytes: number;
  /** Memory for a record that spans chunks (a pool can supply it; see BufferPool). */
  allocate: (bytes: number) => Uint8Array = (bytes) => Buffer.allocUnsafe(bytes);

  private readonly markBytes = new Uint8Array(RECORD_MARK_BYTES);
  private markFill = 0;
  /** Bytes still to come in the current fragment; -1 while reading a mark. */
  private fragmentRemaining = -1;
  private lastFragment = false;
  /** Pieces of the record being assembled (views of the caller's chunks). */
  private pieces: Uint8Array[] = [];
  private recordBytes = 0;

  constructor(maxRecordBytes: number) {
    this.maxRecordBytes = maxRecordBytes;
  }

  /** Bytes of an unfinished record held right now (for diagnostics and tests). */
  get pendingBytes(): number {
    return this.recordBytes + this.markFill;
  }

  /**
   * Consumes `chunk` and returns every record it completes, in order. The
   * returned records may be views of `chunk`: callers must not reuse the
   * chunk's memory (Bun hands each socket read a fresh buffer).
   * Throws VmError("protocol") when a fragment exceeds the limit.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    const records: Uint8Array[] = [];
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
      this.pieces.push(chunk.subarray(at, at + take));
      this.fragmentRemaining -= take;
      at += take;
      if (this.fragmentRemaining === 0) this.finishFragment(records);
    }
    return records;
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

  private finishFragment(records: Uint8Array[]): void {
    this.fragmentRemaining = -1;
    if (!this.lastFragment) return;
    records.push(joinPieces(this.pieces, this.recordBytes, this.allocate));
    this.pieces = [];
    this.recordBytes = 0;
  }
}

/** One contiguous view of `pieces`: the piece itself when there is one, else one copy. */
function joinPieces(pieces: Uint8Array[], totalBytes: number, allocate: (bytes: number) => Uint8Array): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  const joined = allocate(totalBytes);
  let at = 0;
  for (const piece of pieces) {
    joined.set(piece, at);
    at += piece.length;
  }
  return joined;
}
