/**
 * Where connections go and how much of the window each link may carry, when
 * the user named several links (`tx A P tx B P ...`, or a host with several
 * addresses). Pure policy: numbers in, numbers out; the transmitter applies it.
 *
 * Connections (the `threads` budget):
 * - every link keeps one connection of its own, its anchor: on a dead link the
 *   anchor is the background retry, so a link that comes back is noticed;
 * - the other connections float: they go to the live links in proportion to
 *   what each link delivered lately (its rate), so a link that moves more data
 *   gets more connections; before any rate is known they are spread evenly,
 *   and a link still carrying its first feet counts as the links whose rates
 *   are known do on average: a long path's first foot takes a second or more
 *   (10 and 150 ms links, 100 Mbit/s each: judged by its rate of 0 then, the
 *   150 ms link gave up one of its two connections for good; kept, 256 MiB
 *   went at 20.6 MiB/s, not 20.3, with bbr, and 21.2, not 20.6, with cubic,
 *   medians of 7 and 4 interleaved runs);
 * - floating connections never wait on a dead link: while one is live, they
 *   go there.
 *
 * Feet (the receiver's window): each link may carry unacknowledged feet in
 * proportion to its rate (and at least MIN_LINK_FEET, so an idle link can show
 * what it can do). A slow link then holds only the feet it can deliver in the
 * time the fast ones deliver theirs, and never hoards the window.
 */

/** What placement needs to know about one link. */
export interface LinkView {
  /** Not known to be dead: dialable, or carrying traffic. */
  live: boolean;
  /** Bytes per second the link delivered lately; 0 when unknown or unused. */
  rate: number;
  /** Feet the link has delivered so far. */
  feetDelivered: number;
  /** Its first feet are on their way, none arrived: `rate` is not known yet (Link.provingAt). */
  proving: boolean;
}

/** Unacknowledged feet a live link may always carry. */
export const MIN_LINK_FEET = 2;
/**
 * The part of the window the links share out by rate; the rest is slack. A
 * foot on a link waits behind that link's other feet; if the shares added up
 * to the whole window, the receiver's output would wait on the slowest link's
 * queue exactly as long as the fast links take to fill the window, and any
 * jitter would idle them. Half leaves room and still keeps every link busy.
 */
export const RATE_SHARED_WINDOW = 0.5;

/** At least one connection per link, whatever `threads` says. */
export function connectionBudget(threads: number, linkCount: number): number {
  return Math.max(threads, linkCount);
}

/** Links floating connections may go to: the live ones, or all of them when none is known live. */
function candidates(links: readonly LinkView[]): boolean[] {
  const anyLive = links.some((link) => link.live);
  return links.map((link) => link.live || !anyLive);
}

/**
 * Connections each link should have (fractional: the ideal), summing to
 * `budget`: one anchor each, the floating rest by rate among live links.
 */
export function desiredConnections(links: readonly LinkView[], budget: number): number[] {
  const eligible = candidates(links);
  const floating = Math.max(0, budget - links.length);
  const known = links.filter((link, i) => eligible[i] && !link.proving);
  const meanKnownRate = known.length === 0 ? 0 : known.reduce((sum, link) => sum + link.rate, 0) / known.length;
  const rates = links.map((link, i) => (!eligible[i] ? 0 : link.proving ? meanKnownRate : link.rate));
  const totalRate = rates.reduce((sum, rate) => sum + rate, 0);
  const eligibleCount = eligible.filter(Boolean).length;
  return links.map((_, i) => {
    if (!eligible[i]) return 1;
    const share = totalRate > 0 ? rates[i]! / totalRate : 1 / eligibleCount;
    return 1 + floating * share;
  });
}

/**
 * The link a floating connection should dial: the live link furthest below
 * its desired count (`assigned` counts the other connections), the most
 * preferred one on a tie.
 */
export function chooseLink(links: readonly LinkView[], desired: readonly number[], assigned: readonly number[]): number {
  const eligible = candidates(links);
  let best = -1;
  let bestDeficit = -Infinity;
  for (let i = 0; i < links.length; i++) {
    if (!eligible[i]) continue;
    const deficit = (desired[i] ?? 0) - (assigned[i] ?? 0);
    if (deficit > bestDeficit + 1e-9) {
      best = i;
      bestDeficit = deficit;
    }
  }
  return best;
}

/**
 * One floating connection to move, if the placement is off by enough to be
 * worth the churn: from the link with the most surplus (at least a whole
 * connection) to the one with the biggest deficit (at least half of one).
 */
export function rebalanceMove(
  links: readonly LinkView[],
  desired: readonly number[],
  assigned: readonly number[],
): { from: number; to: number } | undefined {
  const eligible = candidates(links);
  let from = -1;
  let surplus = 0;
  let to = -1;
  let deficit = 0;
  for (let i = 0; i < links.length; i++) {
    const difference = (assigned[i] ?? 0) - (desired[i] ?? 0);
    // A link with connections beyond its anchor and more than it should have.
    if ((assigned[i] ?? 0) > 1 && difference >= 1 - 1e-9 && difference > surplus) {
      from = i;
      surplus = difference;
    }
    if (eligible[i] && -difference >= 0.5 && -difference > deficit) {
      to = i;
      deficit = -difference;
    }
  }
  return from >= 0 && to >= 0 && from !== to ? { from, to } : undefined;
}

/**
 * Unacknowledged feet each link may carry out of a window of `windowFeet`:
 * in proportion to its rate (out of RATE_SHARED_WINDOW of the window), at
 * least MIN_LINK_FEET. With no rate known yet
 * nothing limits a link beyond its connections.
 *
 * With several links, a link also starts small and earns its share: it may
 * carry MIN_LINK_FEET plus one per foot it has delivered (doubling per round
 * trip, as TCP's slow start). Otherwise the first, preferred link would take
 * the first feet of the window before anyone knows how slow it is, and the
 * receiver's output would wait on it while the faster links sat idle.
 */
export function linkFootCaps(links: readonly LinkView[], windowFeet: number): number[] {
  if (links.length < 2) return links.map(() => windowFeet);
  const totalRate = links.reduce((sum, link) => sum + (link.live ? link.rate : 0), 0);
  const byRate = links.map((link) =>
    totalRate <= 0 ? windowFeet : Math.max(MIN_LINK_FEET, Math.ceil((RATE_SHARED_WINDOW * windowFeet * (link.live ? link.rate : 0)) / totalRate)),
  );
  return byRate.map((cap, i) => Math.min(cap, MIN_LINK_FEET + (links[i]?.feetDelivered ?? 0)));
}
