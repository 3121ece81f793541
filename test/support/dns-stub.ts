/**
 * A resolver sandbox: a network namespace whose /etc/resolv.conf points at a
 * stub DNS server on its own loopback, so tests of name resolution never
 * depend on this machine's DNS (which may answer, time out, or not exist).
 *
 * Run as a script (inside the namespace), it is the stub: it listens on UDP
 * 127.0.0.1:53, prints `ready` on stdout, and answers every query with no
 * records and a code chosen by the name:
 *   - a first label `servfail` (servfail.example): SERVFAIL, what a broken or
 *     overloaded resolver says (the resolver library reports EAI_AGAIN);
 *   - anything else: NXDOMAIN (ENOTFOUND), as `.invalid` always is (RFC 6761).
 * Names in the host's /etc/hosts (localhost) still resolve from that file.
 *
 * As a module, `createResolverSandbox()` builds the namespace (`ip netns add`,
 * with /etc/netns/NAME/resolv.conf, which `ip netns exec` mounts over
 * /etc/resolv.conf), starts the stub in it and waits for `ready`; `destroy()`
 * stops the stub by its pid and removes both. Needs root and `ip`;
 * `sandboxUnavailable()` says why not.
 */
import { spawnSync } from "bun";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";

const DNS_PORT = 53;
const RCODE_NXDOMAIN = 3;
const RCODE_SERVFAIL = 2;
/** DNS header: 12 bytes; then the question's name as length-prefixed labels. */
const HEADER_BYTES = 12;

/** The first label of the question's name, lower-cased; "" if the query is malformed. */
function firstLabel(query: Uint8Array): string {
  const length = query[HEADER_BYTES] ?? 0;
  return new TextDecoder().decode(query.subarray(HEADER_BYTES + 1, HEADER_BYTES + 1 + length)).toLowerCase();
}

/** The reply to `query`: its id and question echoed, no records, `rcode`. */
function reply(query: Uint8Array, rcode: number): Uint8Array {
  const out = Uint8Array.from(query);
  out[2] = 0x80 | ((query[2] ?? 0) & 0x01); // a response, recursion desired as asked
  out[3] = 0x80 | rcode; // recursion available
  out.fill(0, 6, HEADER_BYTES); // no answer, authority or additional records
  return out;
}

async function serve(): Promise<void> {
  await Bun.udpSocket({
    hostname: "127.0.0.1",
    port: DNS_PORT,
    socket: {
      data(socket, query, port, address) {
        if (query.length <= HEADER_BYTES) return;
        socket.send(reply(query, firstLabel(query) === "servfail" ? RCODE_SERVFAIL : RCODE_NXDOMAIN), port, address);
      },
    },
  });
  console.log("ready");
}

if (import.meta.main) await serve();

// ---- the sandbox --------------------------------------------------------------------

function run(command: string[]): { ok: boolean; err: string } {
  const result = spawnSync(command, { stdout: "ignore", stderr: "pipe" });
  return { ok: result.exitCode === 0, err: result.stderr.toString().trim() };
}

let probed: string | undefined | null = null;

/** Why the sandbox cannot be built here, or undefined when it can. */
export function sandboxUnavailable(): string | undefined {
  if (probed !== null) return probed;
  probed = (() => {
    if (process.getuid?.() !== 0) return "not root (network namespaces need root)";
    if (!run(["sh", "-c", "command -v ip"]).ok) return "'ip' not found (Debian: iproute2)";
    const name = `vmdns-${process.pid}-probe`;
    const added = run(["ip", "netns", "add", name]);
    if (!added.ok) return `cannot create a network namespace: ${added.err}`;
    run(["ip", "netns", "del", name]);
    return undefined;
  })();
  return probed;
}

export interface ResolverSandbox {
  /** For `ip netns exec` (the spawn helpers' `netns` option). */
  namespace: string;
  destroy(): Promise<void>;
}

let created = 0;

export async function createResolverSandbox(): Promise<ResolverSandbox> {
  const namespace = `vmdns-${process.pid}-${++created}`;
  const etc = `/etc/netns/${namespace}`;
  let stub: Bun.Subprocess<"ignore", "pipe", "pipe"> | undefined;
  const destroy = async (): Promise<void> => {
    if (stub !== undefined) {
      stub.kill("SIGKILL");
      await stub.exited;
    }
    run(["ip", "netns", "del", namespace]);
    rmSync(etc, { recursive: true, force: true });
  };
  try {
    const added = run(["ip", "netns", "add", namespace]);
    if (!added.ok) throw new Error(`ip netns add ${namespace}: ${added.err}`);
    run(["ip", "-n", namespace, "link", "set", "lo", "up"]);
    mkdirSync(etc, { recursive: true });
    // One quick try: a test of a resolver that does not answer should not wait for glibc's 5 s x 2.
    writeFileSync(`${etc}/resolv.conf`, `nameserver 127.0.0.1\noptions timeout:1 attempts:1\n`);
    stub = Bun.spawn(["ip", "netns", "exec", namespace, process.execPath, import.meta.path], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const reader = stub.stdout.getReader();
    let said = "";
    while (!said.includes("ready")) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`the DNS stub exited before it was ready: ${await new Response(stub.stderr).text()}`);
      said += new TextDecoder().decode(value);
    }
    reader.releaseLock();
  } catch (error) {
    await destroy();
    throw error;
  }
  return { namespace, destroy };
}
