/**
 * A Channel that speaks records: incoming bytes are cut into whole records
 * (RFC 5531 record marking), outgoing records queue behind partial writes.
 *
 * Backpressure: `send` never blocks and never copies; it queues views and
 * writes as much as the transport takes, continuing on drain. `queuedBytes`
 * tells the scheduler how busy the connection is; `onIdle` fires each time
 * the queue empties.
 *
 * Reading is bounded by the record memory (`memory`): when it has no room
 * for the next record, the connection stops reading (the peer's bytes stay
 * in the kernel, and TCP slows the peer) until room comes back. Time spent
 * waiting so is not silence: the stall watchdog does not count it.
 */
import { systemClock, type Clock } from "../clock.ts";
import { RecordDecoder, type RecordMemory } from "../protocol/records.ts";
import type { Channel, ChannelHandlers, Network } from "./channel.ts";
import type { TcpFigures } from "./tcp-info.ts";

/** Record memory that may refuse, and says when to try again. */
export interface BudgetedMemory extends RecordMemory {
  /** Calls `retry` once memory has come back (not from inside the call that gave it back). */
  whenAvailable(retry: () => void): void;
  /**
   * A transport read of `bytes` was decoded: it is garbage once the records
   * that are views of it are dropped (Bun hands every read a fresh buffer).
   */
  readDone(bytes: number): void;
}

export interface FramedHandlers {
  /** One whole record; may be a view of transport memory, never reused by us. */
  onRecord(record: Uint8Array): void;
  /** Everything queued has been handed to the transport. */
  onIdle(): void;
  /** The connection is gone (fires once). `error` says why, when known. */
  onClose(error?: Error): void;
}

export class FramedConnection {
  private channel: Channel | undefined;
  private readonly decoder: RecordDecoder;
  private queue: Uint8Array[] = [];
  /** Callbacks to run once the queue entry at the same index is written (or dropped). */
  private written: ((() => void) | undefined)[] = [];
  /** Whether the queue entry at the same index is the first piece of a `send`. */
  private firsts: boolean[] = [];
  private queueHead = 0;
  /** The transport took part of the entry at `queueHead`: its record is under way. */
  private headStarted = false;
  private queued = 0;
  /** `flushed` callers, told once nothing is queued or the connection closed. */
  private flushWaiters: (() => void)[] = [];
  /** Bytes the transport has taken, in all. */
  private taken = 0;
  private closed = false;
  private shutdownWhenIdle = false;
  /** Set by `stall()`: neither read nor write any more (chaos rehearses a dead path). */
  private stalled = false;
  /** Where records are assembled; refusals pause reading until `whenAvailable` calls back. */
  private budget: BudgetedMemory | undefined;
  /** Reading is paused because the record memory refused. */
  private waitingForMemory = false;
  /** When bytes last arrived, and when the transport last took bytes or had nothing queued. */
  private lastReceivedMs: number;
  private lastWriteProgressMs: number;

  constructor(
    maxRecordBytes: number,
    private readonly handlers: FramedHandlers,
    private readonly clock: Clock = systemClock,
  ) {
    this.decoder = new RecordDecoder(maxRecordBytes);
    this.lastReceivedMs = this.lastWriteProgressMs = clock.now();
  }

  /**
   * Why this connection should be considered dead, if it should: nothing
   * received for `timeoutMs` (the peer sends heartbeats more often than
   * that), or queued bytes the transport has not taken for `timeoutMs`.
   */
  stallReason(timeoutMs: number): string | undefined {
    if (this.waitingForMemory && !this.stalled) return undefined; // we are the ones not reading
    const now = this.clock.now();
    if (now - this.lastReceivedMs > timeoutMs) return `nothing received for ${((now - this.lastReceivedMs) / 1000).toFixed(1)}s`;
    if (this.queued > 0 && now - this.lastWriteProgressMs > timeoutMs) {
      return `no write progress for ${((now - this.lastWriteProgressMs) / 1000).toFixed(1)}s`;
    }
    return undefined;
  }

  /** Stops all traffic but keeps the socket open, like a path that died silently. */
  stall(): void {
    this.stalled = true;
    this.channel?.pause();
  }

  /** Dials out and returns the connection once open. */
  static async dial(
    network: Network,
    host: string,
    port: number,
    maxRecordBytes: number,
    handlers: FramedHandlers,
    clock: Clock = systemClock,
  ): Promise<FramedConnection> {
    const connection = new FramedConnection(maxRecordBytes, handlers, clock);
    connection.attach(await network.dial(host, port, connection.channelHandlers()));
    return connection;
  }

  /** Wraps an accepted channel; returns the handlers the transport must call. */
  static accept(
    channel: Channel,
    maxRecordBytes: number,
    handlers: FramedHandlers,
    clock: Clock = systemClock,
  ): { connection: FramedConnection; channelHandlers: ChannelHandlers } {
    const connection = new FramedConnection(maxRecordBytes, handlers, clock);
    connection.attach(channel);
    return { connection, channelHandlers: connection.channelHandlers() };
  }

  get remoteAddress(): string {
    return this.channel?.remoteAddress ?? "(not connected)";
  }

  get localAddress(): string {
    return this.channel?.localAddress ?? "(local)";
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The kernel's figures for the connection, where the transport can tell (Channel.tcpFigures; none once closed). */
  get tcpFigures(): TcpFigures | undefined {
    return this.channel?.tcpFigures?.();
  }

  /** Bytes queued but not yet taken by the transport. */
  get queuedBytes(): number {
    return this.queued;
  }

  /** Bytes handed to `send` so far, whether the transport took them yet or not. */
  get handedBytes(): number {
    return this.taken + this.queued;
  }

  /** The record size limit for what the peer sends us from now on. */
  set maxRecordBytes(limit: number) {
    this.decoder.maxRecordBytes = limit;
  }

  /** Memory for records that span reads (a session's budget, once the foot size is known). */
  set memory(memory: BudgetedMemory) {
    this.budget = memory;
    this.decoder.memory = memory;
  }

  /** Bytes read from the transport but not decoded, while waiting for record memory. */
  get unreadBytes(): number {
    return this.decoder.unreadBytes;
  }

  /**
   * Queues the pieces of one or more records, in order, and writes what the
   * transport takes. `onWritten` runs once all of them are handed to the
   * transport, or dropped because the connection closed: either way this
   * connection holds no reference to them afterwards.
   */
  send(pieces: readonly Uint8Array[], onWritten?: () => void): void {
    if (this.closed) {
      onWritten?.();
      return;
    }
    pieces.forEach((piece, i) => {
      this.queue.push(piece);
      this.written.push(undefined);
      this.firsts.push(i === 0);
      this.queued += piece.length;
    });
    this.written[this.written.length - 1] = onWritten;
    this.flush();
  }

  /** Half-closes our side once everything queued is written: used after a final message. */
  shutdown(): void {
    this.shutdownWhenIdle = true;
    if (!this.closed && this.queued === 0) this.channel?.shutdown();
  }

  /**
   * The last record on this connection: what is queued and not yet under
   * way is dropped (its `onWritten` runs), the record the transport has
   * started on is finished, `pieces` follow it, and our side half-closes
   * once they are written. A final notice (an abort) must not wait behind
   * feet nobody will need: the process may exit soon after (`flushed`).
   */
  sendFinal(pieces: readonly Uint8Array[]): void {
    let keep = this.queue.length;
    for (let i = this.queueHead; i < this.queue.length; i++) {
      if (this.firsts[i] && !(i === this.queueHead && this.headStarted)) {
        keep = i;
        break;
      }
    }
    const dropped = this.written.slice(keep);
    for (const piece of this.queue.slice(keep)) this.queued -= piece.length;
    this.queue.length = this.written.length = this.firsts.length = keep;
    for (const done of dropped) done?.();
    this.send(pieces);
    this.shutdown();
  }

  /** Resolves once nothing is queued (every byte is with the transport) or the connection is closed. */
  flushed(): Promise<void> {
    if (this.closed || this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.flushWaiters.push(resolve));
  }

  /** Drops the connection now. `reason` reaches onClose. */
  destroy(reason?: Error): void {
    if (this.closed) return;
    // Finish first: Bun's terminate() fires `close` synchronously, which would
    // otherwise report the close without our reason.
    this.finish(reason);
    this.channel?.destroy();
  }

  private attach(channel: Channel): void {
    this.channel = channel;
  }

  private channelHandlers(): ChannelHandlers {
    return {
      onData: (bytes) => this.receive(bytes),
      onDrain: () => this.flush(),
      onClose: (error) => this.finish(error),
    };
  }

  private receive(bytes: Uint8Array): void {
    if (this.closed || this.stalled) return;
    this.lastReceivedMs = this.clock.now();
    this.decode(() => this.decoder.push(bytes));
    // Counted as it arrives, not per record: a record that never ends still passed through reads.
    this.budget?.readDone(bytes.length);
  }

  /** Runs the decoder, delivers what it completed, and stops reading while it waits for memory. */
  private decode(step: () => Uint8Array[]): void {
    let records: Uint8Array[];
    try {
      records = step();
    } catch (error) {
      this.destroy(error as Error);
      return;
    }
    if (this.decoder.waiting && !this.waitingForMemory && this.budget !== undefined) {
      this.waitingForMemory = true;
      this.channel?.pause();
      this.budget.whenAvailable(this.memoryAvailable);
    }
    for (const record of records) {
      if (this.closed) return;
      this.handlers.onRecord(record);
    }
  }

  private readonly memoryAvailable = (): void => {
    if (this.closed || this.stalled || !this.waitingForMemory) return;
    this.waitingForMemory = false;
    this.lastReceivedMs = this.clock.now();
    this.decode(() => this.decoder.retry());
    if (!this.waitingForMemory && !this.stalled && !this.closed) this.channel?.resume();
  };

  private flush(): void {
    const channel = this.channel;
    if (channel === undefined || this.closed || this.stalled) return;
    if (this.queued === 0) this.lastWriteProgressMs = this.clock.now();
    while (this.queueHead < this.queue.length) {
      const piece = this.queue[this.queueHead]!;
      const taken = piece.length === 0 ? 0 : channel.write(piece);
      this.queued -= taken;
      this.taken += taken;
      if (taken > 0) this.lastWriteProgressMs = this.clock.now();
      if (taken < piece.length) {
        this.queue[this.queueHead] = piece.subarray(taken);
        if (taken > 0) this.headStarted = true;
        return; // the rest goes on drain
      }
      const done = this.written[this.queueHead];
      this.queueHead++;
      this.headStarted = false;
      done?.();
      if (this.closed) return;
    }
    this.queue = [];
    this.written = [];
    this.firsts = [];
    this.queueHead = 0;
    if (this.shutdownWhenIdle) channel.shutdown();
    this.tellFlushed();
    this.handlers.onIdle();
  }

  private tellFlushed(): void {
    const waiters = this.flushWaiters;
    this.flushWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private finish(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.waitingForMemory = false;
    this.decoder.discard(); // an unfinished record's buffer goes back to the budget
    const dropped = this.written.slice(this.queueHead);
    this.queue = [];
    this.written = [];
    this.firsts = [];
    this.queueHead = 0;
    this.headStarted = false;
    this.queued = 0;
    for (const done of dropped) done?.();
    this.tellFlushed();
    this.handlers.onClose(error);
  }
}
