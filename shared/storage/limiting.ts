// Bounds the number of store calls in flight (memory and connections stay bounded however many
// callers push). Lease calls bypass the bound: they are tiny, and a renew queued behind large
// uploads could otherwise let a lease expire.
import { CosmosBackupError } from '../errors.ts';
import type { ObjectInfo, ObjectStore } from './types.ts';

/** A counting semaphore; waiters are served first come, first served. */
export class Semaphore {
  readonly #max: number;
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new CosmosBackupError('INVALID_ARGUMENT', `concurrency limit must be a positive integer, got ${max}`);
    this.#max = max;
  }

  get active(): number {
    return this.#active;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active >= this.#max) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#active++;
    try {
      return await fn();
    } finally {
      // Hand the slot straight to the next waiter (active stays the same) or give it back.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    }
  }
}

export function withConcurrencyLimit(store: ObjectStore, n: number): ObjectStore {
  const sem = new Semaphore(n);
  return {
    location: store.location,
    putIfAbsent: (key, data) => sem.run(() => store.putIfAbsent(key, data)),
    put: (key, data) => sem.run(() => store.put(key, data)),
    get: (key) => sem.run(() => store.get(key)),
    getRange: (key, offset, length) => sem.run(() => store.getRange(key, offset, length)),
    stat: (key) => sem.run(() => store.stat(key)),
    list: (prefix) => limitedList(store, prefix, sem),
    delete: (key) => sem.run(() => store.delete(key)),
    acquireLease: (key, holder, ttlMs) => store.acquireLease(key, holder, ttlMs),
    readLease: (key) => store.readLease(key),
    breakLease: (key) => store.breakLease(key),
    close: store.close && (() => store.close!()),
    tiering: store.tiering,
  };
}

/** Holds a slot per page step, not for the whole listing, so a consumer that calls the store while iterating cannot deadlock. */
async function* limitedList(store: ObjectStore, prefix: string, sem: Semaphore): AsyncGenerator<ObjectInfo> {
  const it = store.list(prefix)[Symbol.asyncIterator]();
  try {
    for (;;) {
      const r = await sem.run(() => it.next());
      if (r.done) return;
      yield r.value;
    }
  } finally {
    await it.return?.();
  }
}
