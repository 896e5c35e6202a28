// ObjectStore on a local or mounted directory. Writes go to a temp file in the target directory,
// are fsynced, then renamed (put) or hard-linked (putIfAbsent: link fails with EEXIST, so exactly
// one concurrent writer wins), and the directory is fsynced so the new name survives a crash.
// Leases are lock files holding a LeaseRecord; they are created with the same link trick.
// Temp names carry the writer's pid and a host tag, so list() can sweep the temp files of
// writers that crashed (dead pid on this host, or anything older than a day).
import { constants as fsc } from 'node:fs';
import { copyFile, link, lstat, mkdir, open, opendir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CosmosBackupError, NotFoundError } from '../errors.ts';
import { checkRange, lockedError, shortRead } from './common.ts';
import { checkKey, checkPrefix, TEMP_PREFIX } from './keys.ts';
import { decodeLease, encodeLease, isStale, leaseInfo, newToken, pidAlive, unknownLeaseInfo, type LeaseRecord } from './lease-record.ts';
import type { Lease, LeaseInfo, ObjectInfo, ObjectStore } from './types.ts';

/** Temp files older than this are garbage whoever wrote them: no single put takes a day. */
export const ABANDONED_TEMP_AGE_MS = 24 * 3600_000;
const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

function tempName(): string {
  return `${TEMP_PREFIX}${process.pid}-${HOST_TAG}-${randomBytes(6).toString('hex')}`;
}

/** A temp file is abandoned when its writer is provably gone, or when it is very old. */
export function isAbandonedTemp(name: string, mtimeMs: number, now: number, alive: (pid: number) => boolean = pidAlive): boolean {
  const m = /^\.tmp-(\d+)-([0-9a-f]{8})-/.exec(name);
  if (m && m[2] === HOST_TAG && !alive(Number(m[1]))) return true;
  return now - mtimeMs > ABANDONED_TEMP_AGE_MS;
}

const errno = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;
const MISSING = new Set(['ENOENT', 'ENOTDIR']);

/**
 * Turns OS errors into the product's typed errors with one clear line; unknown errors pass through.
 * `op` is a verb phrase ("writing", "reading") and `target` the path involved.
 */
export function mapFsError(err: unknown, op: string, target: string): unknown {
  const code = errno(err);
  const details = { path: target, errno: code };
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new CosmosBackupError('STORAGE_FULL', `storage full while ${op} ${target} (${code}): free space on that file system (or raise the quota), then retry`, { cause: err, details });
    case 'EACCES':
    case 'EPERM':
      return new CosmosBackupError('STORAGE_AUTH', `permission denied ${op} ${target} (${code}): check the owner and mode of the repository directory`, { cause: err, details });
    case 'EROFS':
      return new CosmosBackupError('STORAGE_AUTH', `read-only file system while ${op} ${target}: mount it read-write or choose another repository location`, { cause: err, details });
    case 'EIO':
    case 'ESTALE':
    case 'ETIMEDOUT':
    case 'ENOTCONN':
    case 'EHOSTDOWN':
    case 'ECONNRESET':
    case 'EMFILE':
    case 'ENFILE':
    case 'EAGAIN':
    case 'EBUSY':
      return new CosmosBackupError('STORAGE_UNAVAILABLE', `I/O error ${op} ${target} (${code})`, { cause: err, details: { ...details, transient: true } });
    default:
      return err;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    // Some file systems (and Windows) cannot open or fsync directories; the rename itself is still atomic.
    if (!['EISDIR', 'EPERM', 'EINVAL', 'ENOTSUP', 'EBADF', 'EACCES'].includes(errno(err) ?? '')) throw err;
  } finally {
    await fh?.close();
  }
}

async function unlinkQuiet(p: string): Promise<void> {
  try {
    await unlink(p);
  } catch {
    /* already gone, or cleanup of a temp file we cannot remove: nothing better to do */
  }
}

/** Removes abandoned temp files; best effort (a read-only mount or a race just leaves them). */
async function sweepTemps(dir: string, names: string[]): Promise<void> {
  const now = Date.now();
  for (const name of names) {
    const p = path.join(dir, name);
    try {
      if (isAbandonedTemp(name, (await lstat(p)).mtimeMs, now)) await unlink(p);
    } catch {
      /* gone already, or not ours to delete */
    }
  }
}

export class FilesystemStore implements ObjectStore {
  readonly root: string;
  readonly location: string;

  /** `root` need not exist yet: puts create directories on demand. */
  constructor(root: string) {
    this.root = path.resolve(root);
    this.location = pathToFileURL(this.root).href;
  }

  #path(key: string): string {
    checkKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  /** Creates the root directory (used by `repo init`). */
  async ensureRoot(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true });
    } catch (err) {
      throw mapFsError(err, 'creating', this.root);
    }
  }

  /** Writes data to a fresh, fsynced temp file next to `final` and returns its path. */
  async #writeTemp(final: string, data: Uint8Array): Promise<string> {
    const dir = path.dirname(final);
    await mkdir(dir, { recursive: true });
    const tmp = path.join(dir, tempName());
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(data);
      await fh.datasync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlinkQuiet(tmp);
      throw err;
    }
    await fh.close();
    return tmp;
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const final = this.#path(key);
    let tmp: string | undefined;
    try {
      tmp = await this.#writeTemp(final, data);
      await rename(tmp, final);
      tmp = undefined;
      await fsyncDir(path.dirname(final));
    } catch (err) {
      if (tmp) await unlinkQuiet(tmp);
      throw mapFsError(err, 'writing', final);
    }
  }

  async putIfAbsent(key: string, data: Uint8Array): Promise<boolean> {
    const final = this.#path(key);
    // Cheap early exit: deduplicated writes mostly hit existing objects.
    if (await this.#exists(final)) return false;
    return this.#createExclusive(final, data);
  }

  /** Publishes data under `final` only if nothing is there; false if something was. */
  async #createExclusive(final: string, data: Uint8Array): Promise<boolean> {
    let tmp: string | undefined;
    try {
      tmp = await this.#writeTemp(final, data);
      try {
        await link(tmp, final);
      } catch (err) {
        const code = errno(err);
        if (code === 'EEXIST') return false;
        // File systems without hard links (some FUSE/SMB mounts): O_EXCL copy keeps exclusivity,
        // though a reader may then briefly see a partial file (the repository verifies hashes).
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS' && code !== 'EMLINK') throw err;
        try {
          await copyFile(tmp, final, fsc.COPYFILE_EXCL);
        } catch (err2) {
          if (errno(err2) === 'EEXIST') return false;
          throw err2;
        }
      }
      await fsyncDir(path.dirname(final));
      return true;
    } catch (err) {
      throw mapFsError(err, 'writing', final);
    } finally {
      if (tmp) await unlinkQuiet(tmp);
    }
  }

  async #exists(p: string): Promise<boolean> {
    try {
      return (await stat(p)).isFile();
    } catch (err) {
      if (MISSING.has(errno(err) ?? '')) return false;
      throw mapFsError(err, 'reading', p);
    }
  }

  async get(key: string): Promise<Uint8Array> {
    const p = this.#path(key);
    try {
      return await readFile(p);
    } catch (err) {
      if (MISSING.has(errno(err) ?? '') || errno(err) === 'EISDIR') throw new NotFoundError(key);
      throw mapFsError(err, 'reading', p);
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    const p = this.#path(key);
    checkRange(key, offset, length);
    let fh;
    try {
      fh = await open(p, 'r');
    } catch (err) {
      if (MISSING.has(errno(err) ?? '')) throw new NotFoundError(key);
      throw mapFsError(err, 'reading', p);
    }
    try {
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got < length) throw shortRead(key, offset, length, (await fh.stat()).size);
      return buf;
    } catch (err) {
      if (errno(err) === 'EISDIR') throw new NotFoundError(key);
      throw mapFsError(err, 'reading', p);
    } finally {
      await fh.close();
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const p = this.#path(key);
    try {
      const s = await stat(p);
      return s.isFile() ? { key, size: s.size, modified: s.mtime } : undefined;
    } catch (err) {
      if (MISSING.has(errno(err) ?? '')) return undefined;
      throw mapFsError(err, 'reading', p);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    checkPrefix(prefix);
    // Start at the deepest directory the prefix names fully; filter its entries by the rest.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const first = prefix.slice(slash + 1);
    yield* this.#walk(dirKey ? path.join(this.root, ...dirKey.split('/')) : this.root, dirKey ? dirKey + '/' : '', first);
  }

  async *#walk(dir: string, keyBase: string, namePrefix: string): AsyncGenerator<ObjectInfo> {
    let entries;
    try {
      entries = [];
      for await (const e of await opendir(dir)) entries.push(e);
    } catch (err) {
      if (MISSING.has(errno(err) ?? '')) return;
      throw mapFsError(err, 'listing', dir);
    }
    const files: string[] = [];
    const temps: string[] = [];
    for (const e of entries) {
      if (e.name.startsWith(TEMP_PREFIX)) {
        if (e.isFile()) temps.push(e.name);
        continue;
      }
      if (!e.name.startsWith(namePrefix)) continue;
      if (e.isDirectory()) yield* this.#walk(path.join(dir, e.name), keyBase + e.name + '/', '');
      else if (e.isFile() || e.isSymbolicLink()) files.push(e.name);
    }
    if (temps.length) await sweepTemps(dir, temps);
    // Stat in small parallel batches: a pack directory can hold thousands of files.
    for (let i = 0; i < files.length; i += 64) {
      const batch = files.slice(i, i + 64);
      const stats = await Promise.all(batch.map(async (name) => {
        try {
          const s = await stat(path.join(dir, name));
          return s.isFile() ? s : undefined;
        } catch (err) {
          if (MISSING.has(errno(err) ?? '')) return undefined; // deleted while listing
          throw mapFsError(err, 'listing', path.join(dir, name));
        }
      }));
      for (let j = 0; j < batch.length; j++) {
        const s = stats[j];
        if (s) yield { key: keyBase + batch[j], size: s.size, modified: s.mtime };
      }
    }
  }

  async delete(key: string): Promise<void> {
    const p = this.#path(key);
    try {
      await unlink(p);
    } catch (err) {
      if (MISSING.has(errno(err) ?? '')) return;
      throw mapFsError(err, 'deleting', p);
    }
  }

  async #readRecord(p: string): Promise<{ record?: LeaseRecord } | undefined> {
    let bytes;
    try {
      bytes = await readFile(p);
    } catch (err) {
      if (MISSING.has(errno(err) ?? '')) return undefined;
      throw mapFsError(err, 'reading', p);
    }
    return { record: decodeLease(bytes) };
  }

  #info(found: { record?: LeaseRecord }): LeaseInfo {
    const r = found.record;
    return r ? leaseInfo(r, isStale(r, Date.now(), hostname(), pidAlive)) : unknownLeaseInfo();
  }

  /**
   * Creates the lock file exclusively. A stale lock file is NOT taken over here: it stays until
   * breakLease removes it, so taking over a dead holder's lock is always a deliberate act.
   */
  async acquireLease(key: string, holder: string, ttlMs: number): Promise<Lease> {
    const p = this.#path(key);
    const now = Date.now();
    const token = newToken();
    const record: LeaseRecord = { holder, since: new Date(now).toISOString(), expires: new Date(now + ttlMs).toISOString(), host: hostname(), pid: process.pid, token };
    for (let attempt = 0; ; attempt++) {
      if (await this.#createExclusive(p, encodeLease(record))) break;
      const found = await this.#readRecord(p);
      // Vanished between our link and our read (released meanwhile): try again a few times.
      if (found || attempt >= 3) throw lockedError(key, found ? this.#info(found) : unknownLeaseInfo());
    }
    return {
      key,
      renew: async () => {
        const found = await this.#readRecord(p);
        if (found?.record?.token !== token) throw lockedError(key, found ? this.#info(found) : { holder: 'nobody (the lease was broken)', since: '', expires: '', stale: true });
        // Atomic replace; a breakLease racing this exact moment is not detected (a tiny window).
        await this.put(key, encodeLease({ ...found.record, expires: new Date(Date.now() + ttlMs).toISOString() }));
      },
      release: async () => {
        const found = await this.#readRecord(p);
        if (found?.record?.token === token) await this.delete(key);
      },
    };
  }

  async readLease(key: string): Promise<LeaseInfo | undefined> {
    const found = await this.#readRecord(this.#path(key));
    return found && this.#info(found);
  }

  async breakLease(key: string): Promise<void> {
    await this.delete(key);
  }
}
