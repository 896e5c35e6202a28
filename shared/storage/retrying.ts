// Retry wrapper: retries each store *call* (a bounded, restartable unit: one object, one range, one
// listing) on transient errors with exponential backoff and jitter, honouring Retry-After.
// Use-case code never retries; it is stacked here, once, in openStore().
import { setTimeout as delay } from 'node:timers/promises';
import { CosmosBackupError } from '../errors.ts';
import type { Lease, ObjectInfo, ObjectStore } from './types.ts';

export interface RetryPolicy {
  /** total tries per call, including the first */
  maxAttempts: number;
  /** delay before the 2nd try; doubles for each later try */
  baseDelayMs: number;
  /** cap on any single delay, also on a server's Retry-After */
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({ maxAttempts: 6, baseDelayMs: 200, maxDelayMs: 30_000 });

export interface RetryEvent {
  op: string;
  key?: string;
  /** the try that failed (1 = first) */
  attempt: number;
  /** how long we wait before the next try */
  delayMs: number;
  error: unknown;
}

export interface RetryOptions extends Partial<RetryPolicy> {
  /** how to wait; tests pass a recorder instead of real time */
  sleep?: (ms: number) => Promise<void>;
  /** [0,1) source for jitter; tests pass a seeded one */
  random?: () => number;
  /** observer for logs/metrics */
  onRetry?: (e: RetryEvent) => void;
}

export interface Classification {
  transient: boolean;
  /** what the server asked us to wait, if it did */
  retryAfterMs?: number;
}

const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'ECONNREFUSED', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'REQUEST_SEND_ERROR']);

/** Parses a Retry-After value: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value == null || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** Reads retry-after-ms / x-ms-retry-after-ms (milliseconds) or Retry-After (seconds or date). */
export function retryAfterFromHeaders(get: (name: string) => string | null | undefined, now = Date.now()): number | undefined {
  for (const h of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const v = get(h);
    if (v != null && /^\d+(\.\d+)?$/.test(v.trim())) return Math.round(Number(v.trim()));
  }
  return parseRetryAfter(get('retry-after'), now);
}

function headerGetter(err: any): ((name: string) => string | undefined) | undefined {
  const h = err?.response?.headers;
  if (!h) return undefined;
  if (typeof h.get === 'function') return (n) => h.get(n) ?? undefined;
  return (n) => h[n] ?? h[n.toLowerCase()];
}

/**
 * Decides whether an error is worth retrying. Backends map their errors to CosmosBackupError:
 * only STORAGE_UNAVAILABLE is transient (unless it says `details.transient: false`); NotFound, auth,
 * corrupt, locked, full and invalid-argument errors are permanent. Raw errors (unmapped SDK or socket
 * errors) are judged by HTTP status and errno code, then by their cause.
 */
export function classifyError(err: unknown, depth = 0): Classification {
  if (err instanceof CosmosBackupError) {
    if (err.code !== 'STORAGE_UNAVAILABLE') return { transient: false };
    const ra = err.details.retryAfterMs;
    return { transient: err.details.transient !== false, retryAfterMs: typeof ra === 'number' ? ra : undefined };
  }
  const e = err as any;
  if (!e || typeof e !== 'object' || depth > 5) return { transient: false };
  if (e.name === 'AbortError') return { transient: false };
  const status = typeof e.statusCode === 'number' ? e.statusCode : typeof e.status === 'number' ? e.status : undefined;
  if (status !== undefined) {
    const get = headerGetter(e);
    return { transient: TRANSIENT_STATUS.has(status), retryAfterMs: get ? retryAfterFromHeaders(get) : undefined };
  }
  if (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code)) return { transient: true };
  if (typeof e.message === 'string' && /socket hang up/i.test(e.message)) return { transient: true };
  if (e.cause) return classifyError(e.cause, depth + 1);
  return { transient: false };
}

/** Delay before try `attempt + 1` after try `attempt` failed: "equal jitter" exponential backoff. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number, retryAfterMs?: number): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const jittered = exp / 2 + (exp / 2) * random();
  return Math.round(Math.min(policy.maxDelayMs, Math.max(jittered, retryAfterMs ?? 0)));
}

interface Retrier {
  <T>(op: string, key: string | undefined, fn: (attempt: number) => Promise<T>): Promise<T>;
}

function makeRetrier(opts: RetryOptions): Retrier {
  const policy: RetryPolicy = {
    maxAttempts: opts.maxAttempts ?? DEFAULT_RETRY_POLICY.maxAttempts,
    baseDelayMs: opts.baseDelayMs ?? DEFAULT_RETRY_POLICY.baseDelayMs,
    maxDelayMs: opts.maxDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs,
  };
  if (!(policy.maxAttempts >= 1)) throw new CosmosBackupError('INVALID_ARGUMENT', `retry maxAttempts must be at least 1, got ${policy.maxAttempts}`);
  const sleep = opts.sleep ?? ((ms: number) => delay(ms));
  const random = opts.random ?? Math.random;
  return async (op, key, fn) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(attempt);
      } catch (err) {
        const c = classifyError(err);
        if (!c.transient || attempt >= policy.maxAttempts) throw err;
        const delayMs = backoffDelay(attempt, policy, random, c.retryAfterMs);
        opts.onRetry?.({ op, key, attempt, delayMs, error: err });
        await sleep(delayMs);
      }
    }
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/**
 * Wraps a store so every call is retried on transient errors. Notes on the non-idempotent calls:
 * - putIfAbsent: if a retried try finds the object present, the lost try may have been ours; when
 *   the stored bytes equal ours it reports true (indistinguishable from having written them).
 * - list: a listing that fails midway is restarted, and keys already yielded are skipped.
 * - acquireLease: a try whose response was lost may have taken the lease; the retry then reports
 *   REPO_LOCKED naming ourselves (rare; the lock shows our holder string, and expires).
 */
export function withRetries(store: ObjectStore, opts: RetryOptions = {}): ObjectStore {
  const retry = makeRetrier(opts);
  const wrapLease = (lease: Lease): Lease => ({
    key: lease.key,
    renew: () => retry('renew', lease.key, () => lease.renew()),
    release: () => retry('release', lease.key, () => lease.release()),
  });
  return {
    location: store.location,
    putIfAbsent: (key, data) => retry('putIfAbsent', key, async (attempt) => {
      const created = await store.putIfAbsent(key, data);
      if (created || attempt === 1) return created;
      const existing = await store.get(key).catch(() => undefined);
      return existing !== undefined && sameBytes(existing, data);
    }),
    put: (key, data) => retry('put', key, () => store.put(key, data)),
    get: (key) => retry('get', key, () => store.get(key)),
    getRange: (key, offset, length) => retry('getRange', key, () => store.getRange(key, offset, length)),
    stat: (key) => retry('stat', key, () => store.stat(key)),
    list: (prefix) => retryingList(store, prefix, retry),
    delete: (key) => retry('delete', key, () => store.delete(key)),
    acquireLease: async (key, holder, ttlMs) => wrapLease(await retry('acquireLease', key, () => store.acquireLease(key, holder, ttlMs))),
    readLease: (key) => retry('readLease', key, () => store.readLease(key)),
    breakLease: (key) => retry('breakLease', key, () => store.breakLease(key)),
    close: store.close && (() => store.close!()),
    tiering: store.tiering,
  };
}

async function* retryingList(store: ObjectStore, prefix: string, retry: Retrier): AsyncGenerator<ObjectInfo> {
  const seen = new Set<string>();
  let it: AsyncIterator<ObjectInfo> | undefined;
  try {
    for (;;) {
      // Each step is one retried call; a failed step restarts the listing from the beginning.
      const step = await retry('list', prefix, async (attempt) => {
        if (!it || attempt > 1) {
          await it?.return?.().catch(() => undefined);
          it = store.list(prefix)[Symbol.asyncIterator]();
        }
        for (;;) {
          const r = await it.next();
          if (r.done || !seen.has(r.value.key)) return r;
        }
      });
      if (step.done) return;
      seen.add(step.value.key);
      yield step.value;
    }
  } finally {
    await it?.return?.().catch(() => undefined);
  }
}
