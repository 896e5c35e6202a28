// Repository locks. Backups take shared locks (objects under locks/ with an expiry, refreshed
// while they run); gc takes the exclusive lock (a store lease: Blob lease on Azure, lock file
// with expiry on a filesystem) and refuses to run while any live shared lock exists.
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { CosmosBackupError, RepoLockedError, isCode, type LockHolder } from '../errors.ts';
import type { Lease, ObjectStore } from '../storage/types.ts';
import { KEYS } from './format.ts';

export const SHARED_TTL_MS = 5 * 60_000;
export const EXCLUSIVE_TTL_MS = 60_000;

export interface RepoLock {
  readonly kind: 'shared' | 'exclusive';
  /** Throws if the lock was lost (could not be refreshed in time). */
  check(): void;
  release(): Promise<void>;
}

export interface LockRecord extends LockHolder {
  key: string;
  kind: 'shared' | 'exclusive';
  host: string;
  pid: number;
  stale: boolean;
}

function who(what: string): string {
  let user = 'unknown';
  try { user = userInfo().username; } catch { /* no passwd entry in some containers */ }
  return `${what} by ${user}@${hostname()} pid ${process.pid}`;
}

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

function isStale(rec: { host: string; pid: number; expires: string }, now = Date.now()): boolean {
  if (Date.parse(rec.expires) < now) return true;
  // Same machine and the process is gone: stale at once (a killed backup needs no waiting).
  return rec.host === hostname() && !pidAlive(rec.pid);
}

export async function listLocks(store: ObjectStore): Promise<LockRecord[]> {
  const out: LockRecord[] = [];
  for await (const o of store.list(KEYS.lockPrefix)) {
    if (o.key === KEYS.exclusiveLock) {
      const l = await store.readLease(o.key);
      if (l) out.push({ key: o.key, kind: 'exclusive', holder: l.holder, since: l.since, expires: l.expires, host: '', pid: 0, stale: l.stale });
      continue;
    }
    try {
      const rec = JSON.parse(Buffer.from(await store.get(o.key)).toString('utf8')) as Omit<LockRecord, 'key' | 'stale'>;
      out.push({ ...rec, key: o.key, kind: 'shared', stale: isStale(rec) });
    } catch (e) {
      if (!isCode(e, 'NOT_FOUND')) throw e; // released meanwhile
    }
  }
  return out;
}

async function exclusiveHolder(store: ObjectStore): Promise<LockHolder | undefined> {
  const l = await store.readLease(KEYS.exclusiveLock);
  return l && !l.stale ? l : undefined;
}

export async function lockShared(store: ObjectStore, what: string, ttlMs = SHARED_TTL_MS): Promise<RepoLock> {
  const ex = await exclusiveHolder(store);
  if (ex) throw new RepoLockedError('exclusively', [ex]);
  const key = `${KEYS.lockPrefix}shared-${randomBytes(8).toString('hex')}`;
  const since = new Date().toISOString();
  const holder = who(what);
  const write = () => store.put(key, Buffer.from(JSON.stringify({
    kind: 'shared', holder, since, expires: new Date(Date.now() + ttlMs).toISOString(), host: hostname(), pid: process.pid,
  })));
  await write();
  // An exclusive lock taken between our check and our write wins; back off.
  const ex2 = await exclusiveHolder(store);
  if (ex2) {
    await store.delete(key);
    throw new RepoLockedError('exclusively', [ex2]);
  }
  return refreshing('shared', ttlMs, write, () => store.delete(key));
}

export async function lockExclusive(store: ObjectStore, what: string, ttlMs = EXCLUSIVE_TTL_MS): Promise<RepoLock> {
  const lease: Lease = await store.acquireLease(KEYS.exclusiveLock, who(what), ttlMs);
  try {
    const live = (await listLocks(store)).filter((l) => l.kind === 'shared' && !l.stale);
    if (live.length) throw new RepoLockedError('by running backups', live);
  } catch (e) {
    await lease.release().catch(() => undefined);
    throw e;
  }
  return refreshing('exclusive', ttlMs, () => lease.renew(), () => lease.release());
}

function refreshing(kind: 'shared' | 'exclusive', ttlMs: number, refresh: () => Promise<void>, release: () => Promise<void>): RepoLock {
  let lost: unknown;
  let last = Date.now();
  const timer = setInterval(() => {
    refresh().then(() => { last = Date.now(); }, (e: unknown) => {
      if (Date.now() - last > ttlMs * 0.8) lost = e;
    });
  }, Math.max(1000, Math.floor(ttlMs / 3)));
  timer.unref();
  let released = false;
  return {
    kind,
    check() {
      if (lost !== undefined || Date.now() - last > ttlMs) {
        throw new CosmosBackupError('REPO_LOCKED', `the ${kind} repository lock could not be refreshed and may have been taken over; the operation was stopped to keep the repository safe`, { cause: lost });
      }
    },
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      await release();
    },
  };
}

/** Removes stale locks (or all of them with all=true); returns what was removed. */
export async function removeLocks(store: ObjectStore, all = false): Promise<LockRecord[]> {
  const removed: LockRecord[] = [];
  for (const l of await listLocks(store)) {
    if (!all && !l.stale) continue;
    if (l.kind === 'exclusive') await store.breakLease(l.key);
    else await store.delete(l.key);
    removed.push(l);
  }
  return removed;
}
