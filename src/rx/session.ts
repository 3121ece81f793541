/**
 * One transfer on the receiving side: feet from any connection →
 * verify → sequencer → stdout, with acknowledgements and credit flowing
 * back, and the end-of-stream check before the confirmation.
 *
 *  1. A foot is checked (id in the window, length, checksum; only a sealed
 *     foot may come without one). A bad checksum asks for the foot again;
 *     it is never written.
 *  2. The sequencer holds it until every earlier foot is written; the
 *     connection gets an acknowledgement at once.
 *  3. The write loop takes feet in order, writes them to the sink (awaiting
 *     each write: that is the backpressure), folds them into the digest
 *     and sends window credit back.
 *  4. When end-of-stream is known and every foot is written, totals and
 *     digest are compared; on a match the output is finished, then every
 *     connection gets the confirmation (session-end.ts).
 *  5. A failure aborts the output first, then every connection gets the
 *     abort notice (session-end.ts).
 *
 * The window starts at DEFAULT_WINDOW_BYTES in feet of the session's size
 * and grows with the path (window.ts: what a round trip moves, and a foot
 * per busy connection), up to `buffer`; each written foot sends the new end.
 *
 * Memory: one budget (`pool`, `recordMemory`) holds every foot-sized record
 * from its first byte to its last use: records being assembled by the
 * connections, feet in the reorder buffer, the foot being written. It has
 * room for the window as it stands plus ASSEMBLY_BYTES of records still
 * arriving (record-budget.ts), so it is at most `buffer` plus ASSEMBLY_BYTES
 * (and the records' headers; serving, less: the session's share of the
 * receiver's memory, memory-share.ts); a connection that finds it spent
 * stops reading until a buffer comes back. Held feet never fill it (the
 * window is smaller), so the foot the output waits on always finds room once
 * the records ahead of it finish or their silent connections are dropped by
 * the watchdog.
 *
 * State it owns: the connections joined, the sequencer, window, digest and
 * record budget, checksum failures per foot, the announced end, and when the
 * output last moved; the lifecycle and closing frames are session-end.ts's.
 */
import type { Clock } from "../clock.ts";
import { VmError } from "../errors.ts";
import { log } from "../log.ts";
import { footChecksum, StreamDigest } from "../protocol/digest.ts";
import { readText, type ConsumerVerdict, type ControlFrame } from "../protocol/messages.ts";
import {
  AbortCode,
  ChecksumKind,
  DigestKind,
  FOOT_FLAG_SEALED,
  FOOT_RECORD_OVERHEAD_BYTES,
  FrameKind,
  RetransmitReason,
  type EndOfStream,
  type Foot,
} from "../protocol/xdr.generated.ts";
import { BufferPool } from "../net/buffer-pool.ts";
import { Collector } from "../net/collector.ts";
import type { BudgetedMemory } from "../net/framed-connection.ts";
import { DEFAULT_BUFFER_BYTES, MIN_WINDOW_FEET } from "../options.ts";
import { Sequencer } from "./sequencer.ts";
import { ReceiveWindow } from "./window.ts";
import type { SessionOutput } from "./output.ts";
import { assemblyRecords, maxWindowFeet, receiveWindowFeet, SMALL_RECORD_BYTES } from "./record-budget.ts";
import { SessionEnd } from "./session-end.ts";

/** Times one foot may fail its checksum before the transfer is declared corrupt. */
export const MAX_CHECKSUM_FAILURES_PER_FOOT = 8;
/** What the session needs from a connection. */
export interface SessionConnection {
  readonly id: number;
  /** The connection's heartbeat round trip, once measured. */
  readonly roundTripMs?: number | undefined;
  /** The CAP_* bits its welcome echoed (CAP_VERDICT: the verdict precedes the last frame). */
  readonly capabilities: number;
  send(frame: ControlFrame): void;
}

export interface SessionEvents {
  /** Every byte is written, the output finished and the transmitter told; `verdict`: how the output's command ended. */
  onComplete(verdict: ConsumerVerdict | undefined): void;
  /** The session cannot go on; the transmitter has been told. */
  onFail(error: VmError): void;
}

export class Session {
  /** Random per session: a transmitter that sees it change knows this receiver restarted. */
  readonly nonce = crypto.getRandomValues(new BigUint64Array(1))[0]!;
  private readonly sequencer: Sequencer;
  private readonly window: ReceiveWindow;
  /** Memory for foot records; each goes back once written (or dropped). */
  readonly pool: BufferPool;
  /** Socket reads and unpacked payloads are garbage once copied or written: collected by volume. */
  readonly collector = new Collector();
  private readonly digest = new StreamDigest();
  private readonly connections = new Map<number, SessionConnection>();
  private readonly checksumFailures = new Map<bigint, number>();
  private end: EndOfStream | undefined;
  private writing = false;
  /** The lifecycle, and the output finished or aborted with the closing frames (steps 4 and 5). */
  private readonly closing: SessionEnd;
  /** When the output last moved (a foot written), and when we last asked for the foot it waits on. */
  private lastWrittenMs: number;
  private lastMissingRequestMs = 0;
  private missingRequests = 0;

  constructor(
    readonly sessionId: bigint,
    readonly footBytes: number,
    /** Feet the window starts at, at most; without it (and with fewer) DEFAULT_WINDOW_BYTES of them. */
    startWindowFeet: number | undefined,
    /** Where the stream goes: its sink, then finish() or abort() (output.ts). */
    private readonly output: SessionOutput,
    events: SessionEvents,
    private readonly clock: Clock,
    /** `buffer`: bytes of feet the window may grow to. */
    bufferBytes = DEFAULT_BUFFER_BYTES,
    /** Records beyond the window the budget has room for (a serving receiver's share may allow fewer, src/rx/memory-share.ts). */
    private readonly assembly = assemblyRecords(footBytes),
  ) {
    this.lastWrittenMs = clock.now();
    this.closing = new SessionEnd(output, this.connections, events);
    const maxFeet = maxWindowFeet(footBytes, bufferBytes);
    if (maxFeet * footBytes > bufferBytes) {
      log.warn(`buffer ${bufferBytes} bytes holds fewer than ${MIN_WINDOW_FEET} feet of the transmitter's ${footBytes}; the window may hold ${maxFeet * footBytes} bytes`);
    }
    const windowFeet = Math.min(maxFeet, receiveWindowFeet(footBytes, startWindowFeet ?? maxFeet));
    this.window = new ReceiveWindow(footBytes, windowFeet, maxFeet);
    this.sequencer = new Sequencer(windowFeet);
    // Records are at most a foot plus its header. The budget follows the window; what is kept for reuse may reach the largest.
    const records = windowFeet + this.assembly;
    this.pool = new BufferPool(footBytes + FOOT_RECORD_OVERHEAD_BYTES, maxFeet + this.assembly, records);
  }

  /**
   * Where connections assemble records: a budget buffer for anything larger
   * than SMALL_RECORD_BYTES, refused (the connection waits) while the budget
   * is spent.
   */
  readonly recordMemory: BudgetedMemory = {
    allocate: (bytes) => {
      // Larger than a budget buffer cannot happen once joined (the record limit is the buffer size).
      if (bytes <= SMALL_RECORD_BYTES || bytes > this.pool.bufferBytes) return Buffer.allocUnsafe(bytes);
      return this.pool.tryTake()?.subarray(0, bytes);
    },
    release: (buffer) => this.pool.give(buffer),
    whenAvailable: (retry) => this.pool.whenAvailable(retry),
    readDone: (bytes) => this.collector.discarded(bytes),
  };

  /** Feet the transmitter may have outstanding (the sequencer's window). */
  get windowFeet(): number {
    return this.sequencer.windowFeet;
  }

  /** Bytes the budget holds now: records arriving, held, being written. */
  get budgetBytesInUse(): number {
    return this.pool.lentCount * this.pool.bufferBytes;
  }

  get isOpen(): boolean {
    return this.closing.state === "open";
  }
  /** The whole stream is written and matched (its output may still be finishing). */
  get isComplete(): boolean {
    return this.closing.state === "complete" || this.closing.state === "finishing";
  }
  /** A command reads the stream: its verdict will precede the confirmation where the welcome promised it. */
  get hasVerdict(): boolean {
    return this.output.hasVerdict;
  }
  /** The whole stream is written; the output (a command) has not finished yet. */
  get isFinishing(): boolean {
    return this.closing.state === "finishing";
  }
  get deliveredBelow(): bigint {
    return this.sequencer.deliveredBelow;
  }
  get windowEnd(): bigint {
    return this.sequencer.windowEnd;
  }
  get bytesWritten(): bigint {
    return this.digest.totalBytes;
  }
  get feetWritten(): bigint {
    return this.digest.totalFeet;
  }
  /** Feet received and waiting for an earlier one. */
  get reorderFeet(): number {
    return this.sequencer.heldCount;
  }
  /** The stream digest (hex), once the whole stream is written and confirmed. */
  get digestHex(): string | null {
    return this.isComplete ? this.digest.value.toString(16).padStart(16, "0") : null;
  }
  /** Connections joined now. */
  get connectionCount(): number {
    return this.connections.size;
  }

  join(connection: SessionConnection): void {
    this.connections.set(connection.id, connection);
    this.closing.joined(connection);
  }

  leave(connection: SessionConnection): void {
    this.connections.delete(connection.id);
  }

  /** Routes a frame from the transmitter. */
  onFrame(connection: SessionConnection, frame: ControlFrame | { kind: typeof FrameKind.FRAME_FOOT; foot: Foot }): void {
    if (this.closing.state !== "open") return; // after the end, stragglers are ignored
    switch (frame.kind) {
      case FrameKind.FRAME_FOOT:
        return this.onFoot(connection, frame.foot);
      case FrameKind.FRAME_END:
        return this.onEnd(frame.end);
      case FrameKind.FRAME_ABORT:
        if (frame.abort.code === AbortCode.ABORT_PRODUCER_FAILED) {
          return this.fail(new VmError("producerFailed", `the transmitter aborted, so the stream is incomplete: ${readText(frame.abort.text)}`), false);
        }
        return this.fail(new VmError("peerLost", `transmitter aborted: ${readText(frame.abort.text)}`), false);
      default:
        return this.fail(new VmError("protocol", `transmitter sent a frame only a receiver sends (kind ${frame.kind})`));
    }
  }

  // ---- 1 + 2: feet in ---------------------------------------------------------

  private onFoot(connection: SessionConnection, foot: Foot): void {
    const { header, payload } = foot;
    const id = header.footId;
    // Only a seal (opened before this, see unpack.ts) may stand in for the checksum: nothing else vouches for the bytes.
    if (header.sum.kind !== ChecksumKind.CHECKSUM_XXH3_64 && (header.flags & FOOT_FLAG_SEALED) === 0) {
      return this.fail(new VmError("protocol", `foot ${id} is neither sealed nor checksummed; the transmitter does not follow the protocol`));
    }
    // The checksum comes first: it covers the header, so a foot damaged in
    // transit is fetched again instead of being judged a protocol violation.
    const checksum = footChecksum(id, header.streamOffset, payload, header.length);
    if (header.sum.kind === ChecksumKind.CHECKSUM_XXH3_64 && header.sum.xxh3 !== checksum) {
      this.pool.give(payload);
      return this.onBadChecksum(connection, id);
    }
    if (header.length !== payload.length || payload.length > this.footBytes || payload.length === 0) {
      return this.fail(new VmError("protocol", `foot ${id}: length ${header.length} does not fit payload ${payload.length} (foot size ${this.footBytes})`));
    }
    if (this.end !== undefined && id >= this.end.totalFeet) {
      return this.fail(new VmError("protocol", `foot ${id} is beyond the announced end (${this.end.totalFeet} feet)`));
    }
    const result = this.sequencer.accept({ id, payload, checksum, connectionId: connection.id, offset: header.streamOffset });
    if (result === "outside-window") {
      return this.fail(new VmError("protocol", `foot ${id} is outside the window (below ${this.sequencer.windowEnd})`));
    }
    connection.send({
      kind: FrameKind.FRAME_ACK,
      ack: { deliveredBelow: this.sequencer.deliveredBelow, received: [id] },
    });
    if (result === "accepted") void this.writeLoop();
    else this.pool.give(payload); // a duplicate: the copy already held wins
  }

  /**
   * A foot that failed authentication or would not inflate (see unpack.ts):
   * asked for again like a checksum failure, and counted with them.
   */
  onCorruptFoot(connection: SessionConnection, id: bigint, reason: string): void {
    if (this.closing.state !== "open") return;
    this.onBadChecksum(connection, id, reason);
  }

  private onBadChecksum(connection: SessionConnection, id: bigint, reason = "failed its checksum"): void {
    const failures = (this.checksumFailures.get(id) ?? 0) + 1;
    this.checksumFailures.set(id, failures);
    if (failures > MAX_CHECKSUM_FAILURES_PER_FOOT) {
      return this.fail(new VmError("integrity", `foot ${id} ${reason} ${failures} times; the path corrupts data`));
    }
    log.warn(`foot ${id} ${reason} on connection ${connection.id}; asking for it again (${failures}/${MAX_CHECKSUM_FAILURES_PER_FOOT})`);
    connection.send({
      kind: FrameKind.FRAME_RETRANSMIT,
      retransmit: { reason: RetransmitReason.RETRANSMIT_CHECKSUM, footIds: [id] },
    });
  }

  private onEnd(end: EndOfStream): void {
    if (this.end !== undefined) {
      const same = this.end.totalFeet === end.totalFeet && this.end.totalBytes === end.totalBytes && this.end.digest.xxh3Chain === end.digest.xxh3Chain;
      if (!same) this.fail(new VmError("protocol", "transmitter announced two different ends of stream"));
      return;
    }
    if (end.totalFeet < this.sequencer.deliveredBelow) {
      return this.fail(new VmError("protocol", `end of stream at ${end.totalFeet} feet, but ${this.sequencer.deliveredBelow} were already written`));
    }
    this.end = end;
    log.debug(`end of stream announced: ${end.totalFeet} feet, ${end.totalBytes} bytes`);
    this.checkComplete();
  }

  // ---- 3: in order to the sink ---------------------------------------------------

  private async writeLoop(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      for (;;) {
        const foot = this.sequencer.takeNext();
        if (foot === undefined) break;
        if (foot.offset !== this.digest.totalBytes) {
          throw new VmError("integrity", `foot ${foot.id} claims offset ${foot.offset} but the stream is at ${this.digest.totalBytes}`);
        }
        await this.output.sink.write(foot.payload);
        if (this.closing.state !== "open") return;
        this.pool.give(foot.payload);
        this.lastWrittenMs = this.clock.now();
        this.sequencer.written();
        this.digest.add(foot.checksum, foot.payload.length);
        this.followPath(foot.payload.length);
        this.sendCredit(foot.connectionId);
      }
    } catch (error) {
      this.fail(error instanceof VmError ? error : new VmError("internal", String(error)));
      return;
    } finally {
      this.writing = false;
    }
    this.checkComplete();
  }

  /** Grows the window when the path needs more than it holds (window.ts); the next credit carries it. */
  private followPath(bytes: number): void {
    let roundTripMs: number | undefined;
    for (const connection of this.connections.values()) {
      const measured = connection.roundTripMs;
      if (measured !== undefined) roundTripMs = Math.min(roundTripMs ?? measured, measured);
    }
    const growth = this.window.written(bytes, this.clock.now(), this.connections.size, roundTripMs);
    if (growth === undefined) return;
    this.sequencer.grow(growth.toFeet);
    this.pool.raiseMaxLent(growth.toFeet + this.assembly);
    const mib = (feet: number) => ((feet * this.footBytes) / 2 ** 20).toFixed(0);
    log.info(
      `window ${growth.fromFeet} → ${growth.toFeet} feet (${mib(growth.fromFeet)} → ${mib(growth.toFeet)} MiB): ` +
        `${(growth.bytesPerSecond / 2 ** 20).toFixed(1)} MiB/s, ${growth.roundTripMs.toFixed(0)} ms round trip, ${growth.connections} connections` +
        (growth.toFeet === this.window.maxFeet ? " (the most buffer allows)" : ""),
    );
  }

  /** Credit goes back on the connection that brought the foot, or any open one. */
  private sendCredit(preferred: number): void {
    const frame = { kind: FrameKind.FRAME_CREDIT, credit: { windowEnd: this.sequencer.windowEnd } };
    const connection = this.connections.get(preferred) ?? this.connections.values().next().value;
    connection?.send(frame);
  }

  /**
   * Called on every watchdog tick. When later feet are here but the one the
   * output waits on is not, and the output has not moved for `afterMs`, ask
   * for it: the transmitter re-sends it on another connection.
   */
  requestMissing(afterMs: number): void {
    const now = this.clock.now();
    if (this.closing.state !== "open" || this.writing || this.sequencer.heldCount === 0) return;
    if (now - this.lastWrittenMs < afterMs || now - this.lastMissingRequestMs < afterMs) return;
    // Each request goes out on the next connection in turn: the first may be the dead one.
    const joined = [...this.connections.values()];
    const connection = joined[this.missingRequests++ % Math.max(1, joined.length)];
    if (connection === undefined) return;
    this.lastMissingRequestMs = now;
    const missing = this.sequencer.deliveredBelow;
    log.info(`output waits on foot ${missing}; asking for it again`);
    connection.send({ kind: FrameKind.FRAME_RETRANSMIT, retransmit: { reason: RetransmitReason.RETRANSMIT_MISSING, footIds: [missing] } });
  }

  // ---- 4: the end ------------------------------------------------------------------

  private checkComplete(): void {
    const end = this.end;
    if (this.closing.state !== "open" || end === undefined || this.writing) return;
    if (this.sequencer.deliveredBelow !== end.totalFeet) return;
    if (this.digest.totalBytes !== end.totalBytes) {
      return this.fail(new VmError("integrity", `wrote ${this.digest.totalBytes} bytes but the transmitter sent ${end.totalBytes}`));
    }
    if (end.digest.kind !== DigestKind.DIGEST_XXH3_CHAIN || end.digest.xxh3Chain !== this.digest.value) {
      return this.fail(new VmError("integrity", "the stream digest does not match: the output is not what was sent"));
    }
    this.closing.finish(end);
  }

  /** Ends the session; `tellPeer` sends the reason to the transmitter. The output is aborted first (step 5, session-end.ts). */
  fail(error: VmError, tellPeer = true): void {
    this.closing.fail(error, tellPeer);
  }
}
