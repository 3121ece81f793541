/**
 * Links: the receiver's addresses, in the user's order of preference. Each
 * `tx HOST PORT` clause gives one link per address HOST resolves to (in
 * resolver order); an address named twice is one link, at its first place;
 * a name that does not exist gives none. A Link holds its health and its
 * figures; which connections run over it is the pool's (pool.ts) to say.
 */
import { VmError } from "../errors.ts";
import { formatAddress } from "../net/address.ts";
import type { TxTarget } from "../options.ts";
import type { LinkFigures, LinkState } from "../status/figures.ts";
import { RateMeter } from "../status/rate-meter.ts";

/** Weight of a new sample in a link's foot round-trip average. */
const ROUND_TRIP_WEIGHT = 0.125;
/**
 * A link's first foot is given this many of its round trips to arrive
 * before the link is judged by its rate. A new connection's TCP starts with
 * 10 segments and doubles them each round trip: a 2 MiB foot is out after 8
 * round trips, and its acknowledgement takes one more (150 ms, 100 Mbit/s,
 * bbr: the first foot was acknowledged 1.29 s, 8.6 round trips, after it
 * left).
 */
export const PROVING_ROUND_TRIPS = 12;

export class Link {
  readonly address: string;
  /** "bad" after a failed dial or a connection declared dead; "good" once it works again. */
  private health: "unknown" | "good" | "bad" = "unknown";
  readonly delivered = new RateMeter();
  private sentBytes = 0;
  private sentFeet = 0;
  private firstSentMs: number | undefined;
  private deliveredFeet = 0;
  private roundTrip: number | undefined;
  private quickestRoundTrip: number | undefined;

  constructor(
    /** 0 is the most preferred. */
    readonly index: number,
    readonly host: string,
    readonly port: number,
  ) {
    this.address = formatAddress(host, port);
  }

  /** Its state, given how many connections are up on it. */
  stateWith(connections: number): LinkState {
    if (connections > 0) return "up";
    return this.health === "bad" ? "down" : "connecting";
  }

  /** Not known to be dead: floating connections may go here. */
  get live(): boolean {
    return this.health !== "bad";
  }

  /** A dial failed or a connection was declared dead; returns true if the link was not already down. */
  markFailed(): boolean {
    const wasBad = this.health === "bad";
    this.health = "bad";
    return !wasBad;
  }

  /** A connection came up or a foot got through; returns true if the link had been down. */
  markWorking(): boolean {
    const wasBad = this.health === "bad";
    this.health = "good";
    return wasBad;
  }

  noteSent(bytes: number, nowMs: number): void {
    this.sentBytes += bytes;
    this.sentFeet++;
    this.firstSentMs ??= nowMs;
  }

  /**
   * Its first feet are on their way and none has arrived yet, for less than
   * PROVING_ROUND_TRIPS of its round trip: its rate is not known yet, which
   * is not a rate of 0 (a long path's first foot takes a second or more).
   */
  provingAt(nowMs: number): boolean {
    if (!this.live || this.deliveredFeet > 0 || this.firstSentMs === undefined) return false;
    return nowMs - this.firstSentMs < PROVING_ROUND_TRIPS * (this.quickestRoundTrip ?? 0);
  }

  /** The receiver acknowledged a foot this link carried, `roundTripMs` after it went out. */
  noteDelivered(bytes: number, roundTripMs: number | undefined): boolean {
    this.delivered.add(bytes);
    this.deliveredFeet++;
    if (roundTripMs !== undefined) {
      this.roundTrip = this.roundTrip === undefined ? roundTripMs : this.roundTrip + ROUND_TRIP_WEIGHT * (roundTripMs - this.roundTrip);
    }
    return this.markWorking();
  }

  get feetDelivered(): number {
    return this.deliveredFeet;
  }

  /**
   * A connection's handshake took `handshakeMs` over `roundTrips` round
   * trips (the TCP connect, then hello and its answer, and a key proof).
   * The quickest is the path's round trip: later ones queue behind feet at
   * the bottleneck, and a foot's own round trip includes sending 2 MiB.
   */
  noteHandshake(handshakeMs: number, roundTrips: number): void {
    const sample = handshakeMs / roundTrips;
    this.quickestRoundTrip = Math.min(this.quickestRoundTrip ?? Infinity, sample);
  }

  /** The path's round trip (the quickest handshake's), once a connection came up. */
  get pathRoundTripMs(): number | undefined {
    return this.quickestRoundTrip;
  }

  /** Smoothed time from sending a foot on this link to its acknowledgement. */
  get footRoundTripMs(): number | undefined {
    return this.roundTrip;
  }

  /** Its figures, given how many connections are up on it. */
  figures(connections: number): LinkFigures {
    return {
      link: this.index + 1,
      address: this.address,
      state: this.stateWith(connections),
      connections,
      bytesSent: this.sentBytes,
      feetSent: this.sentFeet,
      bytesDelivered: this.delivered.totalBytes,
      feetDelivered: this.deliveredFeet,
      bytesPerSecond: Math.round(this.delivered.bytesPerSecond),
    };
  }
}

/** Addresses a host name stands for, in resolver order; a literal address is itself. */
export type Resolver = (host: string) => Promise<string[]>;

/**
 * Whether a resolver failure is the resolver's definitive answer that the name
 * has no address: NXDOMAIN, or a name with no A/AAAA record. Bun's
 * `dns.lookup` and `Bun.connect` report both as ENOTFOUND; a resolver that
 * cannot be reached, times out or answers SERVFAIL gives EAI_AGAIN (measured
 * with a stub DNS server, Bun 1.4.5), which may pass and is retried.
 */
export function isNoSuchHost(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "ENOTFOUND";
}

export interface ResolvedLinks {
  /** In preference order. */
  links: Link[];
  /** Names the resolver said do not exist, in the user's order; they give no link. */
  unknownHosts: string[];
}

/**
 * The links for the user's targets, in preference order. A name the resolver
 * says does not exist (isNoSuchHost) gives no link; when that leaves none, the
 * transfer cannot start (VmError "unreachable", naming the names). A name that
 * fails to resolve for another reason stays one link under its name: dialling
 * it resolves again and says why it fails, and it is retried like any dead
 * link.
 */
export async function resolveLinks(targets: readonly TxTarget[], resolve?: Resolver): Promise<ResolvedLinks> {
  const links: Link[] = [];
  const unknownHosts: string[] = [];
  const seen = new Set<string>();
  for (const target of targets) {
    let hosts = [target.host];
    if (resolve !== undefined) {
      try {
        const addresses = await resolve(target.host);
        if (addresses.length > 0) hosts = addresses;
      } catch (error) {
        if (isNoSuchHost(error)) {
          if (!unknownHosts.includes(target.host)) unknownHosts.push(target.host);
          continue;
        }
        // Keep the name: the dial says why it fails.
      }
    }
    for (const host of hosts) {
      const key = formatAddress(host, target.port);
      if (seen.has(key)) continue;
      seen.add(key);
      links.push(new Link(links.length, host, target.port));
    }
  }
  if (links.length === 0) {
    const names = unknownHosts.join(", ");
    throw new VmError("unreachable", `cannot resolve ${names}: no such host (ENOTFOUND); check the name, or give an IP address`);
  }
  return { links, unknownHosts };
}
