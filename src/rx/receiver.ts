/**
 * The receiver: listen → admit connections → sessions → their outputs.
 *
 *  1. Listen on the port (every address unless `bind` says otherwise).
 *  2. Each connection says hello; admission (admission.ts) decides, and the
 *     receiver acts on the decision: a hello of a session it holds joins
 *     it; another starts a session while there is a free place (one, or
 *     `sessions N` with `serve`, whose shared memory must also have room
 *     for its budget: memory-share.ts); anything else is refused with a
 *     reason and the receiver keeps serving. With every place taken, the open
 *     sessions meet the takeover rule (takeover.ts): busy while they live;
 *     an abandoned one gives way if none of it reached its output (or,
 *     serving, whatever it wrote: its output is its own and is aborted);
 *     without serve the receiver fails rather than append a new stream to
 *     a partial one. At most MAX_PENDING_CONNECTIONS may be mid-handshake
 *     (evictPending); repeated warnings are summed up (log-limiter.ts).
 *  3. Each session asks the OutputFactory for its output, writes the stream
 *     into it and confirms it (see session.ts); the output is finished, or
 *     aborted if the session failed.
 *  4. After a session's end (or failure), linger until its transmitter has
 *     closed its connections, so the last frames are not lost. Without
 *     `serve` the receiver then settles with that session's outcome; with
 *     it, the place is free and the receiver goes on.
 *  5. A session left with no connection for `patience` seconds fails.
 *  6. Serving, `drain` (SIGTERM) stops new sessions; the running ones get
 *     `patience` seconds to finish. The receiver then resolves if each of
 *     them completed, else rejects with the first failure (or, at the
 *     deadline, "interrupted" after stopping those left).
 *
 * Owns the connections (and which are mid-handshake), the watchdog tick, and
 * how it ends (outcome, drain); the sessions it holds, one record each, and
 * how they stop being held (retire, release) are hosted.ts's. Time comes from
 * one Clock (`ReceiverIo.clock`), handed down to the sessions and connections.
 */
import { LINGER_MS, MAX_PENDING_CONNECTIONS, WARNING_INTERVAL_MS, WATCHDOG_TICK_MS } from "../constants.ts";
import { systemClock, type Clock, type Timer } from "../clock.ts";
import { asVmError, onInterrupt, VmError } from "../errors.ts";
import { log } from "../log.ts";
import { tcpNetwork } from "../net/bun-network.ts";
import type { Listening, Network } from "../net/channel.ts";
import { DEFAULT_SESSIONS, DEFAULT_WINDOW_FEET, type ReceiverOptions } from "../options.ts";
import type { AnyHello } from "../protocol/messages.ts";
import type { ConsumerVerdict } from "../protocol/xdr.generated.ts";
import { Chaos } from "../net/chaos.ts";
import type { TransferFigures } from "../status/figures.ts";
import { formatCount, WarningLimiter, type Summarize } from "../log-limiter.ts";
import { decideAdmission, welcome, type AdmissionPolicy } from "./admission.ts";
import { RxConnection, type HelloAnswer, type RxConnectionContext } from "./connection.ts";
import { ReceiverFigures } from "./figures.ts";
import { describe, HostedSessions, type Hosted } from "./hosted.ts";
import { consumerFailure } from "./consumer.ts";
import { sinkOutput, type OutputFactory } from "./output.ts";
import { stdoutSink, type ByteSink } from "./stdout.ts";

export interface ReceiverIo {
  network: Network;
  /** Where the stream goes when no `output` is given (stdout by default). */
  sink: ByteSink;
  /** Each session's output (serve: one per session); default: `sink`, for the one session there is. */
  output?: OutputFactory;
  /** Told the bound port once listening (port 0 picks a free one). */
  onListening?: (port: number) => void;
  /** Aborting it interrupts the transfer (SIGINT/SIGTERM). */
  signal?: AbortSignal;
  /** Serving: aborting it (SIGTERM) stops new sessions and lets the running ones finish within `patience`. */
  drain?: AbortSignal;
  /** Hears, once listening, how to read the receiver's figures at any moment (status output). */
  observe?: (figures: () => TransferFigures) => void;
  /** Called each time a connection is admitted to a session (initiate's "the pipe is up"). */
  onJoined?: () => void;
  /** Where time comes from (tests run the receiver on a virtual clock). */
  clock: Clock;
}

export interface ReceiveSummary {
  /** Bytes written, by every session (serving) or the one. */
  bytes: bigint;
  seconds: number;
  /** Sessions that completed (1 without serve). */
  sessions: number;
}

/** Receives one session (or, with `serve`, many) and writes each to its output; resolves once done. */
export async function receive(options: ReceiverOptions, io?: Partial<ReceiverIo>): Promise<ReceiveSummary> {
  const receiver = new Receiver(options, { network: io?.network ?? tcpNetwork(options), sink: io?.sink ?? stdoutSink(), clock: systemClock, ...io });
  io?.observe?.(() => receiver.figures());
  return receiver.run();
}

class Receiver {
  private listening: Listening | undefined;
  /** The sessions held now, one record each (hosted.ts). */
  private readonly sessions: HostedSessions;
  private readonly serving: boolean;
  private readonly capacity: number;
  private readonly warnings: WarningLimiter;
  private readonly connections = new Set<RxConnection>();
  private readonly policy: AdmissionPolicy;
  /** What every connection is given: the clock, chaos, the key, and the way back to admission. */
  private readonly connectionContext: RxConnectionContext;
  private nextConnectionId = 1;
  /** Sessions that completed. */
  private completed = 0;
  /** How the receiver ends, once known; it settles when the sessions it waits on have hung up. */
  private outcome: { error?: VmError } | undefined;
  private settling = false;
  /** SIGTERM while serving: when it came, the sessions then open, and the first of them to fail. */
  private draining: { sinceMs: number; waitingOn: Set<Hosted>; failure: VmError | undefined } | undefined;
  private ticker: Timer | undefined;
  private readonly clock: Clock;
  private readonly statistics = new ReceiverFigures();
  private lastTickMs: number;
  private settle!: { resolve: (s: ReceiveSummary) => void; reject: (e: VmError) => void };

  constructor(
    private readonly options: ReceiverOptions,
    private readonly io: ReceiverIo,
  ) {
    this.clock = io.clock;
    this.lastTickMs = this.clock.now();
    this.serving = options.serve === true;
    this.capacity = this.serving ? (options.sessions ?? DEFAULT_SESSIONS) : 1;
    this.sessions = new HostedSessions({
      options,
      serving: this.serving,
      capacity: this.capacity,
      outputFor: io.output ?? (() => sinkOutput(io.sink)),
      clock: this.clock,
      statistics: this.statistics,
      connections: this.connections,
      sessionEvents: (hosted) => ({
        // The stream arrived whole; a command that then failed fails the session (and, unless serving, the receiver).
        onComplete: (verdict) => this.ended(hosted(), verdict === undefined ? undefined : consumerFailure(verdict)),
        onFail: (error) => this.ended(hosted(), error),
      }),
    });
    this.warnings = new WarningLimiter(WARNING_INTERVAL_MS, this.clock);
    this.policy = {
      checkphrase: new TextEncoder().encode(options.checkphrase),
      encrypt: options.encrypt === true,
      keyed: options.key !== undefined,
      timeoutMs: options.timeoutS * 1000,
    };
    this.connectionContext = {
      clock: this.clock,
      chaos: new Chaos(options.chaosEvery),
      key: options.key,
      warn: (kind, line, summarize) => this.warn(kind, line, summarize),
      admit: (connection, hello) => this.admit(connection, hello),
      gone: (connection) => this.gone(connection),
    };
  }

  /** Prints a warning, or counts it when its kind is repeating (see log-limiter.ts). */
  private readonly warn = (kind: string, line: string, summarize: Summarize): void => {
    for (const out of this.warnings.offer(kind, line, summarize)) log.warn(out);
  };

  /** How the transfers stand now (status output, summaries). */
  figures(): TransferFigures {
    return this.statistics.snapshot(this.sessions.all().filter((hosted) => !hosted.retired), {
      windowFeet: this.options.windowFeet ?? DEFAULT_WINDOW_FEET,
      startedMs: this.sessions.startedMs,
      nowMs: this.clock.now(),
      serving: this.serving,
    });
  }

  async run(): Promise<ReceiveSummary> {
    const done = new Promise<ReceiveSummary>((resolve, reject) => (this.settle = { resolve, reject }));
    this.listening = await this.listen();
    log.info(`listening on port ${this.listening.port}`);
    this.io.onListening?.(this.listening.port);
    if (this.serving && this.options.key === undefined) {
      log.warn(`serving without a key: anyone who can reach port ${this.listening.port} can run a transfer into its command; give both ends the same 'key FILE'`);
    }
    onInterrupt(this.io.signal, (reason) => this.interrupt(reason));
    if (this.serving) onInterrupt(this.io.drain, (reason) => this.drain(reason));
    this.ticker = this.clock.every(WATCHDOG_TICK_MS, "receiver watchdog", () => this.tick());
    try {
      return await done;
    } finally {
      this.ticker.cancel();
      this.listening.close();
    }
  }

  private async listen(): Promise<Listening> {
    const accept = (channel: Parameters<Parameters<Network["listen"]>[2]>[0]) => {
      const connection = new RxConnection(this.nextConnectionId++, channel, this.connectionContext);
      this.evictPending();
      this.connections.add(connection);
      return connection.channelHandlers;
    };
    const where = this.options.bind ?? "every address";
    try {
      return await this.io.network.listen(this.options.bind, this.options.port, accept);
    } catch (error) {
      const code = (error as { code?: string }).code;
      // No IPv6 on this host: the dual-stack default falls back to IPv4.
      if (this.options.bind === undefined && code === "EAFNOSUPPORT") {
        return this.io.network.listen("0.0.0.0", this.options.port, accept);
      }
      const reason = code === "EADDRINUSE" ? "the port is in use (is another receiver running?)" : code === "EACCES" ? "permission denied (ports below 1024 need root)" : (code ?? (error as Error).message);
      throw new VmError("listen", `cannot listen on port ${this.options.port} (${where}): ${reason}`);
    }
  }

  // ---- 2. admission ----------------------------------------------------------------

  /** Acts on admission's decision on a hello: refuses it, or starts (perhaps replacing an abandoned one) or joins a session. */
  private admit(connection: RxConnection, hello: AnyHello): HelloAnswer {
    const decision = decideAdmission(hello, connection.remoteAddress, this.policy, {
      sessions: this.sessions.all().map((hosted) => hosted.session),
      capacity: this.capacity,
      serving: this.serving,
      draining: this.draining !== undefined || this.outcome !== undefined,
      activity: (session) => this.sessions.activity(this.sessions.of(session)),
      retired: this.sessions.overIds(),
      failure: (session) => this.sessions.of(session).outcome?.error?.message,
      nowMs: this.clock.now(),
      ...(this.serving ? { memory: this.sessions.memoryFor(hello.footBytes) } : {}),
    });
    if (decision.kind === "refuse") {
      const fail = decision.failSession;
      const abandoned = fail === undefined ? undefined : this.sessions.get(fail.sessionId);
      // After the refusal is on its way: failing settles the receiver, which closes connections.
      if (fail !== undefined && abandoned !== undefined) queueMicrotask(() => abandoned.session.fail(fail.error, false));
      return { refuse: decision.reply };
    }
    let hosted: Hosted;
    if (decision.kind === "start") {
      const abandoned = decision.retire === undefined ? undefined : this.sessions.get(decision.retire.sessionId);
      if (abandoned !== undefined) this.sessions.retire(abandoned, decision.retire!.why);
      hosted = this.sessions.start(hello, connection.remoteAddress);
    } else {
      hosted = this.sessions.get(decision.sessionId)!;
    }
    log.debug(`connection ${connection.id} (tx ${hello.connectionId}) from ${connection.remoteAddress} joined`);
    this.statistics.joined(connection);
    // Deferred: the connection joins the session (and can carry an abort) once this returns.
    if (this.io.onJoined !== undefined) queueMicrotask(this.io.onJoined);
    return { join: hosted.session, welcome: welcome(hello, hosted.session, hosted.output.hasVerdict) };
  }

  /**
   * At most MAX_PENDING_CONNECTIONS connections may be mid-handshake: a new
   * one pushes out another, chosen so that a real transmitter, which says
   * hello as soon as it is connected, survives a flood of connections
   * (a slowloris, a port scan): first one already refused (it only lingers),
   * then the oldest that has sent nothing, then the oldest with part of a
   * hello; one with a whole hello (waiting on its key proof) last. Each also
   * meets the hello deadline. Joined connections are never pending.
   */
  private evictPending(): void {
    let pending = 0;
    let victim: RxConnection | undefined;
    for (const connection of this.connections) {
      if (connection.isJoined) continue;
      pending++;
      // The set keeps arrival order: the first of the lowest stage is the oldest.
      if (victim === undefined || EVICTION_ORDER[connection.handshakeStage] < EVICTION_ORDER[victim.handshakeStage]) victim = connection;
    }
    if (pending < MAX_PENDING_CONNECTIONS || victim === undefined) return;
    this.warn(
      "evicted",
      `more than ${MAX_PENDING_CONNECTIONS} connections are in their handshake; dropping one (${victim.handshakeStage}) from ${victim.remoteAddress}`,
      (count, seconds) => `dropped ${formatCount(count)} more pending handshakes in the last ${seconds} s (more than ${MAX_PENDING_CONNECTIONS} at once)`,
    );
    victim.close();
  }

  private gone(connection: RxConnection): void {
    this.connections.delete(connection);
    this.statistics.gone(connection);
    // Left with no connection: an ended session's transmitter has hung up.
    const alone = this.sessions.leftBy(connection);
    if (alone?.outcome !== undefined) this.release(alone);
    this.maybeSettle();
  }

  // ---- 3 + 4. a session's end ----------------------------------------------------------

  private ended(hosted: Hosted, error?: VmError): void {
    this.sessions.markEnded(hosted, error);
    if (hosted.retired) return;
    const what = describe(hosted.info);
    if (error === undefined) {
      this.completed++;
      log.info(`stream complete: ${hosted.session.bytesWritten} bytes${this.serving ? ` (session ${what})` : ""}`);
    } else if (this.serving && error !== this.outcome?.error) {
      log.warn(`session ${what} failed: ${error.message}`);
    }
    if (this.draining?.waitingOn.has(hosted) === true && error !== undefined) this.draining.failure ??= error;
    if (!this.serving) this.outcome = hosted.outcome;
    // Whatever happens, do not wait longer than LINGER_MS for the transmitter to hang up.
    this.clock.after(LINGER_MS, "linger for the transmitter to hang up", () => (this.serving ? this.release(hosted) : void this.settleNow()), { background: true });
    if (hosted.session.connectionCount === 0) this.release(hosted);
    this.maybeSettle();
  }

  /** An ended session's transmitter has hung up (or had LINGER_MS to): serving, its place is free. */
  private release(hosted: Hosted): void {
    this.sessions.release(hosted);
    this.maybeSettle();
  }

  private maybeSettle(): void {
    if (this.serving && this.outcome === undefined && this.draining !== undefined && this.sessions.size === 0) {
      const failure = this.draining.failure;
      this.outcome = failure === undefined ? {} : { error: failure };
    }
    if (this.outcome === undefined) return;
    for (const hosted of this.sessions.all()) if (hosted.session.connectionCount > 0) return;
    void this.settleNow();
  }

  private async settleNow(): Promise<void> {
    const outcome = this.outcome;
    if (outcome === undefined || this.settling) return;
    this.settling = true;
    for (const line of this.warnings.flush()) log.warn(line);
    // A refused connection is already closing, after its refusal (which a close now could cut off).
    for (const connection of this.connections) if (connection.handshakeStage !== "refused") connection.close();
    // Every output has heard how its session ended before the receiver is done.
    const held = this.sessions.all();
    await Promise.all(held.map((hosted) => hosted.closed));
    if (outcome.error !== undefined) return this.settle.reject(outcome.error);
    let bytes = this.sessions.bytesOfEnded;
    for (const hosted of held) bytes += hosted.session.bytesWritten;
    const started = this.sessions.startedMs;
    this.settle.resolve({ bytes, seconds: started === null ? 0 : (this.clock.now() - started) / 1000, sessions: this.completed });
  }

  /** Every WATCHDOG_TICK_MS: heartbeats and stalls, the missing foot, patience. */
  private tick(): void {
    const timeoutMs = this.options.timeoutS * 1000;
    const now = this.clock.now();
    this.statistics.tick(now - this.lastTickMs);
    this.lastTickMs = now;
    for (const connection of [...this.connections]) {
      if (!connection.isJoined) continue;
      const stall = connection.watch(timeoutMs);
      if (stall !== undefined) connection.kill(new Error(`declared dead: ${stall}`));
    }
    for (const hosted of this.sessions.all()) hosted.session.requestMissing(timeoutMs / 2);
    for (const line of this.warnings.due()) log.warn(line);
    this.checkPatience();
  }

  // ---- 5. patience --------------------------------------------------------------------

  private checkPatience(): void {
    const patienceMs = this.options.patienceS * 1000;
    if (patienceMs === 0) return;
    const now = this.clock.now();
    this.sessions.checkAlone(now);
    const draining = this.draining;
    if (draining === undefined || now - draining.sinceMs < patienceMs) return;
    const left = this.sessions.running();
    if (left.length === 0) return;
    const error = new VmError("interrupted", `stopped ${transfers(left.length)} still running ${this.options.patienceS}s (patience) after SIGTERM`);
    draining.failure ??= error;
    for (const hosted of left) hosted.session.fail(new VmError("interrupted", `the receiver is shutting down: it waited ${this.options.patienceS}s (patience) after SIGTERM`));
  }

  // ---- 6. stopping --------------------------------------------------------------------

  /** Serving: no new session; the running ones get `patience` to finish, then the receiver is done. */
  private drain(reason: string): void {
    if (this.draining !== undefined || this.outcome !== undefined) return;
    const waitingOn = new Set(this.sessions.running());
    this.draining = { sinceMs: this.clock.now(), waitingOn, failure: undefined };
    const patience = this.options.patienceS === 0 ? "however long it takes (patience 0)" : `up to ${this.options.patienceS}s (patience)`;
    log.warn(`${reason}: taking no new transfers; ${waitingOn.size === 0 ? "none is running" : `waiting for ${transfers(waitingOn.size)} to finish, ${patience}`}`);
    this.maybeSettle();
  }

  private interrupt(reason: string): void {
    const error = new VmError("interrupted", `interrupted by ${reason}`);
    // A command still finishing its (whole) input is stopped too: the user asked us to stop.
    const open = this.sessions.running();
    this.outcome = { error };
    for (const hosted of open) hosted.session.fail(error);
    if (open.length === 0) void this.settleNow();
    else this.clock.after(LINGER_MS, "linger for the transmitters to hang up", () => void this.settleNow(), { background: true });
  }
}

/** "1 transfer", "3 transfers". */
export function transfers(count: number): string {
  return `${count} ${count === 1 ? "transfer" : "transfers"}`;
}

/** Which pending connection goes first when too many are in their handshake (see evictPending). */
const EVICTION_ORDER = { refused: 0, silent: 1, "partial hello": 2, "whole hello": 3 } as const;
