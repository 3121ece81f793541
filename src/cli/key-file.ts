/**
 * Where the pre-shared key comes from: `key FILE` (or `--key FILE`), else the
 * file named by VIAMILLIPEDE_KEY_FILE, else the text of VIAMILLIPEDE_KEY.
 * The key is the file's bytes exactly as stored (a trailing newline is part
 * of it), or the UTF-8 bytes of VIAMILLIPEDE_KEY; at least MIN_KEY_BYTES.
 * Make one with `head -c 32 /dev/urandom > viamillipede.key` and copy it to
 * both ends.
 *
 * The file's size is checked before it is read. Each role of the Invocation
 * gets `key` filled in; `encrypt` without any key is a usage error.
 */
import { readFileSync, statSync } from "node:fs";
import { VmError } from "../errors.ts";
import type { CommonOptions, Invocation } from "../options.ts";
import { MAX_KEY_BYTES, MIN_KEY_BYTES } from "../protocol/keys.ts";

export const KEY_FILE_VARIABLE = "VIAMILLIPEDE_KEY_FILE";
export const KEY_VARIABLE = "VIAMILLIPEDE_KEY";

function usage(message: string): VmError {
  return new VmError("usage", message);
}

function checkedLength(bytes: number, what: string): void {
  if (bytes < MIN_KEY_BYTES) {
    throw usage(`${what} holds ${bytes} bytes; a key needs at least ${MIN_KEY_BYTES} (make one: head -c 32 /dev/urandom > viamillipede.key)`);
  }
  if (bytes > MAX_KEY_BYTES) throw usage(`${what} holds ${bytes} bytes; a key has at most ${MAX_KEY_BYTES} (is it the right file?)`);
}

function readKeyFile(path: string, what: string): Uint8Array {
  let size: number;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw usage(`${what} ${path} is not a regular file`);
    size = stat.size;
  } catch (error) {
    if (error instanceof VmError) throw error;
    throw usage(`cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  checkedLength(size, `${what} ${path}`);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (error) {
    throw usage(`cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  checkedLength(bytes.length, `${what} ${path}`);
  return bytes;
}

/** The key the environment or the command line names, if any. */
export function findKey(keyFile: string | undefined, env: Record<string, string | undefined>): Uint8Array | undefined {
  if (keyFile !== undefined) return readKeyFile(keyFile, "key file");
  const fromFile = env[KEY_FILE_VARIABLE];
  if (fromFile !== undefined && fromFile !== "") return readKeyFile(fromFile, `${KEY_FILE_VARIABLE}`);
  const text = env[KEY_VARIABLE];
  if (text === undefined || text === "") return undefined;
  const bytes = new TextEncoder().encode(text);
  checkedLength(bytes.length, KEY_VARIABLE);
  return bytes;
}

/** Fills in each role's `key`; throws VmError("usage") for an unusable key or `encrypt` without one. */
export function loadKeys(invocation: Invocation, env: Record<string, string | undefined>): void {
  const roles: CommonOptions[] = [invocation.receive, invocation.transmit].filter((role): role is NonNullable<typeof role> => role !== undefined);
  // Both roles of one command line share the keyword, so one read serves both.
  const key = roles.length === 0 ? undefined : findKey(roles[0]!.keyFile, env);
  for (const role of roles) {
    if (key !== undefined) role.key = key;
    if (role.encrypt && key === undefined) {
      throw usage(`encrypt needs a key on both ends: 'key FILE', or ${KEY_FILE_VARIABLE}=FILE in the environment`);
    }
  }
}
