/**
 * End to end, SIGHUP (a closed ssh session or terminal) mid-transfer: the
 * real CLI as two processes over loopback, an endless prbs stream between
 * them.
 *
 * Proves: the hung-up end tells its peer, exits 129 with one line, and the
 * peer exits 10 within seconds, not after its `patience` (300 s by default);
 * whichever end is hung up. An end started with SIGHUP ignored (`nohup`,
 * `trap '' HUP`) keeps that wish and finishes the transfer.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { expectOneLineError } from "../support/e2e.ts";
import { killLeftovers, peersSoFar, startPeer, within } from "../support/spawn.ts";

const DEADLINE_MS = 20_000;
/** Under load the peer hears of the abort at once; well below any patience or timeout it could be waiting out instead. */
const PROMPT_EXIT_MS = 8_000;
const MID_TRANSFER_BYTES = 8 * 1024 * 1024;
/** The nohup case's stream: 64 MiB of prbs, long enough to be hung up in the middle of. */
const BOUNDED_FEET = 32;

afterEach(killLeftovers);

describe("SIGHUP mid-transfer", () => {
  for (const hungUp of ["tx", "rx"] as const) {
    test(
      `${hungUp} hung up: it exits 129 with one line, its peer exits 10 promptly`,
      async () => {
        const rx = startPeer(["rx", "0", "prbs", "3"], "ignore", { keepStdout: false });
        const port = Number((await within(DEADLINE_MS / 2, "rx's port", rx.stderr.until(/listening on port (\d+)/)))[1]);
        const tx = startPeer(["tx", "127.0.0.1", `${port}`, "prbs", "3"]);
        await within(DEADLINE_MS / 2, "the transfer to be under way", rx.stdout.untilBytes(MID_TRANSFER_BYTES), peersSoFar({ rx, tx }));
        const [signalled, peer] = hungUp === "tx" ? [tx, rx] : [rx, tx];
        signalled.proc.kill("SIGHUP");
        const [ended, other] = await within(PROMPT_EXIT_MS, "both ends to exit after SIGHUP", Promise.all([signalled.done(), peer.done()]), peersSoFar({ rx, tx }));
        expect({ hungUp: [ended.exitCode, ended.signalCode], peer: other.exitCode }).toEqual({ hungUp: [129, null], peer: 10 });
        expectOneLineError(ended.stderr, /^viamillipede: interrupted by SIGHUP$/);
        expectOneLineError(other.stderr, /SIGHUP/);
      },
      DEADLINE_MS,
    );
  }

  test(
    "rx started with SIGHUP ignored (nohup): the hang-up changes nothing, the transfer completes",
    async () => {
      const rx = startPeer(["rx", "0", "prbs", "3"], "ignore", { keepStdout: false, ignoreHangup: true });
      const port = Number((await within(DEADLINE_MS / 2, "rx's port", rx.stderr.until(/listening on port (\d+)/)))[1]);
      const tx = startPeer(["tx", "127.0.0.1", `${port}`, "prbs", "3", "leglimit", `${BOUNDED_FEET}`]);
      await within(DEADLINE_MS / 2, "the transfer to be under way", rx.stdout.untilBytes(MID_TRANSFER_BYTES), peersSoFar({ rx, tx }));
      rx.proc.kill("SIGHUP");
      const [received, sent] = await within(DEADLINE_MS / 2, "both ends to finish", Promise.all([rx.done(), tx.done()]), peersSoFar({ rx, tx }));
      expect({ rx: [received.exitCode, received.signalCode], tx: sent.exitCode }).toEqual({ rx: [0, null], tx: 0 });
      expect(received.stderr).not.toContain("SIGHUP");
    },
    DEADLINE_MS,
  );
});
