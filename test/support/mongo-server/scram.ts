// Server side of SCRAM-SHA-256 (RFC 5802 / RFC 7677) as MongoDB runs it over saslStart and
// saslContinue, for the stand-in. Keys are derived once per user at server start.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export const SCRAM_ITERATIONS = 4096; // the minimum the driver accepts, keeps tests fast

export interface ScramUser {
  db: string;
  user: string;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

export function makeScramUser(db: string, user: string, password: string): ScramUser {
  const salt = randomBytes(16);
  // The driver applies SASLprep to the password; NFKC covers the printable passwords tests use.
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, SCRAM_ITERATIONS, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return {
    db, user, salt,
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: createHmac('sha256', salted).update('Server Key').digest(),
  };
}

/** A conversation after saslStart, waiting for the client's final message. */
export interface ScramConversation {
  user: ScramUser;
  clientFirstBare: string;
  serverFirst: string;
  nonce: string;
}

export class ScramFailure extends Error {}

function attrs(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return out;
}

function unescapeName(name: string): string {
  return name.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

/** Handles the client-first message; returns the conversation and the server-first message. */
export function scramStart(payload: Buffer, lookup: (user: string) => ScramUser | undefined): ScramConversation {
  const msg = payload.toString('utf8');
  // gs2 header: "n,," (no channel binding, no authzid)
  const m = /^[nyp][^,]*,[^,]*,(.*)$/.exec(msg);
  if (!m) throw new ScramFailure('malformed client-first message');
  const clientFirstBare = m[1]!;
  const a = attrs(clientFirstBare);
  const name = a.get('n');
  const clientNonce = a.get('r');
  if (!name || !clientNonce) throw new ScramFailure('malformed client-first message');
  const user = lookup(unescapeName(name));
  if (!user) throw new ScramFailure('unknown user');
  const nonce = clientNonce + randomBytes(18).toString('base64');
  const serverFirst = `r=${nonce},s=${user.salt.toString('base64')},i=${SCRAM_ITERATIONS}`;
  return { user, clientFirstBare, serverFirst, nonce };
}

/** Verifies the client-final message; returns the server-final message ("v=..."). */
export function scramFinish(conv: ScramConversation, payload: Buffer): string {
  const clientFinal = payload.toString('utf8');
  const a = attrs(clientFinal);
  const proof = a.get('p');
  if (!proof || a.get('r') !== conv.nonce) throw new ScramFailure('nonce mismatch');
  const withoutProof = clientFinal.slice(0, clientFinal.lastIndexOf(',p='));
  const authMessage = `${conv.clientFirstBare},${conv.serverFirst},${withoutProof}`;
  const clientSignature = createHmac('sha256', conv.user.storedKey).update(authMessage).digest();
  const proofBytes = Buffer.from(proof, 'base64');
  if (proofBytes.length !== clientSignature.length) throw new ScramFailure('bad proof');
  const clientKey = Buffer.alloc(proofBytes.length);
  for (let i = 0; i < proofBytes.length; i++) clientKey[i] = proofBytes[i]! ^ clientSignature[i]!;
  const stored = createHash('sha256').update(clientKey).digest();
  if (!timingSafeEqual(stored, conv.user.storedKey)) throw new ScramFailure('bad proof');
  const serverSignature = createHmac('sha256', conv.user.serverKey).update(authMessage).digest();
  return `v=${serverSignature.toString('base64')}`;
}
