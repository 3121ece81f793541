/**
 * A connection flood for tests: `bun test/support/flooder.ts HOST PORT SECONDS HOLD [PARALLEL]`.
 *
 * For SECONDS, keeps PARALLEL (default 64) connection attempts in flight to
 * HOST:PORT as fast as they complete. Up to HOLD of the connections that open
 * are held open and silent (a slowloris: when the receiver drops one, another
 * takes its place); every other one is closed (RST) as soon as it opens, the
 * way a port scan or a SYN-and-go flood looks to the receiver. Nothing is
 * ever written.
 *
 * Prints `opened N` on stdout after every 1000 connections opened, and one
 * JSON line when done: `{"opened":N,"failed":N,"seconds":S,"perSecond":R}`,
 * the rate over the time from the start to the last connection that opened
 * (after the receiver has gone, every attempt is refused).
 */
import type { Socket } from "bun";

const [host, portText, secondsText, holdText, parallelText] = process.argv.slice(2);
if (host === undefined || portText === undefined || secondsText === undefined || holdText === undefined) {
  console.error("usage: flooder.ts HOST PORT SECONDS HOLD [PARALLEL]");
  process.exit(2);
}
const port = Number(portText);
const durationMs = Number(secondsText) * 1000;
const hold = Number(holdText);
const parallel = Number(parallelText ?? 64);

const held = new Set<Socket<unknown>>();
let opened = 0;
let failed = 0;
let lastOpenedMs = 0;
/** Progress goes out after every this many connections opened. */
const PROGRESS_EVERY = 1000;
const started = performance.now();
const over = () => performance.now() - started >= durationMs;

async function attempt(): Promise<void> {
  while (!over()) {
    try {
      const socket = await Bun.connect<unknown>({
        hostname: host!,
        port,
        socket: {
          data() {},
          close(socket) {
            held.delete(socket);
          },
          error(socket) {
            held.delete(socket);
          },
        },
      });
      opened++;
      lastOpenedMs = performance.now();
      if (opened % PROGRESS_EVERY === 0) console.log(`opened ${opened}`);
      if (held.size < hold) held.add(socket);
      else socket.terminate();
    } catch {
      failed++;
      // Refused or out of ports: a moment before the next one, so this loop does not spin.
      await Bun.sleep(1);
    }
  }
}

await Promise.all(Array.from({ length: parallel }, () => attempt()));
const seconds = (lastOpenedMs - started) / 1000;
for (const socket of held) socket.terminate();
console.log(JSON.stringify({ opened, failed, seconds: Math.round(seconds * 100) / 100, perSecond: Math.round(opened / Math.max(seconds, 0.001)) }));
process.exit(0);
