/**
 * Conformance: the protocol as an implementation we did not write in TypeScript sees it.
 * `bun run conformance` runs this file; it is not part of `bun test`.
 *
 *  1. Build the C peer (test/conformance/peer.c) from protocol/viamillipede.x: `rpcgen -h` and
 *     `rpcgen -c` make the XDR routines, gcc links them with libtirpc; natively, and for s390x
 *     (big-endian) with s390x-linux-gnu-gcc, statically, against a libtirpc sysroot unpacked from
 *     Debian's s390x packages (s390x-sysroot.sh), to run under qemu-s390x. Everything goes to
 *     build/conformance/ (git-ignored).
 *  2. Golden frames, on each peer: the C peer decodes the bytes TypeScript encodes for every vector
 *     of test/protocol/golden-frames.ts to the same value, encodes that value to the same bytes,
 *     and TypeScript decodes the C bytes back to the value; both refuse the same malformed input;
 *     the C peer (the xxHash reference code) computes the golden foot's seed and CHECKSUM_XXH3_64
 *     as protocol/README.md's worked example gives them, and footChecksum agrees.
 *  3. Interop, on each peer, over loopback with ports from the OS: the real CLI
 *     (`bun src/cli/main.ts`) transmits to the C receiver and receives from the C transmitter,
 *     a few MiB over 3 connections (once in 64 KiB record fragments; once paced so that PING and
 *     PONG go both ways), and an empty stream, compared by sha256. The C peer's closing stats line
 *     shows that every connection joined (the C transmitter's feet went over all of them), none
 *     was lost, and, when paced, heartbeats were answered.
 *     And the two C peers with each other, big-endian against little-endian (no TypeScript
 *     involved).
 *     Protocol version 2 and its capabilities: the C receiver pretending that a command read the
 *     stream (-x/-X) echoes CAP_VERDICT and sends FRAME_VERDICT before its confirmation; the real
 *     transmitter exits 0 when that command exited 0, and 6 with the command's failure otherwise.
 *     The C transmitter's labelled (version 2) hello joins the real receiver, which echoes
 *     CAP_PRODUCER_FAILED, so the C transmitter's failed producer (-P) is told as
 *     ABORT_PRODUCER_FAILED and the receiver exits 10. Against a C receiver answering as version 1
 *     (-1), the real transmitter works as before (it offers the new bits; they are not echoed) and
 *     a labelled hello is refused with REFUSE_VERSION. C to C, across architectures, the same.
 *  4. `N passed, N failed`. Whatever cannot run is reported as `skipped: WHAT because WHY`;
 *     VM_CONFORMANCE_REQUIRE_S390X=1 (set by .ci/run) counts a skipped s390x peer as a failure.
 *     Exit status 1 on any failure.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { EXIT_CODES } from "../../src/errors.ts";
import { footChecksum } from "../../src/protocol/digest.ts";
import { Frame, HelloV2 } from "../../src/protocol/xdr.generated.ts";
import { CHECKSUM_OF_HELLO_FOOT, decodeGolden, encodeGolden, GOLDEN_FRAMES, SEED_OF_HELLO_FOOT } from "../protocol/golden-frames.ts";
import { killLeftovers, makeInput, makeTempDir, ROOT, startReceiver, startTransmitter, within, type Input } from "../support/spawn.ts";

const HERE = import.meta.dir;
const BUILD = join(ROOT, "build", "conformance");
const X_FILE = join(ROOT, "protocol", "viamillipede.x");
const TIRPC_INCLUDE = "/usr/include/tirpc";
const XXHASH_HEADER = "/usr/include/xxhash.h";
const SYSROOT = process.env.VM_S390X_SYSROOT ?? join(BUILD, "s390x-sysroot");
const REQUIRE_S390X = process.env.VM_CONFORMANCE_REQUIRE_S390X === "1";

/** A few MiB: three full 2 MiB feet and a short one whose length needs 3 bytes of XDR padding. */
const INPUT_BYTES = 7 * 1024 * 1024 + 4321;
const CONNECTIONS = 3;
const CHECKPHRASE = "sesame";
/** Each step's deadline; an interop run under qemu takes a few seconds. */
const STEP_DEADLINE_MS = 90_000;
const BUILD_DEADLINE_MS = 180_000;

// ---- reporting -------------------------------------------------------------------------

let passed = 0;
let failed = 0;

function say(line: string): void {
  console.log(line);
}

async function check(name: string, body: () => Promise<void> | void): Promise<boolean> {
  const started = performance.now();
  try {
    await within(STEP_DEADLINE_MS, name, Promise.resolve().then(body));
    passed++;
    say(`ok    ${name} (${Math.round(performance.now() - started)} ms)`);
    return true;
  } catch (error) {
    failed++;
    say(`FAIL  ${name}: ${(error as Error).message}`);
    await killLeftovers();
    return false;
  }
}

function skip(what: string, why: string): void {
  say(`skipped: ${what} because ${why}`);
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

// ---- processes ---------------------------------------------------------------------------

interface Ran {
  exitCode: number | null;
  stdout: Uint8Array;
  stderr: string;
}

const peers = new Set<Bun.Subprocess>();

/** Runs a command to its exit (with a deadline that kills it by pid). */
async function run(cmd: string[], options: { stdin?: Uint8Array | string; cwd?: string; deadlineMs?: number } = {}): Promise<Ran> {
  const proc = Bun.spawn(cmd, {
    cwd: options.cwd ?? ROOT,
    stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  peers.add(proc);
  try {
    const [stdout, stderr, exitCode] = await within(
      options.deadlineMs ?? STEP_DEADLINE_MS,
      cmd.join(" "),
      Promise.all([new Response(proc.stdout).bytes(), new Response(proc.stderr).text(), proc.exited]),
    );
    return { exitCode, stdout, stderr };
  } finally {
    if (proc.exitCode === null) proc.kill("SIGKILL");
    peers.delete(proc);
  }
}

function runOrThrow(what: string, ran: Ran): Ran {
  if (ran.exitCode !== 0) throw new Error(`${what} exited ${ran.exitCode}: ${ran.stderr.trim().split("\n").slice(-6).join(" | ")}`);
  return ran;
}

interface PeerReceiver {
  port: number;
  done(): Promise<{ exitCode: number | null; stderr: string; sha256: string; bytes: number }>;
}

/** Starts `peer rx ...`; resolves with its port once it printed `peer: listening on port N`. */
async function startPeerReceiver(cmd: string[]): Promise<PeerReceiver> {
  const proc = Bun.spawn(cmd, { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  peers.add(proc);
  void proc.exited.finally(() => peers.delete(proc));
  let stderr = "";
  let announce!: (port: number) => void;
  const announced = new Promise<number>((resolve) => (announce = resolve));
  const stderrDone = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) {
      stderr += decoder.decode(chunk, { stream: true });
      const match = /^peer: listening on port (\d+)$/m.exec(stderr);
      if (match) announce(Number(match[1]));
    }
    return stderr;
  })();
  const stdoutDone = (async () => {
    const hasher = new Bun.CryptoHasher("sha256");
    let bytes = 0;
    for await (const chunk of proc.stdout) {
      hasher.update(chunk);
      bytes += chunk.length;
    }
    return { sha256: hasher.digest("hex"), bytes };
  })();
  const outcome = (async () => {
    const [text, out, exitCode] = await Promise.all([stderrDone, stdoutDone, proc.exited]);
    return { exitCode, stderr: text, ...out };
  })();
  const exitedFirst = outcome.then((o) => {
    throw new Error(`${cmd.join(" ")} exited (${o.exitCode}) before listening: ${o.stderr.trim()}`);
  });
  const port = await within(10_000, "the C receiver's listening line", Promise.race([announced, exitedFirst]));
  return { port, done: () => outcome };
}

async function killPeers(): Promise<void> {
  const left = [...peers];
  for (const proc of left) proc.kill("SIGKILL");
  await Promise.all(left.map((proc) => proc.exited));
}

// ---- 1. building the C peer ----------------------------------------------------------------

interface Peer {
  /** "native" or "s390x". */
  label: string;
  /** The command that runs the peer binary (with qemu in front, for s390x). */
  command: string[];
}

function which(...names: string[]): string | undefined {
  for (const name of names) {
    const found = Bun.which(name);
    if (found !== null) return found;
  }
  return undefined;
}

/** rpcgen's header and XDR routines for the .x, next to a copy of xxhash.h; returns the directory. */
async function generate(): Promise<string> {
  const dir = join(BUILD, "generated");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // rpcgen names the header it #includes after its input, so the copy keeps the .x's name.
  copyFileSync(X_FILE, join(dir, "viamillipede.x"));
  copyFileSync(XXHASH_HEADER, join(dir, "xxhash.h"));
  runOrThrow("rpcgen -h", await run(["rpcgen", "-h", "-o", "viamillipede.h", "viamillipede.x"], { cwd: dir }));
  runOrThrow("rpcgen -c", await run(["rpcgen", "-c", "-o", "viamillipede_xdr.c", "viamillipede.x"], { cwd: dir }));
  return dir;
}

/**
 * Compiles peer.c (warnings are errors) and the generated routines (rpcgen's C has unused
 * variables: warnings off), then links. `link` carries libtirpc and, for s390x, -static.
 */
async function compile(cc: string, generated: string, include: string, out: string, link: string[]): Promise<void> {
  const dir = join(out, "..");
  mkdirSync(dir, { recursive: true });
  const common = ["-O2", "-std=gnu11", `-I${generated}`, `-I${include}`];
  const peerObject = join(dir, "peer.o");
  const xdrObject = join(dir, "viamillipede_xdr.o");
  runOrThrow(`${cc} peer.c`, await run([cc, ...common, "-Wall", "-Wextra", "-Werror", "-c", "-o", peerObject, join(HERE, "peer.c")], { deadlineMs: BUILD_DEADLINE_MS }));
  runOrThrow(`${cc} viamillipede_xdr.c`, await run([cc, ...common, "-w", "-c", "-o", xdrObject, join(generated, "viamillipede_xdr.c")], { deadlineMs: BUILD_DEADLINE_MS }));
  runOrThrow(`${cc} link`, await run([cc, "-o", out, peerObject, xdrObject, ...link], { deadlineMs: BUILD_DEADLINE_MS }));
}

/** The peer binary's ELF header: 2 = big-endian (EI_DATA), 22 = EM_S390 (e_machine, in the file's byte order). */
function elfHeader(path: string): { bigEndian: boolean; machine: number } {
  const header = readFileSync(path).subarray(0, 20);
  const bigEndian = header[5] === 2;
  const view = new DataView(header.buffer, header.byteOffset, header.length);
  return { bigEndian, machine: view.getUint16(18, !bigEndian) };
}

async function peerInfo(peer: Peer): Promise<string> {
  const ran = runOrThrow(`${peer.label} peer info`, await run([...peer.command, "info"]));
  return (JSON.parse(new TextDecoder().decode(ran.stdout)) as { byte_order: string }).byte_order;
}

async function buildPeers(): Promise<Peer[]> {
  const missing = [
    ["rpcgen", which("rpcgen") !== undefined, "apt: rpcsvc-proto"],
    ["gcc", which("gcc") !== undefined, "apt: gcc"],
    [`${TIRPC_INCLUDE}/rpc/rpc.h`, existsSync(join(TIRPC_INCLUDE, "rpc", "rpc.h")), "apt: libtirpc-dev"],
    [XXHASH_HEADER, existsSync(XXHASH_HEADER), "apt: libxxhash-dev"],
  ].filter(([, present]) => !present);
  if (missing.length > 0) {
    const why = missing.map(([what, , hint]) => `${what} is missing (${hint})`).join(", ");
    skip("the C peer (native and s390x): every conformance check", why);
    if (REQUIRE_S390X) failed++;
    return [];
  }
  mkdirSync(BUILD, { recursive: true });
  const peers: Peer[] = [];
  let generated: string;
  try {
    generated = await generate();
  } catch (error) {
    failed++;
    say(`FAIL  rpcgen on protocol/viamillipede.x: ${(error as Error).message}`);
    return [];
  }

  await check("native: the C peer builds from the .x (rpcgen -h -c, gcc, libtirpc)", async () => {
    const out = join(BUILD, "native", "peer");
    await compile("gcc", generated, TIRPC_INCLUDE, out, ["-ltirpc"]);
    peers.push({ label: "native", command: [out] });
  });

  const s390x = await s390xToolchain();
  if (typeof s390x === "string") {
    skip("s390x (big-endian) peer", s390x);
    if (REQUIRE_S390X) {
      failed++;
      say("FAIL  s390x: required (VM_CONFORMANCE_REQUIRE_S390X=1) but skipped");
    }
    return peers;
  }
  await check("s390x: the C peer cross-compiles from the .x (s390x-linux-gnu-gcc -static, libtirpc.a from Debian s390x)", async () => {
    const out = join(BUILD, "s390x", "peer");
    await compile(s390x.cc, generated, join(SYSROOT, "usr", "include", "tirpc"), out, ["-static", join(SYSROOT, "usr", "lib", "s390x-linux-gnu", "libtirpc.a")]);
    const elf = elfHeader(out);
    assert(elf.bigEndian && elf.machine === 22, `the binary is not big-endian s390x (ELF data ${elf.bigEndian ? "MSB" : "LSB"}, machine ${elf.machine})`);
    const peer = { label: "s390x", command: [s390x.qemu, out] };
    const order = await peerInfo(peer);
    assert(order === "big-endian", `under ${s390x.qemu} the peer reports ${order}`);
    peers.push(peer);
  });
  return peers;
}

/** The cross compiler, qemu and the sysroot (made on demand), or why they are not available. */
async function s390xToolchain(): Promise<{ cc: string; qemu: string } | string> {
  const cc = which("s390x-linux-gnu-gcc");
  if (cc === undefined) return "s390x-linux-gnu-gcc is not installed (apt: gcc-s390x-linux-gnu)";
  const qemu = which("qemu-s390x-static", "qemu-s390x");
  if (qemu === undefined) return "qemu-s390x-static is not installed (apt: qemu-user-static)";
  if (!existsSync(join(SYSROOT, ".complete"))) {
    say(`conformance: making the s390x libtirpc sysroot in ${SYSROOT} (test/conformance/s390x-sysroot.sh)`);
    const ran = await run(["bash", join(HERE, "s390x-sysroot.sh"), SYSROOT], { deadlineMs: BUILD_DEADLINE_MS });
    if (ran.exitCode !== 0) {
      const reason = ran.stderr.trim().split("\n").filter((line) => line.startsWith("s390x-sysroot:")).pop();
      return `no libtirpc for s390x: ${reason ?? `s390x-sysroot.sh exited ${ran.exitCode}`}`;
    }
  }
  return { cc, qemu };
}

// ---- 2. golden frames ----------------------------------------------------------------------

const SCHEMAS = { Hello: "hello", HelloV2: "hello_v2", HelloReply: "hello_reply", Frame: "frame" } as const;

const zeros = (bytes: number) => "00".repeat(bytes);

/** Malformed encodings both implementations must refuse (js-xdr's cases in golden.test.ts, and version 2's limits). */
const MALFORMED: { name: string; schema?: "hello_v2"; hex: string }[] = [
  { name: "an unknown union discriminant", hex: "0000000b0000000000000005" },
  { name: "truncated input", hex: "000000040000000000" },
  { name: "trailing bytes", hex: "00000004000000000000000500000000" },
  { name: "a string above its maximum", hex: `0000000900000001${(257).toString(16).padStart(8, "0")}` },
  { name: "an array above its maximum", hex: `00000003000000000000000500000041${"0000000000000001".repeat(65)}` },
  // FRAME_VERDICT, empty command, CONSUMER_NONE, a stderr tail of MAX_STDERR_TAIL_BYTES + 1.
  { name: "a verdict's stderr tail above MAX_STDERR_TAIL_BYTES", hex: `0000000a000000000000000000000801${zeros(2052)}` },
  // FRAME_VERDICT, empty command, CONSUMER_SIGNALLED with a 33-byte name.
  { name: "a verdict's signal name above MAX_SIGNAL_NAME_BYTES", hex: `0000000a000000000000000200000021${"53".repeat(33)}${zeros(3)}00000000` },
  { name: "an unknown consumer state", hex: "0000000a000000000000000300000000" },
  // hello_v2: magic, version 2, session id, empty checkphrase, foot size, capabilities, connection id, a 129-byte label.
  { name: "a hello_v2 label above MAX_LABEL_BYTES", schema: "hello_v2", hex: `564d503100000002${zeros(8)}${zeros(4)}00001000${zeros(8)}00000081${"61".repeat(129)}${zeros(3)}` },
];

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** A TypeScript value as the C peer prints it: .x field names, hypers as decimal strings, bytes as hex. */
function canonical(value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return hex(value);
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), canonical(item)]),
    );
  }
  return value;
}

interface GoldenAnswer {
  ok: boolean;
  error?: string;
  value?: unknown;
  hex?: string;
  seed?: string;
  checksum?: string;
}

async function askGolden(peer: Peer, lines: string[]): Promise<GoldenAnswer[]> {
  const ran = runOrThrow(`${peer.label} peer golden`, await run([...peer.command, "golden"], { stdin: `${lines.join("\n")}\n` }));
  const answers = new TextDecoder().decode(ran.stdout).trim().split("\n").map((line) => JSON.parse(line) as GoldenAnswer);
  assert(answers.length === lines.length, `asked ${lines.length} questions, got ${answers.length} answers`);
  return answers;
}

/** Golden frames and the golden foot's checksum on `peer`; false when the peer could not answer. */
async function goldenChecks(peer: Peer): Promise<boolean> {
  const vectors = GOLDEN_FRAMES.map((v) => ({ v, bytes: encodeGolden(v) }));
  let answers: GoldenAnswer[];
  try {
    answers = await askGolden(peer, [
      ...vectors.map(({ v, bytes }) => `${SCHEMAS[v.schema]} ${hex(bytes)}`),
      ...MALFORMED.map((m) => `${m.schema ?? "frame"} ${m.hex}`),
    ]);
  } catch (error) {
    failed++;
    say(`FAIL  ${peer.label}: golden frames: ${(error as Error).message}`);
    return false;
  }
  for (const [i, { v, bytes }] of vectors.entries()) {
    const answer = answers[i]!;
    await check(`${peer.label}: golden "${v.name}": C decodes TypeScript's bytes to the value, encodes it to the same bytes, TypeScript decodes them`, () => {
      assert(hex(bytes).replace(/(.{8})(?!$)/g, "$1 ") === v.hex, "TypeScript's own encoding is not the golden hex (see test/protocol/golden.test.ts)");
      assert(answer.ok, `the C peer refused the bytes: ${answer.error}`);
      const expected = JSON.stringify(canonical(v.value));
      assert(Bun.deepEquals(answer.value, canonical(v.value)), `C decoded ${JSON.stringify(answer.value)}, expected ${expected}`);
      assert(answer.hex === hex(bytes), `C encoded ${answer.hex}, TypeScript ${hex(bytes)}`);
      const back = decodeGolden(v, Buffer.from(answer.hex!, "hex"));
      assert(JSON.stringify(canonical(back)) === expected, `TypeScript decoded the C bytes to ${JSON.stringify(canonical(back))}`);
    });
  }
  for (const [i, m] of MALFORMED.entries()) {
    const answer = answers[vectors.length + i]!;
    await check(`${peer.label}: malformed ${m.schema ?? "frame"}, ${m.name}: refused by C and by TypeScript`, () => {
      assert(!answer.ok, `the C peer accepted it as ${JSON.stringify(answer.value)}`);
      let refused = false;
      try {
        (m.schema === "hello_v2" ? HelloV2 : Frame).decode(Buffer.from(m.hex, "hex"));
      } catch {
        refused = true;
      }
      assert(refused, "TypeScript accepted it");
    });
  }

  // CHECKSUM_XXH3_64 of the golden foot: the C peer (the xxHash reference code) against footChecksum.
  const footIndex = GOLDEN_FRAMES.findIndex((v) => v.schema === "Frame" && v.value.kind === 1 && "foot" in v.value && v.value.foot.header.sum.kind === 1);
  const golden = GOLDEN_FRAMES[footIndex]!;
  const answer = answers[footIndex]!;
  const foot = golden.schema === "Frame" && "foot" in golden.value ? golden.value.foot : undefined;
  await check(`${peer.label}: CHECKSUM_XXH3_64 of the golden foot: the C peer's seed and checksum are the worked example's, and TypeScript's footChecksum agrees`, () => {
    assert(foot !== undefined && answer.seed !== undefined && answer.checksum !== undefined, "the C peer gave no seed or checksum for the golden foot");
    const [seed, spec] = [BigInt(answer.seed), BigInt(answer.checksum)];
    const ours = footChecksum(foot.header.footId, foot.header.streamOffset, foot.payload, foot.header.length);
    assert(seed === SEED_OF_HELLO_FOOT, `C seed 0x${seed.toString(16)}, worked example 0x${SEED_OF_HELLO_FOOT.toString(16)} (the low 32 bits of XXH3-64 of the header words)`);
    assert(spec === CHECKSUM_OF_HELLO_FOOT, `C checksum 0x${spec.toString(16)}, golden CHECKSUM_OF_HELLO_FOOT 0x${CHECKSUM_OF_HELLO_FOOT.toString(16)}`);
    assert(ours === spec, `TypeScript footChecksum 0x${ours.toString(16)}, C (spec) 0x${spec.toString(16)}`);
  });
  return true;
}

// ---- 3. interop ------------------------------------------------------------------------------

interface PeerStats {
  connectionsJoined: number;
  feetByConnection: number[];
  pingsAnswered: number;
  pongsReceived: number;
  connectionsLost: number;
}

/** The C peer's closing "stats:" line (see peer.c, print_stats). */
function peerStats(stderr: string): PeerStats {
  const match = /stats: connections joined (\d+); feet per connection ([\d,]*); pings answered (\d+); pongs received (\d+); connections lost (\d+)$/m.exec(stderr);
  if (match === null) throw new Error(`the C peer printed no stats line: ${stderr.trim()}`);
  return {
    connectionsJoined: Number(match[1]),
    feetByConnection: match[2] === "" ? [] : match[2]!.split(",").map(Number),
    pingsAnswered: Number(match[3]),
    pongsReceived: Number(match[4]),
    connectionsLost: Number(match[5]),
  };
}

/** What a run must show besides identical bytes. */
interface Expect {
  /** At least this many connections joined (an empty stream may be confirmed before all do). */
  joined: number;
  /**
   * At least this many connections carried feet. The C transmitter deals feet round robin; the
   * Bun transmitter may put a short stream on one connection, so from it we ask for one.
   */
  carrying: number;
  /** Both ends exchanged heartbeats: the C peer answered pings and got pongs back. */
  heartbeats: boolean;
}

function checkStats(stderr: string, expect: Expect): void {
  const stats = peerStats(stderr);
  const carrying = stats.feetByConnection.filter((feet) => feet > 0).length;
  assert(stats.connectionsJoined >= expect.joined, `${stats.connectionsJoined} connection(s) joined, expected ${expect.joined}`);
  assert(carrying >= expect.carrying, `feet went over ${carrying} connection(s) (${stats.feetByConnection.join(",")}), expected at least ${expect.carrying}`);
  assert(stats.connectionsLost === 0, `${stats.connectionsLost} connection(s) were lost`);
  if (expect.heartbeats) {
    assert(stats.pingsAnswered > 0 && stats.pongsReceived > 0, `no heartbeats: ${stats.pingsAnswered} pings answered, ${stats.pongsReceived} pongs received`);
  }
}

/** A short stream from Bun may be confirmed before its last dial lands; the paced run asks for all. */
const FROM_BUN: Expect = { joined: 1, carrying: 1, heartbeats: false };
const FROM_C: Expect = { joined: CONNECTIONS, carrying: CONNECTIONS, heartbeats: false };
const NOTHING: Expect = { joined: 1, carrying: 0, heartbeats: false };
/**
 * One foot per 300 ms with a 1 s timeout on both ends (pings every 250 ms): the run lasts long
 * enough for PING and PONG to go both ways, and a wrong answer would cost a connection.
 */
const PACED = { peer: ["-p", "300", "-t", "1"], bun: ["timeout", "1"] };

/** The real CLI transmits to the C receiver. */
async function bunToC(peer: Peer, input: Input, expect: Expect, peerArgs: string[] = [], bunArgs: string[] = []): Promise<void> {
  const rx = await startPeerReceiver([...peer.command, "rx", "-c", CHECKPHRASE, ...peerArgs]);
  const tx = startTransmitter(["tx", "127.0.0.1", String(rx.port), "threads", String(CONNECTIONS), "checkphrase", CHECKPHRASE, ...bunArgs], { file: input.path });
  const [sent, received] = await Promise.all([tx.done(), rx.done()]);
  assert(sent.exitCode === 0, `bun tx exited ${sent.exitCode}: ${sent.stderr.trim()}`);
  assert(received.exitCode === 0, `C rx exited ${received.exitCode}: ${received.stderr.trim()}`);
  assert(received.bytes === input.bytes && received.sha256 === input.sha256, `C rx wrote ${received.bytes} bytes, sha256 ${received.sha256}; sent ${input.bytes}, ${input.sha256}`);
  checkStats(received.stderr, expect);
}

/** The C transmitter sends to the real CLI's receiver. */
async function cToBun(peer: Peer, input: Input, expect: Expect, peerArgs: string[] = [], bunArgs: string[] = []): Promise<void> {
  const rx = await startReceiver(["rx", "0", "checkphrase", CHECKPHRASE, ...bunArgs]);
  const tx = run([...peer.command, "tx", "127.0.0.1", String(rx.port), "-n", String(CONNECTIONS), "-c", CHECKPHRASE, ...peerArgs], {
    stdin: input.bytes === 0 ? "" : new Uint8Array(readFileSync(input.path)),
  });
  const [sent, received] = await Promise.all([tx, rx.done()]);
  assert(sent.exitCode === 0, `C tx exited ${sent.exitCode}: ${sent.stderr.trim()}`);
  assert(received.exitCode === 0, `bun rx exited ${received.exitCode}: ${received.stderr.trim()}`);
  assert(received.stdoutBytes === input.bytes && received.stdoutSha256 === input.sha256, `bun rx wrote ${received.stdoutBytes} bytes, sha256 ${received.stdoutSha256}; sent ${input.bytes}, ${input.sha256}`);
  checkStats(sent.stderr, expect);
}

/** C to C across architectures, with the checksum exactly as viamillipede.x defines it. */
async function cToC(txPeer: Peer, rxPeer: Peer, input: Input): Promise<void> {
  const rx = await startPeerReceiver([...rxPeer.command, "rx", "-c", CHECKPHRASE]);
  const tx = run([...txPeer.command, "tx", "127.0.0.1", String(rx.port), "-n", String(CONNECTIONS), "-c", CHECKPHRASE], {
    stdin: new Uint8Array(readFileSync(input.path)),
  });
  const [sent, received] = await Promise.all([tx, rx.done()]);
  assert(sent.exitCode === 0, `C tx exited ${sent.exitCode}: ${sent.stderr.trim()}`);
  assert(received.exitCode === 0, `C rx exited ${received.exitCode}: ${received.stderr.trim()}`);
  assert(received.bytes === input.bytes && received.sha256 === input.sha256, `C rx wrote ${received.bytes} bytes, sha256 ${received.sha256}`);
  checkStats(sent.stderr, FROM_C);
}

/** Exit status and stderr of a run that is expected to fail, for the version 2 checks. */
function lastLines(stderr: string): string {
  return stderr.trim().split("\n").slice(-4).join(" | ");
}

/** The real CLI transmits to a C receiver whose pretend command ended as `peerArgs` say (-x/-X/-e); returns tx's outcome. */
async function bunToCommand(peer: Peer, input: Input, peerArgs: string[]) {
  const rx = await startPeerReceiver([...peer.command, "rx", "-c", CHECKPHRASE, ...peerArgs]);
  const tx = startTransmitter(["tx", "127.0.0.1", String(rx.port), "threads", String(CONNECTIONS), "checkphrase", CHECKPHRASE], { file: input.path });
  const [sent, received] = await Promise.all([tx.done(), rx.done()]);
  assert(received.exitCode === 0, `C rx exited ${received.exitCode}: ${lastLines(received.stderr)}`);
  assert(received.sha256 === input.sha256, `C rx wrote ${received.bytes} bytes, sha256 ${received.sha256}`);
  assert(/^peer rx: sent the verdict on connection \d+$/m.test(received.stderr), `the C receiver sent no verdict: ${lastLines(received.stderr)}`);
  return sent;
}

/** A C transmitter (with `txArgs`) against a C receiver (with `rxArgs`), both to their exit. */
async function cToCWith(txPeer: Peer, rxPeer: Peer, input: Input, txArgs: string[], rxArgs: string[]) {
  const rx = await startPeerReceiver([...rxPeer.command, "rx", "-c", CHECKPHRASE, ...rxArgs]);
  const tx = run([...txPeer.command, "tx", "127.0.0.1", String(rx.port), "-n", String(CONNECTIONS), "-c", CHECKPHRASE, ...txArgs], {
    stdin: new Uint8Array(readFileSync(input.path)),
  });
  const [sent, received] = await Promise.all([tx, rx.done()]);
  return { sent, received };
}

async function version2(peer: Peer, inputs: { big: Input; empty: Input }): Promise<void> {
  await check(`${peer.label}: version 2: Bun tx -> C rx whose command exited 0: CAP_VERDICT echoed, verdict then confirmation, tx exits 0`, async () => {
    const sent = await bunToCommand(peer, inputs.big, ["-x", "0"]);
    assert(sent.exitCode === 0, `bun tx exited ${sent.exitCode}: ${lastLines(sent.stderr)}`);
  });
  await check(`${peer.label}: version 2: Bun tx -> C rx whose command exited 3: every byte arrived, tx exits 14 (consumerFailed) with the command's failure`, async () => {
    const sent = await bunToCommand(peer, inputs.big, ["-x", "3", "-e", "reading the stream\ncannot receive: out of space\n"]);
    assert(sent.exitCode === EXIT_CODES.consumerFailed, `bun tx exited ${sent.exitCode}, not ${EXIT_CODES.consumerFailed}: ${lastLines(sent.stderr)}`);
    const line = "viamillipede: on 127.0.0.1, 'peer-consumer' exited 3: cannot receive: out of space";
    assert(sent.stderr.split("\n").includes(line), `bun tx did not say "${line}": ${lastLines(sent.stderr)}`);
  });
  await check(`${peer.label}: version 2: Bun tx -> C rx whose command was killed by SIGPIPE: tx exits 14 and names the signal`, async () => {
    const sent = await bunToCommand(peer, inputs.empty, ["-X", "SIGPIPE"]);
    assert(sent.exitCode === EXIT_CODES.consumerFailed && sent.stderr.includes("'peer-consumer' was killed by SIGPIPE"), `bun tx exited ${sent.exitCode}: ${lastLines(sent.stderr)}`);
  });
  await check(`${peer.label}: version 2: C tx's labelled hello -> Bun rx: joined, no verdict promised (no command), sha256 identical`, async () => {
    await cToBun(peer, inputs.big, FROM_C, ["-l", "host-1:tank.home"]);
  });
  await check(`${peer.label}: version 2: C tx's producer fails -> Bun rx: told ABORT_PRODUCER_FAILED (negotiated), rx exits 13 (producerFailed) saying why`, async () => {
    const rx = await startReceiver(["rx", "0", "checkphrase", CHECKPHRASE]);
    const tx = run([...peer.command, "tx", "127.0.0.1", String(rx.port), "-n", String(CONNECTIONS), "-c", CHECKPHRASE, "-P"], {
      stdin: new Uint8Array(readFileSync(inputs.big.path)),
    });
    const [sent, received] = await Promise.all([tx, rx.done()]);
    assert(sent.exitCode === 7, `C tx exited ${sent.exitCode}, not 7: ${lastLines(sent.stderr)}`);
    assert(/told connection \d+: ABORT_PRODUCER_FAILED/.test(sent.stderr) && !sent.stderr.includes("ABORT_INPUT"), `C tx: ${lastLines(sent.stderr)}`);
    assert(received.exitCode === EXIT_CODES.producerFailed, `bun rx exited ${received.exitCode}, not ${EXIT_CODES.producerFailed}: ${lastLines(received.stderr)}`);
    assert(received.stderr.includes("the transmitter aborted, so the stream is incomplete: producer exited 1 after"), `bun rx: ${lastLines(received.stderr)}`);
  });
  await check(`${peer.label}: version 1 receiver (C rx -1): Bun tx offers the new bits, none is echoed, the transfer is as before`, () =>
    bunToC(peer, inputs.big, FROM_BUN, ["-1"]),
  );
  await check(`${peer.label}: version 1 receiver (C rx -1): a labelled hello is refused with REFUSE_VERSION; a failed producer is told ABORT_INPUT`, async () => {
    const labelled = await cToCWith(peer, peer, inputs.empty, ["-l", "nightly"], ["-1", "-d", "3"]);
    assert(labelled.sent.exitCode === 4, `C tx exited ${labelled.sent.exitCode}, not 4 (refused): ${lastLines(labelled.sent.stderr)}`);
    assert(labelled.sent.stderr.includes("reason 2: protocol version 2 is not supported; this receiver speaks version 1"), `C tx: ${lastLines(labelled.sent.stderr)}`);
    const failed = await cToCWith(peer, peer, inputs.big, ["-P"], ["-1"]);
    assert(failed.sent.exitCode === 7 && /told connection \d+: ABORT_INPUT/.test(failed.sent.stderr), `C tx exited ${failed.sent.exitCode}: ${lastLines(failed.sent.stderr)}`);
    assert(failed.received.stderr.includes("transmitter aborted (code 4)"), `C rx: ${lastLines(failed.received.stderr)}`);
  });
}

async function interop(peer: Peer, inputs: { big: Input; empty: Input }): Promise<void> {
  const mib = (INPUT_BYTES / 1024 / 1024).toFixed(1);
  const over = `${mib} MiB over ${CONNECTIONS} connections`;
  await check(`${peer.label}: Bun tx -> C rx, ${over}, sha256 identical`, () => bunToC(peer, inputs.big, FROM_BUN));
  await check(`${peer.label}: C tx -> Bun rx, ${over}, sha256 identical`, () => cToBun(peer, inputs.big, FROM_C));
  await check(`${peer.label}: C tx -> Bun rx, ${over}, records in 64 KiB fragments`, () => cToBun(peer, inputs.big, FROM_C, ["-f", "65536"]));
  await check(`${peer.label}: Bun tx -> C rx, paced, heartbeats answered both ways`, () => bunToC(peer, inputs.big, { ...FROM_BUN, joined: CONNECTIONS, heartbeats: true }, [...PACED.peer, "-w", "2"], PACED.bun));
  await check(`${peer.label}: C tx -> Bun rx, paced, heartbeats answered both ways`, () => cToBun(peer, inputs.big, { ...FROM_C, heartbeats: true }, PACED.peer, PACED.bun));
  await check(`${peer.label}: empty stream both ways`, async () => {
    await bunToC(peer, inputs.empty, NOTHING);
    await cToBun(peer, inputs.empty, NOTHING);
  });
}

// ---- 4. the run ------------------------------------------------------------------------------

async function main(): Promise<number> {
  const started = performance.now();
  say("conformance: the C peer from protocol/viamillipede.x against the TypeScript implementation");
  const temp = makeTempDir("conformance");
  try {
    const built = await buildPeers();
    const inputs = { big: await makeInput(temp.path, INPUT_BYTES, "conformance"), empty: await makeInput(temp.path, 0, "empty") };
    for (const peer of built) {
      if (!(await goldenChecks(peer))) {
        skip(`${peer.label}: interop runs`, "the golden checks could not run");
        continue;
      }
      await interop(peer, inputs);
      await version2(peer, inputs);
    }
    const [native, s390x] = [built.find((p) => p.label === "native"), built.find((p) => p.label === "s390x")];
    if (native !== undefined && s390x !== undefined) {
      await check("s390x C tx -> native C rx, checksums as viamillipede.x defines them", () => cToC(s390x, native, inputs.big));
      await check("native C tx -> s390x C rx, checksums as viamillipede.x defines them", () => cToC(native, s390x, inputs.big));
      await check("version 2, s390x C tx (labelled) -> native C rx (command exited 0): label and verdict across byte orders", async () => {
        const { sent, received } = await cToCWith(s390x, native, inputs.big, ["-l", "big-endian:tank"], ["-x", "0", "-e", "done"]);
        assert(sent.exitCode === 0 && received.exitCode === 0, `C tx ${sent.exitCode}: ${lastLines(sent.stderr)}; C rx ${received.exitCode}: ${lastLines(received.stderr)}`);
        assert(/^peer rx: connection \d+: label big-endian:tank$/m.test(received.stderr), `C rx did not print the label: ${lastLines(received.stderr)}`);
        assert(sent.stderr.includes("peer tx: verdict: 'peer-consumer' exited 0 (stderr tail 4 bytes)"), `C tx: ${lastLines(sent.stderr)}`);
      });
      await check("version 2, native C tx (labelled) -> s390x C rx (command killed by SIGTERM): tx exits 6; a failed producer is told ABORT_PRODUCER_FAILED", async () => {
        const killed = await cToCWith(native, s390x, inputs.big, ["-l", "little-endian"], ["-X", "SIGTERM"]);
        assert(killed.sent.exitCode === 6 && killed.sent.stderr.includes("'peer-consumer' was killed by SIGTERM"), `C tx exited ${killed.sent.exitCode}: ${lastLines(killed.sent.stderr)}`);
        const failed = await cToCWith(native, s390x, inputs.big, ["-P"], []);
        assert(failed.sent.exitCode === 7, `C tx exited ${failed.sent.exitCode}: ${lastLines(failed.sent.stderr)}`);
        assert(failed.received.stderr.includes("transmitter aborted (code 7): producer exited 1 after"), `C rx: ${lastLines(failed.received.stderr)}`);
      });
    }
  } catch (error) {
    failed++;
    say(`FAIL  conformance run: ${(error as Error).stack ?? error}`);
  } finally {
    await killPeers();
    await killLeftovers();
    temp.remove();
  }
  say(`conformance: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  say(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

process.exit(await main());
