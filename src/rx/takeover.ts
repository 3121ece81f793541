/**
 * The takeover rule: what a hello of another session meets while the
 * receiver holds an open one. Pure: the receiver hands in what it knows about
 * its session and the time; nothing here reads a clock or does I/O.
 *
 * A session is *abandoned* when
 *  - none of its connections has been up for `timeout` seconds (its
 *    transmitter was killed, or its path is down), or
 *  - it has received no foot `timeout` seconds after it began (a hello with
 *    no transfer behind it: a squatter, or a transmitter that died in its
 *    handshake; a silent joined connection is declared dead after `timeout`
 *    anyway, one that answers heartbeats is caught here).
 *
 * The newcomer then meets:
 *  - `busy` while the session is not abandoned: a live transfer is never
 *    displaced (the transmitter waits a while, then exits 11);
 *  - `yield` when it is abandoned and none of its bytes reached stdout: it is
 *    dropped and the newcomer starts afresh; the old transmitter, should it
 *    come back, is refused "session over";
 *  - `end` when it is abandoned after bytes reached stdout: another stream
 *    appended to a partial one would be corrupt output, so the newcomer is
 *    refused "session over" and the receiver fails (exit 10) at once instead
 *    of waiting out `patience` for a transmitter that is most likely gone.
 */

/** What the receiver knows about its open session. */
export interface SessionActivity {
  /** When the session began (its first hello was admitted). */
  startedMs: number;
  /** Its connections up now. */
  joined: number;
  /** When its last connection went away; read only when `joined` is 0. */
  aloneSinceMs: number;
  /** Feet received on any of its connections, ever. */
  feetReceived: number;
  /** Bytes of it handed to stdout. */
  outputBytes: bigint;
}

export type TakeoverVerdict =
  /** Refuse the newcomer busy; `abandonedInMs`: when the session will count as abandoned if nothing changes (undefined: not while it lives). */
  | { kind: "busy"; why: string; abandonedInMs: number | undefined }
  /** Drop the old session and admit the newcomer. */
  | { kind: "yield"; why: string }
  /** Refuse the newcomer "session over" and fail the old session: its output is partial. */
  | { kind: "end"; why: string };

/** How the open session stands against a hello of another session at `nowMs`. */
export function judgeNewcomer(session: SessionActivity, nowMs: number, timeoutMs: number): TakeoverVerdict {
  const alone = session.joined === 0 ? nowMs - session.aloneSinceMs : undefined;
  const footless = session.feetReceived === 0 ? nowMs - session.startedMs : undefined;
  const abandoned =
    alone !== undefined && alone >= timeoutMs
      ? `no connection for ${seconds(alone)}`
      : footless !== undefined && footless >= timeoutMs
        ? `no foot in the ${seconds(footless)} since its hello`
        : undefined;
  if (abandoned === undefined) {
    const left = [alone, footless].filter((ms) => ms !== undefined).map((ms) => timeoutMs - ms);
    const abandonedInMs = left.length === 0 ? undefined : Math.max(0, Math.min(...left));
    const why =
      alone !== undefined
        ? `it has had no connection for ${seconds(alone)}`
        : footless !== undefined
          ? `it has sent no data in ${seconds(footless)}`
          : "it is running";
    return { kind: "busy", why, abandonedInMs };
  }
  if (session.outputBytes === 0n) return { kind: "yield", why: abandoned };
  return { kind: "end", why: abandoned };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
