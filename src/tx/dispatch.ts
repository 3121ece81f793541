/**
 * Dispatch: which foot goes out on which connection.
 *
 *  1. `pump` hands each waiting foot (the scheduler's: re-sends first) to the
 *     most preferred link under its share of the window (placement.ts) that
 *     has an idle connection with room; on that link, to the connection
 *     carrying the fewest unacknowledged feet. Once the input has ended,
 *     only to a connection that would finish it among the first
 *     (last-feet.ts): the stream is done when its last foot arrives.
 *  2. A straggler (the foot the receiver's output waits on, unacknowledged
 *     for a few round trips, fewer when nothing else can go out) is copied to
 *     an idle connection, preferably on another link (`hedgeStraggler`); when
 *     nothing else can go out, at once to one that would deliver a copy
 *     sooner than the carrier delivers the rest (`fasterCarrier`).
 *  3. Once the input has ended, end-of-stream goes out on every connection.
 *
 * `pump` is called on every event that may let a foot out (a foot read, a
 * connection idle or up, credit, a retransmit request, a tick); a call made
 * while it runs makes it go round once more.
 *
 * State it owns: the re-entrancy latch, end-of-stream once known, the count
 * of re-sent feet and the chaos counter. Feet are the scheduler's; which
 * connections exist is the pool's (`routes`).
 */
import type { ChaosFault } from "../net/chaos.ts";
import { Chaos } from "../net/chaos.ts";
import { log } from "../log.ts";
import type { ControlFrame } from "../protocol/messages.ts";
import { FOOT_FLAG_RETRANSMIT, FrameKind, type EndOfStream } from "../protocol/xdr.generated.ts";
import type { Delivery } from "./delivery-rate.ts";
import { fasterCopy, takesLastFoot, type Carrier } from "./last-feet.ts";
import type { Link } from "./links.ts";
import { linkFootCaps, type LinkView } from "./placement.ts";
import type { OutboundFoot, SendScheduler } from "./scheduler.ts";

/** A straggler is copied after this many foot round trips (and never sooner than HEDGE_MIN_MS). */
const HEDGE_ROUND_TRIPS = 4;
/**
 * ...or after this many when it is on a new connection (none of its feet
 * acknowledged yet) and a warm one is idle. A warm connection delivers a foot
 * in about one foot round trip; a new one's first foot waits on TCP slow start,
 * and one that joins a saturated bottleneck loses its first flights and waits
 * on retransmission timeouts (measured on a 100 ms, 300 Mbit/s path after
 * `threads auto` went from 8 to 16: five new connections held one foot each
 * for over 3 s, the receiver's window filled behind them, and goodput fell
 * from 30 to 2–4 MiB/s). The receiver's output waits with that foot.
 */
const COLD_HEDGE_ROUND_TRIPS = 2;
/**
 * ...or after this many when the transfer is stalled on it: every foot is
 * out and the window is full (or the input has ended), so until it arrives
 * no other connection has anything to carry and a copy costs nothing that
 * would have moved. On lossy long paths a connection in a retransmission
 * timeout holds its foot for seconds while the others sit idle (200 ms,
 * 0.1 % loss, cubic: goodput read 14–15 MiB/s with 16–30 connections and
 * 5 MiB/s in the measurements between, where a foot's average round trip
 * was seconds and four of them before a copy left the window stalled).
 */
const STALLED_HEDGE_ROUND_TRIPS = 1.5;
const HEDGE_MIN_MS = 50;
/**
 * Unacknowledged feet per connection: its share of its link's, at least one
 * and at most MAX_BYTES_PER_CONNECTION of them (4 feet of 2 MiB). In bytes,
 * not feet: with 512 KiB feet a cap of 4 feet held each connection to 2 MiB
 * unacknowledged, a foot's acknowledgement comes a queued round trip after it
 * left, and 4 connections moved 27 MiB/s where 2 MiB feet moved 31 (100 ms,
 * 300 Mbit/s, bbr, the same four connections held in both runs).
 */
const MIN_FEET_PER_CONNECTION = 1;
export const MAX_BYTES_PER_CONNECTION = 8 * 1024 * 1024;
/** Extra copies of one straggling foot, at most. */
const MAX_HEDGES_PER_FOOT = 2;

/** What dispatch needs of a connection (TxConnection is one). */
export interface FootCarrier {
  readonly id: number;
  /** Nothing queued: a foot handed over now goes straight out. */
  readonly isIdle: boolean;
  /** What its TCP delivered and still holds, where the transport can tell. */
  readonly delivery: Delivery | undefined;
  /** Bytes per second its TCP delivers while it has bytes to send, once measured. */
  readonly deliveryRate: number | undefined;
  /** Its TCP delivered something over the last tick while it had bytes to send; undefined where unknown. */
  readonly moving: boolean | undefined;
  /** A queue stands on its path (its link is full); undefined where the transport cannot tell. */
  readonly queueStands: boolean | undefined;
  sendFoot(foot: OutboundFoot, flags: number, onWritten: () => void): void;
  sendControl(frame: ControlFrame): void;
  chaos(fault: ChaosFault): void;
}

/** A live connection as dispatch sees it (the pool's ConnectionRecord is one). */
export interface Route {
  readonly connection: FootCarrier;
  readonly link: Link;
  /** Takes no new feet. */
  readonly draining: boolean;
  endSent: boolean;
  /** Feet acknowledged whose latest copy it carried: 0 while it is new (in TCP slow start). */
  readonly feetDelivered: number;
}

export interface DispatchSettings {
  timeoutS: number;
  /** `chaos N`: a rehearsed fault every N feet sent (0: never). */
  chaosEvery: number;
  /** The stream's foot size: what each waiting foot adds to a connection's backlog. Read at each use: `foot auto` settles it once the first connection opens. */
  footBytes: number;
}

export class Dispatch {
  private pumping = false;
  private pumpAgain = false;
  private stopped = false;
  private end: EndOfStream | undefined;
  private readonly chaos: Chaos;
  /** Feet sent again (re-sends and hedged copies). */
  retransmits = 0;
  /** Their bytes. */
  copiedBytes = 0;

  constructor(
    private readonly scheduler: SendScheduler,
    private readonly links: readonly Link[],
    /** The live connections. */
    private readonly routes: () => Iterable<Route>,
    /** The links' figures for placement. */
    private readonly linkViews: () => LinkView[],
    /** A copy of `foot` was written (its memory may be reused once it is acknowledged too). */
    private readonly written: (foot: OutboundFoot) => void,
    private readonly settings: DispatchSettings,
  ) {
    this.chaos = new Chaos(settings.chaosEvery);
  }

  /** The input has ended: end-of-stream goes out on every connection from now on. */
  endOfStream(end: EndOfStream): void {
    this.end = end;
    this.pump();
  }

  stop(): void {
    this.stopped = true;
  }

  pump(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        const window = Number(this.scheduler.windowEnd - this.scheduler.deliveredBelow);
        const byLink = this.routesByLink();
        const caps = linkFootCaps(this.linkViews(), window);
        for (;;) {
          const route = this.routeForNextFoot(byLink, caps, this.lastFootTakers(byLink));
          if (route === undefined) break;
          const foot = this.scheduler.next(route.connection.id);
          if (foot === undefined) break;
          this.send(route, foot);
        }
        this.hedgeStraggler();
        this.sendEndIfDue();
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
  }

  private routesByLink(): Route[][] {
    const byLink: Route[][] = this.links.map(() => []);
    for (const route of this.routes()) byLink[route.link.index]?.push(route);
    return byLink;
  }

  /**
   * The connection the next foot goes to: on the most preferred link that is
   * under its share of the window (`caps`) and has an idle connection with
   * room; on that link, the connection carrying the fewest feet.
   *
   * A connection carries at most its share of its link's feet (at least one,
   * at most MAX_BYTES_PER_CONNECTION of them): a kernel
   * buffer can swallow many feet, and without the limit one connection would
   * carry most of the window and a reset would send it all again. With more
   * connections than half the window the share is one each: a floor of two
   * left half of them idle behind the others' second feet, which on a path
   * that limits each flow (`threads auto`'s case) halves the throughput.
   * Once the input has ended, only a connection `takes` lets through does.
   */
  private routeForNextFoot(byLink: readonly Route[][], caps: readonly number[], takes: ((route: Route) => boolean) | undefined): Route | undefined {
    const maxFeet = Math.max(MIN_FEET_PER_CONNECTION, Math.floor(MAX_BYTES_PER_CONNECTION / this.settings.footBytes));
    for (const link of this.links) {
      const routes = byLink[link.index] ?? [];
      if (routes.length === 0) continue;
      const cap = caps[link.index] ?? 0;
      const perConnection = Math.min(maxFeet, Math.max(MIN_FEET_PER_CONNECTION, Math.ceil(cap / routes.length)));
      let carriedOnLink = 0;
      let best: Route | undefined;
      let bestCarried = Infinity;
      for (const route of routes) {
        const carried = this.scheduler.carriedBy(route.connection.id);
        carriedOnLink += carried;
        if (route.draining || !route.connection.isIdle || carried >= perConnection) continue;
        if (takes !== undefined && !takes(route)) continue;
        if (carried < bestCarried) {
          best = route;
          bestCarried = carried;
        }
      }
      if (best !== undefined && carriedOnLink < cap) return best;
    }
    return undefined;
  }

  /**
   * Once the input has ended: which idle connections take one of the feet
   * still waiting, by when each connection would finish them (last-feet.ts).
   * Read afresh for every foot, since each one placed adds to a backlog. A
   * connection whose rate is not known yet is not judged, and takes feet.
   */
  private lastFootTakers(byLink: readonly Route[][]): ((route: Route) => boolean) | undefined {
    const waiting = this.scheduler.waitingCount;
    if (this.end === undefined || waiting === 0) return undefined;
    const carriers = new Map<Route, Carrier>();
    for (const route of byLink.flat()) {
      const carrier = route.draining ? undefined : carrierOf(route);
      if (carrier !== undefined) carriers.set(route, carrier);
    }
    return (route) => {
      const candidate = carriers.get(route);
      if (candidate === undefined) return true;
      const others = [...carriers].flatMap(([other, carrier]) => (other === route ? [] : [carrier]));
      return takesLastFoot(candidate, others, waiting, this.settings.footBytes);
    };
  }

  private send(route: Route, foot: OutboundFoot): void {
    const { connection, link } = route;
    connection.sendFoot(foot, foot.sends > 1 ? FOOT_FLAG_RETRANSMIT : 0, () => this.written(foot));
    if (foot.sends > 1) {
      this.retransmits++;
      this.copiedBytes += foot.payload.length;
    }
    link.noteSent(foot.payload.length, foot.lastSentMs);
    const fault = this.chaos.tick();
    if (fault !== undefined) {
      log.warn(`chaos: ${fault} on connection ${connection.id}`);
      connection.chaos(fault);
    }
  }

  /**
   * The receiver's output waits on one foot while a connection sits idle:
   * after a few round trips of the foot's link, send another copy, on another
   * link if one is idle. The first copy to arrive wins; the receiver drops the other.
   * A foot on a new connection is copied sooner, to a warm connection only.
   *
   * Never on the carrier's own link while a queue stands there and the
   * carrier's TCP is moving: the copy would share the full bottleneck with
   * its original, arrive no sooner, and hold back whatever is behind them.
   * On 50 ms, 300 Mbit/s, clean, cubic, 4 connections: 1–2 copies a run
   * near the end, 7.905 s for 256 MiB; with the rule none, 7.863 s (medians
   * of 4 interleaved runs). A carrier that delivers nothing (a
   * retransmission timeout) is copied as before, and so is one on a link
   * without a standing queue (random loss: cubic's flows are the limit
   * there, not the link): 200 ms clean and 100 ms 0.1 % and 50 ms 1 % cubic,
   * and two links with bbr, moved the same within noise.
   */
  private hedgeStraggler(): void {
    const routes = [...this.routes()];
    const oldest = this.scheduler.straggler(0);
    if (oldest === undefined || oldest.hedges >= MAX_HEDGES_PER_FOOT) return;
    const carrier = routes.find((route) => route.connection.id === oldest.connectionId);
    const roundTripMs = carrier?.link.footRoundTripMs ?? this.scheduler.footRoundTripMs;
    if (roundTripMs === undefined) return;
    const competes = carrier !== undefined && carrier.connection.moving === true && carrier.connection.queueStands === true;
    const idle = routes.filter((route) => route.connection.isIdle && route !== carrier && !route.draining && !(competes && route.link === carrier.link));
    const warm = idle.filter((route) => route.feetDelivered > 0);
    const cold = carrier !== undefined && carrier.feetDelivered === 0 && warm.length > 0;
    const stalled = this.scheduler.allSent && (this.end !== undefined || !this.scheduler.canRead());
    const roundTrips = cold ? COLD_HEDGE_ROUND_TRIPS : stalled ? STALLED_HEDGE_ROUND_TRIPS : HEDGE_ROUND_TRIPS;
    const delayMs = Math.min(Math.max(roundTrips * roundTripMs, HEDGE_MIN_MS), this.settings.timeoutS * 1000);
    const due = this.scheduler.straggler(delayMs);
    const candidates = cold ? warm : idle;
    const route =
      due !== undefined
        ? candidates.find((candidate) => candidate.link !== carrier?.link) ?? candidates.find((candidate) => candidate.feetDelivered > 0) ?? candidates[0]
        : stalled && carrier !== undefined
          ? this.fasterCarrier(carrier, candidates, oldest.payload.length)
          : undefined;
    const foot = due ?? oldest;
    if (route === undefined) return;
    log.debug(`foot ${foot.id} straggles on ${cold ? "new " : ""}connection ${foot.connectionId}; another copy on ${route.connection.id}`);
    this.scheduler.hedge(foot, route.connection.id);
    this.send(route, foot);
  }

  /**
   * While the transfer is stalled on a foot: the idle connection that would
   * deliver a whole copy of it sooner than its carrier delivers the rest
   * (last-feet.ts `fasterCopy`), by their TCP figures; none where they are
   * not known. No round trips of waiting first: with tens of connections on
   * a lossy path a foot's round trip is seconds (32 connections sharing
   * 34 MiB/s move a 2 MiB foot each in about 2 s), and 1.5 of them left the
   * window stalled behind a carrier in a retransmission timeout.
   */
  private fasterCarrier(carrier: Route, idle: readonly Route[], footBytes: number): Route | undefined {
    const holder = carrierOf(carrier);
    if (holder === undefined) return undefined;
    const known = idle.flatMap((route) => {
      const figures = carrierOf(route);
      return figures === undefined ? [] : [{ route, figures }];
    });
    const chosen = fasterCopy(holder, known.map((entry) => entry.figures), footBytes);
    return chosen === undefined ? undefined : known[chosen]!.route;
  }

  /**
   * End-of-stream goes out on every connection (the receiver takes repeats
   * as one), so one stalled connection cannot hold it back.
   */
  private sendEndIfDue(): void {
    if (this.end === undefined) return;
    for (const route of this.routes()) {
      if (route.endSent) continue;
      route.connection.sendControl({ kind: FrameKind.FRAME_END, end: this.end });
      route.endSent = true;
    }
  }
}

/** A connection's backlog and delivery rate from its TCP figures, once both are known. */
function carrierOf(route: Route): Carrier | undefined {
  const { delivery, deliveryRate } = route.connection;
  return delivery === undefined || deliveryRate === undefined ? undefined : { backlogBytes: delivery.backlogBytes, bytesPerSecond: deliveryRate };
}
