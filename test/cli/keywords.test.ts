/**
 * The command-line grammar: the original's keywords, the flag form, and every
 * usage error with its message. Pure: no processes, no sockets.
 */
import { describe, expect, test } from "bun:test";
import { VmError } from "../../src/errors.ts";
import {
  DEFAULT_PATIENCE_S,
  DEFAULT_TIMEOUT_S,
  DEFAULT_THREADS,
  DEFAULT_REPORT,
  type Invocation,
  type ReceiverOptions,
  type TransmitterOptions,
} from "../../src/options.ts";
import { closest, editDistance } from "../../src/cli/closest.ts";
import { FLAG_ARGS, flagNames, KEYWORD_TABLE, KEYWORDS, type KeywordEntry } from "../../src/cli/keyword-table.ts";
import { parseArguments } from "../../src/cli/keywords.ts";
import { parseRate, parseSize } from "../../src/cli/values.ts";

/** Splits a command line on spaces; good enough for these cases. The report options are left out while they are the defaults. */
function parse(line: string): Invocation {
  const { report, ...invocation } = parseArguments(line === "" ? [] : line.split(" "));
  return report === undefined || Bun.deepEquals(report, DEFAULT_REPORT) ? invocation : { ...invocation, report };
}

/** The usage error's message for `line`, failing if it parses or fails otherwise. */
function usageError(line: string): string {
  try {
    parse(line);
  } catch (error) {
    expect(error).toBeInstanceOf(VmError);
    expect((error as VmError).code).toBe("usage");
    expect((error as VmError).exitCode).toBe(2);
    return (error as VmError).message;
  }
  throw new Error(`'${line}' parsed but should not have`);
}

const rxDefaults = {
  verbose: 0,
  checkphrase: "",
  bind: undefined,
  patienceS: DEFAULT_PATIENCE_S,
  timeoutS: DEFAULT_TIMEOUT_S,
  chaosEvery: 0,
};
const txDefaults = {
  verbose: 0,
  checkphrase: "",
  threads: DEFAULT_THREADS,
  footBytes: "auto" as const,
  patienceS: DEFAULT_PATIENCE_S,
  timeoutS: DEFAULT_TIMEOUT_S,
  chaosEvery: 0,
};

describe("keyword form", () => {
  test("rx PORT verbose N", () => {
    expect(parse("rx 8834 verbose 5")).toEqual({ receive: { ...rxDefaults, port: 8834, verbose: 5 } });
  });

  test("tx HOST PORT threads N", () => {
    expect(parse("tx 127.0.0.1 8834 threads 8")).toEqual({
      transmit: { ...txDefaults, targets: [{ host: "127.0.0.1", port: 8834 }], threads: 8 },
    });
  });

  test("keywords in any order, hex numbers", () => {
    const expected = {
      transmit: { ...txDefaults, targets: [{ host: "host", port: 8834 }], threads: 16, verbose: 3 },
    };
    expect(parse("verbose 3 tx host 8834 threads 0x10")).toEqual(expected);
    expect(parse("threads 0x10 verbose 0x3 tx host 0x2282")).toEqual(expected);
    expect(parse("tx host 8834 threads 0X10 verbose 3")).toEqual(expected);
  });

  test("repeated tx clauses keep their order of preference", () => {
    expect(parse("tx a.example 8834 tx b.example 8834 tx c.example 1")).toEqual({
      transmit: {
        ...txDefaults,
        targets: [
          { host: "a.example", port: 8834 },
          { host: "b.example", port: 8834 },
          { host: "c.example", port: 1 },
        ],
      },
    });
  });

  test("IPv6 literal hosts, with or without brackets", () => {
    const expected = { transmit: { ...txDefaults, targets: [{ host: "::1", port: 8834 }] } };
    expect(parse("tx ::1 8834")).toEqual(expected);
    expect(parse("tx [::1] 8834")).toEqual(expected);
    expect(parse("tx fe80::1%eth0 9").transmit?.targets).toEqual([{ host: "fe80::1%eth0", port: 9 }]);
  });

  test("rx with bind, checkphrase and checksums", () => {
    expect(parse("rx 8834 bind ::1 checkphrase sesame checksums")).toEqual({
      receive: { ...rxDefaults, port: 8834, bind: "::1", checkphrase: "sesame" },
    });
  });

  test("rx 0 asks for a free port", () => {
    expect(parse("rx 0")).toEqual({ receive: { ...rxDefaults, port: 0 } });
  });

  test("limits are inclusive", () => {
    expect(parse("rx 65535").receive?.port).toBe(65535);
    expect(parse("tx h 1 threads 1").transmit?.threads).toBe(1);
    expect(parse("tx h 1 threads 64").transmit?.threads).toBe(64);
    expect(parse("tx h 1 threads auto").transmit?.threads).toBe("auto");
    expect(parse("tx h 1 verbose 20").transmit?.verbose).toBe(20);
    expect(parse("tx h 1 patience 0").transmit?.patienceS).toBe(0);
    expect(parse(`rx 1 checkphrase ${"x".repeat(64)}`).receive?.checkphrase).toHaveLength(64);
    // 21 three-byte characters: 63 bytes.
    expect(parse(`rx 1 checkphrase ${"€".repeat(21)}`).receive?.checkphrase).toBe("€".repeat(21));
  });

  test("decimal with leading zeros is still decimal", () => {
    expect(parse("rx 010").receive?.port).toBe(10);
  });

  test("timeout and chaos, on either end", () => {
    expect(parse("rx 8834 timeout 3 chaos 0x10").receive).toMatchObject({ timeoutS: 3, chaosEvery: 16 });
    expect(parse("chaos 7 tx h 1 timeout 60").transmit).toMatchObject({ timeoutS: 60, chaosEvery: 7 });
    expect(parse("--tx h:1 --timeout 2 --chaos 5").transmit).toMatchObject({ timeoutS: 2, chaosEvery: 5 });
  });

  test("patience on rx", () => {
    expect(parse("rx 8834 patience 4").receive?.patienceS).toBe(4);
  });

  test("patience, checksums on tx", () => {
    expect(parse("tx h 9 patience 60 checksums checkphrase open")).toEqual({
      transmit: { ...txDefaults, targets: [{ host: "h", port: 9 }], patienceS: 60, checkphrase: "open" },
    });
  });

  test("a keyword's value may be any word, even a keyword", () => {
    expect(parse("rx 1 checkphrase rx").receive?.checkphrase).toBe("rx");
  });
});

describe("the toolbox: prbs, leglimit, delayus, ratelimit, charmode, full duplex, tunnels", () => {
  test("prbs on either end; leglimit, delayus, ratelimit, charmode on tx", () => {
    expect(parse("rx 8834 prbs 0x1234")).toEqual({ receive: { ...rxDefaults, port: 8834, prbsSeed: 0x1234 } });
    expect(parse("tx h 1 prbs 4660 leglimit 100 delayus 250 ratelimit 50M charmode")).toEqual({
      transmit: {
        ...txDefaults,
        targets: [{ host: "h", port: 1 }],
        prbsSeed: 0x1234,
        legLimit: 100,
        delayUs: 250,
        rateBytesPerS: 50 * 1024 * 1024,
        charmode: true,
      },
    });
  });

  test("ratelimit: decimal or hex bytes per second, K M G T are powers of 1024", () => {
    expect([parseRate("1"), parseRate("1000"), parseRate("0x10"), parseRate("8k"), parseRate("50M"), parseRate("2G"), parseRate("1T")]).toEqual([
      1,
      1000,
      16,
      8192,
      52_428_800,
      2 * 1024 ** 3,
      1024 ** 4,
    ]);
  });

  test("rx and tx together are a full-duplex pipe; each gets its own keywords, the common ones go to both", () => {
    expect(parse("rx 7788 tx host2 9900 threads 4 bind ::1 verbose 2 prbs 7 leglimit 3")).toEqual({
      receive: { ...rxDefaults, port: 7788, bind: "::1", verbose: 2, prbsSeed: 7 },
      transmit: { ...txDefaults, targets: [{ host: "host2", port: 9900 }], threads: 4, verbose: 2, prbsSeed: 7, legLimit: 3 },
    });
  });

  test("terminate and initiate: a tunnel over the duplex pipe, and tx in charmode", () => {
    expect(parse("rx 7788 tx host2 9900 terminate 2222")).toEqual({
      receive: { ...rxDefaults, port: 7788 },
      transmit: { ...txDefaults, targets: [{ host: "host2", port: 9900 }], charmode: true },
      tunnel: { kind: "terminate", port: 2222 },
    });
    expect(parse("rx 9900 tx host1 7788 initiate localhost 22").tunnel).toEqual({ kind: "initiate", host: "localhost", port: 22 });
    expect(parse("--rx 9900 --tx host1:7788 --initiate [::1]:22").tunnel).toEqual({ kind: "initiate", host: "::1", port: 22 });
  });
});

describe("flag form gives the same Invocation as the keyword form", () => {
  const pairs: [keywords: string, flags: string][] = [
    ["rx 8834 verbose 5", "rx --port 8834 --verbose 5"],
    ["rx 8834 verbose 5", "--port 8834 --verbose 5"],
    ["rx 8834 verbose 5", "--rx=8834 --verbose=5"],
    ["rx 8834 verbose 5", "rx --verbose 5 --port 8834"],
    ["rx 8834 verbose 5", "rx 8834 --verbose 5"],
    ["rx 0 bind ::1 checkphrase sesame checksums", "--rx 0 --bind ::1 --checkphrase sesame --checksums"],
    ["rx 0 bind ::1", "--rx 0 --bind [::1]"],
    ["tx 127.0.0.1 8834 threads 8", "--tx 127.0.0.1:8834 --threads 8"],
    ["tx 127.0.0.1 8834 threads 8", "tx --tx 127.0.0.1:8834 --threads 8"],
    ["tx ::1 8834", "--tx [::1]:8834"],
    ["tx a.example 8834 tx b.example 8834", "--tx a.example:8834 --tx b.example:8834"],
    ["tx a.example 8834 tx b.example 8834", "tx a.example 8834 --tx b.example:8834"],
    ["verbose 3 tx host 8834 threads 0x10 patience 0", "--verbose=3 --tx=host:8834 --threads=0x10 --patience 0"],
    ["tx h 1 prbs 9 leglimit 2 delayus 5 ratelimit 1M charmode", "--tx h:1 --prbs 9 --leglimit 2 --delayus 5 --ratelimit 1M --charmode"],
    ["rx 1 tx h 2 terminate 0", "--rx 1 --tx h:2 --terminate 0"],
    ["rx 1 tx h 2 initiate s 22", "--rx 1 --tx h:2 --initiate s:22"],
  ];
  for (const [keywords, flags] of pairs) {
    test(`${keywords}  ≡  ${flags}`, () => {
      expect(parse(flags)).toEqual(parse(keywords));
    });
  }

  test("a flag's inline value may look like a flag", () => {
    expect(parse("rx 1 --checkphrase=-x").receive?.checkphrase).toBe("-x");
  });

  test("every flag is named after a keyword", () => {
    expect(Object.keys(FLAG_ARGS).sort()).toEqual([...KEYWORDS].sort());
  });
});

describe("usage errors name the problem and the fix", () => {
  const cases: [line: string, message: string][] = [
    // roles
    ["", "nothing to do; say 'rx PORT' to receive or 'tx HOST PORT' to send"],
    ["verbose 3", "nothing to do; say 'rx PORT' to receive or 'tx HOST PORT' to send"],
    ["rx", "rx needs a PORT: 'rx 8834' or '--port 8834'"],
    ["rx --verbose 2", "rx needs a PORT: 'rx 8834' or '--port 8834'"],
    ["rx 1 rx 2", "rx PORT is given twice; one receiver listens on one port"],
    ["rx 1 --port 2", "rx PORT is given twice; one receiver listens on one port"],
    ["tx", "tx needs a HOST and PORT: 'tx 127.0.0.1 8834' or '--tx 127.0.0.1:8834'"],
    ["tx h", "tx h needs a PORT: 'tx h 8834'"],
    ["tx h --threads 3", "tx h needs a PORT: 'tx h 8834'"],
    ["tx [] 1", "tx needs a HOST, got '[]'; e.g. 'tx 127.0.0.1 8834'"],
    // role-only keywords
    ["tx h 1 bind ::1", "bind applies to rx only; remove it from the tx side"],
    // numbers
    ["rx 12abc", "rx port '12abc' is not a number; write it in decimal or 0x-hex"],
    ["rx -1", "rx port '-1' is not a number; write it in decimal or 0x-hex"],
    ["rx 1.5", "rx port '1.5' is not a number; write it in decimal or 0x-hex"],
    ["rx 1e3", "rx port '1e3' is not a number; write it in decimal or 0x-hex"],
    ["rx 0x", "rx port '0x' is not a number; write it in decimal or 0x-hex"],
    ["rx +5", "rx port '+5' is not a number; write it in decimal or 0x-hex"],
    ["rx 65536", "rx port 65536 is out of range; use 0..65535"],
    ["tx h 0", "tx port 0 is out of range; use 1..65535"],
    ["tx h 0x10000", "tx port 0x10000 is out of range; use 1..65535"],
    ["tx h x", "tx port 'x' is not a number; write it in decimal or 0x-hex"],
    ["tx h 1 threads 0", "threads 0 is out of range; use 1..64"],
    ["tx h 1 threads 65", "threads 65 is out of range; use 1..64"],
    ["tx h 1 threads 99", "threads 99 is out of range; use 1..64"],
    ["tx h 1 threads 99999999999999999999", "threads 99999999999999999999 is out of range; use 1..64"],
    ["tx h 1 threads many", "threads 'many' is neither a number (1..64) nor auto"],
    ["tx h 1 threads -2", "threads '-2' is neither a number (1..64) nor auto"],
    ["tx h 1 threads auto threads 4", "threads is given twice; give it once"],
    ["rx 1 verbose 21", "verbose 21 is out of range; use 0..20"],
    ["rx 1 verbose -1", "verbose '-1' is not a number; write it in decimal or 0x-hex"],
    ["tx h 1 patience 1.5", "patience '1.5' is not a number; write it in decimal or 0x-hex"],
    ["tx h 1 patience 2147484", "patience 2147484 is out of range; use 0..2147483"],
    // missing values
    ["rx 1 verbose", "verbose needs a value: 'verbose N'"],
    ["tx h 1 threads", "threads needs a value: 'threads N'"],
    ["tx h 1 patience", "patience needs a value: 'patience SECONDS'"],
    ["rx 1 checkphrase", "checkphrase needs a value: 'checkphrase WORD'"],
    ["rx 1 bind", "bind needs a value: 'bind ADDRESS'"],
    ["rx 1 verbose --checksums", "verbose needs a value: 'verbose N'"],
    // other values
    [`rx 1 checkphrase ${"x".repeat(65)}`, "checkphrase is 65 bytes; use 1..64 bytes"],
    [`rx 1 checkphrase ${"€".repeat(22)}`, "checkphrase is 66 bytes; use 1..64 bytes"],
    ["rx 1 --checkphrase=", "checkphrase is 0 bytes; use 1..64 bytes"],
    ["rx 1 checkphrase ses\0ame", "checkphrase contains a NUL byte; use a word without one"],
    ["tx h 1 --checkphrase=\0", "checkphrase contains a NUL byte; use a word without one"],
    ["rx 1 bind []", "bind needs an ADDRESS: 'bind ::1' or 'bind 127.0.0.1'"],
    // repeats
    ["rx 1 verbose 1 verbose 2", "verbose is given twice; give it once"],
    ["tx h 1 threads 2 --threads 3", "threads is given twice; give it once"],
    ["rx 1 checkphrase a checkphrase b", "checkphrase is given twice; give it once"],
    ["rx 1 bind ::1 bind ::", "bind is given twice; give it once"],
    ["tx h 1 patience 1 patience 2", "patience is given twice; give it once"],
    // unknown words
    [
      "rx 1 frobnicate",
      "unknown keyword 'frobnicate'; keywords are rx, tx, threads, verbose, checkphrase, checksums, key, encrypt, compress, congestion, label, exec, bind, serve, sessions, patience, timeout, chaos, prbs, leglimit, delayus, ratelimit, charmode, terminate, initiate, size, progress, quiet, stats, buffer, foot",
    ],
    [
      "rx 1 2",
      "unknown keyword '2'; keywords are rx, tx, threads, verbose, checkphrase, checksums, key, encrypt, compress, congestion, label, exec, bind, serve, sessions, patience, timeout, chaos, prbs, leglimit, delayus, ratelimit, charmode, terminate, initiate, size, progress, quiet, stats, buffer, foot",
    ],
    ["RX 1", "unknown keyword 'RX'; did you mean 'rx'?"],
    ["tx h 1 thread 4", "unknown keyword 'thread'; did you mean 'threads'?"],
    ["tx h 1 thraeds 4", "unknown keyword 'thraeds'; did you mean 'threads'?"],
    ["rx 1 verbos 3", "unknown keyword 'verbos'; did you mean 'verbose'?"],
    ["rx 1 chksum", "unknown keyword 'chksum'; did you mean 'checksum'?"],
    ["rx 1 --thread 4", "unknown flag '--thread'; did you mean '--threads'?"],
    ["rx 1 --checkphrse=x", "unknown flag '--checkphrse'; did you mean '--checkphrase'?"],
    // flags
    [
      "rx 1 --frobnicate",
      "unknown flag '--frobnicate'; flags are --rx (--port), --tx, --threads, --verbose, --checkphrase, --checksums (--checksum), --key, --encrypt, --compress, --congestion, --label, --exec, --bind, --serve, --sessions, --patience, --timeout, --chaos, --prbs, --leglimit, --delayus, --ratelimit, --charmode, --terminate, --initiate, --size, --progress, --quiet, --stats, --buffer, --foot",
    ],
    [
      "rx 1 -v",
      "unknown flag '-v'; flags are --rx (--port), --tx, --threads, --verbose, --checkphrase, --checksums (--checksum), --key, --encrypt, --compress, --congestion, --label, --exec, --bind, --serve, --sessions, --patience, --timeout, --chaos, --prbs, --leglimit, --delayus, --ratelimit, --charmode, --terminate, --initiate, --size, --progress, --quiet, --stats, --buffer, --foot",
    ],
    [
      "rx 1 --no-checksums",
      "unknown flag '--no-checksums'; flags are --rx (--port), --tx, --threads, --verbose, --checkphrase, --checksums (--checksum), --key, --encrypt, --compress, --congestion, --label, --exec, --bind, --serve, --sessions, --patience, --timeout, --chaos, --prbs, --leglimit, --delayus, --ratelimit, --charmode, --terminate, --initiate, --size, --progress, --quiet, --stats, --buffer, --foot",
    ],
    ["rx 1 --verbose", "flag '--verbose' needs a value: '--verbose N'"],
    ["rx 1 --verbose --checksums", "flag '--verbose' needs a value: '--verbose N'"],
    ["--tx", "flag '--tx' needs a value: '--tx HOST:PORT'"],
    ["rx 1 --checksums=yes", "flag '--checksums' takes no value; write just '--checksums'"],
    ["--tx host", "--tx needs HOST:PORT, got 'host'; e.g. '--tx 127.0.0.1:8834'"],
    ["--tx ::1:8834", "--tx '::1:8834' is ambiguous; put an IPv6 address in brackets: '--tx [::1]:8834'"],
    ["--tx :8834", "tx needs a HOST, got ''; e.g. 'tx 127.0.0.1 8834'"],
    ["--tx host:", "tx port '' is not a number; write it in decimal or 0x-hex"],
    ["rx 1 --", "'--' is not used by viamillipede; remove it"],
    // the toolbox
    ["tx h 1 prbs 0x10000", "prbs 0x10000 is out of range; use 0..65535"],
    ["tx h 1 prbs", "prbs needs a value: 'prbs SEED'"],
    ["tx h 1 prbs 1 prbs 2", "prbs is given twice; give it once"],
    ["tx h 1 leglimit 0", "leglimit 0 is out of range; use 1..4294967296"],
    ["tx h 1 delayus 60000001", "delayus 60000001 is out of range; use 0..60000000"],
    ["tx h 1 ratelimit fast", "ratelimit 'fast' is not a rate; write bytes per second, e.g. 'ratelimit 50M' (K, M, G, T are powers of 1024)"],
    ["tx h 1 ratelimit 5MB", "ratelimit '5MB' is not a rate; write bytes per second, e.g. 'ratelimit 50M' (K, M, G, T are powers of 1024)"],
    ["tx h 1 ratelimit 0", "ratelimit 0 is out of range; use 1..1099511627776 bytes per second (1T)"],
    ["tx h 1 ratelimit 2T", "ratelimit 2T is out of range; use 1..1099511627776 bytes per second (1T)"],
    ["tx h 1 ratelimit 1M ratelimit 2M", "ratelimit is given twice; give it once"],
    ["tx h 1 terminate 2222", "terminate carries a TCP connection over a full-duplex pipe; give both 'rx PORT' and 'tx HOST PORT'"],
    ["rx 1 initiate h 22", "initiate carries a TCP connection over a full-duplex pipe; give both 'rx PORT' and 'tx HOST PORT'"],
    ["rx 1 tx h 2 terminate 3 initiate h 4", "terminate and initiate are the two ends of one tunnel; give terminate on one side and initiate on the other"],
    ["rx 1 tx h 2 terminate 3 terminate 4", "terminate is given twice; a tunnel carries one connection"],
    ["rx 1 tx h 2 terminate 65536", "terminate port 65536 is out of range; use 0..65535"],
    ["rx 1 tx h 2 initiate h", "initiate h needs a PORT: 'initiate h 22'"],
    ["rx 1 tx h 2 initiate h 0", "initiate port 0 is out of range; use 1..65535"],
    ["rx 1 tx h 2 --initiate h", "--initiate needs HOST:PORT, got 'h'; e.g. '--initiate 127.0.0.1:8834'"],
    ["rx 1 tx h 2 terminate 3 prbs 1", "prbs replaces the data a tunnel carries; drop prbs or terminate"],
    ["rx 1 buffer lots", "buffer 'lots' is not a byte count; write bytes, e.g. 'buffer 256M' (K, M, G, T are powers of 1024)"],
    ["tx h 1 buffer 512K", "buffer 512K is out of range; use 1M..4G (the window must hold 4 feet)"],
    ["rx 1 --buffer 5G", "buffer 5G is out of range; use 1M..4G (the window must hold 4 feet)"],
    ["tx h 1 foot big", "foot 'big' is neither auto nor a byte count; write bytes, e.g. 'foot 512K' (K, M, G, T are powers of 1024)"],
    ["tx h 1 foot 2K", "foot 2K is out of range; use 4K..16M"],
    ["tx h 1 --foot 17M", "foot 17M is out of range; use 4K..16M"],
  ];
  for (const [line, message] of cases) {
    test(`'${line}'`, () => {
      expect(usageError(line)).toBe(message);
    });
  }

  test("messages are one line", () => {
    for (const [line] of cases) expect(usageError(line)).not.toContain("\n");
  });
});

describe("one option string for both ends (the original's grammar)", () => {
  const everyTxOnly = "threads 4 compress zstd leglimit 3 delayus 5 ratelimit 1M charmode foot 1M";

  test("rx alone accepts every tx-only keyword, with one warning naming them all, and ignores them", () => {
    expect(parse(`rx 1 ${everyTxOnly}`)).toEqual({
      receive: { ...rxDefaults, port: 1 },
      warnings: ["threads, compress, leglimit, delayus, ratelimit, charmode, foot apply to tx only; the receiver ignores them"],
    });
  });

  test("one tx-only keyword, in flag form", () => {
    expect(parse("--rx 1 --threads 4")).toEqual({ receive: { ...rxDefaults, port: 1 }, warnings: ["threads applies to tx only; the receiver ignores it"] });
    expect(parse("rx 1 --charmode").warnings).toEqual(["charmode applies to tx only; the receiver ignores it"]);
  });

  test("the same words on tx (or a full-duplex pipe) are used, without a warning", () => {
    expect(parse(`tx h 1 ${everyTxOnly}`).warnings).toBeUndefined();
    expect(parse(`rx 2 tx h 1 ${everyTxOnly}`).warnings).toBeUndefined();
    expect(parse("rx 2 checksums").warnings).toBeUndefined();
  });

  test("their values are still checked on rx", () => {
    expect(usageError("rx 1 threads 99")).toBe("threads 99 is out of range; use 1..64");
    expect(usageError("rx 1 compress lz4")).toBe("compress 'lz4' is not known; use zstd or gzip, optionally with a level: 'compress zstd:3'");
  });

  test("checksum (the original README's spelling) is checksums, as a keyword and as a flag", () => {
    expect(parse("rx 1 checksum")).toEqual(parse("rx 1 checksums"));
    expect(parse("tx h 1 --checksum")).toEqual(parse("tx h 1 checksums"));
  });
});

describe("a host that can never resolve is a usage error", () => {
  /** The usage error for an argv given word by word (hosts with spaces, newlines, odd bytes). */
  const usageErrorOf = (argv: string[]): string => {
    try {
      parseArguments(argv);
    } catch (error) {
      expect((error as VmError).code).toBe("usage");
      return (error as VmError).message;
    }
    throw new Error(`${JSON.stringify(argv)} parsed but should not have`);
  };
  const bad: [host: string, quoted: string, problem: string][] = [
    // What Bun hands over for an argument that is not UTF-8: each bad byte becomes U+FFFD.
    ["a\uFFFDb", "'a\uFFFDb'", "it is not valid UTF-8"],
    ["h\u00e9llo.example", "'h\u00e9llo.example'", "it contains '\u00e9'; write an internationalized name in its ASCII form (xn--...)"],
    ["has space", "'has space'", "it contains ' '; a host name has letters, digits, '-', '_' and '.'"],
    ["new\nline", "'new\\nline'", "it contains '\\n'; a host name has letters, digits, '-', '_' and '.'"],
    ["a/b", "'a/b'", "it contains '/'; a host name has letters, digits, '-', '_' and '.'"],
    ["1:2:3", "'1:2:3'", "it is neither an IPv4 nor an IPv6 address"],
    ["foo..bar", "'foo..bar'", "it has an empty label (two dots in a row, or a dot at the start)"],
    [".foo", "'.foo'", "it has an empty label (two dots in a row, or a dot at the start)"],
    ["a.-foo.example", "'a.-foo.example'", "its label '-foo' starts or ends with '-'"],
    ["foo-.example", "'foo-.example'", "its label 'foo-' starts or ends with '-'"],
  ];
  for (const [host, quoted, problem] of bad) {
    test(`${JSON.stringify(host)}: ${problem}, as a keyword and as a flag`, () => {
      const message = `tx host ${quoted} is not an IP address or a host name: ${problem}`;
      expect(usageErrorOf(["tx", host, "8834"])).toBe(message);
      expect(usageErrorOf(["--tx", host.includes(":") ? `[${host}]:8834` : `${host}:8834`])).toBe(message);
    });
  }

  test("lengths: 63 bytes a label, 253 a name; a 100,000-character host gives one short line", () => {
    const label64 = `${"l".repeat(64)}.example`;
    expect(usageErrorOf(["tx", label64, "1"])).toBe(
      `tx host '${"l".repeat(32)}…' (72 characters) is not an IP address or a host name: its label '${"l".repeat(32)}…' (64 characters) is 64 bytes long; a label has at most 63`,
    );
    const name254 = `${"abcdefg.".repeat(31)}abcdef`;
    expect(name254.length).toBe(254);
    expect(usageErrorOf(["tx", name254, "1"])).toBe(
      `tx host '${name254.slice(0, 32)}…' (254 characters) is not an IP address or a host name: it is 254 bytes long; a host name has at most 253`,
    );
    expect(usageErrorOf(["tx", "a".repeat(100_000), "8834"])).toBe(
      `tx host '${"a".repeat(32)}…' (100000 characters) is not an IP address or a host name: it is 100000 bytes long; a host name has at most 253`,
    );
    for (const host of [`${"l".repeat(63)}.example`, name254.slice(0, -1), `${name254.slice(0, -1)}.`]) {
      expect(parseArguments(["tx", host, "1"]).transmit?.targets).toEqual([{ host, port: 1 }]);
    }
  });

  test("bind and initiate are checked the same way", () => {
    expect(usageErrorOf(["rx", "1", "bind", "a b"])).toBe(
      "bind address 'a b' is not an IP address or a host name: it contains ' '; a host name has letters, digits, '-', '_' and '.'",
    );
    expect(usageErrorOf(["rx", "1", "tx", "h", "2", "initiate", "a..b", "22"])).toBe(
      "initiate host 'a..b' is not an IP address or a host name: it has an empty label (two dots in a row, or a dot at the start)",
    );
  });

  test("addresses, and names that could resolve, pass as written", () => {
    const good = ["127.0.0.1", "::1", "fe80::1%eth0", "::ffff:10.0.0.1", "localhost", "no-such-host.invalid", "backup.example.", "db_1", "xn--bcher-kva.example", "1.2.3"];
    for (const host of good) expect(parseArguments(["tx", host, "1"]).transmit?.targets).toEqual([{ host, port: 1 }]);
    expect(parse("--tx [::1]:1").transmit?.targets).toEqual([{ host: "::1", port: 1 }]);
  });
});

describe("closest keyword", () => {
  test("edit distance counts insertions, deletions, substitutions and swapped neighbours", () => {
    expect([editDistance("threads", "threads"), editDistance("thread", "threads"), editDistance("thraeds", "threads"), editDistance("", "rx"), editDistance("kitten", "sitting")]).toEqual([
      0, 1, 1, 2, 3,
    ]);
  });

  test("only close words get a suggestion; the first keyword wins a tie", () => {
    expect(closest("frobnicate", KEYWORDS)).toBeUndefined();
    expect(closest("2", KEYWORDS)).toBeUndefined();
    expect(closest("x", KEYWORDS)).toBe("rx");
    expect(closest("TIMEOUT", KEYWORDS)).toBe("timeout");
    expect(closest("compres", KEYWORDS)).toBe("compress");
  });
});

describe("seeing the transfer: size, progress, quiet, stats", () => {
  test("defaults: progress on a terminal only, no size, no stats file", () => {
    expect(parseArguments(["rx", "1"]).report).toEqual(DEFAULT_REPORT);
  });

  test("size (with K, M, G, T), progress, stats, on either end, in keyword and flag form", () => {
    expect(parseArguments("tx h 1 size 3G progress stats /tmp/s.json".split(" ")).report).toEqual({
      progress: "on",
      quiet: false,
      expectedBytes: 3 * 1024 ** 3,
      statsFile: "/tmp/s.json",
    });
    expect(parseArguments("--rx 1 --size 1000 --quiet --stats=/tmp/r.json".split(" ")).report).toEqual({
      progress: "off",
      quiet: true,
      expectedBytes: 1000,
      statsFile: "/tmp/r.json",
    });
    expect([parseSize("0"), parseSize("0x10"), parseSize("2k")]).toEqual([0, 16, 2048]);
  });

  test("mistakes name the fix", () => {
    expect(usageError("rx 1 quiet progress")).toBe("quiet and progress contradict each other; give one");
    expect(usageError("tx h 1 size big")).toBe("size 'big' is not a byte count; write bytes, e.g. 'size 1073741824' or 'size 1G' (K, M, G, T are powers of 1024)");
    expect(usageError("rx 1 stats")).toBe("stats needs a value: 'stats FILE'");
    expect(usageError("rx 1 size 1 size 2")).toBe("size is given twice; give it once");
  });
});

describe("the keyword table: every entry, so a new one is covered without a new test", () => {
  /** The words that give an entry the roles it is for (none for the role words themselves). */
  const rolesFor = (entry: KeywordEntry): string[] => {
    const rx = entry.name === "rx" ? [] : ["rx", "1"];
    const tx = entry.name === "tx" ? [] : ["tx", "h", "2"];
    return { rx, tx, both: rx, duplex: [...rx, ...tx] }[entry.roles];
  };
  /** The entry's example value in keyword form (none for a switch). */
  const valueWords = (entry: KeywordEntry): string[] => entry.value?.example.split(" ") ?? [];
  /** The same value as one flag word: HOST PORT becomes HOST:PORT. */
  const flagValue = (entry: KeywordEntry): string[] => (entry.value === undefined ? [] : [valueWords(entry).join(entry.value.hostPort ? ":" : " ")]);
  const roleWords = new Set(["rx", "tx"]);

  for (const entry of KEYWORD_TABLE) {
    test(`${entry.name}: keyword, flag, --flag=value and every other spelling give one Invocation`, () => {
      const base = rolesFor(entry);
      const expected = parseArguments([...base, entry.name, ...valueWords(entry)]);
      const spellings = [entry.name, ...(entry.alias === undefined ? [] : [entry.alias])].map((word) => [...base, word, ...valueWords(entry)]);
      for (const flag of flagNames(entry)) {
        spellings.push([...base, `--${flag}`, ...flagValue(entry)]);
        if (entry.value !== undefined) spellings.push([...base, `--${flag}=${flagValue(entry)[0]}`]);
      }
      for (const argv of spellings) expect({ argv, parsed: parseArguments(argv) }).toEqual({ argv, parsed: expected });
    });

    if (entry.field !== undefined && !roleWords.has(entry.name)) {
      test(`${entry.name}: its example sets ${entry.field}, away from the default`, () => {
        const base = rolesFor(entry);
        expect(parseArguments([...base, entry.name, ...valueWords(entry)])).not.toEqual(parseArguments(base));
      });
    }
  }

  test("roles: on rx alone a tx keyword is checked, ignored and warned about; on tx alone an rx keyword is an error; a duplex one needs both", () => {
    for (const entry of KEYWORD_TABLE.filter((entry) => !roleWords.has(entry.name))) {
      const words = [entry.name, ...valueWords(entry)];
      const line = (roles: string) => `${roles} ${words.join(" ")}`;
      if (entry.roles === "tx") {
        expect(parse(line("rx 1"))).toEqual({ receive: { ...rxDefaults, port: 1 }, warnings: [`${entry.name} applies to tx only; the receiver ignores it`] });
      } else if (entry.roles === "rx") {
        expect(usageError(line("tx h 2"))).toBe(`${entry.name} applies to rx only; remove it from the tx side`);
      } else if (entry.roles === "duplex") {
        const message = `${entry.name} carries a TCP connection over a full-duplex pipe; give both 'rx PORT' and 'tx HOST PORT'`;
        expect([usageError(line("rx 1")), usageError(line("tx h 2"))]).toEqual([message, message]);
      } else {
        expect([parse(line("rx 1")).warnings, parse(line("tx h 2")).warnings]).toEqual([undefined, undefined]);
      }
    }
  });

  test("a field set by a keyword for both roles reaches both roles' options", () => {
    // exec replaces one end's stdin or stdout: in full duplex it is refused (its own test).
    const both = KEYWORD_TABLE.filter((entry) => entry.roles === "both" && entry.field !== undefined && !(entry.field in DEFAULT_REPORT) && entry.name !== "exec");
    for (const entry of both) {
      const { receive, transmit } = parseArguments(["rx", "1", "tx", "h", "2", entry.name, ...valueWords(entry)]);
      const field = entry.field as keyof ReceiverOptions & keyof TransmitterOptions;
      expect({ name: entry.name, rx: receive?.[field] }).toEqual({ name: entry.name, rx: transmit?.[field] });
      expect({ name: entry.name, rx: receive?.[field] }).not.toEqual({ name: entry.name, rx: parse("rx 1").receive?.[field] });
    }
  });

  test("every keyword sets a field but checksums, which is kept only for compatibility", () => {
    expect(KEYWORD_TABLE.filter((entry) => entry.field === undefined).map((entry) => entry.name)).toEqual(["checksums"]);
  });

  test("checksums sets no option: per-foot checksums are always on, nothing reads a field", () => {
    expect(parse("rx 1 checksums")).toEqual({ receive: { ...rxDefaults, port: 1 } });
    expect(parse("tx h 1 --checksum").transmit).not.toHaveProperty("checksums");
  });
});

describe("exec and label", () => {
  const argv = (line: string): string[] => line.split(" ");
  test("exec takes every word after it as the command, keywords and flags included", () => {
    expect(parseArguments(argv("rx 1 verbose 2 exec sh -c x threads 4 verbose 3 --tx h:1 rx 5")).receive).toEqual({
      ...rxDefaults,
      port: 1,
      verbose: 2,
      exec: ["sh", "-c", "x", "threads", "4", "verbose", "3", "--tx", "h:1", "rx", "5"],
    });
    expect(parseArguments(argv("tx h 1 threads 2 exec zfs send -R tank@s")).transmit).toEqual({ ...txDefaults, targets: [{ host: "h", port: 1 }], threads: 2, exec: ["zfs", "send", "-R", "tank@s"] });
  });

  test("the flag form: --exec -- CMD, --exec CMD and --exec=CMD, each taking the rest of the line", () => {
    const expected = parseArguments(argv("rx 1 exec zfs recv -F pool/ds"));
    for (const line of ["--port 1 --exec -- zfs recv -F pool/ds", "--port 1 --exec zfs recv -F pool/ds", "--port 1 --exec=zfs recv -F pool/ds", "rx 1 exec -- zfs recv -F pool/ds"]) {
      expect({ line, parsed: parseArguments(argv(line)) }).toEqual({ line, parsed: expected });
    }
    // Only the first `--` is ours: a second one is the command's.
    expect(parseArguments(argv("--port 1 --exec -- -- x")).receive?.exec).toEqual(["--", "x"]);
  });

  test("mistakes name the fix", () => {
    expect(usageError("rx 1 exec")).toBe("exec needs a command: 'exec COMMAND [ARG...]', last on the line");
    expect(usageError("rx 1 --exec --")).toBe("exec needs a command: 'exec COMMAND [ARG...]', last on the line");
    expect(usageError("rx 1 tx h 2 exec cat")).toBe("exec takes the place of one end's stdin or stdout; in full duplex (rx and tx together) pipe a command instead");
    expect(usageError("tx h 2 prbs 1 exec cat")).toBe("prbs and exec both say what tx sends; give one");
    expect(usageError("tx h 2 label a/b")).toBe("label 'a/b': a label may hold only letters, digits and . _ : -");
    expect(usageError(`tx h 2 label ${"x".repeat(129)}`)).toBe(`label '${"x".repeat(129)}': a label is at most 128 bytes`);
    expect(usageError("tx h 2 label h\u00e9")).toBe("label 'h\u00e9': a label may hold only letters, digits and . _ : -");
  });

  test("rx with prbs may exec: the stream is checked on its way to the command", () => {
    expect(parseArguments(argv("rx 1 prbs 7 exec cat")).receive).toEqual({ ...rxDefaults, port: 1, prbsSeed: 7, exec: ["cat"] });
  });
});
