// Key objects: the master key wrapped by a password-derived key. Several may exist (one per
// password); changing the password writes a new key object and removes the old one.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { CosmosBackupError, CorruptObjectError } from '../errors.ts';
import type { ObjectStore } from '../storage/types.ts';
import { DEFAULT_SCRYPT, deriveKey, seal, sha256, tryOpen, type MasterKey, type ScryptParams } from './crypto.ts';
import { KEYS, type KeyFile } from './format.ts';

export async function wrapMasterKey(master: MasterKey, password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<Buffer> {
  const salt = randomBytes(32);
  const kek = await deriveKey(password, salt, params);
  const inner = Buffer.from(JSON.stringify({
    encryption: master.encryption.toString('base64'),
    mac: master.mac.toString('base64'),
    chunkerSeed: master.chunkerSeed.toString('base64'),
  }));
  const file: KeyFile = {
    version: 1, kdf: 'scrypt', scrypt: params, salt: salt.toString('base64'), createdAt: new Date().toISOString(),
    host: hostname(), data: seal(kek, inner).toString('base64'),
  };
  return Buffer.from(JSON.stringify(file, null, 1) + '\n');
}

/** Writes a new key object; its name is the SHA-256 of its bytes. */
export async function addKey(store: ObjectStore, master: MasterKey, password: string, params?: ScryptParams): Promise<string> {
  const bytes = await wrapMasterKey(master, password, params);
  const id = sha256(bytes).toString('hex');
  await store.putIfAbsent(KEYS.key(id), bytes);
  return id;
}

/** Tries every key object with the password; WRONG_PASSWORD when none opens. */
export async function unlockMasterKey(store: ObjectStore, password: string): Promise<{ master: MasterKey; keyId: string }> {
  const keys: string[] = [];
  for await (const o of store.list(KEYS.keyPrefix)) keys.push(o.key);
  if (keys.length === 0) throw new CorruptObjectError(KEYS.keyPrefix, 'the repository is encrypted but has no key objects');
  const damaged: string[] = [];
  for (const key of keys) {
    const bytes = await store.get(key);
    let file: KeyFile;
    try {
      file = JSON.parse(Buffer.from(bytes).toString('utf8')) as KeyFile;
      if (file.kdf !== 'scrypt' || typeof file.data !== 'string') throw new Error('bad key file');
    } catch {
      damaged.push(key);
      continue;
    }
    if (sha256(bytes).toString('hex') !== key.slice(KEYS.keyPrefix.length)) damaged.push(key);
    const kek = await deriveKey(password, Buffer.from(file.salt, 'base64'), file.scrypt);
    const inner = tryOpen(kek, Buffer.from(file.data, 'base64'));
    if (!inner) continue;
    const j = JSON.parse(inner.toString('utf8')) as Record<string, string>;
    return {
      master: { encryption: Buffer.from(j.encryption!, 'base64'), mac: Buffer.from(j.mac!, 'base64'), chunkerSeed: Buffer.from(j.chunkerSeed!, 'base64') },
      keyId: key.slice(KEYS.keyPrefix.length),
    };
  }
  throw new CosmosBackupError('WRONG_PASSWORD', damaged.length
    ? `wrong repository password (or key object ${damaged[0]} is damaged)`
    : 'wrong repository password: check --password-file / --password-env');
}
