/**
 * Channels over real TCP with Bun.connect / Bun.listen.
 *
 * Bun's socket.write is unbuffered (returns what the kernel took), which is
 * exactly the Channel contract. We never use socket.end(): it can drop bytes
 * already accepted (see BUN-NOTES.md); shutdown() half-closes instead.
 */
import type { Socket } from "bun";
import dns from "node:dns";
import net from "node:net";
import { formatAddress } from "./address.ts";
import type { Channel, ChannelHandlers, Listening, Network } from "./channel.ts";

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
  return {
    localAddress: formatAddress(plainAddress(socket.localAddress ?? ""), socket.localPort ?? 0),
    write: (bytes) => Math.max(0, socket.write(bytes)),
    shutdown: () => socket.shutdown(),
    destroy: () => socket.terminate(),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    remoteAddress: remote,
  };
}

function closeOnce(socket: Socket<SocketState>, error?: Error): void {
  const state = socket.data;
  if (state === undefined || state.closed) return;
  state.closed = true;
  state.handlers?.onClose(error);
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

export const bunNetwork: Network = {
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
          },
          connectError() {
            // The promise rejects with the same error; reported there.
            state.closed = true;
          },
        },
      });
      return wrap(socket, formatAddress(host, port));
    } catch (error) {
      const code = (error as { code?: string }).code;
      const reason = code ?? (error as Error).message;
      throw new Error(`cannot connect to ${formatAddress(host, port)}: ${reason}`);
    }
  },

  async resolve(host) {
    if (net.isIP(host) !== 0) return [host];
    const found = await dns.promises.lookup(host, { all: true, order: "verbatim" });
    return found.map((entry) => entry.address);
  },

  async listen(bind, port, accept) {
    const hostname = bind ?? "::";
    const server = Bun.listen<SocketState>({
      hostname,
      port,
      exclusive: true,
      socket: {
        ...events,
        open(socket) {
          socket.setNoDelay(true);
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
