/**
 * The receiver: listen → admit connections → one session → stdout.
 *
 *  1. Listen on the port (every address unless `bind` says otherwise).
 *  2. Each connection says hello; admission (admission.ts) decides, and the
 *     receiver acts on the decision: the first acceptable hello starts the
 *     session, later ones join it; anything else is refused with a reason
 *     and the receiver keeps serving. A hello of another session meets the
 *     takeover rule (takeover.ts): busy while the session lives; an
 *     abandoned one gives way if none of it reached stdout, else the
 *     receiver fails rather than append a new stream to a partial one.
 *     At most MAX_PENDING_CONNECTIONS may be mid-handshake (evictPending);
 *     repeated warnings are summed up (log-limiter.ts).
 *  3. The session writes the stream and confirms it (see session.ts).
 *  4. After the confirmation (or a failure), linger until the transmitter
 *     has closed its connections, so the last frames are not lost.
 *  5. A session left with no connection for `patience` seconds fails.
 *
 * Time comes from one Clock (`ReceiverIo.clock`), handed down to the
 * session and the connections.
 */
import { LINGER_MS, MAX_PENDING_CONNECTIONS, MAX_RETIRED_SESSIONS, WARNING_INTERVAL_MS, WATCHDOG_TICK_MS } from "../constants.ts";
import { systemClock, type Clock, type Timer } from "../clock.ts";
import { onInterrupt, VmError } from "../errors.ts";
import { log } from "../log.ts";
import { bunNetwork } from "../net/bun-network.ts";
import type { Listening, Network } from "../net/channel.ts";
import type { ReceiverOptions } from "../options.ts";
import type { AnyHello } from "../protocol/messages.ts";
import { Chaos } from "../net/chaos.ts";
import type { TransferFigures } from "../status/figures.ts";
import { formatCount, WarningLimiter, type Summarize } from "../log-limiter.ts";
import { decideAdmission, welcome, type AdmissionPolicy } from "./admission.ts";
import { RxConnection, type HelloAnswer, type RxConnectionContext } from "./connection.ts";
import { ReceiverFigures } from "./figures.ts";
import { consumerFailure } from "./consumer.ts";
import { sinkOutput, type OutputFactory, type SessionOutput } from "./output.ts";
import { Session } from "./session.ts";
import { stdoutSink, type ByteSink } from "./stdout.ts";
import type { SessionActivity } from "./takeover.ts";

export interface ReceiverIo {
  network: Network;
  /** Where each session's stream goes (stdout, a command per session: `exec`); built once per session. */
  output: OutputFactory;
  /** Instead of `output`: every session's stream into this plain sink (stdout when neither is given). */
  sink?: ByteSink;
  /** Told the bound port once listening (port 0 picks a free one). */
  onListening?: (port: number) => void;
  /** Aborting it interrupts the transfer (SIGINT/SIGTERM). */
  signal?: AbortSignal;
  /** Hears, once listening, how to read the receiver's figures at any moment (status output). */
  observe?: (figures: () => TransferFigures) => void;
  /** Called each time a connection is admitted to the session (initiate's "the pipe is up"). */
  onJoined?: () => void;
  /** Where time comes from (tests run the receiver on a virtual clock). */
  clock: Clock;
}

export interface ReceiveSummary {
  bytes: bigint;
  seconds: number;
}

/**
 * Receives one session and writes it to its output (`io.output`, else
 * `io.sink`, else stdout); resolves once it is confirmed.
 */
export async function receive(options: ReceiverOptions, io?: Partial<ReceiverIo>): Promise<ReceiveSummary> {
  const { sink, ...rest } = io ?? {};
  let output = rest.output;
  if (output === undefined) {
    const plain = sinkOutput(sink ?? stdoutSink());
    output = () => plain;
  }
  const receiver = new Receiver(options, { network: bunNetwork, clock: systemClock, ...rest, output });
  io?.observe?.(() => receiver.figures());
  return receiver.run();
}

class Receiver {
  private listening: Listening | undefined;
  private session: Session | undefined;
  /** Feet that arrived on the session's connections that have closed (open ones count their own). */
  private feetOnClosed = 0;
  /** Bytes handed to stdout, by any session: a session that wrote some can never give way. */
  private outputBytes = 0n;
  /** Sessions that gave way to a newcomer (takeover.ts), newest last. */
  private readonly retired: bigint[] = [];
  private readonly warnings: WarningLimiter;
  private readonly connections = new Set<RxConnection>();
  private readonly policy: AdmissionPolicy;
  /** What every connection is given: the clock, chaos, the key, and the way back to admission. */
  private readonly connectionContext: RxConnectionContext;
  private nextConnectionId = 1;
  private started = 0;
  private outcome: { error?: VmError } | undefined;
  private aloneSince = 0;
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

  /** The session's output, its bytes counted (a session that wrote some can never give way). */
  private openOutput(hello: AnyHello, from: string): SessionOutput {
    const output = this.io.output({ sessionId: hello.sessionId, label: hello.label, peer: from });
    return {
      hasVerdict: output.hasVerdict,
      sink: {
        write: (bytes) => {
          this.outputBytes += BigInt(bytes.length);
          return output.sink.write(bytes);
        },
      },
      finish: () => output.finish(),
      abort: (reason) => output.abort(reason),
    };
  }

  /** Prints a warning, or counts it when its kind is repeating (see log-limiter.ts). */
  private readonly warn = (kind: string, line: string, summarize: Summarize): void => {
    for (const out of this.warnings.offer(kind, line, summarize)) log.warn(out);
  };

  /** How the transfer stands now (status output, summaries). */
  figures(): TransferFigures {
    return this.statistics.snapshot(this.session, this.options.windowFeet, this.session === undefined ? null : this.started);
  }

  async run(): Promise<ReceiveSummary> {
    const done = new Promise<ReceiveSummary>((resolve, reject) => (this.settle = { resolve, reject }));
    this.listening = await this.listen();
    log.info(`listening on port ${this.listening.port}`);
    this.io.onListening?.(this.listening.port);
    onInterrupt(this.io.signal, (reason) => this.interrupt(reason));
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

  /** Acts on admission's decision on a hello: refuses it, or starts or replaces the session it joins. */
  private admit(connection: RxConnection, hello: AnyHello): HelloAnswer {
    const decision = decideAdmission(
      hello,
      connection.remoteAddress,
      this.policy,
      {
        session: this.session,
        activity: () => this.activity(this.session!),
        retired: this.retired,
        failure: this.outcome?.error?.message,
        nowMs: this.clock.now(),
      },
      this.outputBytes,
    );
    if (decision.kind === "refuse") {
      const abandoned = this.session;
      const error = decision.failSession;
      // After the refusal is on its way: failing settles the receiver, which closes connections.
      if (error !== undefined && abandoned !== undefined) queueMicrotask(() => abandoned.fail(error, false));
      return { refuse: decision.reply };
    }
    if (decision.kind === "start") {
      if (decision.retire !== undefined && this.session !== undefined) this.retire(this.session, decision.retire);
      this.session = this.startSession(hello, connection.remoteAddress);
    }
    const session = this.session!;
    log.debug(`connection ${connection.id} (tx ${hello.connectionId}) from ${connection.remoteAddress} joined`);
    this.statistics.joined(connection);
    // Deferred: the connection joins the session (and can carry an abort) once this returns.
    if (this.io.onJoined !== undefined) queueMicrotask(this.io.onJoined);
    return { join: session, welcome: welcome(hello, session, session.hasVerdict) };
  }

  private startSession(hello: AnyHello, from: string): Session {
    const created: Session = new Session(
      hello.sessionId,
      hello.footBytes,
      this.options.windowFeet,
      this.openOutput(hello, from),
      {
        // The stream arrived whole; a command that then failed fails the receiver too.
        onComplete: (verdict) => this.session === created && this.end(verdict === undefined ? undefined : consumerFailure(verdict)),
        onFail: (error) => this.session === created && this.end(error),
      },
      this.clock,
    );
    this.started = this.clock.now();
    this.aloneSince = this.started;
    this.feetOnClosed = 0;
    log.info(`session ${hello.sessionId.toString(16)} from ${from}: foot size ${hello.footBytes}`);
    return created;
  }

  /** What the takeover rule needs to know about the open session. */
  private activity(session: Session): SessionActivity {
    let feetReceived = this.feetOnClosed;
    for (const connection of this.connections) if (connection.joinedTo === session) feetReceived += connection.carried.feet;
    return { startedMs: this.started, joined: session.connectionCount, aloneSinceMs: this.aloneSince, feetReceived, outputBytes: this.outputBytes };
  }

  /**
   * Gives up a session that wrote nothing, for a newcomer: its connections
   * (a squatter's, or a stale transmitter's) are told and closed, and its
   * transmitter, should it come back, is refused "session over".
   */
  private retire(session: Session, why: string): void {
    log.warn(`gave up session ${session.sessionId.toString(16)}, which wrote nothing: ${why}`);
    this.retired.push(session.sessionId);
    if (this.retired.length > MAX_RETIRED_SESSIONS) this.retired.shift();
    this.session = undefined; // first: its failure below is not the receiver's
    session.fail(new VmError("peerLost", `the receiver gave this transfer up: ${why}`));
    for (const connection of [...this.connections]) if (connection.joinedTo === session) connection.close();
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
    if (this.session !== undefined && connection.joinedTo === this.session) {
      this.feetOnClosed += connection.carried.feet;
      if (this.session.connectionCount === 0) this.aloneSince = this.clock.now();
    }
    this.maybeSettle();
  }

  // ---- 4. the end --------------------------------------------------------------------

  private end(error?: VmError): void {
    this.outcome = error === undefined ? {} : { error };
    if (error === undefined || this.session?.isComplete) log.info(`stream complete: ${this.session?.bytesWritten} bytes`);
    // Whatever happens, do not wait longer than LINGER_MS for the transmitter to hang up.
    this.clock.after(LINGER_MS, "linger for the transmitter to hang up", () => this.settleNow(), { background: true });
    this.maybeSettle();
  }

  private maybeSettle(): void {
    if (this.outcome !== undefined && (this.session?.connectionCount ?? 0) === 0) this.settleNow();
  }

  private settleNow(): void {
    const outcome = this.outcome;
    if (outcome === undefined) return;
    for (const line of this.warnings.flush()) log.warn(line);
    // A refused connection is already closing, after its refusal (which a close now could cut off).
    for (const connection of this.connections) if (connection.handshakeStage !== "refused") connection.close();
    if (outcome.error !== undefined) this.settle.reject(outcome.error);
    else this.settle.resolve({ bytes: this.session?.bytesWritten ?? 0n, seconds: (this.clock.now() - this.started) / 1000 });
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
    this.session?.requestMissing(timeoutMs / 2);
    for (const line of this.warnings.due()) log.warn(line);
    this.checkPatience();
  }

  // ---- 5. patience --------------------------------------------------------------------

  private checkPatience(): void {
    const session = this.session;
    if (session === undefined || !session.isOpen || session.connectionCount > 0 || this.options.patienceS === 0) return;
    if ((this.clock.now() - this.aloneSince) / 1000 < this.options.patienceS) return;
    session.fail(new VmError("peerLost", `the transmitter vanished: no connection for ${this.options.patienceS}s`), false);
  }

  private interrupt(reason: string): void {
    const error = new VmError("interrupted", `interrupted by ${reason}`);
    // A command still finishing its (whole) input is stopped too: the user asked us to stop.
    if (this.session?.isOpen || this.session?.isFinishing) this.session.fail(error);
    else {
      this.outcome = { error };
      this.settleNow();
    }
  }
}

/** Which pending connection goes first when too many are in their handshake (see evictPending). */
const EVICTION_ORDER = { refused: 0, silent: 1, "partial hello": 2, "whole hello": 3 } as const;
