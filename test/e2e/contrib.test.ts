/**
 * End to end, the backup server shipped in contrib/systemd/: the receiver
 * exactly as viamillipede-backup.service starts it (its ExecStart, with the
 * key file and the command's path moved to a temporary directory) and
 * viamillipede-zfs-recv as its command, with a stand-in `zfs` first on PATH
 * (there is no ZFS here): it records its arguments and what it reads.
 *
 * Proves: the unit's command line is accepted as written; a sender's
 * `label tank-ds ... exec zfs send ...` reaches `zfs recv -s -u backup/tank-ds`
 * with the whole stream, both ends exit 0; a sender without a label is turned
 * down by the script (exit 14 at the sender, with the script's message); and
 * SIGTERM stops the server with exit 0, as `systemctl stop` does.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXIT_CODES } from "../../src/errors.ts";
import { killLeftovers, makeInput, makeTempDir, ROOT, sha256, startReceiver, startTransmitter, within, type Input } from "../support/spawn.ts";
import { MIB } from "../support/sizes.ts";

const UNIT = join(ROOT, "contrib/systemd/viamillipede-backup.service");
const RECV_SCRIPT = join(ROOT, "contrib/systemd/viamillipede-zfs-recv");
const DEADLINE_MS = 30_000;

afterEach(killLeftovers);

let temp: ReturnType<typeof makeTempDir>;
let input: Input;
let env: Record<string, string>;
let keyFile: string;
beforeAll(async () => {
  temp = makeTempDir("contrib");
  input = await makeInput(temp.path, 12 * MIB + 77, "zfs stand-in");
  keyFile = join(temp.path, "backup.key");
  writeFileSync(keyFile, crypto.getRandomValues(new Uint8Array(32)));
  // `zfs recv -s -u POOL/NAME` stores stdin and its arguments; `zfs send ... FILE` writes FILE.
  const bin = join(temp.path, "bin");
  Bun.spawnSync(["mkdir", "-p", bin]);
  writeFileSync(
    join(bin, "zfs"),
    `#!/bin/sh
case "$1" in
  recv) out="$ZFS_OUT/$(echo "$4" | tr / _)"; echo "$*" > "$out.args"; cat > "$out.stream"; echo "received stream for $4" >&2 ;;
  send) cat "$ZFS_SEND_FILE" ;;
  *) echo "zfs stand-in: $1?" >&2; exit 2 ;;
esac
`,
  );
  chmodSync(join(bin, "zfs"), 0o755);
  env = { PATH: `${bin}:${process.env.PATH}`, ZFS_OUT: temp.path, ZFS_SEND_FILE: input.path };
});
afterAll(() => temp.remove());

/** The unit's ExecStart, its port 0 and its files in the temporary directory. */
function execStart(): string[] {
  const line = /^ExecStart=(.*)$/m.exec(readFileSync(UNIT, "utf8"))?.[1];
  if (line === undefined) throw new Error(`${UNIT} has no ExecStart`);
  const [program, ...args] = line.split(/\s+/);
  expect(program).toBe("/usr/local/bin/viamillipede");
  return args.map((word) => (word === "8834" ? "0" : word === "/etc/viamillipede/backup.key" ? keyFile : word === "/usr/local/libexec/viamillipede-zfs-recv" ? RECV_SCRIPT : word));
}

test(
  "the unit's receiver and its zfs recv script: a labelled send arrives whole in backup/<label>, an unlabelled one is turned down, SIGTERM stops it with 0",
  async () => {
    const args = execStart();
    expect(args.slice(0, 5)).toEqual(["rx", "0", "serve", "sessions", "4"]);
    const receiver = await startReceiver(args, { env });
    const send = (label: string[]) =>
      startTransmitter(["tx", "127.0.0.1", `${receiver.port}`, "key", keyFile, ...label, "exec", "zfs", "send", "-R", "tank/ds@snap"], { empty: true }, { env });

    const good = await within(DEADLINE_MS, "the labelled send", send(["label", "tank-ds"]).done());
    expect({ exit: good.exitCode, stderr: good.stderr }).toMatchObject({ exit: 0 });
    expect(readFileSync(join(temp.path, "backup_tank-ds.args"), "utf8")).toBe("recv -s -u backup/tank-ds\n");
    expect(sha256(readFileSync(join(temp.path, "backup_tank-ds.stream")))).toBe(input.sha256);

    const unlabelled = await within(DEADLINE_MS, "the unlabelled send", send([]).done());
    expect(unlabelled.exitCode).toBe(EXIT_CODES.consumerFailed);
    expect(unlabelled.stderr).toMatch(/viamillipede: on 127\.0\.0\.1, .*viamillipede-zfs-recv.* exited 2: .*the sender must name the transfer: label NAME/);

    receiver.proc.kill("SIGTERM");
    const served = await within(DEADLINE_MS, "the server's exit after SIGTERM", receiver.done());
    expect(served.exitCode).toBe(0);
  },
  DEADLINE_MS * 3,
);
