/**
 * The transmitter: stdin → reader → scheduler → dispatch → pool's connections → receiver.
 *
 *  1. The targets become links, in preference order (links.ts); the pool
 *     (pool.ts) keeps `threads` connections over them, re-dialling those that
 *     drop, and with `threads auto` follows goodput (thread-tuner.ts).
 *  2. The reader (reader.ts) cuts stdin into feet, only below the receiver's
 *     window end.
 *  3. Dispatch (dispatch.ts) hands each waiting foot to a connection, copies
 *     stragglers, and sends end-of-stream once the input ended.
 *  4. Control frames come back on the same connections (`onFrame`):
 *     acknowledgements free feet, credit widens the window, retransmit
 *     requests re-queue, the confirmation ends the transfer with success
 *     (unless the receiver's command failed: verdict.ts, which also builds
 *     the hello).
 *  5. Every WATCHDOG_TICK_MS (`tick`): heartbeats and dead connections, link rates,
 *     drained connections, placement, and patience: when no connection has
 *     been up for `patience` seconds, give up.
 *
 * State it owns: the lifecycle (running, confirmed, finished), the
 * scheduler, end-of-stream once read, the acknowledged totals and the timers.
 */
import { FINAL_FLUSH_MS, MAX_POOLED_FEET, REBALANCE_TICKS, TUNE_MS, WATCHDOG_TICK_MS } from "../constants.ts";
import { systemClock, within, type Clock, type Timer } from "../clock.ts";
import { asVmError, onInterrupt, VmError } from "../errors.ts";
import { log } from "../log.ts";
import type { Network } from "../net/channel.ts";
import { BufferPool } from "../net/buffer-pool.ts";
import { tcpNetwork } from "../net/bun-network.ts";
import { MIN_WINDOW_FEET, type TransmitterOptions } from "../options.ts";
import { abortFrame, type AnyHello, type ConsumerVerdict, type ControlFrame } from "../protocol/messages.ts";
import { CAP_VERDICT, FrameKind, RetransmitReason, type EndOfStream, type Welcome } from "../protocol/xdr.generated.ts";
import type { LinkFigures, TransferFigures } from "../status/figures.ts";
import type { TxConnection } from "./connection.ts";
import { Dispatch, type DispatchSettings } from "./dispatch.ts";
import { autoFootBytes, nominalFootBytes } from "./foot-size.ts";
import { resolveLinks, type Link } from "./links.ts";
import { ConnectionPool } from "./pool.ts";
import { Reader } from "./reader.ts";
import { SendScheduler, type OutboundFoot } from "./scheduler.ts";
import { stdinSource, type ByteSource } from "./stdin.ts";
import { ThreadTuner } from "./thread-tuner.ts";
import { defaultTunerSettings } from "./tuner-settings.ts";
import { ReceiverVerdict, transmitterHello } from "./verdict.ts";

export interface TransmitterIo {
  network: Network;
  source: ByteSource;
  /** Aborting it interrupts the transfer (SIGINT/SIGTERM); the receiver is told. */
  signal?: AbortSignal;
  /** Hears, once the transfer starts, how to read its figures at any moment (status output). */
  observe?: (figures: () => TransferFigures) => void;
  /** Where time comes from (src/clock.ts); the wall clock unless a test gives a virtual one. */
  clock?: Clock;
}

export interface TransferSummary {
  feet: bigint;
  bytes: bigint;
  seconds: number;
  /** Per link, in preference order. */
  links: LinkFigures[];
  /** How the receiver's command ended (it exited 0), when the receiver ran one and said so (CAP_VERDICT). */
  consumer?: ConsumerVerdict;
}

/** Reads the source and sends it; resolves once the receiver confirmed the whole stream. */
export async function transmit(options: TransmitterOptions, io: Partial<TransmitterIo> = {}): Promise<TransferSummary> {
  const full: TransmitterIo = { network: io.network ?? tcpNetwork(options), source: io.source ?? stdinSource(), ...io };
  const { links, unknownHosts } = await resolveLinks(options.targets, full.network.resolve?.bind(full.network));
  if (unknownHosts.length > 0) {
    const one = unknownHosts.length === 1;
    log.warn(`tx ${unknownHosts.join(", ")}: no such host (ENOTFOUND); ${one ? "it is" : "they are"} left out and the other links carry the transfer`);
  }
  const transmitter = new Transmitter(options, full, links);
  io.observe?.(() => transmitter.figures());
  return transmitter.run();
}

class Transmitter {
  private readonly clock: Clock;
  private readonly scheduler: SendScheduler;
  private readonly pool: ConnectionPool;
  private readonly dispatch: Dispatch;
  /** Dispatch's settings, footBytes the session's foot size: `foot SIZE`, or settled by the first connection to open (foot-size.ts). */
  private readonly settings: DispatchSettings;
  /** The feet's memory and the reader that cuts the input into them, once the foot size is settled. */
  private feet: { memory: BufferPool; reader: Reader } | undefined;
  /** `threads auto`: the connection count, tuned by goodput; undefined for a fixed `threads N`. */
  private tuner: ThreadTuner | undefined;
  private readonly startedMs: number;
  private lastTickMs: number;
  private ticks = 0;
  private timers: Timer[] = [];
  private acknowledgedBytes = 0;
  private acknowledgedFeet = 0;
  private end: EndOfStream | undefined;
  private confirmed = false;
  /** What the receiver says about its command (exec on rx). */
  private readonly verdict = new ReceiverVerdict();
  private finished = false;
  /** run() was called: a reader made from now on starts at once. */
  private running = false;
  /** The input's failure while no connection was up yet (see inputFailed). */
  private inputFailure: { error: unknown } | undefined;
  private settle!: { resolve: (s: TransferSummary) => void; reject: (e: VmError) => void };

  constructor(
    private readonly options: TransmitterOptions,
    private readonly io: TransmitterIo,
    private readonly links: readonly Link[],
  ) {
    const clock = (this.clock = io.clock ?? systemClock);
    this.startedMs = this.lastTickMs = clock.now();
    this.scheduler = new SendScheduler((foot, carrier, roundTripMs) => this.onAcknowledged(foot, carrier, roundTripMs), () => clock.now());
    // The first feet are read before the first welcome (while the connections dial, or under
    // `foot auto` from the first connection's TCP open, when the foot size is settled): they
    // leave as the welcome arrives, not a foot's read later (8-14 ms for 2 MiB from a file, on
    // the WAN rig). Only read: they go out within the window the welcome grants, which a peer
    // may make smaller than ours ever is (test/conformance runs its C peer with a window of 2).
    this.scheduler.readAhead(MIN_WINDOW_FEET);
    const provisional = nominalFootBytes(options);
    this.settings = { timeoutS: options.timeoutS, chaosEvery: options.chaosEvery, footBytes: provisional };
    if (options.threads === "auto") this.tuner = new ThreadTuner(defaultTunerSettings(provisional), this.startedMs);
    const sessionId = crypto.getRandomValues(new BigUint64Array(1))[0]!;
    const helloFor = (roundTripMs: number | undefined): AnyHello => transmitterHello(options, sessionId, this.settleFootBytes(roundTripMs));
    this.pool = new ConnectionPool(options, io.network, clock, links, helloFor, {
      onFrame: (connection, frame) => this.onFrame(connection, frame),
      onReady: () => this.dispatch.pump(),
      onWelcome: (welcome) => this.onWelcome(welcome),
      requeue: (id) => this.scheduler.connectionLost(id),
      carriedBy: (id) => this.scheduler.carriedBy(id),
      fatal: (error) => this.fail(error),
    }, this.tuner?.target ?? (options.threads as number));
    this.dispatch = new Dispatch(this.scheduler, links, () => this.pool.live(), () => this.pool.linkViews(), (foot) => this.recycle(foot), this.settings);
    if (options.footBytes !== "auto") this.cutFeet(options.footBytes);
  }

  /**
   * The session's foot size, settled by the first connection to open: every
   * hello carries it, so it cannot change once one has gone out.
   */
  private settleFootBytes(roundTripMs: number | undefined): number {
    if (this.feet === undefined) {
      const footBytes = autoFootBytes(roundTripMs);
      if (roundTripMs !== undefined) log.info(`feet of ${footBytes / 1024} KiB: the first connection's round trip is ${roundTripMs.toFixed(1)} ms`);
      this.cutFeet(footBytes);
    }
    return this.settings.footBytes;
  }

  /** Feet of `footBytes` from now on: their memory, the reader, and what `threads auto` measures in feet. */
  private cutFeet(footBytes: number): void {
    if (footBytes !== this.settings.footBytes && this.tuner !== undefined) this.tuner = new ThreadTuner(defaultTunerSettings(footBytes), this.startedMs);
    this.settings.footBytes = footBytes;
    const memory = new BufferPool(footBytes, MAX_POOLED_FEET);
    const reader = new Reader(this.io.source, { ...this.options, footBytes }, memory, this.scheduler, () => this.dispatch.pump(), (end) => {
      this.end = end;
      this.dispatch.endOfStream(end);
    }, this.clock);
    this.feet = { memory, reader };
    // Before run() the reader waits for it; after, under `foot auto`, it starts with the first connection.
    if (this.running) this.startReading(reader);
  }

  private startReading(reader: Reader): void {
    if (this.finished) return;
    reader.run().catch((error) => this.inputFailed(error));
  }

  run(): Promise<TransferSummary> {
    const done = new Promise<TransferSummary>((resolve, reject) => (this.settle = { resolve, reject }));
    this.timers.push(this.clock.every(WATCHDOG_TICK_MS, "tx watchdog tick", () => this.tick()));
    if (this.tuner !== undefined) {
      const tune = (): void => {
        const { tuner } = this;
        if (tuner === undefined) return;
        const progress = {
          deliveredBytes: this.acknowledgedBytes,
          deliveredFeet: this.acknowledgedFeet,
          feetHeld: this.scheduler.heldCount,
          windowFeet: Number(this.scheduler.windowEnd - this.scheduler.deliveredBelow),
        };
        this.pool.tune(tuner, this.clock.now(), this.startedMs, progress, this.dispatch.copiedBytes);
      };
      this.timers.push(this.clock.every(TUNE_MS, "tx threads auto", tune));
    }
    onInterrupt(this.io.signal, (reason) => this.interrupt(reason));
    if (this.finished) return done;
    if (this.links.length > 1) log.info(`links in order of preference: ${this.links.map((link) => link.address).join(", ")}`);
    this.running = true;
    this.pool.start();
    if (this.feet !== undefined) this.startReading(this.feet.reader);
    return done;
  }

  /** How the transfer stands now (status output, summaries). */
  figures(): TransferFigures {
    return {
      role: "tx",
      startedMs: this.startedMs,
      bytes: this.acknowledgedBytes,
      feet: this.acknowledgedFeet,
      feetInFlight: this.scheduler.heldCount,
      windowFeet: Number(this.scheduler.windowEnd - this.scheduler.deliveredBelow),
      reorderFeet: null,
      retransmits: this.dispatch.retransmits,
      connections: this.pool.connectionFigures(),
      connectionsWanted: this.pool.wanted,
      links: this.pool.linkFigures(),
      digest: this.confirmed && this.feet !== undefined ? this.feet.reader.digestValue.toString(16).padStart(16, "0") : null,
    };
  }

  /** Every WATCHDOG_TICK_MS: heartbeats and stalls, link rates and placement, stragglers, patience. */
  private tick(): void {
    if (this.finished) return;
    this.pool.watch(this.options.timeoutS * 1000);
    const now = this.clock.now();
    for (const link of this.links) link.delivered.tick(now - this.lastTickMs);
    this.lastTickMs = now;
    this.pool.closeDrained();
    if (++this.ticks % REBALANCE_TICKS === 0) this.pool.rebalance();
    this.dispatch.pump();
    const givenUp = this.pool.givenUp();
    if (givenUp !== undefined) this.fail(givenUp);
  }

  /** A connection came up: its welcome says where the receiver's stream and window stand. */
  private onWelcome(welcome: Welcome): void {
    if (this.inputFailure !== undefined) return this.fail(this.inputFailure.error);
    this.scheduler.acknowledge(welcome.deliveredBelow, []);
    if (this.scheduler.credit(welcome.windowEnd)) this.feet?.reader.wake();
    this.dispatch.pump();
  }

  private onAcknowledged(foot: OutboundFoot, carrier: number | undefined, roundTripMs: number | undefined): void {
    this.acknowledgedBytes += foot.streamLength ?? foot.payload.length; // stream bytes, not the compressed ones
    this.acknowledgedFeet++;
    const record = carrier === undefined ? undefined : this.pool.record(carrier);
    if (record !== undefined) {
      record.feetDelivered++;
      this.pool.linkWorks(record.link, record.link.noteDelivered(foot.payload.length, roundTripMs));
    }
    this.recycle(foot);
    if (record !== undefined) this.pool.closeIfDrained(record);
  }

  /** A foot's memory goes back to the pool once the receiver has it and no queue still refers to it. */
  private recycle(foot: OutboundFoot): void {
    if (foot.acknowledged && foot.copiesQueued === 0) this.feet?.memory.give(foot.payload);
  }

  private onFrame(connection: TxConnection, frame: ControlFrame): void {
    switch (frame.kind) {
      case FrameKind.FRAME_ACK:
        this.scheduler.acknowledge(frame.ack.deliveredBelow, frame.ack.received);
        break;
      case FrameKind.FRAME_CREDIT:
        if (this.scheduler.credit(frame.credit.windowEnd)) this.feet?.reader.wake();
        this.dispatch.pump();
        break;
      case FrameKind.FRAME_RETRANSMIT: {
        const count = this.scheduler.retransmit(frame.retransmit.footIds);
        const why = frame.retransmit.reason === RetransmitReason.RETRANSMIT_CHECKSUM ? "failed checksum" : "missing";
        log.info(`receiver asked for ${count} feet again (${why})`);
        this.dispatch.pump();
        break;
      }
      case FrameKind.FRAME_VERDICT:
        // Only where we asked for it, and it always precedes the confirmation.
        if ((connection.capabilities & CAP_VERDICT) === 0) return this.unexpected(connection, frame.kind);
        // The connection's own host: a retired connection may bring it after the pool let it go.
        this.verdict.heard(frame.verdict, connection.host);
        break;
      case FrameKind.FRAME_CONFIRM: {
        const missing = this.verdict.missingBefore(connection.capabilities);
        if (missing !== undefined) this.fail(missing);
        else this.onConfirm(frame.confirm);
        break;
      }
      case FrameKind.FRAME_ABORT:
        this.fail(this.verdict.abortReason(frame.abort), true);
        break;
      default:
        this.unexpected(connection, frame.kind);
    }
  }

  private unexpected(connection: TxConnection, kind: number): void {
    connection.close();
    this.fail(new VmError("protocol", `receiver sent an unexpected frame (kind ${kind})`));
  }

  private onConfirm(confirm: { totalFeet: bigint; totalBytes: bigint; digest: { xxh3Chain: bigint } }): void {
    const end = this.end;
    if (end === undefined || confirm.totalFeet !== end.totalFeet || confirm.totalBytes !== end.totalBytes || confirm.digest.xxh3Chain !== end.digest.xxh3Chain) {
      this.fail(new VmError("integrity", "receiver confirmed a stream that differs from what was sent"));
      return;
    }
    // Every byte arrived, but a command that took them and failed makes it no success.
    const failed = this.verdict.failure();
    if (failed !== undefined) return this.fail(failed, true);
    const verdict = this.verdict.value;
    this.confirmed = true;
    // The confirmation covers every foot: one still held (its ack can come after the confirm,
    // or not at all once we close) counts as delivered, or the summary would say fewer bytes.
    this.scheduler.acknowledge(end.totalFeet, []);
    this.finish();
    const seconds = (this.clock.now() - this.startedMs) / 1000;
    const rate = Number(end.totalBytes) / (1024 * 1024) / Math.max(seconds, 1e-6);
    log.info(`confirmed by the receiver: ${end.totalBytes} bytes in ${end.totalFeet} feet, ${seconds.toFixed(2)} s, ${rate.toFixed(0)} MiB/s`);
    // Per-link shares are in the summary line (src/status/format.ts).
    this.settle.resolve({ feet: end.totalFeet, bytes: end.totalBytes, seconds, links: this.pool.linkFigures(), ...(verdict && { consumer: verdict }) });
  }

  /**
   * Reading the input failed. The first feet are read before the first
   * welcome, so this can come before any connection is up: then the first to
   * come up tells the receiver (which would otherwise wait out its
   * `patience`); with none, the transfer ends as any unreachable one does.
   */
  private inputFailed(error: unknown): void {
    if (this.pool.live().next().done === true) this.inputFailure ??= { error };
    else this.fail(error);
  }

  private fail(error: unknown, fromReceiver = false): void {
    if (this.finished) return;
    const vmError = asVmError(error);
    if (fromReceiver) {
      // Told by the receiver: drop the connections.
      this.finish(true);
      this.settle.reject(vmError);
      return;
    }
    // Tell the receiver why, so it stops waiting and exits with a reason too;
    // the connections close after the notice.
    const telling = [...this.pool.live()].map(({ connection }) => connection);
    for (const connection of telling) connection.sendFinal(abortFrame(vmError, connection.capabilities));
    this.finish(false);
    // The process exits once this settles, and what is still queued then is
    // lost: the notice must be with the kernel first, or the receiver sees
    // the connections end mid-foot and waits out its patience for them.
    void within(Promise.all(telling.map((connection) => connection.flushed())), FINAL_FLUSH_MS, this.clock, "tx abort flush").then(() => {
      // A transport that never took the notice (bytes still queued): the connection ends without it, as at exit.
      for (const connection of telling) if (!connection.isIdle) connection.close();
      this.settle.reject(vmError);
    });
  }

  /** Stops everything; `closeConnections` drops them (after a failure they close after their final frame). */
  private finish(closeConnections = true): void {
    this.finished = true;
    for (const timer of this.timers) timer.cancel();
    this.dispatch.stop();
    this.feet?.reader.stop();
    this.pool.stop(closeConnections);
  }

  /** Stops on a signal: the receiver is told, then the caller exits. */
  interrupt(signal: string): void {
    this.fail(new VmError("interrupted", `interrupted by ${signal}`));
  }
}
