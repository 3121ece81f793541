/**
 * One end of a TCP tunnel: the local TCP connection a tunnel carries, seen
 * by the pipe as a ByteSource (its bytes go to tx) and a ByteSink (rx's
 * output goes into it).
 *
 *  1. Bytes from the socket queue up until tx reads them; above
 *     QUEUE_HIGH_BYTES the socket is paused (backpressure to the local app),
 *     below QUEUE_LOW_BYTES it resumes.
 *  2. The local app's FIN (or a reset) is end of input: tx sends
 *     end-of-stream and the far end half-closes its connection in turn.
 *  3. Writes are awaited until the kernel took every byte (partial writes
 *     continue on drain). `finish()` then half-closes with shutdown(), never
 *     end(): Bun's end() can drop bytes already accepted (lost in 3 of 3
 *     tries of 64 MB to a slow peer, Bun 1.4.5).
 *  4. The socket is half-open aware (allowHalfOpen): the app may stop sending
 *     and still receive everything, as `nc -N` or an HTTP/1.0 client does.
 *     Bun reports the app's FIN as `end`, or as `close` once we have shut
 *     down our side; both end the input.
 *  5. If the local app goes away while the far end still sends, what arrives
 *     for it is discarded (with one warning): nobody is left to read it, and
 *     the tunnel still ends cleanly when the far side finishes.
 */
import type { Socket, TCPSocketListener } from "bun";
import { VmError } from "../errors.ts";
import { log } from "../log.ts";
import { formatAddress } from "../net/address.ts";
import type { ByteSink } from "../rx/stdout.ts";
import type { ByteSource } from "../tx/stdin.ts";

/** Pause the local socket when this much of its input waits for tx... */
const QUEUE_HIGH_BYTES = 4 << 20;
/** ...and resume it below this. */
const QUEUE_LOW_BYTES = 1 << 20;

export class TunnelSocket {
  private readonly queue: Uint8Array[] = [];
  private queuedBytes = 0;
  /** The head chunk's bytes already read. */
  private headOffset = 0;
  private paused = false;
  private inputEnded = false;
  private wakeReader: (() => void) | undefined;
  /** Bytes the kernel has not taken yet, and who waits for them. */
  private unsent: Uint8Array | undefined;
  private wakeWriter: (() => void) | undefined;
  private gone = false;
  private warnedGone = false;
  private shut = false;

  constructor(
    private readonly socket: Socket<TunnelSocket | undefined>,
    /** For messages: "tunnel connection from 127.0.0.1:5555". */
    readonly description: string,
  ) {
    socket.setNoDelay(true);
  }

  // ---- events (from the socket handlers) -----------------------------------------

  onData(chunk: Uint8Array): void {
    this.queue.push(chunk); // Bun hands over a fresh buffer per chunk: no copy needed
    this.queuedBytes += chunk.length;
    if (this.queuedBytes >= QUEUE_HIGH_BYTES && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    this.wakeReader?.();
  }

  onEnd(): void {
    this.inputEnded = true;
    this.wakeReader?.();
  }

  onDrain(): void {
    this.flush();
  }

  onClose(error?: Error): void {
    if (error !== undefined && !this.inputEnded) log.warn(`${this.description}: ${error.message}; taking it as the end of its input`);
    this.inputEnded = true;
    this.gone = true;
    this.wakeReader?.();
    if (this.unsent !== undefined) this.discard();
  }

  // ---- 1, 2: the local app's bytes, for tx -------------------------------------------

  readonly source: ByteSource = {
    read: async (into) => {
      while (this.queuedBytes === 0 && !this.inputEnded) {
        await new Promise<void>((resolve) => (this.wakeReader = resolve));
        this.wakeReader = undefined;
      }
      let n = 0;
      while (n < into.length && this.queue.length > 0) {
        const head = this.queue[0]!;
        const take = Math.min(into.length - n, head.length - this.headOffset);
        into.set(head.subarray(this.headOffset, this.headOffset + take), n);
        n += take;
        this.headOffset += take;
        if (this.headOffset === head.length) {
          this.queue.shift();
          this.headOffset = 0;
        }
      }
      this.queuedBytes -= n;
      if (this.paused && this.queuedBytes < QUEUE_LOW_BYTES) {
        this.paused = false;
        this.socket.resume();
      }
      return n;
    },
  };

  // ---- 3, 5: rx's output, for the local app ------------------------------------------

  readonly sink: ByteSink = {
    write: async (bytes) => {
      if (this.shut) throw new VmError("internal", `${this.description}: written after it was finished`);
      if (this.gone) return this.discard();
      this.unsent = bytes;
      this.flush();
      while (this.unsent !== undefined) {
        await new Promise<void>((resolve) => (this.wakeWriter = resolve));
        this.wakeWriter = undefined;
      }
    },
  };

  /** Writes what the kernel will take now; wakes the writer once all is taken (or dropped). */
  private flush(): void {
    const bytes = this.unsent;
    if (bytes === undefined) return;
    const taken = Math.max(0, this.socket.write(bytes));
    this.unsent = taken < bytes.length ? bytes.subarray(taken) : undefined;
    if (this.unsent === undefined) this.wakeWriter?.();
  }

  private discard(): void {
    if (!this.warnedGone) {
      this.warnedGone = true;
      log.warn(`${this.description} closed; discarding what still arrives for it`);
    }
    this.unsent = undefined;
    this.wakeWriter?.();
  }

  /** rx's stream is over: half-close, so the local app reads end of input after every byte. */
  finish(): void {
    if (this.shut) return;
    this.shut = true;
    if (!this.gone) this.socket.shutdown();
  }

  /** Both directions are over (input ended, output finished): release the socket. */
  close(): void {
    this.finish();
    this.socket.end();
  }

  /** A failure: drop the connection at once. */
  destroy(): void {
    this.gone = true;
    this.socket.terminate();
  }
}

/** Socket handlers that route events to the TunnelSocket in socket.data. */
const handlers = {
  data: (socket: Socket<TunnelSocket | undefined>, chunk: Uint8Array) => socket.data?.onData(chunk),
  end: (socket: Socket<TunnelSocket | undefined>) => socket.data?.onEnd(),
  drain: (socket: Socket<TunnelSocket | undefined>) => socket.data?.onDrain(),
  close: (socket: Socket<TunnelSocket | undefined>, error?: Error) => socket.data?.onClose(error),
  error: (socket: Socket<TunnelSocket | undefined>, error: Error) => socket.data?.onClose(error),
};

/** Loopback addresses `terminate` listens on: the tunnel's mouth is for this host only. */
const LOOPBACK = ["127.0.0.1", "::1"] as const;

export interface TunnelMouth {
  /** The port bound (useful with port 0). */
  readonly port: number;
  /** Resolves with the first connection; the mouth then stops listening. */
  readonly accepted: Promise<TunnelSocket>;
  /** Stops listening (an accepted connection is not affected). */
  close(): void;
}

/**
 * `terminate PORT`: listens on loopback (127.0.0.1, and ::1 where the host
 * has it) for the one connection the tunnel carries. Later connections are
 * refused: the listeners close once one is accepted.
 */
export function listenForTunnel(port: number): TunnelMouth {
  let accept!: (socket: TunnelSocket) => void;
  const accepted = new Promise<TunnelSocket>((resolve) => (accept = resolve));
  const servers: TCPSocketListener<TunnelSocket | undefined>[] = [];
  let taken = false;
  const close = (): void => {
    for (const server of servers.splice(0)) server.stop(false);
  };
  const listenOn = (hostname: string, onPort: number): TCPSocketListener<TunnelSocket | undefined> =>
    Bun.listen<TunnelSocket | undefined>({
      hostname,
      port: onPort,
      exclusive: true,
      allowHalfOpen: true,
      socket: {
        ...handlers,
        open(socket) {
          if (taken) {
            socket.terminate();
            return;
          }
          taken = true;
          close();
          const tunnel = new TunnelSocket(socket, `tunnel connection from ${formatAddress(socket.remoteAddress, socket.remotePort)}`);
          socket.data = tunnel;
          accept(tunnel);
        },
      },
    });
  let first;
  try {
    first = listenOn(LOOPBACK[0], port);
  } catch (error) {
    const code = (error as { code?: string }).code ?? (error as Error).message;
    const reason = code === "EADDRINUSE" ? "the port is in use" : code === "EACCES" ? "permission denied (ports below 1024 need root)" : code;
    throw new VmError("listen", `terminate cannot listen on port ${port}: ${reason}; pick another 'terminate PORT'`);
  }
  servers.push(first);
  try {
    servers.push(listenOn(LOOPBACK[1], first.port));
  } catch {
    // No IPv6 loopback here (or its port is taken): 127.0.0.1 serves alone.
  }
  return { port: first.port, accepted, close };
}

/** `initiate HOST PORT`: connects to the service the tunnel carries. */
export async function connectTunnel(host: string, port: number): Promise<TunnelSocket> {
  const where = formatAddress(host, port);
  let tunnel: TunnelSocket | undefined;
  try {
    await Bun.connect<TunnelSocket | undefined>({
      hostname: host,
      port,
      allowHalfOpen: true,
      data: undefined,
      socket: {
        ...handlers,
        open(socket) {
          tunnel = new TunnelSocket(socket, `tunnel connection to ${where}`);
          socket.data = tunnel;
        },
        connectError() {},
      },
    });
  } catch (error) {
    const reason = (error as { code?: string }).code ?? (error as Error).message;
    throw new VmError("unreachable", `initiate cannot connect to ${where}: ${reason}; start the service or fix 'initiate HOST PORT'`);
  }
  if (tunnel === undefined) throw new VmError("internal", `initiate: connected to ${where} without an open event`);
  return tunnel;
}
