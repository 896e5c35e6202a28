// Secrets at rest: AES-256-GCM under the controller master key, which lives outside the database
// (COSMOS_BACKUP_MASTER_KEY, or a 0600 key file). Each sealed value is bound to where it is
// stored (additional data such as "repositories.password:<id>"), so ciphertexts cannot be swapped.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CosmosBackupError } from '../../shared/errors.ts';

const PREFIX = 'v1.';

export class SecretBox {
  readonly #key: Buffer;
  constructor(key: Buffer) {
    if (key.length !== 32) throw new CosmosBackupError('INVALID_ARGUMENT', 'the master key must be 32 bytes');
    this.#key = key;
  }

  seal(plaintext: string, where: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.#key, iv);
    c.setAAD(Buffer.from(where));
    const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
    return PREFIX + Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64');
  }

  open(sealed: string, where: string): string {
    if (!sealed.startsWith(PREFIX)) throw new CosmosBackupError('CORRUPT_OBJECT', `sealed secret for ${where} has an unknown format`);
    const raw = Buffer.from(sealed.slice(PREFIX.length), 'base64');
    try {
      const d = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12));
      d.setAAD(Buffer.from(where));
      d.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
    } catch (e) {
      throw new CosmosBackupError('WRONG_PASSWORD', `cannot decrypt the secret for ${where}: wrong master key or damaged value`, { cause: e });
    }
  }
}

export interface MasterKey { key: Buffer; source: 'env' | 'file'; created: boolean; file?: string }

/** COSMOS_BACKUP_MASTER_KEY (base64 of 32 bytes) wins; otherwise the key file, created 0600 on first start. */
export function loadMasterKey(opts: { envValue?: string; keyFile: string }): MasterKey {
  if (opts.envValue) {
    const key = Buffer.from(opts.envValue, 'base64');
    if (key.length !== 32) throw new CosmosBackupError('INVALID_ARGUMENT', `COSMOS_BACKUP_MASTER_KEY: expected base64 of 32 bytes, got ${key.length} bytes`);
    return { key, source: 'env', created: false };
  }
  const file = opts.keyFile;
  if (existsSync(file)) {
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) {
      throw new CosmosBackupError('INVALID_ARGUMENT', `master key file ${file} has permissions ${mode.toString(8).padStart(4, '0')}; it must be readable by its owner only: chmod 600 ${file}`);
    }
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new CosmosBackupError('INVALID_ARGUMENT', `master key file ${file}: expected base64 of 32 bytes, got ${key.length} bytes`);
    return { key, source: 'file', created: false, file };
  }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return { key, source: 'file', created: true, file };
}
