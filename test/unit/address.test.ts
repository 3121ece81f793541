// IP literals are recognised without node:net (its import costs every start
// 7-8 ms): the answers must be node:net's, on the forms users write and on
// random strings made of the characters addresses are made of.
import { describe, expect, test } from "bun:test";
import { isIP } from "node:net";
import { hostProblem, ipVersion } from "../../src/net/address.ts";

const WRITTEN = [
  "127.0.0.1", "0.0.0.0", "255.255.255.255", "10.78.1.2", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4",
  "1.2.3.04", "1.2.3.4 ", " 1.2.3.4", "0x7f.0.0.1", "1..2.3", "",
  "::", "::1", "1::", "fe80::1", "fe80::1%eth0", "fe80::1%", "2001:db8::8a2e:370:7334", "2001:0db8:0000:0000:0000:ff00:0042:8329",
  "2001:db8:0:0:0:ff00:42:8329:1", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9",
  "1::2::3", ":::", "::ffff:192.0.2.1", "::ffff:192.0.2.256", "64:ff9b::192.0.2.33", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4",
  "12345::", "g::1", "[::1]", "::1]", "localhost", "backup.example", "example.com.", "a-b_c",
];

describe("ipVersion", () => {
  test("agrees with node:net's isIP on the forms users write", () => {
    for (const text of WRITTEN) expect(`${text} → ${ipVersion(text)}`).toBe(`${text} → ${isIP(text)}`);
  });

  test("agrees with node:net's isIP on random strings of address characters", () => {
    const alphabet = "0123456789abcdefABCDEFg.:%";
    let seed = 12345;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const samples: string[] = [];
    for (let i = 0; i < 20000; i++) {
      let text = "";
      for (let length = 1 + random(24); length > 0; length--) text += alphabet[random(alphabet.length)];
      samples.push(text);
    }
    // Valid ones are rare among random strings: also mutate valid ones.
    for (const base of ["1:2:3:4:5:6:7:8", "fe80::1:2", "::ffff:10.0.0.1", "192.168.100.200"]) {
      for (let i = 0; i < 2000; i++) {
        const at = random(base.length);
        samples.push(base.slice(0, at) + alphabet[random(alphabet.length)] + base.slice(at + 1 + random(2)));
      }
    }
    const disagreements = samples.filter((text) => ipVersion(text) !== isIP(text));
    expect(disagreements).toEqual([]);
    expect(samples.filter((text) => isIP(text) !== 0).length).toBeGreaterThan(500); // the test saw valid literals too
  });

  test("a literal is a host; a malformed IPv6 literal says so", () => {
    expect(hostProblem("fe80::1%eth0")).toBeUndefined();
    expect(hostProblem("10.0.0.1")).toBeUndefined();
    expect(hostProblem("1::2::3")).toBe("it is neither an IPv4 nor an IPv6 address");
  });
});
