/**
 * The transmitter: stdin → chunker → scheduler → links and connections → receiver.
 *
 *  1. The targets become links, in preference order (a name with several
 *     addresses gives several). `threads` connection slots are spread over
 *     them (placement.ts): one anchor per link, the rest floating to the links
 *     that move the most. A slot whose connection drops re-dials; a link that
 *     cannot be reached is left to its anchor, which retries with backoff.
 *     With `threads auto` the number of slots follows goodput (thread-tuner.ts):
 *     floating slots are added, or retired once their feet are through.
 *  2. The read loop cuts stdin into feet, but only below the receiver's
 *     window end: while the window is full, stdin is not read.
 *  3. `pump` hands each waiting foot to the most preferred link that can take
 *     it now (an idle connection, and the link under its share of the window),
 *     re-sends first. Every foot is held until acknowledged.
 *  4. Control frames come back on the same connections: acknowledgements
 *     free feet, credit widens the window, retransmit requests re-queue.
 *  5. At end of input, end-of-stream (totals and digest) goes out; the
 *     receiver's confirmation ends the transfer with success.
 *  6. When no connection has been up for `patience` seconds, give up.
 */
import { asVmError, onInterrupt, VmError } from "../errors.ts";
import { log } from "../log.ts";
import type { Network } from "../net/channel.ts";
import { BufferPool } from "../net/buffer-pool.ts";
import { bunNetwork } from "../net/bun-network.ts";
import { Chaos } from "../net/chaos.ts";
import type { Compression, TransmitterOptions } from "../options.ts";
import { footChecksum, StreamDigest } from "../protocol/digest.ts";
import { abortFrame, readText, type ControlFrame } from "../protocol/messages.ts";
import {
  AbortCode,
  CAP_COMPRESS,
  CAP_ENCRYPT,
  CAP_KEY,
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
import { compressFoot } from "./compress.ts";
import { BUSY_RETRY_MS, busyWaitMs, BusyWait } from "./busy-wait.ts";
import { DialFailure, TxConnection } from "./connection.ts";
import type { ConnectionFigures, TransferFigures } from "../status/figures.ts";
import { Link, resolveLinks, type LinkFigures } from "./links.ts";
import { chooseLink, connectionBudget, desiredConnections, linkFootCaps, rebalanceMove, type LinkView } from "./placement.ts";
import { SendScheduler, type OutboundFoot } from "./scheduler.ts";
import { defaultTunerSettings, ThreadTuner } from "./thread-tuner.ts";
import { stdinSource, type ByteSource } from "./stdin.ts";

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
/** A connection that lasted less than this is treated like a failed dial when re-dialling. */
const SHORT_LIVED_MS = 10;
/** How often the watchdog looks at connections, patience, stragglers and link rates. */
const TICK_MS = 250;
/**
 * `threads auto` looks at goodput this often: its steps are a few of these long,
 * and on a path that limits each flow the ramp is time spent below its rate.
 */
const TUNE_MS = 100;
/** Floating connections are re-placed at most once per this many ticks (one at a time). */
const REBALANCE_TICKS = 4;
/** A straggler is copied after this many foot round trips (and never sooner than HEDGE_MIN_MS). */
const HEDGE_ROUND_TRIPS = 4;
const HEDGE_MIN_MS = 50;
/** Unacknowledged feet per connection: its share of its link's, within these bounds. */
const MIN_FEET_PER_CONNECTION = 1;
const MAX_FEET_PER_CONNECTION = 4;
/** Extra copies of one straggling foot, at most. */
const MAX_HEDGES_PER_FOOT = 2;
/** Foot buffers kept for reuse; never more than the window ever needed at once. */
const MAX_POOLED_FEET = 256;
/** `compress`: feet compressed at once (on the thread pool), at least 2, else one per core. */
const MAX_COMPRESSING_FEET = Math.max(2, navigator.hardwareConcurrency);
/** Closed connections remembered for status output and the stats file. */
const MAX_PAST_CONNECTIONS = 256;

export interface TransmitterIo {
  network: Network;
  source: ByteSource;
  /** Aborting it interrupts the transfer (SIGINT/SIGTERM); the receiver is told. */
  signal?: AbortSignal;
  /** Hears, once the transfer starts, how to read its figures at any moment (status output). */
  observe?: (figures: () => TransferFigures) => void;
}

export interface TransferSummary {
  feet: bigint;
  bytes: bigint;
  seconds: number;
  /** Per link, in preference order. */
  links: LinkFigures[];
}

/** Reads the source and sends it; resolves once the receiver confirmed the whole stream. */
export async function transmit(options: TransmitterOptions, io: Partial<TransmitterIo> = {}): Promise<TransferSummary> {
  const full: TransmitterIo = { network: bunNetwork, source: io.source ?? stdinSource(), ...io };
  const { links, unknownHosts } = await resolveLinks(options.targets, full.network.resolve?.bind(full.network));
  if (unknownHosts.length > 0) {
    const one = unknownHosts.length === 1;
    log.warn(`tx ${unknownHosts.join(", ")}: no such host (ENOTFOUND); ${one ? "it is" : "they are"} left out and the other links carry the transfer`);
  }
  const transmitter = new Transmitter(options, full, links);
  io.observe?.(() => transmitter.figures());
  return transmitter.run();
}

/** A connection slot: an anchor stays on its link; a floating one goes where placement says. */
interface Slot {
  anchor: Link | undefined;
  /** The link it dials or is connected to. */
  link: Link | undefined;
  /** Its connection, while one is up. */
  connectionId: number | undefined;
  /** `threads auto` wants fewer connections: this slot's connection drains and the slot goes away. */
  retired?: boolean;
}

class Transmitter {
  private readonly scheduler = new SendScheduler((foot, carrier, roundTripMs) => this.onAcknowledged(foot, carrier, roundTripMs));
  private readonly pool: BufferPool;
  private readonly digest = new StreamDigest();
  private readonly chunker: Chunker;
  private readonly connections = new Map<number, TxConnection>();
  /** The link each live connection runs over. */
  private readonly linkOf = new Map<number, Link>();
  private readonly slots: Slot[] = [];
  /** Per connection, what its slot awaits: the connection's end. */
  private readonly closeWaiters = new Map<number, () => void>();
  /**
   * Connections taking no new feet and closing once their feet are acknowledged:
   * one being moved to another link (rebalance), or retired by `threads auto`.
   */
  private readonly draining = new Set<number>();
  /** `threads auto`: the connection count, tuned by goodput; undefined for a fixed `threads N`. */
  private readonly tuner: ThreadTuner | undefined;
  private nextConnectionId = 1;
  /** Connections that closed, newest last (at most MAX_PAST_CONNECTIONS), for status output. */
  private readonly pastConnections: ConnectionFigures[] = [];
  private acknowledgedBytes = 0;
  private acknowledgedFeet = 0;
  private retransmits = 0;
  private confirmed = false;
  private readonly hello: Hello;
  private readonly started = performance.now();
  private lastTickMs = performance.now();
  private ticks = 0;

  private end: EndOfStream | undefined;
  /** Connections that carried end-of-stream. */
  private readonly endSentOn = new Set<number>();
  private finished = false;
  private everConnected = false;
  private downSince = performance.now();
  private lastDialError = "";
  private warnedUnreachable = false;
  /** The receiver refuses us busy: how long that is waited on (busy-wait.ts), and its last word. */
  private readonly busy: BusyWait;
  private busyError: VmError | undefined;
  private pumping = false;
  private pumpAgain = false;
  private wakeReader: (() => void) | undefined;
  private ticker: ReturnType<typeof setInterval> | undefined;
  private tuneTicker: ReturnType<typeof setInterval> | undefined;
  private readonly chaos: Chaos;
  /** The receiver session we talk to; a different one in a later welcome means it restarted. */
  private receiverNonce: bigint | undefined;
  private settle!: { resolve: (s: TransferSummary) => void; reject: (e: VmError) => void };

  constructor(
    private readonly options: TransmitterOptions,
    private readonly io: TransmitterIo,
    private readonly links: readonly Link[],
  ) {
    this.pool = new BufferPool(options.footBytes, MAX_POOLED_FEET);
    this.chaos = new Chaos(options.chaosEvery);
    this.busy = new BusyWait(busyWaitMs(options.timeoutS, options.patienceS));
    this.chunker = new Chunker(io.source, options.footBytes, this.pool, options.charmode ?? false);
    this.hello = {
      magic: VM_MAGIC,
      protocolVersion: VM_PROTOCOL_VERSION,
      sessionId: crypto.getRandomValues(new BigUint64Array(1))[0]!,
      checkphrase: new TextEncoder().encode(options.checkphrase),
      footBytes: options.footBytes,
      capabilities:
        (options.key === undefined ? CAP_NONE : CAP_KEY) | (options.encrypt ? CAP_ENCRYPT : CAP_NONE) | (options.compress === undefined ? CAP_NONE : CAP_COMPRESS),
      connectionId: 0,
    };
    if (options.threads === "auto") this.tuner = new ThreadTuner(defaultTunerSettings(options.footBytes), performance.now());
    const budget = connectionBudget(this.tuner?.target ?? (options.threads as number), links.length);
    for (let i = 0; i < budget; i++) this.slots.push({ anchor: links[i], link: links[i], connectionId: undefined });
  }

  run(): Promise<TransferSummary> {
    const done = new Promise<TransferSummary>((resolve, reject) => (this.settle = { resolve, reject }));
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    if (this.tuner !== undefined) this.tuneTicker = setInterval(() => this.tune(performance.now()), TUNE_MS);
    onInterrupt(this.io.signal, (reason) => this.interrupt(reason));
    if (this.finished) return done;
    if (this.links.length > 1) log.info(`links in order of preference: ${this.links.map((link) => link.address).join(", ")}`);
    for (const slot of this.slots) void this.runSlot(slot);
    this.readLoop().catch((error) => this.fail(error));
    return done;
  }

  /** Per-link figures, in preference order. */
  linkFigures(): LinkFigures[] {
    return this.links.map((link) => link.figures());
  }

  /** How the transfer stands now (status output, summaries). */
  figures(): TransferFigures {
    const live = [...this.connections.values()].map((connection) => this.connectionFigures(connection, this.draining.has(connection.id) ? "draining" : "up"));
    return {
      role: "tx",
      startedMs: this.started,
      bytes: this.acknowledgedBytes,
      feet: this.acknowledgedFeet,
      feetInFlight: this.scheduler.heldCount,
      windowFeet: Number(this.scheduler.windowEnd - this.scheduler.deliveredBelow),
      reorderFeet: null,
      retransmits: this.retransmits,
      connections: [...this.pastConnections, ...live],
      connectionsWanted: this.activeSlots().length,
      links: this.linkFigures(),
      digest: this.confirmed ? this.digest.value.toString(16).padStart(16, "0") : null,
    };
  }

  private connectionFigures(connection: TxConnection, state: ConnectionFigures["state"]): ConnectionFigures {
    const roundTripMs = connection.roundTripMs;
    return {
      id: connection.id,
      link: this.linkOf.get(connection.id)?.address ?? connection.target,
      state,
      ...connection.carried,
      roundTripMs: roundTripMs === undefined ? null : Math.round(roundTripMs * 1000) / 1000,
    };
  }

  // ---- 1. links and connection slots -----------------------------------------------

  private async runSlot(slot: Slot): Promise<void> {
    let backoffMs = FIRST_BACKOFF_MS;
    while (!this.finished && !slot.retired) {
      const link = slot.anchor ?? this.placeFloating(slot);
      slot.link = link;
      const dialledAt = performance.now();
      const outcome = await this.connectOnce(slot, link);
      if (this.finished || outcome === "fatal") return;
      if (slot.retired) break;
      if (outcome === "busy") {
        await Bun.sleep(BUSY_RETRY_MS * (0.5 + Math.random()));
        continue;
      }
      if (outcome === "was-up") {
        backoffMs = FIRST_BACKOFF_MS;
        // A connection that worked for a while and broke is re-dialled at once; one that
        // dies as soon as it is up (a receiver dropping us) backs off like a failed dial.
        if (performance.now() - dialledAt >= SHORT_LIVED_MS) continue;
      } else if (slot.anchor === undefined && this.links.some((other) => other !== link && other.live)) {
        continue; // a floating slot does not wait on a dead link while another one works
      }
      // Jitter keeps a room full of slots from re-dialling in lockstep.
      await Bun.sleep(backoffMs * (0.5 + Math.random()));
      backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
    }
    if (slot.retired) this.slots.splice(this.slots.indexOf(slot), 1);
  }

  /**
   * `threads auto`: asks the tuner, then adds floating slots or retires some.
   * A retired slot that is still dialling gives up its connection as soon as
   * it opens; one that is up drains (no new feet) and closes once empty.
   */
  private tune(now: number): void {
    if (this.tuner === undefined || this.finished) return;
    const change = this.tuner.update(now, {
      deliveredBytes: this.acknowledgedBytes,
      deliveredFeet: this.acknowledgedFeet,
      feetHeld: this.scheduler.heldCount,
      connectionsUp: this.connections.size,
    });
    if (change === undefined) return;
    log.info(`threads auto: ${change.from} → ${change.to} connections after ${((now - this.started) / 1000).toFixed(2)} s (${change.why})`);
    const wanted = connectionBudget(change.to, this.links.length);
    const active = this.activeSlots();
    for (let n = active.length; n < wanted; n++) {
      const slot: Slot = { anchor: undefined, link: undefined, connectionId: undefined };
      this.slots.push(slot);
      void this.runSlot(slot);
    }
    // Retire floating slots, those without a connection first, then the newest.
    const floating = active.filter((slot) => slot.anchor === undefined).reverse();
    floating.sort((a, b) => Number(a.connectionId !== undefined) - Number(b.connectionId !== undefined));
    for (const slot of floating.slice(0, Math.max(0, active.length - wanted))) {
      slot.retired = true;
      if (slot.connectionId === undefined) continue;
      this.draining.add(slot.connectionId);
      this.closeIfDrained(slot.connectionId);
    }
  }

  /** The slots that stay (not retired by `threads auto`). */
  private activeSlots(): Slot[] {
    return this.slots.filter((slot) => !slot.retired);
  }

  private linkViews(): LinkView[] {
    return this.links.map((link) => ({ live: link.live, rate: link.delivered.bytesPerSecond, feetDelivered: link.feetDelivered }));
  }

  /** Slots per link, leaving out `except`. */
  private assignedPerLink(except?: Slot): number[] {
    const counts = this.links.map(() => 0);
    for (const slot of this.activeSlots()) if (slot !== except && slot.link !== undefined) counts[slot.link.index]!++;
    return counts;
  }

  /** The link a floating slot dials next (see placement.ts). */
  private placeFloating(slot: Slot): Link {
    slot.link = undefined;
    const views = this.linkViews();
    const index = chooseLink(views, desiredConnections(views, this.activeSlots().length), this.assignedPerLink(slot));
    return this.links[Math.max(0, index)]!;
  }

  /** One connection's life: resolves when it is over. */
  private async connectOnce(slot: Slot, link: Link): Promise<"fatal" | "failed" | "busy" | "was-up"> {
    const id = this.nextConnectionId++;
    let opened;
    try {
      opened = await TxConnection.open(this.io.network, link, id, this.hello, {
        onFrame: (connection, frame) => this.onFrame(connection, frame),
        onIdle: () => this.pump(),
        onClose: (connection, error) => this.onConnectionClosed(connection, error),
      }, this.options.key);
    } catch (error) {
      const failure = error as DialFailure;
      if (failure.fatal) {
        this.fail(failure.error);
        return "fatal";
      }
      if (failure.busy) return this.noteBusy(failure.error as VmError);
      this.busyError = undefined; // patience reports what failed last
      this.noteDialFailure(link, failure.message);
      return "failed";
    }
    const { connection, welcome } = opened;
    if (this.finished) {
      connection.close();
      return "fatal";
    }
    if (slot.retired) {
      connection.close(); // `threads auto` wanted fewer while this one was dialling
      return "was-up";
    }
    if (this.options.compress !== undefined && (welcome.capabilities & CAP_COMPRESS) === 0) {
      connection.close();
      this.fail(new VmError("protocol", `receiver ${connection.target} cannot take compressed feet; drop 'compress' or update the receiver`));
      return "fatal";
    }
    this.busy.reset();
    this.busyError = undefined;
    this.receiverNonce ??= welcome.receiverNonce;
    if (welcome.receiverNonce !== this.receiverNonce) {
      connection.close();
      this.fail(new VmError("peerLost", "the receiver restarted and lost the stream it had received; start the transfer again"));
      return "fatal";
    }
    const closed = new Promise<void>((resolve) => this.closeWaiters.set(connection.id, resolve));
    this.connections.set(connection.id, connection);
    this.linkOf.set(connection.id, link);
    link.connections.add(connection.id);
    this.linkWorks(link, link.markWorking());
    this.everConnected = true;
    log.debug(`connection ${connection.id} up on link ${link.index + 1} (${link.address})`);
    this.scheduler.acknowledge(welcome.deliveredBelow, []);
    if (this.scheduler.credit(welcome.windowEnd)) this.wakeReader?.();
    this.pump();
    slot.connectionId = connection.id;
    await closed;
    slot.connectionId = undefined;
    return "was-up";
  }

  private onConnectionClosed(connection: TxConnection, error?: Error): void {
    const link = this.forget(connection);
    if (this.finished) return;
    const requeued = this.scheduler.connectionLost(connection.id);
    const where = link === undefined ? connection.target : `link ${link.index + 1} (${connection.target})`;
    log.warn(`connection ${connection.id} on ${where} lost${error ? `: ${error.message}` : ""}; ${requeued} feet re-queued`);
    if (this.connections.size === 0) this.downSince = performance.now();
    this.pump();
  }

  /** Drops a closed connection from every table and releases its slot; returns its link. */
  private forget(connection: TxConnection): Link | undefined {
    const link = this.linkOf.get(connection.id);
    if (link !== undefined) {
      this.pastConnections.push(this.connectionFigures(connection, "closed"));
      if (this.pastConnections.length > MAX_PAST_CONNECTIONS) this.pastConnections.shift();
    }
    link?.connections.delete(connection.id);
    this.linkOf.delete(connection.id);
    this.connections.delete(connection.id);
    this.endSentOn.delete(connection.id);
    this.draining.delete(connection.id);
    this.closeWaiters.get(connection.id)?.();
    this.closeWaiters.delete(connection.id);
    return link;
  }

  private noteDialFailure(link: Link, message: string): void {
    this.lastDialError = message;
    // A refusal while the link carries other connections does not make it dead.
    if (link.connections.size === 0 && link.markFailed(message) && this.links.length > 1) {
      log.warn(`link ${link.index + 1} (${link.address}) down: ${message}; retrying it in the background`);
    }
    if (!this.warnedUnreachable && this.connections.size === 0) {
      this.warnedUnreachable = true;
      const patience = this.options.patienceS === 0 ? "forever" : `for up to ${this.options.patienceS}s`;
      log.warn(`${message}; retrying ${patience}`);
    }
  }

  /**
   * The receiver holds another transfer: wait (busy-wait.ts), saying so once,
   * since it gives up one that was abandoned; give up (exit 11) once the wait is over.
   */
  private noteBusy(refusal: VmError): "fatal" | "busy" {
    const waitS = this.busy.limitMs / 1000;
    this.busyError = new VmError("busy", `${refusal.message}; still busy after ${waitS}s: wait for that transfer to finish or use another port`);
    switch (this.busy.refused(performance.now())) {
      case "first":
        log.warn(`${refusal.message}; waiting up to ${waitS}s for it to finish or be given up`);
        return "busy";
      case "waiting":
        return "busy";
      case "over":
        this.fail(this.busyError);
        return "fatal";
    }
  }

  private checkPatience(): void {
    if (this.finished || this.connections.size > 0 || this.options.patienceS === 0) return;
    const downS = (performance.now() - this.downSince) / 1000;
    if (downS < this.options.patienceS) return;
    if (this.busyError !== undefined) return this.fail(this.busyError);
    const targets = this.links.map((link) => link.address).join(", ");
    this.fail(
      this.everConnected
        ? new VmError("peerLost", `lost every connection to the receiver (${targets}) for ${this.options.patienceS}s: ${this.lastDialError || "no answer"}`)
        : new VmError("unreachable", `receiver ${targets} not reachable within ${this.options.patienceS}s: ${this.lastDialError || "no answer"}`),
    );
  }

  /**
   * Moves one floating connection when the links' rates say it belongs
   * elsewhere: it stops taking feet, and once its feet are acknowledged it
   * closes and its slot dials the link that needs it.
   */
  private rebalance(): void {
    if (this.links.length < 2) return;
    if (this.draining.size > 0) return; // one move at a time (and none while auto retires connections)
    const views = this.linkViews();
    const move = rebalanceMove(views, desiredConnections(views, this.activeSlots().length), this.assignedPerLink());
    if (move === undefined) return;
    const from = this.links[move.from];
    const slot = this.activeSlots().find((candidate) => candidate.anchor === undefined && candidate.link === from && candidate.connectionId !== undefined);
    if (slot?.connectionId === undefined) return;
    this.draining.add(slot.connectionId);
    log.debug(`moving connection ${slot.connectionId} from link ${move.from + 1} to link ${move.to + 1}`);
    this.closeIfDrained(slot.connectionId);
  }

  private closeIfDrained(id: number): void {
    const connection = this.connections.get(id);
    if (connection === undefined) {
      this.draining.delete(id);
      return;
    }
    if (this.scheduler.carriedBy(id) > 0 || !connection.isIdle) return;
    connection.close();
    this.forget(connection);
    this.scheduler.connectionLost(id);
  }

  // ---- 2. reading ---------------------------------------------------------------

  /**
   * With `compress`, feet being compressed (several at once, off the main
   * thread) wait here, in read order, and are handed to the scheduler in that order.
   */
  private readonly compressing: Promise<OutboundFoot>[] = [];

  private async readLoop(): Promise<void> {
    const compression = this.options.compress;
    for (;;) {
      while (!this.scheduler.canRead(this.compressing.length) || this.compressing.length >= MAX_COMPRESSING_FEET) {
        if (this.compressing.length > 0) {
          if (!this.addCompressed(await this.compressing.shift()!)) return;
          continue;
        }
        await new Promise<void>((resolve) => (this.wakeReader = resolve));
        this.wakeReader = undefined;
        if (this.finished) return;
      }
      const cut = await this.chunker.next();
      if (this.finished) return;
      if (cut === undefined) break;
      const checksum = footChecksum(cut.id, cut.offset, cut.payload);
      this.digest.add(checksum, cut.payload.length);
      const foot: OutboundFoot = { ...cut, checksum, sends: 0, connectionId: undefined, copiesQueued: 0, acknowledged: false, lastSentMs: 0, hedges: 0 };
      if (compression === undefined) {
        this.scheduler.add(foot);
        this.pump();
      } else {
        const compressed = this.compress(foot, compression);
        compressed.catch(() => {}); // awaited in order below; one left behind by a failure must not be unhandled
        this.compressing.push(compressed);
      }
    }
    while (this.compressing.length > 0) if (!this.addCompressed(await this.compressing.shift()!)) return;
    this.end = {
      totalFeet: this.digest.totalFeet,
      totalBytes: this.digest.totalBytes,
      digest: { kind: DigestKind.DIGEST_XXH3_CHAIN, xxh3Chain: this.digest.value },
    };
    log.debug(`end of input: ${this.end.totalFeet} feet, ${this.end.totalBytes} bytes`);
    this.pump();
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
    if (this.finished) return false;
    this.scheduler.add(foot);
    this.pump();
    return true;
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
        const window = Number(this.scheduler.windowEnd - this.scheduler.deliveredBelow);
        const caps = linkFootCaps(this.linkViews(), window);
        for (;;) {
          const connection = this.connectionForNextFoot(caps);
          if (connection === undefined) break;
          const foot = this.scheduler.next(connection.id);
          if (foot === undefined) break;
          this.sendFoot(connection, foot);
        }
        this.hedgeStraggler();
        this.sendEndIfDue();
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
  }

  /**
   * The connection the next foot goes to: on the most preferred link that is
   * under its share of the window (`caps`) and has an idle connection with
   * room; on that link, the connection carrying the fewest feet.
   *
   * A connection carries at most its share of its link's feet (1..4): a kernel
   * buffer can swallow many feet, and without the limit one connection would
   * carry most of the window and a reset would send it all again. With more
   * connections than half the window the share is one each: a floor of two
   * left half of them idle behind the others' second feet, which on a path
   * that limits each flow (`threads auto`'s case) halves the throughput.
   */
  private connectionForNextFoot(caps: readonly number[]): TxConnection | undefined {
    for (const link of this.links) {
      if (link.connections.size === 0) continue;
      const cap = caps[link.index] ?? 0;
      const perConnection = Math.min(MAX_FEET_PER_CONNECTION, Math.max(MIN_FEET_PER_CONNECTION, Math.ceil(cap / link.connections.size)));
      let carriedOnLink = 0;
      let best: TxConnection | undefined;
      let bestCarried = Infinity;
      for (const id of link.connections) {
        const carried = this.scheduler.carriedBy(id);
        carriedOnLink += carried;
        const connection = this.connections.get(id);
        if (connection === undefined || this.draining.has(id) || !connection.isIdle || carried >= perConnection) continue;
        if (carried < bestCarried) {
          best = connection;
          bestCarried = carried;
        }
      }
      if (best !== undefined && carriedOnLink < cap) return best;
    }
    return undefined;
  }

  private sendFoot(connection: TxConnection, foot: OutboundFoot): void {
    connection.sendFoot(foot, foot.sends > 1 ? FOOT_FLAG_RETRANSMIT : 0, () => this.recycle(foot));
    if (foot.sends > 1) this.retransmits++;
    this.linkOf.get(connection.id)?.noteSent(foot.payload.length);
    const fault = this.chaos.tick();
    if (fault !== undefined) {
      log.warn(`chaos: ${fault} on connection ${connection.id}`);
      connection.chaos(fault);
    }
  }

  /**
   * The receiver's output waits on one foot while a connection sits idle:
   * after a few round trips of the foot's link, send another copy, on another
   * link if one is idle. The first copy to arrive wins; the receiver drops the other.
   */
  private hedgeStraggler(): void {
    const carrierLink = this.oldestCarrierLink();
    const roundTripMs = carrierLink?.footRoundTripMs ?? this.scheduler.footRoundTripMs;
    if (roundTripMs === undefined) return;
    const delayMs = Math.min(Math.max(HEDGE_ROUND_TRIPS * roundTripMs, HEDGE_MIN_MS), this.options.timeoutS * 1000);
    const foot = this.scheduler.straggler(delayMs);
    if (foot === undefined || foot.hedges >= MAX_HEDGES_PER_FOOT) return;
    const idle = [...this.connections.values()].filter(
      (connection) => connection.isIdle && connection.id !== foot.connectionId && !this.draining.has(connection.id),
    );
    const connection = idle.find((candidate) => this.linkOf.get(candidate.id) !== carrierLink) ?? idle[0];
    if (connection === undefined) return;
    log.debug(`foot ${foot.id} straggles on connection ${foot.connectionId}; another copy on ${connection.id}`);
    this.scheduler.hedge(foot, connection.id);
    this.sendFoot(connection, foot);
  }

  /** The link carrying the foot the receiver's output waits on. */
  private oldestCarrierLink(): Link | undefined {
    const foot = this.scheduler.straggler(0);
    return foot?.connectionId === undefined ? undefined : this.linkOf.get(foot.connectionId);
  }

  /** Every TICK_MS: heartbeats and stalls, link rates and placement, stragglers, patience. */
  private tick(): void {
    if (this.finished) return;
    const timeoutMs = this.options.timeoutS * 1000;
    for (const connection of [...this.connections.values()]) {
      const stall = connection.watch(timeoutMs);
      if (stall === undefined) continue;
      const link = this.linkOf.get(connection.id);
      // A silent connection is a sign its path died: floating connections avoid the link until it works again.
      if (link !== undefined && this.links.length > 1 && link.markFailed(`a connection went silent (${stall})`)) {
        log.warn(`link ${link.index + 1} (${link.address}) looks dead: ${stall}; moving its feet to other links`);
      }
      connection.kill(new Error(`declared dead: ${stall}`));
    }
    const now = performance.now();
    for (const link of this.links) link.delivered.tick(now - this.lastTickMs);
    this.lastTickMs = now;
    // A draining connection closes once empty: usually on its last acknowledgement, but one
    // that was busy with a control frame when it had no feet left is caught here.
    for (const id of [...this.draining]) this.closeIfDrained(id);
    if (++this.ticks % REBALANCE_TICKS === 0) this.rebalance();
    this.pump();
    this.checkPatience();
  }

  private onAcknowledged(foot: OutboundFoot, carrier: number | undefined, roundTripMs: number | undefined): void {
    this.acknowledgedBytes += foot.streamLength ?? foot.payload.length; // stream bytes, not the compressed ones
    this.acknowledgedFeet++;
    const link = carrier === undefined ? undefined : this.linkOf.get(carrier);
    if (link !== undefined) this.linkWorks(link, link.noteDelivered(foot.payload.length, roundTripMs));
    this.recycle(foot);
    if (carrier !== undefined && this.draining.has(carrier)) this.closeIfDrained(carrier);
  }

  /** A link that had been marked down just worked (a connection came up or a foot got through). */
  private linkWorks(link: Link, wasDown: boolean): void {
    if (wasDown && this.links.length > 1) log.info(`link ${link.index + 1} (${link.address}) is back`);
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
    this.confirmed = true;
    // The confirmation covers every foot: one still held (its ack can come after the confirm,
    // or not at all once we close) counts as delivered, or the summary would say fewer bytes.
    this.scheduler.acknowledge(end.totalFeet, []);
    this.finish();
    const seconds = (performance.now() - this.started) / 1000;
    const rate = Number(end.totalBytes) / (1024 * 1024) / Math.max(seconds, 1e-6);
    log.info(`confirmed by the receiver: ${end.totalBytes} bytes in ${end.totalFeet} feet, ${seconds.toFixed(2)} s, ${rate.toFixed(0)} MiB/s`);
    // Per-link shares are in the summary line (src/status/format.ts).
    this.settle.resolve({ feet: end.totalFeet, bytes: end.totalBytes, seconds, links: this.linkFigures() });
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
    clearInterval(this.tuneTicker);
    this.wakeReader?.();
    if (closeConnections) for (const connection of this.connections.values()) connection.close();
    // Their figures stay for the summary and the stats file.
    for (const connection of this.connections.values()) this.pastConnections.push(this.connectionFigures(connection, "closed"));
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
