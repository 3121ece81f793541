/**
 * A two-host test rig: network namespaces `tx` and `rx` joined by three veth
 * links, each shaped on the transmitter's side by tbf to its own rate (netem
 * is not available on these machines; tbf is). Link i is 10.77.i.1 (tx) ↔
 * 10.77.i.2 (rx). Nothing here can reach any other host: the namespaces have
 * no route out.
 *
 * Needs root, `ip` and `tc`; `rigUnavailable()` says why not when it cannot
 * run. `destroy()` removes both namespaces (and with them the links); a rig a
 * crashed run left behind is removed by the next run, and an exiting process
 * removes its own.
 *
 * Its namespace helpers (`run`, `must`, `addNamespace`, `removeStaleNamespaces`, ...) are
 * exported for the WAN rig (wan-rig.ts), which shares this cleanup.
 */
import { spawnSync } from "bun";

export interface RigLink {
  /** 1-based, the user's order of preference. */
  number: number;
  /** The receiver's address on this link. */
  rxAddress: string;
  /** The transmitter side's interface (shaped). */
  txDevice: string;
  mbit: number;
}

export interface Rig {
  /** Namespace names, for `ip netns exec`. */
  txNamespace: string;
  rxNamespace: string;
  links: RigLink[];
  /** Sum of the links' shaped rates, in bytes per second. */
  totalBytesPerSecond: number;
  /** Takes a link down or up on the transmitter's side (`ip link set ... down|up`). */
  setLink(number: number, up: boolean): void;
  /** Bytes each link's transmitter side has sent so far (kernel interface counters). */
  txBytes(): number[];
  destroy(): void;
}

const PREFIX = "vmrig";
let created = 0;
/** Namespaces this process made and has not deleted yet (by this rig or by wan-rig.ts). */
const alive = new Set<string>();

/** Runs a command to its end; `input` goes to its stdin. */
export function run(command: string[], input?: string): { ok: boolean; out: string; err: string } {
  const result = spawnSync(command, { stdin: input === undefined ? "ignore" : Buffer.from(input), stdout: "pipe", stderr: "pipe" });
  return { ok: result.exitCode === 0, out: result.stdout.toString(), err: result.stderr.toString().trim() };
}

/** `run`, throwing with the command and its stderr when it fails. */
export function must(command: string[], input?: string): string {
  const result = run(command, input);
  if (!result.ok) throw new Error(`${command.join(" ")}: ${result.err}`);
  return result.out;
}

export function onPath(tool: string): boolean {
  return run(["sh", "-c", `command -v ${tool}`]).ok;
}

/** Creates namespace `name` with its loopback up; it is deleted at exit unless `deleteNamespace` did it first. */
export function addNamespace(name: string): void {
  must(["ip", "netns", "add", name]);
  alive.add(name);
  must(["ip", "-n", name, "link", "set", "lo", "up"]);
}

export function deleteNamespace(name: string): void {
  if (alive.delete(name)) run(["ip", "netns", "del", name]);
}

let unavailable: string | undefined | null = null;

/** Why the rig cannot be built here, or undefined when it can. */
export function rigUnavailable(): string | undefined {
  if (unavailable !== null) return unavailable;
  unavailable = probe();
  return unavailable;
}

function probe(): string | undefined {
  if (process.getuid?.() !== 0) return "not root (network namespaces need root)";
  for (const tool of ["ip", "tc"]) if (!onPath(tool)) return `'${tool}' not found (Debian: iproute2)`;
  const name = `${PREFIX}-${process.pid}-probe`;
  const added = run(["ip", "netns", "add", name]);
  if (!added.ok) return `cannot create a network namespace: ${added.err}`;
  const shaped = run(["ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "1mbit", "burst", "32kb", "latency", "10ms"]);
  run(["ip", "netns", "del", name]);
  if (!shaped.ok) return `tc tbf is not available: ${shaped.err}`;
  return undefined;
}

/** Removes namespaces named `prefix-PID-...` that processes which no longer exist left behind. */
export function removeStaleNamespaces(prefix: string): void {
  for (const line of run(["ip", "netns", "list"]).out.split("\n")) {
    const match = new RegExp(`^(${prefix}-(\\d+)-\\S+)`).exec(line);
    if (!match) continue;
    const pid = Number(match[2]);
    if (pid === process.pid) continue;
    if (!run(["kill", "-0", String(pid)]).ok) run(["ip", "netns", "del", match[1]!]);
  }
}

process.on("exit", () => {
  for (const name of alive) run(["ip", "netns", "del", name]);
});

/** Builds the rig with the given link rates (Mbit/s, transmitter → receiver), in preference order. */
export function createRig(mbits: readonly number[] = [80, 160, 240]): Rig {
  const reason = rigUnavailable();
  if (reason !== undefined) throw new Error(`netns rig unavailable: ${reason}`);
  removeStaleNamespaces(PREFIX);
  const id = `${PREFIX}-${process.pid}-${++created}`;
  const txNamespace = `${id}-tx`;
  const rxNamespace = `${id}-rx`;
  const links: RigLink[] = [];
  const destroy = (): void => {
    for (const name of [txNamespace, rxNamespace]) deleteNamespace(name);
  };
  try {
    for (const name of [txNamespace, rxNamespace]) addNamespace(name);
    mbits.forEach((mbit, i) => {
      const number = i + 1;
      const txDevice = `vmt${number}`;
      const rxDevice = `vmr${number}`;
      must(["ip", "link", "add", txDevice, "netns", txNamespace, "type", "veth", "peer", "name", rxDevice, "netns", rxNamespace]);
      must(["ip", "-n", txNamespace, "addr", "add", `10.77.${number}.1/24`, "dev", txDevice]);
      must(["ip", "-n", rxNamespace, "addr", "add", `10.77.${number}.2/24`, "dev", rxDevice]);
      must(["ip", "-n", txNamespace, "link", "set", txDevice, "up"]);
      must(["ip", "-n", rxNamespace, "link", "set", rxDevice, "up"]);
      // The burst must hold a full GSO packet (64 KiB) or tbf drops it.
      must(["ip", "netns", "exec", txNamespace, "tc", "qdisc", "add", "dev", txDevice, "root", "tbf", "rate", `${mbit}mbit`, "burst", "128kb", "latency", "20ms"]);
      links.push({ number, rxAddress: `10.77.${number}.2`, txDevice, mbit });
    });
  } catch (error) {
    destroy();
    throw error;
  }
  return {
    txNamespace,
    rxNamespace,
    links,
    totalBytesPerSecond: mbits.reduce((sum, mbit) => sum + (mbit * 1e6) / 8, 0),
    setLink(number, up) {
      const link = links[number - 1];
      if (link === undefined) throw new Error(`no link ${number}`);
      must(["ip", "-n", txNamespace, "link", "set", link.txDevice, up ? "up" : "down"]);
    },
    txBytes() {
      const devices = JSON.parse(must(["ip", "-n", txNamespace, "-s", "-j", "link", "show"])) as Array<{
        ifname: string;
        stats64?: { tx?: { bytes?: number } };
      }>;
      return links.map((link) => devices.find((device) => device.ifname === link.txDevice)?.stats64?.tx?.bytes ?? 0);
    },
    destroy,
  };
}
