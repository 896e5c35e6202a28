// The JSON a lease object holds (lock file content on a filesystem, blob content on Azure, a value
// in memory): who holds it and until when. Pure: parsing, encoding and the staleness rule.
import { randomBytes } from 'node:crypto';
import type { LeaseInfo } from './types.ts';

export interface LeaseRecord {
  holder: string;
  /** ISO time the lease was taken */
  since: string;
  /** ISO time after which the lease is stale unless renewed */
  expires: string;
  host: string;
  pid: number;
  /** random per-acquisition token: lets renew/release tell "still mine" from "someone else's" */
  token: string;
}

export function newToken(): string {
  return randomBytes(12).toString('hex');
}

export function encodeLease(r: LeaseRecord): Buffer {
  return Buffer.from(JSON.stringify(r));
}

/** Parses lease content; unreadable content (a crash mid-write, a foreign object) gives undefined. */
export function decodeLease(bytes: Uint8Array): LeaseRecord | undefined {
  try {
    const v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as Partial<LeaseRecord>;
    if (typeof v.holder !== 'string' || typeof v.since !== 'string' || typeof v.expires !== 'string') return undefined;
    return { holder: v.holder, since: v.since, expires: v.expires, host: String(v.host ?? ''), pid: Number(v.pid ?? 0), token: String(v.token ?? '') };
  } catch {
    return undefined;
  }
}

/** Is a process with this pid alive on this machine? EPERM means it exists but is not ours. */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Stale = expired, or held by a process on this very host that no longer exists.
 * `alive` is injected so the rule stays pure and testable.
 */
export function isStale(r: LeaseRecord, now: number, host: string, alive: (pid: number) => boolean): boolean {
  const expires = Date.parse(r.expires);
  if (!Number.isFinite(expires) || expires <= now) return true;
  return r.host === host && r.pid > 0 && !alive(r.pid);
}

export function leaseInfo(r: LeaseRecord, stale: boolean): LeaseInfo {
  return { holder: r.holder, since: r.since, expires: r.expires, stale };
}

/** Unreadable lease content is reported as an unknown holder that can only be broken, not waited out. */
export function unknownLeaseInfo(): LeaseInfo {
  return { holder: 'unknown holder (unreadable lease record)', since: '', expires: '', stale: true };
}
