// In-memory ObjectStore with the same semantics as the real backends (atomic puts, leases with
// expiry), for fast repository tests. Copies on the way in and out so callers can't alias state.
import { hostname } from 'node:os';
import { NotFoundError } from '../errors.ts';
import { checkKey, checkPrefix } from './keys.ts';
import { decodeLease, encodeLease, isStale, leaseInfo, newToken, unknownLeaseInfo, type LeaseRecord } from './lease-record.ts';
import type { Lease, LeaseInfo, ObjectInfo, ObjectStore } from './types.ts';
import { checkRange, lockedError, shortRead } from './common.ts';

export class MemoryStore implements ObjectStore {
  readonly location: string;
  readonly #objects = new Map<string, Uint8Array>();
  readonly #modified = new Map<string, Date>();

  constructor(name = 'memory') {
    this.location = `memory://${name}`;
  }

  async putIfAbsent(key: string, data: Uint8Array): Promise<boolean> {
    checkKey(key);
    if (this.#objects.has(key)) return false;
    this.#set(key, Uint8Array.from(data));
    return true;
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    checkKey(key);
    this.#set(key, Uint8Array.from(data));
  }

  #set(key: string, data: Uint8Array): void {
    this.#objects.set(key, data);
    this.#modified.set(key, new Date());
  }

  #info(key: string, v: Uint8Array): ObjectInfo {
    return { key, size: v.byteLength, modified: this.#modified.get(key) };
  }

  async get(key: string): Promise<Uint8Array> {
    checkKey(key);
    const v = this.#objects.get(key);
    if (!v) throw new NotFoundError(key);
    return Uint8Array.from(v);
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    checkKey(key);
    checkRange(key, offset, length);
    const v = this.#objects.get(key);
    if (!v) throw new NotFoundError(key);
    if (offset + length > v.byteLength) throw shortRead(key, offset, length, v.byteLength);
    return v.slice(offset, offset + length);
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    checkKey(key);
    const v = this.#objects.get(key);
    return v ? this.#info(key, v) : undefined;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    checkPrefix(prefix);
    // Snapshot the keys so deletes during iteration behave like a paged listing.
    for (const [key, v] of [...this.#objects]) if (key.startsWith(prefix)) yield this.#info(key, v);
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    this.#objects.delete(key);
    this.#modified.delete(key);
  }

  #record(key: string): LeaseRecord | undefined {
    const v = this.#objects.get(key);
    return v ? decodeLease(v) : undefined;
  }

  /** Like the filesystem backend, a stale lease is not taken over here: breakLease it first. */
  async acquireLease(key: string, holder: string, ttlMs: number): Promise<Lease> {
    checkKey(key);
    if (this.#objects.has(key)) {
      const info = await this.readLease(key);
      throw lockedError(key, info ?? unknownLeaseInfo());
    }
    const now = Date.now();
    const token = newToken();
    const record: LeaseRecord = { holder, since: new Date(now).toISOString(), expires: new Date(now + ttlMs).toISOString(), host: hostname(), pid: process.pid, token };
    this.#set(key, encodeLease(record));
    const mine = () => this.#record(key)?.token === token;
    return {
      key,
      renew: async () => {
        const current = this.#record(key);
        if (!current || current.token !== token) throw lockedError(key, current ? leaseInfo(current, false) : { holder: 'nobody (lease was broken)', since: '', expires: '', stale: true });
        this.#set(key, encodeLease({ ...current, expires: new Date(Date.now() + ttlMs).toISOString() }));
      },
      release: async () => {
        if (mine()) await this.delete(key);
      },
    };
  }

  async readLease(key: string): Promise<LeaseInfo | undefined> {
    checkKey(key);
    if (!this.#objects.has(key)) return undefined;
    const r = this.#record(key);
    // Memory leases live in this process, so only expiry makes them stale.
    return r ? leaseInfo(r, isStale(r, Date.now(), '', () => true)) : unknownLeaseInfo();
  }

  async breakLease(key: string): Promise<void> {
    await this.delete(key);
  }
}
