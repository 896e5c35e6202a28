// Fault-injecting ObjectStore wrapper for tests (after kopia's blobtesting/faulty.go): fails chosen
// calls, throws seeded-random transient errors, flips bytes on read, and fills the "disk".
import { CosmosBackupError } from '../../shared/errors.ts';
import { mapFsError } from '../../shared/storage/filesystem.ts';
import type { Lease, LeaseInfo, ObjectInfo, ObjectStore } from '../../shared/storage/types.ts';

export type Op = 'put' | 'putIfAbsent' | 'get' | 'getRange' | 'stat' | 'list' | 'delete' | 'acquireLease' | 'readLease' | 'breakLease' | 'renew' | 'release';
import { seededRandom } from './seeded-random.ts';

export { seededRandom };

const OPS: Op[] = ['put', 'putIfAbsent', 'get', 'getRange', 'stat', 'list', 'delete', 'acquireLease', 'readLease', 'breakLease', 'renew', 'release'];


/** The error a backend reports for a 503/429-style answer (what AzureBlobStore maps such answers to). */
export function transientError(status = 503, retryAfterMs?: number): CosmosBackupError {
  return new CosmosBackupError('STORAGE_UNAVAILABLE', `injected transient failure (HTTP ${status})`, { details: { status, transient: true, retryAfterMs } });
}

/** A raw socket-level error, as an unmapped client library would throw it. */
export function networkError(code = 'ECONNRESET'): Error {
  return Object.assign(new Error(`injected network error ${code}`), { code });
}

type ErrorSource = unknown | (() => unknown);

interface Fault {
  op: Op;
  /** 1-based call numbers of `op` that fail */
  calls: Set<number>;
  error: ErrorSource;
  /** run the real call first, then fail (a lost response) */
  after: boolean;
  /** for list: fail after yielding this many items */
  afterItems: number;
}

export class FaultyStore implements ObjectStore {
  readonly inner: ObjectStore;
  /** calls made per op, including failed ones */
  readonly calls: Record<Op, number>;
  readonly #random: () => number;
  #faults: Fault[] = [];
  #transient: { probability: number; ops: Set<Op>; status: number; retryAfterMs?: number } | undefined;
  #flip: { probability: number } | undefined;
  #full = false;
  /** how many faults fired (transient + scripted + flips) */
  injected = 0;

  constructor(inner: ObjectStore, opts: { seed?: number } = {}) {
    this.inner = inner;
    this.calls = Object.fromEntries(OPS.map((o) => [o, 0])) as Record<Op, number>;
    this.#random = seededRandom(opts.seed ?? 1);
  }

  get location(): string {
    return this.inner.location;
  }

  /** Fails the given call number(s) of op (1-based, counted since creation). */
  failOn(op: Op, nth: number | number[], error: ErrorSource = transientError(), opts: { after?: boolean; afterItems?: number } = {}): this {
    this.#faults.push({ op, calls: new Set(Array.isArray(nth) ? nth : [nth]), error, after: opts.after ?? false, afterItems: opts.afterItems ?? 0 });
    return this;
  }

  /** Fails the next `count` calls of op. */
  failNext(op: Op, count: number, error: ErrorSource = transientError(), opts: { after?: boolean; afterItems?: number } = {}): this {
    const from = this.calls[op] + 1;
    return this.failOn(op, Array.from({ length: count }, (_, i) => from + i), error, opts);
  }

  /** Each call of the chosen ops fails with a 503-like error with this probability (seeded). */
  transient(probability: number, opts: { ops?: Op[]; status?: number; retryAfterMs?: number } = {}): this {
    this.#transient = { probability, ops: new Set(opts.ops ?? OPS), status: opts.status ?? 503, retryAfterMs: opts.retryAfterMs };
    return this;
  }

  /** Flips one byte of what get/getRange return, with this probability (1 = always; 0 = off). */
  flipBytesOnRead(probability = 1): this {
    this.#flip = probability > 0 ? { probability } : undefined;
    return this;
  }

  /** While on, put and putIfAbsent fail as a full disk does. */
  diskFull(on = true): this {
    this.#full = on;
    return this;
  }

  /** Removes all faults (counters stay). */
  heal(): this {
    this.#faults = [];
    this.#transient = undefined;
    this.#flip = undefined;
    this.#full = false;
    return this;
  }

  #make(e: ErrorSource): unknown {
    this.injected++;
    return typeof e === 'function' ? (e as () => unknown)() : e;
  }

  /** Counts the call and returns the scripted fault for it, if any; throws "before" faults. */
  #enter(op: Op, key?: string): Fault | undefined {
    const n = ++this.calls[op];
    if (this.#full && (op === 'put' || op === 'putIfAbsent')) {
      throw this.#make(() => mapFsError(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }), 'writing', `${this.location}/${key}`));
    }
    const fault = this.#faults.find((f) => f.op === op && f.calls.has(n));
    if (fault && !fault.after && !(op === 'list' && fault.afterItems > 0)) throw this.#make(fault.error);
    const t = this.#transient;
    if (t && t.ops.has(op) && this.#random() < t.probability) throw this.#make(transientError(t.status, t.retryAfterMs));
    return fault;
  }

  async #call<T>(op: Op, key: string | undefined, fn: () => Promise<T>): Promise<T> {
    const fault = this.#enter(op, key);
    const r = await fn();
    if (fault?.after) throw this.#make(fault.error);
    return r;
  }

  #maybeFlip(data: Uint8Array): Uint8Array {
    if (!this.#flip || data.byteLength === 0 || this.#random() >= this.#flip.probability) return data;
    this.injected++;
    const copy = Uint8Array.from(data);
    copy[Math.floor(this.#random() * copy.byteLength)]! ^= 0xff;
    return copy;
  }

  putIfAbsent(key: string, data: Uint8Array): Promise<boolean> {
    return this.#call('putIfAbsent', key, () => this.inner.putIfAbsent(key, data));
  }

  put(key: string, data: Uint8Array): Promise<void> {
    return this.#call('put', key, () => this.inner.put(key, data));
  }

  async get(key: string): Promise<Uint8Array> {
    return this.#maybeFlip(await this.#call('get', key, () => this.inner.get(key)));
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    return this.#maybeFlip(await this.#call('getRange', key, () => this.inner.getRange(key, offset, length)));
  }

  stat(key: string): Promise<ObjectInfo | undefined> {
    return this.#call('stat', key, () => this.inner.stat(key));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const fault = this.#enter('list', prefix);
    let yielded = 0;
    for await (const o of this.inner.list(prefix)) {
      if (fault && fault.afterItems > 0 && yielded === fault.afterItems) throw this.#make(fault.error);
      yield o;
      yielded++;
    }
    if (fault?.after) throw this.#make(fault.error);
  }

  delete(key: string): Promise<void> {
    return this.#call('delete', key, () => this.inner.delete(key));
  }

  async acquireLease(key: string, holder: string, ttlMs: number): Promise<Lease> {
    const lease = await this.#call('acquireLease', key, () => this.inner.acquireLease(key, holder, ttlMs));
    return {
      key: lease.key,
      renew: () => this.#call('renew', key, () => lease.renew()),
      release: () => this.#call('release', key, () => lease.release()),
    };
  }

  readLease(key: string): Promise<LeaseInfo | undefined> {
    return this.#call('readLease', key, () => this.inner.readLease(key));
  }

  breakLease(key: string): Promise<void> {
    return this.#call('breakLease', key, () => this.inner.breakLease(key));
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}
