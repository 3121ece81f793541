/**
 * The transmitter: stdin → chunker → scheduler → connections → receiver.
 *
 *  1. `threads` connection slots each dial the targets in preference order
 *     and handshake; a slot whose connection drops re-dials with backoff.
 *  2. The read loop cuts stdin into feet, but only below the receiver's
 *     window end: while the window is full, stdin is not read.
 *  3. `pump` hands waiting feet to idle connections, one per connection per
 *     round, re-sends first. Every foot is held until acknowledged.
 *  4. Control frames come back on the same connections: acknowledgements
 *     free feet, credit widens the window, retransmit requests re-queue.
 *  5. At end of input, end-of-stream (totals and digest) goes out; the
 *     receiver's confirmation ends the transfer with success.
 *  6. When no connection has been up for `patience` seconds, give up.
 */
import { asVmError, VmError } from "../errors.ts";
import { log } from "../log.ts";
import type { Network } from "../net/channel.ts";
import { formatAddress } from "../net/address.ts";
import { BufferPool } from "../net/buffer-pool.ts";
import { bunNetwork } from "../net/bun-network.ts";
import type { TransmitterOptions } from "../options.ts";
import { footChecksum, StreamDigest } from "../protocol/digest.ts";
import { abortFrame, readText, type ControlFrame } from "../protocol/messages.ts";
import {
  AbortCode,
  CAP_NONE,
  DigestKind,
  FOOT_FLAG_RETRANSMIT,
  FrameKind,
  RetransmitReason,
  VM_MAGIC,
  VM_PROTOCOL_VERSION,
  type EndOfStream,
  type Hello,
} from "../protocol/xdr.generated.ts";
import { Chunker } from "./chunker.ts";
import { DialFailure, TxConnection } from "./connection.ts";
import { SendScheduler, type OutboundFoot } from "./scheduler.ts";
import { Chaos } from "../net/chaos.ts";
import { stdinSource, type ByteSource } from "./stdin.ts";

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
/** A connection that lasted less than this is treated like a failed dial when re-dialling. */
const SHORT_LIVED_MS = 10;
/** How often the watchdog looks at connections, patience and stragglers. */
const TICK_MS = 250;
/** A straggler is copied after this many foot round trips (and never sooner than HEDGE_MIN_MS). */
const HEDGE_ROUND_TRIPS = 4;
const HEDGE_MIN_MS = 50;
/** A connection may always carry this many unacknowledged feet, whatever its share of the window. */
const MIN_FEET_PER_CONNECTION = 2;
const MAX_FEET_PER_CONNECTION = 4;
/** Extra copies of one straggling foot, at most. */
const MAX_HEDGES_PER_FOOT = 2;
/** Foot buffers kept for reuse; never more than the window ever needed at once. */
const MAX_POOLED_FEET = 256;

export interface TransmitterIo {
  network: Network;
  source: ByteSource;
  /** Aborting it interrupts the transfer (SIGINT/SIGTERM); the receiver is told. */
  signal?: AbortSignal;
}

export interface TransferSummary {
  feet: bigint;
  bytes: bigint;
  seconds: number;
}

/** Reads the source and sends it; resolves once the receiver confirmed the whole stream. */
export async function transmit(options: TransmitterOptions, io: Partial<TransmitterIo> = {}): Promise<TransferSummary> {
  return new Transmitter(options, { network: bunNetwork, source: io.source ?? stdinSource(), ...io }).run();
}

class Transmitter {
  private readonly scheduler = new SendScheduler((foot) => this.recycle(foot));
  private readonly pool: BufferPool;
  private readonly digest = new StreamDigest();
  private readonly chunker: Chunker;
  private readonly connections = new Map<number, TxConnection>();
  /** Per connection, what its slot awaits: the connection's end. */
  private readonly closeWaiters = new Map<number, () => void>();
  private readonly hello: Hello;
  private readonly started = performance.now();

  private end: EndOfStream | undefined;
  /** Connections that carried end-of-stream. */
  private readonly endSentOn = new Set<number>();
  private finished = false;
  private everConnected = false;
  private downSince = performance.now();
  private lastDialError = "";
  private warnedUnreachable = false;
  private pumping = false;
  private pumpAgain = false;
  private wakeReader: (() => void) | undefined;
  private ticker: ReturnType<typeof setInterval> | undefined;
  private readonly chaos: Chaos;
  /** The receiver session we talk to; a different one in a later welcome means it restarted. */
  private receiverNonce: bigint | undefined;
  private settle!: { resolve: (s: TransferSummary) => void; reject: (e: VmError) => void };

  constructor(
    private readonly options: TransmitterOptions,
    private readonly io: TransmitterIo,
  ) {
    this.pool = new BufferPool(options.footBytes, MAX_POOLED_FEET);
    this.chaos = new Chaos(options.chaosEvery);
    this.chunker = new Chunker(io.source, options.footBytes, this.pool, options.charmode ?? false);
    this.hello = {
      magic: VM_MAGIC,
      protocolVersion: VM_PROTOCOL_VERSION,
      sessionId: crypto.getRandomValues(new BigUint64Array(1))[0]!,
      checkphrase: new TextEncoder().encode(options.checkphrase),
      footBytes: options.footBytes,
      capabilities: CAP_NONE,
      connectionId: 0,
    };
  }

  run(): Promise<TransferSummary> {
    const done = new Promise<TransferSummary>((resolve, reject) => (this.settle = { resolve, reject }));
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.io.signal?.addEventListener("abort", () => this.interrupt(String(this.io.signal?.reason ?? "signal")));
    for (let slot = 0; slot < this.options.threads; slot++) void this.runSlot(slot);
    this.readLoop().catch((error) => this.fail(error));
    return done;
  }

  // ---- 1. connection slots ----------------------------------------------------

  private async runSlot(slot: number): Promise<void> {
    let backoffMs = FIRST_BACKOFF_MS;
    while (!this.finished) {
      const dialledAt = performance.now();
      const outcome = await this.connectOnce(slot);
      if (this.finished || outcome === "fatal") return;
      if (outcome === "was-up") {
        backoffMs = FIRST_BACKOFF_MS;
        // A connection that worked for a while and broke is re-dialled at once; one that
        // dies as soon as it is up (a receiver dropping us) backs off like a failed dial.
        if (performance.now() - dialledAt >= SHORT_LIVED_MS) continue;
      }
      // Jitter keeps a room full of slots from re-dialling in lockstep.
      await Bun.sleep(backoffMs * (0.5 + Math.random()));
      backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
    }
  }

  /** One connection's life: resolves when it is over. */
  private async connectOnce(slot: number): Promise<"fatal" | "failed" | "was-up"> {
    for (const target of this.options.targets) {
      if (this.finished) return "fatal";
      let opened;
      try {
        opened = await TxConnection.open(this.io.network, target, slot, this.hello, {
          onFrame: (connection, frame) => this.onFrame(connection, frame),
          onIdle: () => this.pump(),
          onClose: (connection, error) => this.onConnectionClosed(connection, error),
        });
      } catch (error) {
        const failure = error as DialFailure;
        if (failure.fatal) {
          this.fail(failure.error);
          return "fatal";
        }
        this.noteDialFailure(failure.message);
        continue;
      }
      const { connection, welcome } = opened;
      if (this.finished) {
        connection.close();
        return "fatal";
      }
      this.receiverNonce ??= welcome.receiverNonce;
      if (welcome.receiverNonce !== this.receiverNonce) {
        connection.close();
        this.fail(new VmError("peerLost", "the receiver restarted and lost the stream it had received; start the transfer again"));
        return "fatal";
      }
      const closed = new Promise<void>((resolve) => this.closeWaiters.set(connection.id, resolve));
      this.connections.set(connection.id, connection);
      this.everConnected = true;
      log.debug(`connection ${slot} up to ${connection.target}`);
      this.scheduler.acknowledge(welcome.deliveredBelow, []);
      if (this.scheduler.credit(welcome.windowEnd)) this.wakeReader?.();
      this.pump();
      await closed;
      return "was-up";
    }
    return "failed";
  }

  private onConnectionClosed(connection: TxConnection, error?: Error): void {
    this.connections.delete(connection.id);
    this.closeWaiters.get(connection.id)?.();
    this.closeWaiters.delete(connection.id);
    if (this.finished) return;
    const requeued = this.scheduler.connectionLost(connection.id);
    this.endSentOn.delete(connection.id);
    log.warn(`connection ${connection.id} to ${connection.target} lost${error ? `: ${error.message}` : ""}; ${requeued} feet re-queued`);
    if (this.connections.size === 0) this.downSince = performance.now();
    this.pump();
  }

  private noteDialFailure(message: string): void {
    this.lastDialError = message;
    if (!this.warnedUnreachable && this.connections.size === 0) {
      this.warnedUnreachable = true;
      const patience = this.options.patienceS === 0 ? "forever" : `for up to ${this.options.patienceS}s`;
      log.warn(`${message}; retrying ${patience}`);
    }
  }

  private checkPatience(): void {
    if (this.finished || this.connections.size > 0 || this.options.patienceS === 0) return;
    const downS = (performance.now() - this.downSince) / 1000;
    if (downS < this.options.patienceS) return;
    const targets = this.options.targets.map((t) => formatAddress(t.host, t.port)).join(", ");
    this.fail(
      this.everConnected
        ? new VmError("peerLost", `lost every connection to the receiver (${targets}) for ${this.options.patienceS}s: ${this.lastDialError || "no answer"}`)
        : new VmError("unreachable", `receiver ${targets} not reachable within ${this.options.patienceS}s: ${this.lastDialError || "no answer"}`),
    );
  }

  // ---- 2. reading ---------------------------------------------------------------

  private async readLoop(): Promise<void> {
    for (;;) {
      while (!this.scheduler.canRead()) {
        await new Promise<void>((resolve) => (this.wakeReader = resolve));
        this.wakeReader = undefined;
        if (this.finished) return;
      }
      const cut = await this.chunker.next();
      if (this.finished) return;
      if (cut === undefined) break;
      const checksum = footChecksum(cut.id, cut.offset, cut.payload);
      this.digest.add(checksum, cut.payload.length);
      this.scheduler.add({ ...cut, checksum, sends: 0, connectionId: undefined, copiesQueued: 0, acknowledged: false, lastSentMs: 0, hedges: 0 });
      this.pump();
    }
    this.end = {
      totalFeet: this.digest.totalFeet,
      totalBytes: this.digest.totalBytes,
      digest: { kind: DigestKind.DIGEST_XXH3_CHAIN, xxh3Chain: this.digest.value },
    };
    log.debug(`end of input: ${this.end.totalFeet} feet, ${this.end.totalBytes} bytes`);
    this.pump();
  }

  // ---- 3. sending -----------------------------------------------------------------

  private pump(): void {
    if (this.finished) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        let progress = true;
        while (progress) {
          progress = false;
          const share = this.shareOfWindow();
          for (const connection of this.connections.values()) {
            if (!connection.isIdle || this.scheduler.carriedBy(connection.id) >= share) continue;
            const foot = this.scheduler.next(connection.id);
            if (foot === undefined) break;
            this.sendFoot(connection, foot);
            progress = true;
          }
        }
        this.hedgeStraggler();
        this.sendEndIfDue();
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Unacknowledged feet one connection may carry: its share of the window
   * (at least 2, so a connection always has the next foot ready). A kernel
   * buffer can swallow many feet; without the cap one connection would carry
   * most of the window, and a reset would send it all again.
   */
  private shareOfWindow(): number {
    const window = Number(this.scheduler.windowEnd - this.scheduler.deliveredBelow);
    return Math.min(MAX_FEET_PER_CONNECTION, Math.max(MIN_FEET_PER_CONNECTION, Math.ceil(window / Math.max(1, this.connections.size))));
  }

  private sendFoot(connection: TxConnection, foot: OutboundFoot): void {
    connection.sendFoot(foot, foot.sends > 1 ? FOOT_FLAG_RETRANSMIT : 0, () => this.recycle(foot));
    const fault = this.chaos.tick();
    if (fault !== undefined) {
      log.warn(`chaos: ${fault} on connection ${connection.id}`);
      connection.chaos(fault);
    }
  }

  /**
   * The receiver's output waits on one foot while a connection sits idle:
   * after a few round trips, send another copy there. The first copy to
   * arrive wins; the receiver drops the other.
   */
  private hedgeStraggler(): void {
    const roundTripMs = this.scheduler.footRoundTripMs;
    if (roundTripMs === undefined) return;
    const delayMs = Math.min(Math.max(HEDGE_ROUND_TRIPS * roundTripMs, HEDGE_MIN_MS), this.options.timeoutS * 1000);
    const foot = this.scheduler.straggler(delayMs);
    if (foot === undefined || foot.hedges >= MAX_HEDGES_PER_FOOT) return;
    for (const connection of this.connections.values()) {
      if (!connection.isIdle || connection.id === foot.connectionId) continue;
      log.debug(`foot ${foot.id} straggles on connection ${foot.connectionId}; another copy on ${connection.id}`);
      this.scheduler.hedge(foot, connection.id);
      this.sendFoot(connection, foot);
      return;
    }
  }

  /** Every TICK_MS: heartbeats and stalls, stragglers, patience. */
  private tick(): void {
    if (this.finished) return;
    const timeoutMs = this.options.timeoutS * 1000;
    for (const connection of [...this.connections.values()]) {
      const stall = connection.watch(timeoutMs);
      if (stall !== undefined) connection.kill(new Error(`declared dead: ${stall}`));
    }
    this.pump();
    this.checkPatience();
  }

  /** A foot's memory goes back to the pool once the receiver has it and no queue still refers to it. */
  private recycle(foot: OutboundFoot): void {
    if (foot.acknowledged && foot.copiesQueued === 0) this.pool.give(foot.payload);
  }

  /**
   * End-of-stream goes out on every connection (the receiver takes repeats
   * as one), so one stalled connection cannot hold it back.
   */
  private sendEndIfDue(): void {
    if (this.end === undefined) return;
    for (const connection of this.connections.values()) {
      if (this.endSentOn.has(connection.id)) continue;
      connection.sendControl({ kind: FrameKind.FRAME_END, end: this.end });
      this.endSentOn.add(connection.id);
    }
  }

  // ---- 4. control frames ---------------------------------------------------------

  private onFrame(connection: TxConnection, frame: ControlFrame): void {
    switch (frame.kind) {
      case FrameKind.FRAME_ACK:
        this.scheduler.acknowledge(frame.ack.deliveredBelow, frame.ack.received);
        break;
      case FrameKind.FRAME_CREDIT:
        if (this.scheduler.credit(frame.credit.windowEnd)) this.wakeReader?.();
        this.pump();
        break;
      case FrameKind.FRAME_RETRANSMIT: {
        const count = this.scheduler.retransmit(frame.retransmit.footIds);
        const why = frame.retransmit.reason === RetransmitReason.RETRANSMIT_CHECKSUM ? "failed checksum" : "missing";
        log.info(`receiver asked for ${count} feet again (${why})`);
        this.pump();
        break;
      }
      case FrameKind.FRAME_CONFIRM:
        this.onConfirm(frame.confirm);
        break;
      case FrameKind.FRAME_ABORT:
        this.fail(abortError(frame.abort.code, readText(frame.abort.text)), true);
        break;
      default:
        connection.close();
        this.fail(new VmError("protocol", `receiver sent an unexpected frame (kind ${frame.kind})`));
    }
  }

  // ---- 5. the end ----------------------------------------------------------------

  private onConfirm(confirm: { totalFeet: bigint; totalBytes: bigint; digest: { xxh3Chain: bigint } }): void {
    const end = this.end;
    if (end === undefined || confirm.totalFeet !== end.totalFeet || confirm.totalBytes !== end.totalBytes || confirm.digest.xxh3Chain !== end.digest.xxh3Chain) {
      this.fail(new VmError("integrity", "receiver confirmed a stream that differs from what was sent"));
      return;
    }
    this.finish();
    const seconds = (performance.now() - this.started) / 1000;
    const rate = Number(end.totalBytes) / (1024 * 1024) / Math.max(seconds, 1e-6);
    log.info(`confirmed by the receiver: ${end.totalBytes} bytes in ${end.totalFeet} feet, ${seconds.toFixed(2)} s, ${rate.toFixed(0)} MiB/s`);
    this.settle.resolve({ feet: end.totalFeet, bytes: end.totalBytes, seconds });
  }

  private fail(error: unknown, fromReceiver = false): void {
    if (this.finished) return;
    const vmError = asVmError(error);
    if (!fromReceiver) {
      // Tell the receiver why, so it stops waiting and exits with a reason too.
      const notice = abortFrame(vmError);
      for (const connection of this.connections.values()) connection.sendFinal(notice);
    }
    // Told by the receiver: drop the connections. Telling it: they close after the notice.
    this.finish(fromReceiver);
    this.settle.reject(vmError);
  }

  /** Stops everything; `closeConnections` drops them (after a failure they close after their final frame). */
  private finish(closeConnections = true): void {
    this.finished = true;
    clearInterval(this.ticker);
    this.wakeReader?.();
    if (closeConnections) for (const connection of this.connections.values()) connection.close();
    this.connections.clear();
    // Slots waiting on their connection's end return now.
    for (const release of this.closeWaiters.values()) release();
    this.closeWaiters.clear();
  }

  /** Stops on a signal: the receiver is told, then the caller exits. */
  interrupt(signal: string): void {
    this.fail(new VmError("interrupted", `interrupted by ${signal}`));
  }
}

function abortError(code: number, text: string): VmError {
  switch (code) {
    case AbortCode.ABORT_OUTPUT_CLOSED:
      return new VmError("outputClosed", `receiver's output was closed: ${text}`);
    case AbortCode.ABORT_INTEGRITY:
      return new VmError("integrity", `receiver detected corruption: ${text}`);
    case AbortCode.ABORT_PROTOCOL:
      return new VmError("protocol", `receiver reported a protocol error: ${text}`);
    default:
      return new VmError("peerLost", `receiver aborted the transfer: ${text}`);
  }
}
