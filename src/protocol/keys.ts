/**
 * Keys and sealing: the proofs of the keyed handshake and the AEAD that seals
 * feet. Pure (node:crypto is computation, not I/O); the key never leaves here
 * in any form but an HMAC or a derived key.
 *
 * Handshake (protocol/README.md, "Keys and encryption"):
 *   tx proof = HMAC-SHA256(K, "viamillipede v1 tx proof" || hello || Nr || Nt)
 *   rx proof = HMAC-SHA256(K, "viamillipede v1 rx proof" || hello || Nr || Nt || welcome)
 * where `hello` and `welcome` are the XDR bytes of those messages (so the
 * session id, connection id and capabilities are bound), Nr the receiver's
 * and Nt the transmitter's nonce. The role labels differ, so one side's proof
 * is never a valid proof for the other.
 *
 * Sealing: each keyed connection derives its own foot key,
 *   Kc = HKDF-SHA256(ikm K, salt Nt || Nr, info "viamillipede v1 foot key", 32 bytes),
 * and seals every foot copy it sends with AES-256-GCM under nonce
 * be32(0) || be64(counter), the counter counting copies sent on that
 * connection. Both nonces are fresh per connection, so (Kc, nonce) never
 * repeats, retransmissions included. The foot record up to the payload
 * (frame kind, foot header, payload length word) is the associated data.
 */
import { KEY_NONCE_BYTES, KEY_PROOF_BYTES, SEAL_NONCE_BYTES, SEAL_TAG_BYTES } from "./xdr.generated.ts";

/** Shorter keys are refused: a proof over a guessable key can be brute-forced offline. */
export const MIN_KEY_BYTES = 16;
/** A key file larger than this is a mistake (the wrong file), not a key. */
export const MAX_KEY_BYTES = 4096;
/** Bytes a sealed payload adds to the stream bytes it carries. */
export const SEAL_OVERHEAD_BYTES = SEAL_NONCE_BYTES + SEAL_TAG_BYTES;

const TX_LABEL = new TextEncoder().encode("viamillipede v1 tx proof");
const RX_LABEL = new TextEncoder().encode("viamillipede v1 rx proof");
const FOOT_KEY_INFO = new TextEncoder().encode("viamillipede v1 foot key");
const CIPHER = "aes-256-gcm";

let nodeCrypto: typeof import("node:crypto") | undefined;
/** node:crypto, loaded on first use: it adds 6-7 ms to every start, and only keyed transfers need it. */
function cryptoModule(): typeof import("node:crypto") {
  return (nodeCrypto ??= require("node:crypto") as typeof import("node:crypto"));
}

/** A fresh random nonce for the handshake. */
export function keyNonce(): Uint8Array {
  return new Uint8Array(cryptoModule().randomBytes(KEY_NONCE_BYTES));
}

function hmac(key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array {
  const mac = cryptoModule().createHmac("sha256", key);
  for (const part of parts) mac.update(part);
  return new Uint8Array(mac.digest());
}

/** The transmitter's proof that it holds `key`. */
export function transmitterProof(key: Uint8Array, hello: Uint8Array, receiverNonce: Uint8Array, transmitterNonce: Uint8Array): Uint8Array {
  return hmac(key, [TX_LABEL, hello, receiverNonce, transmitterNonce]);
}

/** The receiver's proof that it holds `key`; it also vouches for the welcome it sends. */
export function receiverProof(
  key: Uint8Array,
  hello: Uint8Array,
  receiverNonce: Uint8Array,
  transmitterNonce: Uint8Array,
  welcome: Uint8Array,
): Uint8Array {
  return hmac(key, [RX_LABEL, hello, receiverNonce, transmitterNonce, welcome]);
}

/** Constant-time comparison of a received proof with the expected one. */
export function proofMatches(received: Uint8Array, expected: Uint8Array): boolean {
  return received.length === KEY_PROOF_BYTES && expected.length === KEY_PROOF_BYTES && cryptoModule().timingSafeEqual(received, expected);
}

/** The connection's foot key (see the header comment). */
export function footKey(key: Uint8Array, transmitterNonce: Uint8Array, receiverNonce: Uint8Array): Uint8Array {
  const salt = new Uint8Array(transmitterNonce.length + receiverNonce.length);
  salt.set(transmitterNonce);
  salt.set(receiverNonce, transmitterNonce.length);
  return new Uint8Array(cryptoModule().hkdfSync("sha256", key, salt, FOOT_KEY_INFO, 32));
}

/** Seals feet for one connection: a counter nonce that never repeats under its key. */
export class FootSealer {
  private counter = 0n;

  constructor(private readonly key: Uint8Array) {}

  /**
   * The payload pieces of a sealed foot: nonce, ciphertext, tag. `aad` is the
   * record's bytes before the payload (see encodeFootRecord).
   */
  seal(aad: Uint8Array, plain: Uint8Array): Uint8Array[] {
    const nonce = new Uint8Array(SEAL_NONCE_BYTES);
    new DataView(nonce.buffer).setBigUint64(4, this.counter++);
    const cipher = cryptoModule().createCipheriv(CIPHER, this.key, nonce, { authTagLength: SEAL_TAG_BYTES });
    cipher.setAAD(aad);
    const body = cipher.update(plain);
    const tail = cipher.final(); // empty for GCM, but part of the contract
    const pieces = [nonce, body];
    if (tail.length > 0) pieces.push(tail);
    pieces.push(cipher.getAuthTag());
    return pieces;
  }
}

/**
 * Opens a sealed payload (nonce || ciphertext || tag) under `key`; returns
 * the plain bytes, or undefined when authentication fails (tampered,
 * truncated, or sealed under another key).
 */
export function openSealed(key: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  if (sealed.length < SEAL_OVERHEAD_BYTES) return undefined;
  const nonce = sealed.subarray(0, SEAL_NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - SEAL_TAG_BYTES);
  try {
    const decipher = cryptoModule().createDecipheriv(CIPHER, key, nonce, { authTagLength: SEAL_TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    const body = decipher.update(sealed.subarray(SEAL_NONCE_BYTES, sealed.length - SEAL_TAG_BYTES));
    const tail = decipher.final();
    return tail.length === 0 ? body : Buffer.concat([body, tail]);
  } catch {
    return undefined;
  }
}
