/**
 * The receiver: listen → admit connections → one session → stdout.
 *
 *  1. Listen on the port (every address unless `bind` says otherwise).
 *  2. Each connection says hello; the first acceptable hello creates the
 *     session, later ones join it; anything else is refused with a reason
 *     and the receiver keeps serving.
 *  3. The session writes the stream and confirms it (see session.ts).
 *  4. After the confirmation (or a failure), linger until the transmitter
 *     has closed its connections, so the last frames are not lost.
 *  5. A session left with no connection for `patience` seconds fails.
 */
import { onInterrupt, VmError } from "../errors.ts";
import { log } from "../log.ts";
import { bunNetwork } from "../net/bun-network.ts";
import type { Listening, Network } from "../net/channel.ts";
import { MAX_THREADS, type ReceiverOptions } from "../options.ts";
import { wireText } from "../protocol/messages.ts";
import {
  CAP_COMPRESS,
  CAP_ENCRYPT,
  CAP_KEY,
  HelloStatus,
  RefuseReason,
  VM_PROTOCOL_VERSION,
  type Hello,
} from "../protocol/xdr.generated.ts";
import { Chaos } from "../net/chaos.ts";
import type { TransferFigures } from "../status/figures.ts";
import { RxConnection, type Admission } from "./connection.ts";
import { ReceiverFigures } from "./figures.ts";
import { Session } from "./session.ts";
import { stdoutSink, type ByteSink } from "./stdout.ts";

/** After the end, how long to wait for the transmitter to close its side. */
export const LINGER_MS = 5_000;
/**
 * Connections still in their handshake at once, at most (see evictPending).
 * Twice what one transmitter may open: `threads 64` (or `threads auto`
 * growing to it) dials them all at once, and at 32 the receiver dropped half
 * of a real transmitter's connections before their hellos were read.
 */
export const MAX_PENDING_CONNECTIONS = 2 * MAX_THREADS;
/** How often the watchdog looks at connections, the output and patience. */
const TICK_MS = 250;

export interface ReceiverIo {
  network: Network;
  sink: ByteSink;
  /** Told the bound port once listening (port 0 picks a free one). */
  onListening?: (port: number) => void;
  /** Aborting it interrupts the transfer (SIGINT/SIGTERM). */
  signal?: AbortSignal;
  /** Hears, once listening, how to read the receiver's figures at any moment (status output). */
  observe?: (figures: () => TransferFigures) => void;
  /** Called each time a connection is admitted to the session (initiate's "the pipe is up"). */
  onJoined?: () => void;
}

export interface ReceiveSummary {
  bytes: bigint;
  seconds: number;
}

/** Receives one session and writes it to the sink; resolves once it is confirmed. */
export async function receive(options: ReceiverOptions, io?: Partial<ReceiverIo>): Promise<ReceiveSummary> {
  const receiver = new Receiver(options, { network: bunNetwork, sink: io?.sink ?? stdoutSink(), ...io });
  io?.observe?.(() => receiver.figures());
  return receiver.run();
}

class Receiver {
  private listening: Listening | undefined;
  private session: Session | undefined;
  private readonly connections = new Set<RxConnection>();
  private readonly checkphrase: Uint8Array;
  private nextConnectionId = 1;
  private started = 0;
  private outcome: { error?: VmError } | undefined;
  private aloneSince = 0;
  private ticker: ReturnType<typeof setInterval> | undefined;
  private readonly chaos: Chaos;
  private readonly statistics = new ReceiverFigures();
  private lastTickMs = performance.now();
  private settle!: { resolve: (s: ReceiveSummary) => void; reject: (e: VmError) => void };

  constructor(
    private readonly options: ReceiverOptions,
    private readonly io: ReceiverIo,
  ) {
    this.checkphrase = new TextEncoder().encode(options.checkphrase);
    this.chaos = new Chaos(options.chaosEvery);
  }

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
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    try {
      return await done;
    } finally {
      clearInterval(this.ticker);
      this.listening.close();
    }
  }

  private async listen(): Promise<Listening> {
    const accept = (channel: Parameters<Parameters<Network["listen"]>[2]>[0]) => {
      const connection = new RxConnection(
        this.nextConnectionId++,
        channel,
        (c, hello) => this.admit(c, hello),
        (c) => this.gone(c),
        this.chaos,
        this.options.key,
      );
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

  private admit(connection: RxConnection, hello: Hello): Admission {
    const refuse = (reason: RefuseReason, text: string): Admission => ({
      reply: {
        status: HelloStatus.HELLO_REFUSE,
        refused: { reason, receiverVersion: VM_PROTOCOL_VERSION, text: wireText(text) },
      },
    });
    if (!sameBytes(hello.checkphrase, this.checkphrase)) {
      return refuse(RefuseReason.REFUSE_CHECKPHRASE, "checkphrase mismatch");
    }
    const encrypted = (hello.capabilities & CAP_ENCRYPT) !== 0;
    if (encrypted && (hello.capabilities & CAP_KEY) === 0) return refuse(RefuseReason.REFUSE_CAPABILITY, "encrypt needs a key on both ends");
    if (this.options.encrypt && !encrypted) {
      return refuse(RefuseReason.REFUSE_CAPABILITY, "this receiver requires encrypt; add 'encrypt' on the transmitter");
    }
    let session = this.session;
    if (session === undefined) {
      session = new Session(hello.sessionId, hello.footBytes, this.options.windowFeet, this.io.sink, {
        onComplete: () => this.end(),
        onFail: (error) => this.end(error),
      });
      this.session = session;
      this.started = performance.now();
      log.info(`session ${hello.sessionId.toString(16)} from ${connection.remoteAddress}: foot size ${hello.footBytes}`);
    } else if (session.sessionId !== hello.sessionId) {
      return session.isOpen
        ? refuse(RefuseReason.REFUSE_SESSION_BUSY, "this receiver is busy with another transfer")
        : refuse(RefuseReason.REFUSE_SESSION_OVER, "it has finished another transfer");
    }
    if (!session.isOpen && !session.isComplete) {
      // A straggler of our own transfer may hear of the failure here before the abort reaches its siblings.
      return refuse(RefuseReason.REFUSE_SESSION_OVER, `the transfer failed there: ${this.outcome?.error?.message ?? "reason unknown"}`);
    }
    if (hello.footBytes !== session.footBytes) {
      return refuse(RefuseReason.REFUSE_FOOT_SIZE, `foot size ${hello.footBytes} differs from the session's ${session.footBytes}`);
    }
    if (session.linkCount >= MAX_THREADS) {
      return refuse(RefuseReason.REFUSE_TOO_MANY_CONNECTIONS, `at most ${MAX_THREADS} connections per transfer`);
    }
    log.debug(`connection ${connection.id} (tx ${hello.connectionId}) from ${connection.remoteAddress} joined`);
    this.statistics.joined(connection);
    // Deferred: the connection joins the session (and can carry an abort) once this returns.
    if (this.io.onJoined !== undefined) queueMicrotask(this.io.onJoined);
    return {
      reply: {
        status: HelloStatus.HELLO_ACCEPT,
        accepted: {
          receiverNonce: session.nonce,
          deliveredBelow: session.deliveredBelow,
          windowEnd: session.windowEnd,
          capabilities: hello.capabilities & (CAP_KEY | CAP_ENCRYPT | CAP_COMPRESS),
        },
      },
      session,
    };
  }

  /**
   * At most MAX_PENDING_CONNECTIONS connections may be mid-handshake: a new
   * one pushes out the oldest. Silent or slow connections (a slowloris, a
   * port scan) therefore cannot lock a real transmitter out, which says
   * hello at once; each also meets the hello deadline.
   */
  private evictPending(): void {
    let pending = 0;
    let oldest: RxConnection | undefined;
    for (const connection of this.connections) {
      if (connection.isJoined) continue;
      pending++;
      oldest ??= connection;
    }
    if (pending < MAX_PENDING_CONNECTIONS || oldest === undefined) return;
    log.warn(`${pending} connections have not finished their handshake; dropping the oldest, from ${oldest.remoteAddress}`);
    oldest.close();
  }

  private gone(connection: RxConnection): void {
    this.connections.delete(connection);
    this.statistics.gone(connection);
    if (this.session !== undefined && this.session.linkCount === 0) this.aloneSince = performance.now();
    this.maybeSettle();
  }

  // ---- 4. the end --------------------------------------------------------------------

  private end(error?: VmError): void {
    this.outcome = error === undefined ? {} : { error };
    if (error === undefined) log.info(`stream complete: ${this.session?.bytesWritten} bytes`);
    // Whatever happens, do not wait longer than LINGER_MS for the transmitter to hang up.
    setTimeout(() => this.settleNow(), LINGER_MS).unref?.();
    this.maybeSettle();
  }

  private maybeSettle(): void {
    if (this.outcome !== undefined && (this.session?.linkCount ?? 0) === 0) this.settleNow();
  }

  private settleNow(): void {
    const outcome = this.outcome;
    if (outcome === undefined) return;
    for (const connection of this.connections) connection.close();
    if (outcome.error !== undefined) this.settle.reject(outcome.error);
    else this.settle.resolve({ bytes: this.session?.bytesWritten ?? 0n, seconds: (performance.now() - this.started) / 1000 });
  }

  /** Every TICK_MS: heartbeats and stalls, the missing foot, patience. */
  private tick(): void {
    const timeoutMs = this.options.timeoutS * 1000;
    const now = performance.now();
    this.statistics.tick(now - this.lastTickMs);
    this.lastTickMs = now;
    for (const connection of [...this.connections]) {
      if (!connection.isJoined) continue;
      const stall = connection.watch(timeoutMs);
      if (stall !== undefined) connection.kill(new Error(`declared dead: ${stall}`));
    }
    this.session?.requestMissing(timeoutMs / 2);
    this.checkPatience();
  }

  // ---- 5. patience --------------------------------------------------------------------

  private checkPatience(): void {
    const session = this.session;
    if (session === undefined || !session.isOpen || session.linkCount > 0 || this.options.patienceS === 0) return;
    if ((performance.now() - this.aloneSince) / 1000 < this.options.patienceS) return;
    session.fail(new VmError("peerLost", `the transmitter vanished: no connection for ${this.options.patienceS}s`), false);
  }

  private interrupt(reason: string): void {
    const error = new VmError("interrupted", `interrupted by ${reason}`);
    if (this.session?.isOpen) this.session.fail(error);
    else {
      this.outcome = { error };
      this.settleNow();
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
