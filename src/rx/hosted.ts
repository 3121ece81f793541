/**
 * The sessions a receiver holds, one Hosted record each, from the hello that
 * starts one until it is no longer held.
 *
 *  1. start: admission said "start"; the session gets its output (counted, so
 *     the takeover rule knows whether any of it was written) and, serving, its
 *     share of the foot memory (memory-share.ts), and a record.
 *  2. While it runs: `activity` is what the takeover rule (takeover.ts) reads
 *     of it, `memoryFor` what admission reads of the shared memory; a
 *     connection that goes (`leftBy`) adds its feet to the record and starts
 *     the session's time alone; `checkAlone` fails one alone for `patience`;
 *     `markEnded` records how and when it ended.
 *  3. It stops being held in one of two ways, and its figures move to the
 *     statistics' past (`forget`):
 *     - `retire`: given up for a newcomer; its connections are closed, its
 *       output aborted, and its id kept so its transmitter hears "session over";
 *     - `release` (serving): it ended and its transmitter hung up (or had
 *       LINGER_MS to); its place is free, its id kept for its stragglers.
 *     Without serve the one session stays held until the receiver settles.
 *
 * Owns: the records by session id, the bounded tails of retired and finished
 * session ids, the bytes of sessions no longer held, and when the first
 * session began. The receiver owns the connections and how it ends: it reads
 * these and tells this module what happened.
 */
import type { Clock } from "../clock.ts";
import { MAX_RETIRED_SESSIONS } from "../constants.ts";
import { VmError } from "../errors.ts";
import { formatCount } from "../log-limiter.ts";
import { log } from "../log.ts";
import { DEFAULT_BUFFER_BYTES, type ReceiverOptions } from "../options.ts";
import type { AnyHello } from "../protocol/messages.ts";
import type { SessionView } from "./admission.ts";
import type { RxConnection } from "./connection.ts";
import type { HostedFigures, ReceiverFigures } from "./figures.ts";
import { serveMemoryBytes, sessionShare, type SessionShare } from "./memory-share.ts";
import type { OutputFactory, SessionInfo, SessionOutput } from "./output.ts";
import { Session, type SessionEvents } from "./session.ts";
import type { SessionActivity } from "./takeover.ts";

/** One session the receiver holds, with what the receiver knows about it. */
export interface Hosted extends HostedFigures {
  readonly session: Session;
  readonly output: SessionOutput;
  readonly info: SessionInfo;
  aloneSinceMs: number;
  /** Feet that arrived on its connections that have closed (open ones count their own). */
  feetOnClosed: number;
  /** Bytes handed to its output: a session that wrote some can never give way to a stream into the same output. */
  outputBytes: bigint;
  /** Its output finished or aborted, once the session ended (the session closes it before it says so). */
  closed: Promise<void> | undefined;
  /** Given up for a newcomer: its end is not the receiver's. */
  retired: boolean;
  /** Serving: the bytes of feet its budget may hold, out of serveMemoryBytes (0 without serve). */
  readonly budgetBytes: number;
}

/** What the hosted sessions are given by their receiver. */
export interface HostedContext {
  readonly options: ReceiverOptions;
  readonly serving: boolean;
  /** Sessions held at once: 1, or `sessions N` with serve. */
  readonly capacity: number;
  readonly outputFor: OutputFactory;
  readonly clock: Clock;
  readonly statistics: ReceiverFigures;
  /** The receiver's connections, read to count a session's feet and to close its connections. */
  readonly connections: ReadonlySet<RxConnection>;
  /** A session's end, with the record it belongs to (turned from its SessionEvents). */
  sessionEvents(hosted: () => Hosted): SessionEvents;
}

export class HostedSessions {
  /** The sessions held now (open, or ended and lingering), by session id. */
  private readonly byId = new Map<bigint, Hosted>();
  /** Sessions that gave way to a newcomer (takeover.ts), newest last. */
  private readonly retiredIds: bigint[] = [];
  /** Serving: sessions that ended and are no longer held, newest last (their stragglers hear "session over"). */
  private readonly finishedIds: bigint[] = [];
  private bytesOfForgotten = 0n;
  private firstStartedMs: number | null = null;

  constructor(private readonly context: HostedContext) {}

  get(sessionId: bigint): Hosted | undefined {
    return this.byId.get(sessionId);
  }

  /** The record of a session admission handed back as a view. */
  of(session: SessionView): Hosted {
    return this.byId.get(session.sessionId)!;
  }

  get size(): number {
    return this.byId.size;
  }

  /** Every record held now, in the order the sessions started. */
  all(): Hosted[] {
    return [...this.byId.values()];
  }

  /** The held sessions not ended: receiving, or their whole stream written and their command still finishing. */
  running(): Hosted[] {
    return this.all().filter((hosted) => hosted.session.isOpen || hosted.session.isFinishing);
  }

  /** Ids whose transmitter is refused "session over": the retired ones, and, serving, the finished ones too. */
  overIds(): bigint[] {
    return this.context.serving ? [...this.retiredIds, ...this.finishedIds] : this.retiredIds;
  }

  /** Bytes written by sessions no longer held. */
  get bytesOfEnded(): bigint {
    return this.bytesOfForgotten;
  }

  /** When the first session began, on the receiver's clock. */
  get startedMs(): number | null {
    return this.firstStartedMs;
  }

  // ---- 1. start -----------------------------------------------------------------------

  start(hello: AnyHello, from: string): Hosted {
    const { options, clock } = this.context;
    const info: SessionInfo = { sessionId: hello.sessionId, label: hello.label, peer: from };
    const output = this.context.outputFor(info);
    const now = clock.now();
    // The session's events and its output need the record they belong to.
    let hosted!: Hosted;
    const counted: SessionOutput = {
      hasVerdict: output.hasVerdict,
      sink: {
        write: (bytes) => {
          hosted.outputBytes += BigInt(bytes.length);
          return output.sink.write(bytes);
        },
      },
      finish: () => output.finish(),
      abort: (reason) => output.abort(reason),
    };
    const events = this.context.sessionEvents(() => hosted);
    // Serving, the session's window and records arriving are cut to its share of the memory (memory-share.ts).
    const share = this.context.serving ? this.shareOf(hello.footBytes) : undefined;
    const session =
      share === undefined
        ? new Session(hello.sessionId, hello.footBytes, options.windowFeet, counted, events, clock, options.bufferBytes)
        : new Session(hello.sessionId, hello.footBytes, options.windowFeet, counted, events, clock, share.windowFeet * hello.footBytes, share.assemblyRecords);
    hosted = {
      info,
      output,
      session,
      budgetBytes: share?.budgetBytes ?? 0,
      startedMs: now,
      endedMs: null,
      aloneSinceMs: now,
      feetOnClosed: 0,
      outputBytes: 0n,
      outcome: undefined,
      closed: undefined,
      retired: false,
    };
    this.byId.set(hello.sessionId, hosted);
    this.firstStartedMs ??= now;
    log.info(`session ${describe(info)}: foot size ${hello.footBytes}`);
    return hosted;
  }

  // ---- 2. while it runs ---------------------------------------------------------------

  /** Serving: the shared foot memory, what the sessions held leave of it, and what a session of `footBytes` feet needs. */
  memoryFor(footBytes: number): { totalBytes: number; freeBytes: number; neededBytes: number } {
    let held = 0;
    for (const hosted of this.byId.values()) held += hosted.budgetBytes;
    const totalBytes = serveMemoryBytes(this.context.capacity);
    return { totalBytes, freeBytes: totalBytes - held, neededBytes: this.shareOf(footBytes).budgetBytes };
  }

  private shareOf(footBytes: number): SessionShare {
    return sessionShare(footBytes, this.context.capacity, this.context.options.bufferBytes ?? DEFAULT_BUFFER_BYTES);
  }

  /** What the takeover rule needs to know about an open session. */
  activity(hosted: Hosted): SessionActivity {
    let feetReceived = hosted.feetOnClosed;
    for (const connection of this.context.connections) if (connection.joinedTo === hosted.session) feetReceived += connection.carried.feet;
    return {
      startedMs: hosted.startedMs,
      joined: hosted.session.connectionCount,
      aloneSinceMs: hosted.aloneSinceMs,
      feetReceived,
      outputBytes: hosted.outputBytes,
    };
  }

  /** A connection went: its feet join its session's count; the record, if that left the session with no connection. */
  leftBy(connection: RxConnection): Hosted | undefined {
    const session = connection.joinedTo;
    const hosted = session === undefined ? undefined : this.byId.get(session.sessionId);
    if (hosted === undefined || hosted.session !== session) return undefined;
    hosted.feetOnClosed += connection.carried.feet;
    if (session.connectionCount > 0) return undefined;
    hosted.aloneSinceMs = this.context.clock.now();
    return hosted;
  }

  /** Patience: an open session left with no connection for `patience` seconds fails. */
  checkAlone(nowMs: number): void {
    const { patienceS } = this.context.options;
    for (const hosted of this.all()) {
      const { session } = hosted;
      if (!session.isOpen || session.connectionCount > 0 || nowMs - hosted.aloneSinceMs < patienceS * 1000) continue;
      session.fail(new VmError("peerLost", `the transmitter vanished: no connection for ${patienceS}s`), false);
    }
  }

  /** The session ended (completed, or failed): its outcome and when, on its record. */
  markEnded(hosted: Hosted, error: VmError | undefined): void {
    hosted.outcome = error === undefined ? {} : { error };
    hosted.endedMs = this.context.clock.now();
    // The session finished or aborted its output before it said it ended (session.ts, steps 4 and 5).
    hosted.closed = Promise.resolve();
  }

  // ---- 3. no longer held --------------------------------------------------------------

  /**
   * Gives up an abandoned session for a newcomer: its connections (a
   * squatter's, or a stale transmitter's) are told and closed, its output is
   * aborted, and its transmitter, should it come back, is refused "session over".
   */
  retire(hosted: Hosted, why: string): void {
    const { session } = hosted;
    const wrote = hosted.outputBytes === 0n ? "which wrote nothing" : `after ${formatCount(Number(hosted.outputBytes))} bytes into its own output`;
    const label = hosted.info.label === undefined ? "" : ` '${hosted.info.label}'`;
    log.warn(`gave up session ${session.sessionId.toString(16)}${label}, ${wrote}: ${why}`);
    this.retiredIds.push(session.sessionId);
    if (this.retiredIds.length > MAX_RETIRED_SESSIONS) this.retiredIds.shift();
    hosted.retired = true; // first: its failure below is not the receiver's
    this.forget(hosted);
    session.fail(new VmError("peerLost", `the receiver gave this transfer up: ${why}`));
    this.closeConnectionsOf(session);
  }

  /** Serving, an ended session whose transmitter has hung up (or had LINGER_MS to): its place is free. */
  release(hosted: Hosted): void {
    if (!this.context.serving || this.byId.get(hosted.session.sessionId) !== hosted) return;
    this.forget(hosted);
    this.finishedIds.push(hosted.session.sessionId);
    if (this.finishedIds.length > MAX_RETIRED_SESSIONS) this.finishedIds.shift();
    this.closeConnectionsOf(hosted.session);
  }

  /** No longer held: its figures move to the statistics' past. */
  private forget(hosted: Hosted): void {
    this.byId.delete(hosted.session.sessionId);
    this.bytesOfForgotten += hosted.session.bytesWritten;
    if (!hosted.retired) this.context.statistics.ended(hosted);
  }

  private closeConnectionsOf(session: Session): void {
    for (const connection of [...this.context.connections]) if (connection.joinedTo === session) connection.close();
  }
}

/** A session as log lines name it: its id, its label, its transmitter's address. */
export function describe(info: SessionInfo): string {
  return `${info.sessionId.toString(16)}${info.label === undefined ? "" : ` '${info.label}'`} from ${info.peer}`;
}
