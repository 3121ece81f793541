/**
 * How an Invocation runs its roles: one of them, both at once (a full-duplex
 * pipe), or both around a TCP tunnel.
 *
 *  1. One role: rx writes stdout, or tx reads stdin, until its session ends.
 *  2. Both (`rx PORT tx HOST PORT`): stdin → tx and rx → stdout run side by
 *     side in this process. The run ends when both directions are done; the
 *     first failure stops the other direction (its peer is told) and is
 *     the run's outcome.
 *  3. A tunnel replaces stdin and stdout with one local TCP connection:
 *     `terminate PORT` accepts it on loopback before tx starts (the far end
 *     only hears of the pipe once there is a connection to carry);
 *     `initiate HOST PORT` connects to the service once the far end's tx
 *     has said hello to our rx (the pipe is up), then starts tx from it. When rx's
 *     stream ends the connection is half-closed; when both directions are
 *     done it is closed. One tunnel carries one connection.
 *
 * The inputs and outputs are decorated here for the toolbox keywords: prbs
 * replaces stdin and checks rx's output; leglimit, delayus and ratelimit
 * pace tx's input (src/tx/input.ts).
 *
 * `serve` (a receiver alone) runs many transfers, each into the output a
 * factory gives it (a command per session), and stops on `drain` (SIGTERM)
 * once its running transfers are done.
 *
 * `exec` replaces stdin (tx: the producer's output, src/tx/producer.ts) or
 * stdout (rx: a consumer per session, src/rx/consumer.ts). Its command must
 * be found before anything listens or dials; tx stops its producer when the
 * transfer ends any other way than by the producer's own end.
 *
 * Before anything listens or dials, the real roles refuse a stdin or stdout
 * that the invocation uses and that was closed when the process started
 * (`<&-`, `>&-`): Bun hands us /dev/null for it, which would lose the stream
 * silently (src/stdio-pipes.ts).
 */
import { asVmError, VmError } from "../errors.ts";
import { checkCommand, Command } from "../exec.ts";
import { log } from "../log.ts";
import { DEFAULT_FOOT_BYTES, type Invocation, type ReceiverOptions, type TransmitterOptions, type TunnelOptions } from "../options.ts";
import { closedAtStart, growPipe } from "../stdio-pipes.ts";
import { commandOutput } from "../rx/consumer.ts";
import { sinkOutput, type OutputFactory } from "../rx/output.ts";
import { prbsCheckSink } from "../rx/prbs-check.ts";
import { receive } from "../rx/receiver.ts";
import { stdoutSink, type ByteSink } from "../rx/stdout.ts";
import { transmitterInput } from "../tx/input.ts";
import { producerSource } from "../tx/producer.ts";
import { stdinSource, type ByteSource } from "../tx/stdin.ts";
import { transmit } from "../tx/transmitter.ts";
import { connectTunnel, listenForTunnel, type TunnelSocket } from "../tunnel/socket.ts";
import type { FiguresSource } from "../status/figures.ts";

/** What a role reads or writes instead of stdin/stdout, and who hears of rx's connections. */
export interface TransmitEnds {
  source?: ByteSource;
}
export interface ReceiveEnds {
  sink?: ByteSink;
  /** Each session's output instead of `sink` (serve needs one: a command per session). */
  output?: OutputFactory;
  /** Serving: aborted on SIGTERM, which stops new transfers and lets the running ones finish. */
  drain?: AbortSignal;
  /** Called once a connection from the far end's tx has joined rx's session (initiate's "the pipe is up"). */
  onPeerJoined?: () => void;
}

/** The two roles; each resolves once its session is complete. Tests pass stand-ins. */
export interface Roles {
  transmit(options: TransmitterOptions, signal: AbortSignal, ends?: TransmitEnds): Promise<unknown>;
  receive(options: ReceiverOptions, signal: AbortSignal, ends?: ReceiveEnds): Promise<unknown>;
  /** Throws (VmError) if the process's own stdin or stdout, where the invocation uses it, cannot carry the stream; runs before either role starts. */
  checkStdio?(invocation: Invocation): void;
}

/** Which of the process's stdin and stdout an invocation reads or writes: a tunnel neither, tx with prbs or exec not stdin, rx with exec not stdout. */
export function stdioUsed(invocation: Invocation): { stdin: boolean; stdout: boolean } {
  const tunnelled = invocation.tunnel !== undefined;
  const { transmit, receive } = invocation;
  return {
    stdin: transmit !== undefined && !tunnelled && transmit.prbsSeed === undefined && transmit.exec === undefined,
    // Serving, every transfer goes to its own command.
    stdout: receive !== undefined && !tunnelled && receive.exec === undefined && receive.serve !== true,
  };
}

/**
 * The rules `serve` and `sessions` make with the rest of the command line:
 * serving is a receiver alone, whose transfers each go to a command of
 * their own (not one stdout, not one prbs check).
 */
export function checkServe(invocation: Invocation): void {
  const rx = invocation.receive;
  if (rx === undefined) return;
  if (rx.sessions !== undefined && rx.serve !== true) throw new VmError("usage", `sessions ${rx.sessions} applies to serve: add 'serve', or drop sessions`);
  if (rx.serve !== true) return;
  if (invocation.transmit !== undefined) throw new VmError("usage", "serve runs a receiver alone: drop 'tx HOST PORT' (full duplex) or serve");
  if (rx.prbsSeed !== undefined) throw new VmError("usage", "prbs checks one stream on stdout and serve runs many: drop prbs or serve");
}

/** The commands of `exec` must exist before the transfer starts. */
function checkCommands(invocation: Invocation): void {
  if (invocation.transmit?.exec !== undefined) checkCommand(invocation.transmit.exec, "tx");
  if (invocation.receive?.exec !== undefined) checkCommand(invocation.receive.exec, "rx");
}

/** tx with exec: the producer's output is the stream; the producer is stopped if the transfer ends before it does. */
async function transmitFromCommand(argv: readonly string[], run: (source: ByteSource) => Promise<unknown>): Promise<unknown> {
  const producer = new Command(argv, { stdin: "inherit", stdout: "pipe" });
  try {
    return await run(producerSource(producer));
  } finally {
    await producer.stop();
  }
}

/** Refuses a stdin or stdout that the invocation uses and that `closed` says was closed at start. */
export function refuseClosedStdio(invocation: Invocation, closed: (fd: number) => boolean = closedAtStart): void {
  const used = stdioUsed(invocation);
  if (used.stdout && closed(1)) {
    throw new VmError("outputClosed", "stdout is closed (>&-), so the stream would go nowhere: redirect it to a file, a pipe or /dev/null");
  }
  if (used.stdin && closed(0)) {
    throw new VmError("input", "stdin is closed (<&-), so there is no stream to send: redirect it from a file, a pipe or /dev/null, or use prbs");
  }
}

/** The abort reason a direction sees when the other one failed (followed by that failure, in parentheses). */
export const OTHER_DIRECTION_FAILED = "a failure in the other direction";

/** Hears each role's figures source as it starts (the status board). */
export type Observe = (role: "tx" | "rx", figures: FiguresSource) => void;

/** fd 0, its pipe (if it is one) grown for throughput. */
function stdinPipe(): ByteSource {
  growPipe(0);
  return stdinSource();
}

/** fd 1, its pipe (if it is one) grown for throughput. */
function stdoutPipe(): ByteSink {
  growPipe(1);
  return stdoutSink();
}

/** The real roles, with the toolbox keywords applied to their input and output; `output`: where rx's sessions go instead of stdout. */
export function realRoles(announce: (text: string) => void, observe?: Observe, output?: OutputFactory): Roles {
  return {
    checkStdio: (invocation) => {
      refuseClosedStdio(invocation);
      checkCommands(invocation);
    },
    transmit: (options, signal, ends) => {
      const run = (base: ByteSource) =>
        transmit(options, {
          signal,
          source: transmitterInput(options, base),
          ...(observe === undefined ? {} : { observe: (figures) => observe("tx", figures) }),
        });
      return options.exec === undefined || ends?.source !== undefined ? run(ends?.source ?? stdinPipe()) : transmitFromCommand(options.exec, run);
    },
    receive: (options, signal, ends) => {
      const onPeerJoined = ends?.onPeerJoined;
      const exec = options.exec;
      // A test's (or a caller's) outputs; else a command per session (exec); else one plain sink.
      let outputs: OutputFactory | undefined = ends?.output ?? output;
      if (outputs === undefined && exec !== undefined && ends?.sink === undefined) outputs = (session) => commandOutput(exec, session);
      if (outputs === undefined) {
        // Several streams cannot share one stdout.
        if (options.serve === true) throw new VmError("usage", "serve runs each transfer into its own command: add 'exec COMMAND...' (stdout cannot take several streams)");
        const plain = sinkOutput(ends?.sink ?? stdoutPipe());
        outputs = () => plain;
      }
      const chosen = outputs;
      const seed = options.prbsSeed;
      return receive(options, {
        signal,
        output: seed === undefined ? chosen : (session) => {
          const inner = chosen(session);
          return { ...inner, sink: prbsCheckSink(seed, DEFAULT_FOOT_BYTES, inner.sink) };
        },
        ...(ends?.drain === undefined ? {} : { drain: ends.drain }),
        ...(onPeerJoined === undefined ? {} : { onJoined: onPeerJoined }),
        ...(observe === undefined ? {} : { observe: (figures) => observe("rx", figures) }),
        // With port 0 the user cannot know the port unless we say it.
        onListening: (port) => options.port === 0 && announce(`listening on port ${port}`),
      });
    },
  };
}

/**
 * Runs what the invocation asks for; resolves when it is done, rejects with
 * the failure. `drain`: a serving receiver's SIGTERM (see ReceiveEnds).
 */
export async function runInvocation(invocation: Invocation, roles: Roles, interrupt: AbortSignal, announce: (text: string) => void, drain?: AbortSignal): Promise<void> {
  const { receive: rx, transmit: tx, tunnel } = invocation;
  checkServe(invocation);
  roles.checkStdio?.(invocation);
  for (const warning of invocation.warnings ?? []) log.warn(warning);
  if (rx !== undefined && tx !== undefined) {
    await (tunnel === undefined ? duplex(rx, tx, roles, interrupt) : tunnelled(rx, tx, tunnel, roles, interrupt, announce));
  } else if (rx !== undefined) {
    await roles.receive(rx, interrupt, drain === undefined ? undefined : { drain });
  } else if (tx !== undefined) {
    await roles.transmit(tx, interrupt);
  }
}

/**
 * Runs the directions side by side under one stop signal (the user's
 * interrupt, or the first failure), waits for all of them, and rejects with
 * the first failure.
 */
async function bothDirections(interrupt: AbortSignal, directions: ((stop: AbortSignal) => Promise<unknown>)[]): Promise<void> {
  const stop = new AbortController();
  const onInterrupt = (): void => stop.abort(interrupt.reason);
  if (interrupt.aborted) onInterrupt();
  else interrupt.addEventListener("abort", onInterrupt, { once: true });
  let first: { error: unknown } | undefined;
  try {
    await Promise.all(
      directions.map((direction) =>
        direction(stop.signal).catch((error: unknown) => {
          first ??= { error };
          // The reason travels on to the stopped direction's peer, so the far end can say what went wrong here.
          if (!stop.signal.aborted) stop.abort(`${OTHER_DIRECTION_FAILED} (${asVmError(error).message})`);
        }),
      ),
    );
  } finally {
    interrupt.removeEventListener("abort", onInterrupt);
  }
  if (first !== undefined) throw first.error;
}

/** 2. stdin → tx, rx → stdout. */
function duplex(rx: ReceiverOptions, tx: TransmitterOptions, roles: Roles, interrupt: AbortSignal): Promise<void> {
  return bothDirections(interrupt, [(stop) => roles.receive(rx, stop), (stop) => roles.transmit(tx, stop)]);
}

/** Resolves when `promise` does, or rejects as interrupted once `signal` aborts. */
function unlessStopped<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(interrupted(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(interrupted(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function interrupted(signal: AbortSignal): VmError {
  return new VmError("interrupted", `interrupted by ${String(signal.reason ?? "signal")}`);
}

/** 3. The local connection ↔ the pipe. */
async function tunnelled(
  rx: ReceiverOptions,
  tx: TransmitterOptions,
  tunnel: TunnelOptions,
  roles: Roles,
  interrupt: AbortSignal,
  announce: (text: string) => void,
): Promise<void> {
  let pipeUp!: () => void;
  const firstConnection = new Promise<void>((resolve) => (pipeUp = resolve));
  let closeMouth = (): void => {};
  let ready: Promise<TunnelSocket>;
  if (tunnel.kind === "terminate") {
    const mouth = listenForTunnel(tunnel.port);
    closeMouth = () => mouth.close();
    if (tunnel.port === 0) announce(`terminate listening on port ${mouth.port}`);
    ready = mouth.accepted;
  } else {
    ready = firstConnection.then(() => connectTunnel(tunnel.host, tunnel.port));
  }
  // The connection, once there is one (a failure is handled where `ready` is awaited).
  const opened: { socket?: TunnelSocket } = {};
  ready.then(
    (socket) => (opened.socket = socket),
    () => {},
  );

  // rx's output waits for the connection (it cannot come before: the far end's tx starts after ours).
  const sink: ByteSink = { write: async (bytes) => (await ready).sink.write(bytes) };
  try {
    await bothDirections(interrupt, [
      async (stop) => {
        await roles.receive(rx, stop, tunnel.kind === "initiate" ? { sink, onPeerJoined: () => pipeUp() } : { sink });
        log.debug(`${tunnel.kind}: the stream from the far end is complete; half-closing the local connection`);
        (await unlessStopped(ready, stop)).finish();
      },
      async (stop) => {
        const local = await unlessStopped(ready, stop);
        closeMouth();
        await roles.transmit(tx, stop, { source: local.source });
        log.debug(`${tunnel.kind}: the local connection's stream is delivered`);
      },
    ]);
    (await ready).close();
  } catch (error) {
    opened.socket?.destroy();
    throw error;
  } finally {
    closeMouth();
  }
}
