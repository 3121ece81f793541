import { describe, expect, test } from "bun:test";
import { VmError } from "../../src/errors.ts";
import { PROVING_ROUND_TRIPS, resolveLinks } from "../../src/tx/links.ts";
import { RateMeter } from "../../src/status/rate-meter.ts";

describe("links from tx clauses", () => {
  test("a name with several addresses gives several links, in resolver order; duplicates keep their first place", async () => {
    const resolve = async (host: string) =>
      ({ multi: ["192.0.2.1", "2001:db8::1"], one: ["192.0.2.1"], lit: ["198.51.100.7"] })[host] ?? [host];
    const { links } = await resolveLinks(
      [
        { host: "multi", port: 8834 },
        { host: "one", port: 8834 },
        { host: "lit", port: 8834 },
        { host: "multi", port: 9000 },
      ],
      resolve,
    );
    expect(links.map((link) => [link.index, link.address])).toEqual([
      [0, "192.0.2.1:8834"],
      [1, "[2001:db8::1]:8834"],
      [2, "198.51.100.7:8834"],
      [3, "192.0.2.1:9000"],
      [4, "[2001:db8::1]:9000"],
    ]);
  });

  /** What Bun's dns.lookup rejects with: an Error whose code says why. */
  const failure = (code: string) => Object.assign(new Error(`getaddrinfo ${code}`), { code });
  const resolver = (answers: Record<string, string[] | string>) => async (host: string) => {
    const answer = answers[host] ?? [host];
    if (typeof answer === "string") throw failure(answer);
    return answer;
  };

  test("a name that does not exist (ENOTFOUND) gives no link and is named; the other targets stay", async () => {
    const { links, unknownHosts } = await resolveLinks(
      [
        { host: "gone.invalid", port: 1 },
        { host: "192.0.2.9", port: 1 },
        { host: "gone.invalid", port: 2 },
        { host: "also-gone.invalid", port: 1 },
      ],
      resolver({ "gone.invalid": "ENOTFOUND", "also-gone.invalid": "ENOTFOUND" }),
    );
    expect(links.map((link) => [link.index, link.address])).toEqual([[0, "192.0.2.9:1"]]);
    expect(unknownHosts).toEqual(["gone.invalid", "also-gone.invalid"]);
  });

  test("when every name does not exist, the transfer cannot start: unreachable (exit 3), naming them", async () => {
    const targets = [
      { host: "a.invalid", port: 1 },
      { host: "b.invalid", port: 1 },
    ];
    const error = await resolveLinks(targets, resolver({ "a.invalid": "ENOTFOUND", "b.invalid": "ENOTFOUND" })).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(VmError);
    expect({ code: (error as VmError).code, exit: (error as VmError).exitCode, message: (error as VmError).message }).toEqual({
      code: "unreachable",
      exit: 3,
      message: "cannot resolve a.invalid, b.invalid: no such host (ENOTFOUND); check the name, or give an IP address",
    });
  });

  test("a transient resolver failure (EAI_AGAIN: no answer, SERVFAIL) keeps the name as a link, retried like a dead one", async () => {
    const { links, unknownHosts } = await resolveLinks([{ host: "flaky.example", port: 1 }], resolver({ "flaky.example": "EAI_AGAIN" }));
    expect(links.map((link) => link.address)).toEqual(["flaky.example:1"]);
    expect(unknownHosts).toEqual([]);
  });

  test("link state and figures", async () => {
    const {
      links: [link],
    } = await resolveLinks([{ host: "::1", port: 5 }]);
    expect(link!.stateWith(0)).toBe("connecting");
    expect(link!.markFailed()).toBe(true);
    expect(link!.markFailed()).toBe(false);
    expect(link!.stateWith(0)).toBe("down");
    expect(link!.live).toBe(false);
    link!.noteSent(100, 0);
    expect(link!.noteDelivered(100, 8)).toBe(true); // back
    expect(link!.figures(1)).toMatchObject({ link: 1, address: "[::1]:5", state: "up", connections: 1, bytesSent: 100, feetSent: 1, bytesDelivered: 100, feetDelivered: 1 });
    expect(link!.footRoundTripMs).toBe(8);
  });

  test("a link is proving while its first feet are out and none arrived, for PROVING_ROUND_TRIPS of its round trip", async () => {
    const {
      links: [link],
    } = await resolveLinks([{ host: "10.0.0.2", port: 5 }]);
    link!.noteHandshake(300, 2); // a 150 ms path
    expect(link!.provingAt(1000)).toBe(false); // nothing sent: nothing to prove (a slow source leaves it unused)
    link!.noteSent(2 << 20, 1000);
    link!.noteSent(2 << 20, 1100); // the clock runs from the first foot
    expect(link!.provingAt(1000)).toBe(true);
    expect(link!.provingAt(1000 + PROVING_ROUND_TRIPS * 150 - 1)).toBe(true);
    expect(link!.provingAt(1000 + PROVING_ROUND_TRIPS * 150)).toBe(false); // judged: its rate of 0 counts
    link!.noteDelivered(2 << 20, 1290);
    expect(link!.provingAt(1500)).toBe(false); // its rate is known

    const {
      links: [dying],
    } = await resolveLinks([{ host: "10.0.0.3", port: 5 }]);
    dying!.noteHandshake(300, 2);
    dying!.noteSent(2 << 20, 0);
    dying!.markFailed();
    expect(dying!.provingAt(10)).toBe(false); // a dead link proves nothing
  });
});

describe("rate meter", () => {
  test("bytes per second over the last ticks", () => {
    const meter = new RateMeter(4);
    expect(meter.bytesPerSecond).toBe(0);
    meter.add(1000);
    meter.tick(250);
    expect(meter.bytesPerSecond).toBe(4000);
    for (let i = 0; i < 3; i++) meter.tick(250);
    expect(meter.bytesPerSecond).toBe(1000);
    meter.tick(250); // the 1000 bytes slide out
    expect(meter.bytesPerSecond).toBe(0);
    expect(meter.totalBytes).toBe(1000);
  });

  test("a running total kept elsewhere is counted by its growth", () => {
    const meter = new RateMeter(4);
    meter.advanceTo(500);
    meter.advanceTo(1500);
    meter.tick(500);
    expect(meter.bytesPerSecond).toBe(3000);
    expect(meter.totalBytes).toBe(1500);
  });
});
