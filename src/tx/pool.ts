/**
 * The connection pool: how many connections the transmitter keeps, and over
 * which links.
 *
 *  1. `threads` slots are spread over the links (placement.ts): one anchor per
 *     link, the rest floating to the links that move the most.
 *  2. Each slot runs a loop (`runSlot`): dial its link and handshake, hold the
 *     connection until it ends, then dial again: at once after a connection
 *     that worked for a while, else with backoff and jitter. A busy receiver
 *     is dialled every BUSY_RETRY_MS until busy-wait.ts says the wait is over.
 *  3. `threads auto` (thread-tuner.ts): `tune` adds floating slots, or retires
 *     some: a retired slot's connection drains (no new feet) and closes once
 *     its feet are acknowledged.
 *  4. `rebalance` moves one floating connection at a time to the link whose
 *     rate says it needs it, by draining it the same way.
 *  5. `givenUp` says when no connection has been up for `patience`
 *     (reachability.ts).
 *
 * State it owns: the slots; one record per live connection (its connection,
 * link, slot, whether it drains and whether end-of-stream went out on it;
 * pool-records.ts);
 * the figures of closed connections; and what patience reports.
 */
import { FIRST_BACKOFF_MS, MAX_BACKOFF_MS, MAX_PAST_CONNECTIONS, SHORT_LIVED_MS } from "../constants.ts";
import type { Clock } from "../clock.ts";
import { VmError } from "../errors.ts";
import { log } from "../log.ts";
import type { Network } from "../net/channel.ts";
import type { TransmitterOptions } from "../options.ts";
import type { ControlFrame } from "../protocol/messages.ts";
import type { AnyHello } from "../protocol/messages.ts";
import { CAP_COMPRESS, type Welcome } from "../protocol/xdr.generated.ts";
import type { ConnectionFigures, LinkFigures } from "../status/figures.ts";
import { BUSY_RETRY_MS } from "./busy-wait.ts";
import { type DialFailure, TxConnection } from "./connection.ts";
import { figuresOf, type ConnectionRecord, type Slot } from "./pool-records.ts";
import type { Link } from "./links.ts";
import { Reachability } from "./reachability.ts";
import { chooseLink, connectionBudget, desiredConnections, rebalanceMove, type LinkView } from "./placement.ts";
import { KernelReadings } from "./kernel-readings.ts";
import type { ThreadTuner } from "./thread-tuner.ts";
import type { TunerProgress } from "./tuner-settings.ts";

/** What the pool needs from the transmitter. */
export interface PoolHost {
  /** A control frame from the receiver. */
  onFrame(connection: TxConnection, frame: ControlFrame): void;
  /** A connection came up or finished writing: feet may go out. */
  onReady(): void;
  /** A connection came up; the receiver's welcome says where the stream stands. */
  onWelcome(welcome: Welcome): void;
  /** A connection is gone: its unacknowledged feet are queued again; returns how many. */
  requeue(connectionId: number): number;
  /** Unacknowledged feet a connection carries. */
  carriedBy(connectionId: number): number;
  /** The transfer cannot go on. */
  fatal(error: unknown): void;
}

export class ConnectionPool {
  private readonly slots: Slot[] = [];
  /** The live connections, by id. */
  private readonly records = new Map<number, ConnectionRecord>();
  private readonly pastConnections: ConnectionFigures[] = [];
  private nextConnectionId = 1;
  /** What the kernel says of the connections, for `threads auto`. */
  private readonly kernel = new KernelReadings();
  private stopped = false;
  /** How long the receiver has been out of reach, and why (patience, busy). */
  private readonly reach: Reachability;
  /** The receiver session we talk to; a different one in a later welcome means it restarted. */
  private receiverNonce: bigint | undefined;

  constructor(
    private readonly options: TransmitterOptions,
    private readonly network: Network,
    private readonly clock: Clock,
    private readonly links: readonly Link[],
    /** The hello for a connection whose TCP handshake took `roundTripMs` (the first one settles the foot size). */
    private readonly hello: (roundTripMs: number | undefined) => AnyHello,
    private readonly host: PoolHost,
    threads: number,
  ) {
    this.reach = new Reachability(options, clock, links);
    const budget = connectionBudget(threads, links.length);
    for (let i = 0; i < budget; i++) this.slots.push({ anchor: links[i], link: links[i], record: undefined, retired: false });
  }

  /** Starts every slot's dial loop. */
  start(): void {
    for (const slot of this.slots) void this.runSlot(slot);
  }

  /** The live connections. */
  live(): IterableIterator<ConnectionRecord> {
    return this.records.values();
  }

  /** The live connection with this id, if it is still up. */
  record(connectionId: number): ConnectionRecord | undefined {
    return this.records.get(connectionId);
  }

  get size(): number {
    return this.records.size;
  }

  /** Connections the pool keeps (`threads`, or what `threads auto` chose). */
  get wanted(): number {
    return this.activeSlots().length;
  }

  connectionFigures(): ConnectionFigures[] {
    return [...this.pastConnections, ...[...this.records.values()].map((record) => figuresOf(record, record.draining ? "draining" : "up"))];
  }

  linkFigures(): LinkFigures[] {
    return this.links.map((link) => link.figures(this.upOn(link)));
  }

  linkViews(): LinkView[] {
    const nowMs = this.clock.now();
    return this.links.map((link) => ({ live: link.live, rate: link.delivered.bytesPerSecond, feetDelivered: link.feetDelivered, proving: link.provingAt(nowMs) }));
  }

  /** Connections up on `link`. */
  upOn(link: Link): number {
    let count = 0;
    for (const record of this.records.values()) if (record.link === link) count++;
    return count;
  }

  /** Every tick: heartbeats, and connections silent for `timeoutMs` declared dead. */
  watch(timeoutMs: number): void {
    for (const { connection, link } of [...this.records.values()]) {
      const stall = connection.watch(timeoutMs);
      if (stall === undefined) continue;
      // A silent connection is a sign its path died: floating connections avoid the link until it works again.
      if (this.links.length > 1 && link.markFailed()) {
        log.warn(`link ${link.index + 1} (${link.address}) looks dead: ${stall}; moving its feet to other links`);
      }
      connection.kill(new Error(`declared dead: ${stall}`));
    }
  }

  /** Closes a draining connection once its feet are acknowledged and nothing is queued on it. */
  closeIfDrained(record: ConnectionRecord): void {
    if (!record.draining || this.host.carriedBy(record.connection.id) > 0 || !record.connection.isIdle) return;
    record.connection.close();
    this.forget(record);
    this.host.requeue(record.connection.id);
  }

  /**
   * Draining connections close once empty: usually on their last
   * acknowledgement, but one that was busy with a control frame when it had
   * no feet left is caught here.
   */
  closeDrained(): void {
    for (const record of [...this.records.values()]) this.closeIfDrained(record);
  }

  /**
   * `threads auto`: asks the tuner, then adds floating slots or retires some.
   * A retired slot that is still dialling gives up its connection as soon as
   * it opens; one that is up drains (no new feet) and closes once empty.
   */
  tune(
    tuner: ThreadTuner,
    nowMs: number,
    startedMs: number,
    progress: Omit<TunerProgress, "connectionsUp" | "roundTripMs" | "tcpDeliveredBytes" | "roundTripInflation" | "queueInflation" | "leastRoundTripMs">,
    /** Bytes of feet sent more than once so far (hedged copies, re-sends). */
    copiedBytes: number,
  ): void {
    if (this.stopped) return;
    const readings = this.kernel.read(this.records.values());
    // Goodput, not TCP's bytes: a copy crosses TCP once more but moves the stream no further.
    // One 2 MiB copy adds 2.9 MiB/s to a 0.7 s measurement: enough to read an input paced to
    // 24 MiB/s as "28 with 8" (seen in two of three runs of the gate's auto test).
    const tcpDeliveredBytes = readings.tcpDeliveredBytes === undefined ? undefined : readings.tcpDeliveredBytes - copiedBytes;
    const change = tuner.update(nowMs, { ...progress, connectionsUp: this.records.size, roundTripMs: this.pathRoundTripMs(), ...readings, tcpDeliveredBytes });
    if (change === undefined) return;
    const after = `after ${((nowMs - startedMs) / 1000).toFixed(2)} s (${change.why})`;
    if (change.to === change.from) return log.info(`threads auto: staying at ${change.to} connections ${after}`);
    log.info(`threads auto: ${change.from} → ${change.to} connections ${after}`);
    const wanted = connectionBudget(change.to, this.links.length);
    const active = this.activeSlots();
    for (let n = active.length; n < wanted; n++) {
      const slot: Slot = { anchor: undefined, link: undefined, record: undefined, retired: false };
      this.slots.push(slot);
      void this.runSlot(slot);
    }
    // Retire floating slots, those without a connection first, then the newest.
    const floating = active.filter((slot) => slot.anchor === undefined).reverse();
    floating.sort((a, b) => Number(a.record !== undefined) - Number(b.record !== undefined));
    for (const slot of floating.slice(0, Math.max(0, active.length - wanted))) {
      slot.retired = true;
      if (slot.record === undefined) continue;
      slot.record.draining = true;
      this.closeIfDrained(slot.record);
    }
  }

  /**
   * The round trip `threads auto` times its steps by: the longest link's
   * (each link's quickest handshake), since the connections on it take the
   * longest to leave slow start.
   */
  pathRoundTripMs(): number | undefined {
    let longest: number | undefined;
    for (const link of this.links) {
      const roundTrip = link.pathRoundTripMs;
      if (roundTrip !== undefined) longest = Math.max(longest ?? 0, roundTrip);
    }
    return longest;
  }

  /**
   * Moves one floating connection when the links' rates say it belongs
   * elsewhere: it stops taking feet, and once its feet are acknowledged it
   * closes and its slot dials the link that needs it.
   */
  rebalance(): void {
    if (this.links.length < 2) return;
    for (const record of this.records.values()) if (record.draining) return; // one move at a time (and none while auto retires connections)
    const views = this.linkViews();
    const move = rebalanceMove(views, desiredConnections(views, this.activeSlots().length), this.assignedPerLink());
    if (move === undefined) return;
    const from = this.links[move.from];
    const record = this.activeSlots().find((slot) => slot.anchor === undefined && slot.link === from && slot.record !== undefined)?.record;
    if (record === undefined) return;
    record.draining = true;
    log.debug(`moving connection ${record.connection.id} from link ${move.from + 1} to link ${move.to + 1}`);
    this.closeIfDrained(record);
  }

  /** Why the transfer gives up, once no connection has been up for `patience`. */
  givenUp(): VmError | undefined {
    return this.stopped || this.records.size > 0 ? undefined : this.reach.givenUp();
  }

  /** Stops dialling; `closeConnections` drops the live ones (after a failure they close after their final frame). */
  stop(closeConnections: boolean): void {
    this.stopped = true;
    const records = [...this.records.values()];
    this.records.clear();
    for (const record of records) {
      if (closeConnections) record.connection.close();
      this.remember(record); // their figures stay for the summary and the stats file
      record.release();
    }
  }

  // ---- dialling -----------------------------------------------------------------

  private async runSlot(slot: Slot): Promise<void> {
    let backoffMs = FIRST_BACKOFF_MS;
    while (!this.stopped && !slot.retired) {
      const link = slot.anchor ?? this.placeFloating(slot);
      slot.link = link;
      const dialledAtMs = this.clock.now();
      const outcome = await this.connectOnce(slot, link);
      if (this.stopped || outcome === "fatal") return;
      if (slot.retired) break;
      if (outcome === "busy") {
        await this.clock.sleep(BUSY_RETRY_MS * (0.5 + Math.random()), "tx busy receiver re-dial");
        continue;
      }
      if (outcome === "was-up") {
        backoffMs = FIRST_BACKOFF_MS;
        // A connection that worked for a while and broke is re-dialled at once; one that
        // dies as soon as it is up (a receiver dropping us) backs off like a failed dial.
        if (this.clock.now() - dialledAtMs >= SHORT_LIVED_MS) continue;
      } else if (slot.anchor === undefined && this.links.some((other) => other !== link && other.live)) {
        continue; // a floating slot does not wait on a dead link while another one works
      }
      // Jitter keeps a room full of slots from re-dialling in lockstep.
      await this.clock.sleep(backoffMs * (0.5 + Math.random()), "tx re-dial backoff");
      backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
    }
    if (slot.retired) this.slots.splice(this.slots.indexOf(slot), 1);
  }

  /** One connection's life: resolves when it is over. */
  private async connectOnce(slot: Slot, link: Link): Promise<"fatal" | "failed" | "busy" | "was-up"> {
    const id = this.nextConnectionId++;
    let record: ConnectionRecord | undefined;
    let opened;
    const dialledAtMs = this.clock.now();
    try {
      const { host } = this;
      const events = { onFrame: host.onFrame.bind(host), onIdle: () => host.onReady(), onClose: (_: TxConnection, error?: Error) => this.lost(record, error) };
      opened = await TxConnection.open(this.network, link, id, this.hello, events, this.options.key, this.clock);
    } catch (error) {
      const failure = error as DialFailure;
      if (failure.fatal) {
        this.host.fatal(failure.error);
        return "fatal";
      }
      if (failure.busy) {
        const over = this.reach.busy(failure.error as VmError);
        if (over === undefined) return "busy";
        this.host.fatal(over);
        return "fatal";
      }
      // A refusal while the link carries other connections does not make it dead.
      if (this.upOn(link) === 0 && link.markFailed() && this.links.length > 1) {
        log.warn(`link ${link.index + 1} (${link.address}) down: ${failure.message}; retrying it in the background`);
      }
      this.reach.dialFailed(failure.message, this.records.size === 0);
      return "failed";
    }
    const { connection, welcome } = opened;
    // Connect, hello and welcome; with a key, the proofs too.
    link.noteHandshake(this.clock.now() - dialledAtMs, this.options.key === undefined ? 2 : 3);
    if (this.stopped) {
      connection.close();
      return "fatal";
    }
    if (slot.retired) {
      connection.close(); // `threads auto` wanted fewer while this one was dialling
      return "was-up";
    }
    if (this.options.compress !== undefined && (welcome.capabilities & CAP_COMPRESS) === 0) {
      connection.close();
      this.host.fatal(new VmError("protocol", `receiver ${connection.target} cannot take compressed feet; drop 'compress' or update the receiver`));
      return "fatal";
    }
    this.reach.connected();
    this.receiverNonce ??= welcome.receiverNonce;
    if (welcome.receiverNonce !== this.receiverNonce) {
      connection.close();
      this.host.fatal(new VmError("peerLost", "the receiver restarted and lost the stream it had received; start the transfer again"));
      return "fatal";
    }
    if (!connection.isUp) return "was-up"; // it closed between its welcome and now
    let release!: () => void;
    const ended = new Promise<void>((resolve) => (release = resolve));
    record = { connection, link, slot, draining: false, endSent: false, feetDelivered: 0, tcpBytesDeliveredSeen: 0, release };
    this.records.set(id, record);
    slot.record = record;
    this.linkWorks(link, link.markWorking());
    log.debug(`connection ${id} up on link ${link.index + 1} (${link.address})`);
    this.host.onWelcome(welcome);
    await ended;
    slot.record = undefined;
    return "was-up";
  }

  /** A connection we did not close ended. */
  private lost(record: ConnectionRecord | undefined, error?: Error): void {
    if (record === undefined || !this.forget(record) || this.stopped) return;
    const requeued = this.host.requeue(record.connection.id);
    const { connection, link } = record;
    log.warn(`connection ${connection.id} on link ${link.index + 1} (${connection.target}) lost${error ? `: ${error.message}` : ""}; ${requeued} feet re-queued`);
    if (this.records.size === 0) this.reach.down();
    this.host.onReady();
  }

  /** Drops a closed connection's record and releases its slot; false if it was already gone. */
  private forget(record: ConnectionRecord): boolean {
    if (this.records.get(record.connection.id) !== record) return false;
    this.records.delete(record.connection.id);
    this.remember(record);
    record.release();
    return true;
  }

  private remember(record: ConnectionRecord): void {
    this.pastConnections.push(figuresOf(record, "closed"));
    if (this.pastConnections.length > MAX_PAST_CONNECTIONS) this.pastConnections.shift();
  }

  /** A link that had been marked down just worked (a connection came up or a foot got through). */
  linkWorks(link: Link, wasDown: boolean): void {
    if (wasDown && this.links.length > 1) log.info(`link ${link.index + 1} (${link.address}) is back`);
  }

  // ---- placement ----------------------------------------------------------------

  /** The slots that stay (not retired by `threads auto`). */
  private activeSlots(): Slot[] {
    return this.slots.filter((slot) => !slot.retired);
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
}
