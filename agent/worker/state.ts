// The worker's state directory (mode 0700): its X25519 sealing key (key.json) and its command
// ledger (ledger.json), both 0600 and replaced atomically (write a temporary file, fsync, rename),
// so a worker killed at any moment restarts with a consistent ledger and the same key.
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { CosmosBackupError } from '../../shared/errors.ts';
import { exportPrivateKey, generateWorkerKeyPair, importPrivateKey, publicKeyOf } from '../../shared/protocol/auth.ts';
import { LedgerFileSchema, pruneLedger, type CommandLedger, type LedgerEntry } from '../../shared/protocol/idempotency.ts';

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

export function ensureStateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if (!st.isDirectory()) throw new CosmosBackupError('INVALID_ARGUMENT', `state directory ${dir} is not a directory`);
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

/** Loads the worker's sealing key from the state directory, or makes and stores a new one. */
export function loadOrCreateKeyPair(dir: string): { publicKey: string; privateKey: KeyObject; created: boolean } {
  const file = path.join(dir, 'key.json');
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new CosmosBackupError('INVALID_ARGUMENT', `cannot read the worker key ${file}: ${(e as Error).message}`);
  }
  if (text !== undefined) {
    let privateKey: KeyObject;
    try {
      privateKey = importPrivateKey((JSON.parse(text) as { privateKey: string }).privateKey);
    } catch (e) {
      throw new CosmosBackupError('INVALID_ARGUMENT', `the worker key ${file} is damaged; remove it to make a new one (the controller re-seals to the new key announced in hello)`, { cause: e });
    }
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    return { publicKey: publicKeyOf(privateKey), privateKey, created: false };
  }
  const kp = generateWorkerKeyPair();
  writeAtomic(file, JSON.stringify({ v: 1, alg: 'x25519', privateKey: exportPrivateKey(kp.privateKey) }) + '\n');
  return { ...kp, created: true };
}

/** The command ledger (docs/PROTOCOL.md "Idempotency"), persisted on every change. */
export class FileLedger implements CommandLedger {
  readonly file: string;
  private readonly entries = new Map<string, LedgerEntry>();

  constructor(dir: string) {
    this.file = path.join(dir, 'ledger.json');
    let text: string | undefined;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (text !== undefined) {
      const parsed = LedgerFileSchema.safeParse(JSON.parse(text));
      if (!parsed.success) throw new CosmosBackupError('CORRUPT_OBJECT', `the worker ledger ${this.file} is not valid; move it away to start with an empty one`);
      for (const e of pruneLedger(parsed.data.entries)) this.entries.set(e.commandId, e);
    }
  }

  get(commandId: string): LedgerEntry | undefined {
    return this.entries.get(commandId);
  }

  /** Records an entry and writes the file before returning. */
  put(entry: LedgerEntry): void {
    this.entries.set(entry.commandId, entry);
    const kept = pruneLedger([...this.entries.values()]);
    this.entries.clear();
    for (const e of kept) this.entries.set(e.commandId, e);
    writeAtomic(this.file, JSON.stringify({ v: 1, entries: kept }) + '\n');
  }
}
