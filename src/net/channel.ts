/**
 * The transport contract: a Channel is one byte-stream connection. Real TCP
 * (bun-network.ts) and the in-memory pair used by pipeline tests both
 * implement it, so the same transfer code runs over either.
 */

import type { TcpFigures } from "./tcp-info.ts";

/** One connection as the framing layer sees it. */
export interface Channel {
  /** Offers bytes; returns how many were taken now. The rest waits for `onDrain`. */
  write(bytes: Uint8Array): number;
  /** Half-close: we send nothing more; the peer's bytes still arrive. */
  shutdown(): void;
  /** Closes at once; unsent bytes are dropped. */
  destroy(): void;
  /** Stops delivering `onData` until `resume`. */
  pause(): void;
  resume(): void;
  /** "host:port" of the other end, for messages. */
  readonly remoteAddress: string;
  /** "host:port" of our end, when the transport knows it (status output). */
  readonly localAddress?: string;
  /**
   * The kernel's figures for the connection (bytes the peer acknowledged,
   * round trips), where the transport can tell (Linux TCP: tcp-info.ts);
   * `threads auto` measures by them.
   */
  tcpFigures?(): TcpFigures | undefined;
}

/** What a Channel reports. `onClose` fires exactly once, last. */
export interface ChannelHandlers {
  onData(bytes: Uint8Array): void;
  onDrain(): void;
  onClose(error?: Error): void;
}

/** A listening socket. */
export interface Listening {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  close(): void;
}

/** The way out to the network: dialling for tx, listening for rx. */
export interface Network {
  /** Connects; resolves once the connection is open, rejects with a one-line reason. */
  dial(host: string, port: number, handlers: ChannelHandlers): Promise<Channel>;
  /**
   * The addresses a host name stands for, in resolver order (a literal address
   * is itself). Optional: without it, names are dialled as they are.
   */
  resolve?(host: string): Promise<string[]>;
  /** Listens; `accept` is called for each new connection and returns its handlers. */
  listen(
    bind: string | undefined,
    port: number,
    accept: (channel: Channel) => ChannelHandlers,
  ): Promise<Listening>;
}
