/**
 * Channels over real TCP with Bun.connect / Bun.listen.
 *
 * Bun's socket.write is unbuffered (returns what the kernel took), which is
 * exactly the Channel contract. We never use socket.end(): it can drop bytes
 * already accepted when the peer is slow; shutdown() half-closes instead.
 *
 * Out of file descriptors, Bun misleads twice: a dial whose socket() fails
 * with EMFILE is reported as ECONNREFUSED, and a listener whose accept() fails
 * retries at once, for ever. Dial failures are checked against the descriptors
 * left (the message says EMFILE and what to do), and an accepted connection
 * that leaves too few is closed at once, so accept() always has one.
 *
 * `tcpNetwork({ congestion })` gives each connection, once open, the TCP
 * congestion control the user chose (src/net/congestion.ts); `bunNetwork`
 * leaves the kernel's choice alone.
 */
import type { Socket } from "bun";
import { closeSync, openSync, readFileSync } from "node:fs";
import { log } from "../log.ts";
import { formatAddress, ipVersion } from "./address.ts";
import { checkCongestion, congestionRefusal, getCongestion, setCongestion } from "./congestion.ts";
import type { Channel, ChannelHandlers, Listening, Network } from "./channel.ts";
import { socketDescriptor } from "./socket-calls.ts";
import { tcpFigures } from "./tcp-info.ts";

/** Per-socket state: the handlers, and whether onClose already fired. */
interface SocketState {
  handlers: ChannelHandlers | undefined;
  closed: boolean;
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) → `10.0.0.1`. */
function plainAddress(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

function wrap(socket: Socket<SocketState>, remote: string): Channel {
  const fd = socketDescriptor(socket);
  // Set once the connection is open (applySettings, or a route's congctl), before it is wrapped.
  const congestion = fd === undefined ? undefined : getCongestion(fd);
  return {
    localAddress: formatAddress(plainAddress(socket.localAddress ?? ""), socket.localPort ?? 0),
    write: (bytes) => Math.max(0, socket.write(bytes)),
    shutdown: () => socket.shutdown(),
    destroy: () => socket.terminate(),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    remoteAddress: remote,
    // Not once closed: the descriptor may already belong to another connection.
    tcpFigures: () => (fd === undefined || socket.data?.closed !== false ? undefined : tcpFigures(fd, congestion)),
  };
}

function closeOnce(socket: Socket<SocketState>, error?: Error): void {
  const state = socket.data;
  if (state === undefined || state.closed) return;
  state.closed = true;
  state.handlers?.onClose(error);
}

/** What the process lacks when it has no file descriptor left, and what to do about it. */
export const OUT_OF_DESCRIPTORS_HINT = "too many open files: raise 'ulimit -n' or use fewer threads";

/**
 * Descriptors an accepted connection must leave free: for dials (a full-duplex
 * pipe's tx), files (stats) and the listener's next accept. When accept()
 * itself fails with EMFILE, Bun retries it at once, for ever: one core at 100%.
 */
const SPARE_DESCRIPTORS = 4;

/** This process's limit on open files (`ulimit -n`), read once; Infinity where it cannot be read. */
let fileLimit: number | undefined;
function openFileLimit(): number {
  if (fileLimit === undefined) {
    try {
      const soft = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"))?.[1];
      fileLimit = soft === undefined ? Infinity : Number(soft);
    } catch {
      fileLimit = Infinity;
    }
  }
  return fileLimit;
}

/**
 * The error code of a descriptor shortage (EMFILE for this process, ENFILE for
 * the system) if a file cannot be opened now, or if fewer than `spare` more
 * could be (the kernel hands out the lowest free descriptor, so one at or
 * above the limit minus `spare` means the ones below it are taken). One
 * open and close, about a microsecond.
 */
function descriptorShortage(spare = 0): "EMFILE" | "ENFILE" | undefined {
  let fd: number;
  try {
    fd = openSync("/dev/null", "r");
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return code === "EMFILE" || code === "ENFILE" ? code : undefined;
  }
  closeSync(fd);
  return fd + spare >= openFileLimit() ? "EMFILE" : undefined;
}

/**
 * Why a dial failed, for a one-line message. Bun reports a connect that could
 * not even create its socket as ECONNREFUSED (errno -111; strace shows
 * socket() failing with EMFILE, Bun 1.4.5), so a refusal is checked against
 * the descriptors we have left before it is believed.
 */
function dialFailureReason(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (code === "ECONNREFUSED" || code === "EMFILE" || code === "ENFILE") {
    const shortage = descriptorShortage();
    if (shortage !== undefined) return `${shortage} (${OUT_OF_DESCRIPTORS_HINT})`;
  }
  return typeof code === "string" ? code : (error as Error).message;
}

/** Socket event handlers shared by dialled and accepted sockets. */
const events = {
  data(socket: Socket<SocketState>, data: Uint8Array) {
    socket.data?.handlers?.onData(data);
  },
  drain(socket: Socket<SocketState>) {
    socket.data?.handlers?.onDrain();
  },
  // The peer finished sending: for our protocol the connection is over.
  end(socket: Socket<SocketState>) {
    closeOnce(socket);
    socket.terminate();
  },
  error(socket: Socket<SocketState>, error: Error) {
    closeOnce(socket, error);
  },
  close(socket: Socket<SocketState>, error?: Error) {
    closeOnce(socket, error);
  },
};

/** How our TCP connections are set up, beyond the kernel's defaults. */
export interface TcpSettings {
  /** `congestion ALG`: the congestion control for every connection (Linux). */
  congestion?: string;
}

/** Whether the one warning about a refused congestion control was given. */
let congestionWarned = false;

/**
 * Gives an open connection the chosen congestion control. A refusal now
 * (a route that says `congctl lock ALG`) leaves the connection as the
 * kernel made it, with one warning per process: the data still flows.
 */
function applySettings(socket: Socket<SocketState>, settings: TcpSettings): void {
  const alg = settings.congestion;
  if (alg === undefined) return;
  const fd = socketDescriptor(socket);
  const errno = fd === undefined ? -1 : setCongestion(fd, alg);
  if (errno !== 0 && !congestionWarned) {
    congestionWarned = true;
    const why = errno < 0 ? `congestion '${alg}': this Bun does not expose the socket's descriptor` : congestionRefusal(alg, errno);
    log.warn(`${why}; connections keep the kernel's choice`);
  }
}

/** TCP with `settings`; throws VmError("usage") at once if the kernel will not give us what they ask. */
export function tcpNetwork(settings: TcpSettings): Network {
  if (settings.congestion === undefined) return bunNetwork;
  checkCongestion(settings.congestion);
  return makeNetwork(settings);
}

/** TCP as the kernel sets it up. */
export const bunNetwork: Network = makeNetwork({});

function makeNetwork(settings: TcpSettings): Network {
  return {
    async dial(host, port, handlers) {
      const state: SocketState = { handlers, closed: false };
      try {
        const socket = await Bun.connect<SocketState>({
          hostname: host,
          port,
          data: state,
          socket: {
            ...events,
            open(socket) {
              socket.setNoDelay(true);
              applySettings(socket, settings);
            },
            connectError() {
              // The promise rejects with the same error; reported there.
              state.closed = true;
            },
          },
        });
        return wrap(socket, formatAddress(host, port));
      } catch (error) {
        throw new Error(`cannot connect to ${formatAddress(host, port)}: ${dialFailureReason(error)}`);
      }
    },

    async resolve(host) {
      if (ipVersion(host) !== 0) return [host];
      // Loaded only for a name: node:dns adds about 10 ms to every start.
      const dns = await import("node:dns");
      const found = await dns.promises.lookup(host, { all: true, order: "verbatim" });
      return found.map((entry) => entry.address);
    },

    async listen(bind, port, accept) {
      const hostname = bind ?? "::";
      let turnedAway = 0;
      const server = Bun.listen<SocketState>({
        hostname,
        port,
        exclusive: true,
        socket: {
          ...events,
          open(socket) {
            // Closed at once while descriptors are short, so the next accept() has one.
            const shortage = descriptorShortage(SPARE_DESCRIPTORS);
            if (shortage !== undefined) {
              socket.data = { handlers: undefined, closed: true };
              socket.terminate();
              if (turnedAway++ === 0) {
                log.warn(`turning connections away: ${shortage} (too many open files: raise 'ulimit -n' here, or use fewer threads on tx)`);
              }
              return;
            }
            socket.setNoDelay(true);
            applySettings(socket, settings);
            const channel = wrap(socket, formatAddress(plainAddress(socket.remoteAddress), socket.remotePort));
            socket.data = { handlers: undefined, closed: false };
            socket.data.handlers = accept(channel);
          },
        },
      });
      const listening: Listening = {
        port: server.port,
        close: () => server.stop(true),
      };
      return listening;
    },
  };
}
