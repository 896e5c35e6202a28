// Authenticity and secrecy of queue messages (docs/PROTOCOL.md "Authenticity" and "Sealed secrets").
//  - MAC: HMAC-SHA-256 with the per-worker key over a direction label and the canonical JSON of
//    the message without `mac`. Both directions; the label stops a reply being replayed as a command.
//  - Sealing: X25519 ECDH with a fresh ephemeral key → HKDF-SHA-256 → AES-256-GCM, the AAD binding
//    the secret to one command id and one field, so it cannot be moved elsewhere.
// Pure apart from randomness; no I/O.
import {
  createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman,
  generateKeyPairSync, hkdfSync, randomBytes, timingSafeEqual, type KeyObject,
} from 'node:crypto';
import { canonicalJson } from './canonical.ts';
import { MAX_CLOCK_SKEW_SECONDS, MESSAGE_MAX_AGE_SECONDS } from './constants.ts';
import { ProtocolError } from './errors.ts';
import {
  SEALED_ALG, decodeMessage, validateCommand, validateReply,
  type Command, type Message, type Reply, type SealedSecret,
} from './messages.ts';

// ---------------------------------------------------------------- MAC

/** The per-worker key: 32 bytes, base64 on the wire (Run Command protected parameter), or raw bytes. */
export type MacKey = string | Uint8Array;

/** A fresh per-worker key, base64. The controller makes one per worker and keeps it encrypted. */
export function generateMacKey(): string {
  return randomBytes(32).toString('base64');
}

function macKeyBytes(key: MacKey): Buffer {
  const b = typeof key === 'string' ? Buffer.from(key, 'base64') : Buffer.from(key);
  if (b.length !== 32 || (typeof key === 'string' && b.toString('base64') !== key)) {
    throw new ProtocolError('bad-key', 'the worker key must be 32 bytes (base64)');
  }
  return b;
}

type Direction = 'command' | 'reply';
const MAC_LABEL: Record<Direction, string> = {
  command: 'cosmos-backup queue v1 command\n',
  reply: 'cosmos-backup queue v1 reply\n',
};

/** The MAC a message should carry (base64). `mac` itself is left out of the input. */
export function computeMac(direction: Direction, msg: Message | Record<string, unknown>, key: MacKey): string {
  const { mac: _mac, ...rest } = msg as Record<string, unknown>;
  return createHmac('sha256', macKeyBytes(key)).update(MAC_LABEL[direction]).update(canonicalJson(rest)).digest('base64');
}

function sign<T extends Message>(direction: Direction, msg: T, key: MacKey): T {
  return { ...msg, mac: computeMac(direction, msg, key) };
}

export interface VerifyOptions {
  /** the worker this key belongs to; a message for another worker is refused */
  workerId: string;
  /** current time in ms (defaults to Date.now()) */
  now?: number;
  /** replay window (default MESSAGE_MAX_AGE_SECONDS) */
  maxAgeSeconds?: number;
  /** tolerated clock skew into the future (default MAX_CLOCK_SKEW_SECONDS) */
  maxSkewSeconds?: number;
}

function verify<T extends Message>(direction: Direction, msg: T, key: MacKey, opts: VerifyOptions): T {
  const ids = { claimedId: msg.id, kind: msg.kind };
  if (typeof msg.mac !== 'string' || msg.mac === '') {
    throw new ProtocolError('missing-mac', `${direction} ${msg.kind} ${msg.id} carries no MAC`, ids);
  }
  const expected = Buffer.from(computeMac(direction, msg, key));
  const given = Buffer.from(msg.mac);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new ProtocolError('bad-mac', `${direction} ${msg.kind} ${msg.id} has a wrong MAC (forged, altered, or another worker's key)`, ids);
  }
  // Checked after the MAC so that these fields are known to be the sender's.
  if (msg.workerId !== opts.workerId) {
    throw new ProtocolError('wrong-worker', `${direction} ${msg.kind} ${msg.id} is for worker ${msg.workerId}, not ${opts.workerId}`, ids);
  }
  const now = opts.now ?? Date.now();
  const sent = Date.parse(msg.sentAt);
  const maxAge = (opts.maxAgeSeconds ?? MESSAGE_MAX_AGE_SECONDS) * 1000;
  const skew = (opts.maxSkewSeconds ?? MAX_CLOCK_SKEW_SECONDS) * 1000;
  if (!Number.isFinite(sent) || now - sent > maxAge) {
    throw new ProtocolError('expired', `${direction} ${msg.kind} ${msg.id} was sent at ${msg.sentAt}, outside the ${maxAge / 1000} s replay window`, ids);
  }
  if (sent - now > skew) {
    throw new ProtocolError('from-future', `${direction} ${msg.kind} ${msg.id} is dated ${msg.sentAt}, ahead of this clock by more than ${skew / 1000} s`, ids);
  }
  return msg;
}

/** A copy of the command with its `mac` set. */
export function signCommand<T extends Command>(cmd: T, key: MacKey): T {
  return sign('command', cmd, key);
}
/** Returns the command when its MAC, worker id and age are right; throws ProtocolError (UNAUTHENTICATED) otherwise. */
export function verifyCommand<T extends Command>(cmd: T, key: MacKey, opts: VerifyOptions): T {
  return verify('command', cmd, key, opts);
}
export function signReply<T extends Reply>(reply: T, key: MacKey): T {
  return sign('reply', reply, key);
}
export function verifyReply<T extends Reply>(reply: T, key: MacKey, opts: VerifyOptions): T {
  return verify('reply', reply, key, opts);
}

/** Queue text → an authentic, schema-valid command. What the worker calls on every message. */
export function openCommand(text: string, key: MacKey, opts: VerifyOptions): Command {
  return verifyCommand(validateCommand(decodeMessage(text)), key, opts);
}
/** Queue text → an authentic, schema-valid reply. What the controller calls on every message. */
export function openReply(text: string, key: MacKey, opts: VerifyOptions): Reply {
  return verifyReply(validateReply(decodeMessage(text)), key, opts);
}

// ---------------------------------------------------------------- worker key pair

export interface WorkerKeyPair {
  /** raw 32-byte X25519 public key, base64: what hello announces */
  publicKey: string;
  privateKey: KeyObject;
}

/** The worker's sealing key pair; it keeps the private key in its state directory (mode 0600) across restarts. */
export function generateWorkerKeyPair(): WorkerKeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  return { publicKey: publicKeyOf(privateKey), privateKey };
}

function rawPublicKey(k: KeyObject): Buffer {
  const jwk = k.export({ format: 'jwk' });
  if (jwk.crv !== 'X25519' || typeof jwk.x !== 'string') throw new ProtocolError('bad-key', 'not an X25519 key');
  return Buffer.from(jwk.x, 'base64url');
}

function importPublicKey(b64: string): KeyObject {
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 32 || raw.toString('base64') !== b64) throw new ProtocolError('bad-key', 'an X25519 public key must be 32 bytes (base64)');
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' });
  } catch (err) {
    throw new ProtocolError('bad-key', 'not a usable X25519 public key', {}, err);
  }
}

/** The public half of a private key, raw base64. */
export function publicKeyOf(privateKey: KeyObject): string {
  return rawPublicKey(createPublicKey(privateKey)).toString('base64');
}

/** PKCS#8 DER, base64, for the worker's state file. */
export function exportPrivateKey(privateKey: KeyObject): string {
  return privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64');
}

export function importPrivateKey(b64: string): KeyObject {
  try {
    const k = createPrivateKey({ key: Buffer.from(b64, 'base64'), format: 'der', type: 'pkcs8' });
    if (k.asymmetricKeyType !== 'x25519') throw new Error(`key type ${k.asymmetricKeyType}`);
    return k;
  } catch (err) {
    throw new ProtocolError('bad-key', 'not an X25519 private key (base64 PKCS#8)', {}, err);
  }
}

/** Short id of a public key: base64url of the first 12 bytes of its SHA-256. */
export function keyIdOf(publicKey: string): string {
  return createHash('sha256').update(Buffer.from(publicKey, 'base64')).digest().subarray(0, 12).toString('base64url');
}

// ---------------------------------------------------------------- sealing

/** The AAD of a sealed field: binds it to one command and one field path (e.g. "source.password"). */
export function secretAad(commandId: string, field: string): string {
  return `cosmos-backup sealed v1\0${commandId}\0${field}`;
}

const HKDF_INFO = Buffer.from('cosmos-backup sealed secret v1 aes-256-gcm');

function deriveKey(shared: Buffer, epk: Buffer, rpk: Buffer): Buffer {
  // Both public keys in the salt tie the key to this exchange (as in HPKE's key schedule).
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([epk, rpk]), HKDF_INFO, 32));
}

function ecdh(privateKey: KeyObject, publicKey: KeyObject): Buffer {
  const shared = diffieHellman({ privateKey, publicKey });
  // A low-order public key gives an all-zero secret (OpenSSL usually refuses it already).
  if (shared.every((b) => b === 0)) throw new Error('all-zero shared secret');
  return shared;
}

/** Encrypts a secret to the worker's public key (raw base64, from hello). */
export function sealSecret(plaintext: string | Uint8Array, recipientPublicKey: string, aad: string): SealedSecret {
  const rpkKey = importPublicKey(recipientPublicKey);
  const rpk = Buffer.from(recipientPublicKey, 'base64');
  const eph = generateKeyPairSync('x25519');
  const epk = rawPublicKey(eph.publicKey);
  let shared: Buffer;
  try {
    shared = ecdh(eph.privateKey, rpkKey);
  } catch (err) {
    throw new ProtocolError('bad-key', 'cannot seal to this public key', {}, err);
  }
  const key = deriveKey(shared, epk, rpk);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext), cipher.final(), cipher.getAuthTag()]);
  return { alg: SEALED_ALG, kid: keyIdOf(recipientPublicKey), epk: epk.toString('base64'), nonce: nonce.toString('base64'), ct: body.toString('base64') };
}

/** Opens a sealed secret with the worker's private key and the same AAD; throws ProtocolError 'bad-secret' otherwise. */
export function openSecret(sealed: SealedSecret, privateKey: KeyObject | string, aad: string): Buffer {
  const priv = typeof privateKey === 'string' ? importPrivateKey(privateKey) : privateKey;
  const ours = publicKeyOf(priv);
  if (sealed.alg !== SEALED_ALG) throw new ProtocolError('bad-secret', `unknown sealing algorithm ${String(sealed.alg).slice(0, 40)}`);
  if (sealed.kid !== keyIdOf(ours)) {
    // Typically a command sealed for the key of an earlier worker process; the controller re-seals on `failed`.
    throw new ProtocolError('bad-secret', `secret was sealed to key ${sealed.kid}, this worker's key is ${keyIdOf(ours)}`, { kid: sealed.kid });
  }
  try {
    const epk = Buffer.from(sealed.epk, 'base64');
    const body = Buffer.from(sealed.ct, 'base64');
    if (body.length < 16) throw new Error('ciphertext shorter than its tag');
    const key = deriveKey(ecdh(priv, importPublicKey(sealed.epk)), epk, Buffer.from(ours, 'base64'));
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.nonce, 'base64'));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(body.subarray(body.length - 16));
    return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]);
  } catch (err) {
    throw new ProtocolError('bad-secret', 'sealed secret does not open with this key and binding (altered, or meant for another command or field)', { kid: sealed.kid }, err);
  }
}

function isSealed(v: unknown): v is SealedSecret {
  return typeof v === 'object' && v !== null && (v as { alg?: unknown }).alg === SEALED_ALG;
}

/** Every sealed field of a command with its path ("repository.sas", "from.password", …). */
export function sealedFields(cmd: Command): Array<{ path: string; sealed: SealedSecret }> {
  const out: Array<{ path: string; sealed: SealedSecret }> = [];
  const walk = (v: unknown, path: string) => {
    if (isSealed(v)) out.push({ path, sealed: v });
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
    else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
  };
  walk(cmd, '');
  return out;
}

/** Controller side: seal one field of the command with id `commandId`. */
export function sealField(commandId: string, field: string, plaintext: string | Uint8Array, recipientPublicKey: string): SealedSecret {
  return sealSecret(plaintext, recipientPublicKey, secretAad(commandId, field));
}

/** Worker side: open every sealed field of an authentic command, keyed by path. */
export function openCommandSecrets(cmd: Command, privateKey: KeyObject | string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const { path, sealed } of sealedFields(cmd)) out.set(path, openSecret(sealed, privateKey, secretAad(cmd.id, path)));
  return out;
}
