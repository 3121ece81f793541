/**
 * `tcpFigures` over a real loopback connection (Linux): the kernel's count
 * of our bytes the peer acknowledged follows what was written, and the
 * channel stops answering once it is closed (its descriptor may be reused).
 * The figures are compared with `ss -ti`'s `bytes_acked` and `minrtt`, the
 * kernel's own report of the same socket, so a wrong offset in struct
 * tcp_info fails.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { bunNetwork } from "../../src/net/bun-network.ts";
import type { Channel } from "../../src/net/channel.ts";
import { tcpFigures } from "../../src/net/tcp-info.ts";

const skipReason = process.platform !== "linux" ? "TCP_INFO is read on Linux only" : Bun.which("ss") === null ? "ss (iproute2) is not installed" : undefined;
if (skipReason !== undefined) console.log(`tcp-info.test.ts: skipping: ${skipReason}`);

/** `bytes_acked` and `minrtt` (ms, three decimals) of the established connection from local port `port`, per `ss -ti`. */
function ssFigures(port: number): { bytesAcked: number; minRoundTripMs: number } | undefined {
  const out = Bun.spawnSync(["ss", "-tniH", "state", "established", `( sport = :${port} )`]).stdout.toString();
  const acked = /bytes_acked:(\d+)/.exec(out);
  const minRtt = /minrtt:([\d.]+)/.exec(out);
  return acked === null || minRtt === null ? undefined : { bytesAcked: Number(acked[1]), minRoundTripMs: Number(minRtt[1]) };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let n = 0; n < 200; n++) {
    if (condition()) return;
    await Bun.sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test.skipIf(skipReason !== undefined)("a dialled connection's acknowledged bytes follow what was written, and its least round trip is ss's; nothing once closed", async () => {
  let received = 0;
  const listening = await bunNetwork.listen("127.0.0.1", 0, () => ({
    onData: (bytes) => (received += bytes.length),
    onDrain: () => {},
    onClose: () => {},
  }));
  let channel: Channel | undefined;
  try {
    channel = await bunNetwork.dial("127.0.0.1", listening.port, { onData: () => {}, onDrain: () => {}, onClose: () => {} });
    // The kernel counts the SYN as one byte.
    expect(channel.tcpFigures?.()?.bytesAcked).toBe(1);
    const sent = 3 * 65536 + 17;
    const bytes = new Uint8Array(sent).fill(7);
    let offset = 0;
    while (offset < sent) {
      offset += channel.write(bytes.subarray(offset));
      await Bun.sleep(1);
    }
    await until(() => received === sent && channel!.tcpFigures?.()?.bytesAcked === sent + 1, "the peer's acknowledgement of every byte");
    const localPort = Number(channel.localAddress!.split(":").pop());
    const ours = channel.tcpFigures!()!;
    // Nothing is held beyond a gap once everything is acknowledged.
    expect(ours.bytesDelivered).toBe(sent + 1);
    // Nothing chose one: the kernel's default.
    expect(ours.congestion).toBe(readFileSync("/proc/sys/net/ipv4/tcp_congestion_control", "utf8").trim());
    expect(ours.roundTripMs).toBeGreaterThan(0);
    expect(ours.roundTripMs).toBeGreaterThanOrEqual(ours.minRoundTripMs);
    expect(ssFigures(localPort)).toEqual({ bytesAcked: sent + 1, minRoundTripMs: Number(ours.minRoundTripMs.toFixed(3)) });
    // At once: Bun's terminate() reports the close synchronously, and the descriptor is free for reuse.
    channel.destroy();
    expect(channel.tcpFigures?.()).toBeUndefined();
  } finally {
    channel?.destroy();
    listening.close();
  }
});

test.skipIf(process.platform !== "linux")("a descriptor that is not a socket gives no count", () => {
  expect(tcpFigures(0, undefined)).toBeUndefined();
  expect(tcpFigures(1_000_000, undefined)).toBeUndefined();
});
