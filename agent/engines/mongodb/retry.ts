// Throttling and transient failures. Cosmos DB answers a request beyond the provisioned request
// units with error 16500 and a RetryAfterMs hint; networks drop; cursors time out. Each is retried
// with backoff (the hint when there is one), and counted so the summary can say how many it took.
import { CosmosBackupError } from '../../../shared/errors.ts';

export type FailureKind = 'throttle' | 'transient' | 'fatal';

export interface RetryPolicy {
  /** consecutive failures without progress before giving up */
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
  /** ceiling for a server's RetryAfterMs hint */
  maxThrottleMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 15, baseMs: 100, maxMs: 10_000, maxThrottleMs: 30_000 };

/** Server codes worth retrying: failovers, shutdowns, timeouts, lost cursors. */
const TRANSIENT_CODES = new Set([
  6, 7, 43, 50, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436,
]);
const NETWORK_NAMES = new Set(['MongoNetworkError', 'MongoNetworkTimeoutError', 'MongoServerSelectionError', 'MongoPoolClearedError', 'MongoTopologyClosedError']);

interface ErrorLike { name?: string; code?: unknown; message?: string; errorLabels?: string[]; hasErrorLabel?: (l: string) => boolean; cause?: unknown }

function codeOf(e: ErrorLike): number | undefined {
  return typeof e.code === 'number' ? e.code : undefined;
}

export function classifyError(e: unknown): FailureKind {
  // Our own errors (repository, storage, corrupt data) are never the server's to retry.
  if (!e || typeof e !== 'object' || e instanceof CosmosBackupError) return 'fatal';
  const err = e as ErrorLike;
  const code = codeOf(err);
  const msg = err.message ?? '';
  if (code === 16500 || /RequestRateTooLarge|TooManyRequests|\(429\)/.test(msg)) return 'throttle';
  if (err.name && NETWORK_NAMES.has(err.name)) return 'transient';
  if (code !== undefined && TRANSIENT_CODES.has(code)) return 'transient';
  const labels = err.errorLabels ?? [];
  if (labels.includes('RetryableWriteError') || labels.includes('ResetPool') || labels.includes('TransientTransactionError')) return 'transient';
  if (/ECONNRESET|EPIPE|socket hang up|connection .* closed/i.test(msg)) return 'transient';
  return 'fatal';
}

/** The RetryAfterMs hint of a Cosmos DB throttling error ("Error=16500, RetryAfterMs=123, …"). */
export function retryAfterMs(e: unknown): number | undefined {
  const msg = (e as ErrorLike | undefined)?.message ?? '';
  const m = /RetryAfterMs=(\d+)/i.exec(msg);
  return m ? Number(m[1]) : undefined;
}

/** Milliseconds to wait before attempt `attempt + 1` (attempt counts from 1). */
export function retryDelay(kind: FailureKind, attempt: number, e: unknown, policy: RetryPolicy = DEFAULT_RETRY, random = Math.random): number {
  const hint = kind === 'throttle' ? retryAfterMs(e) : undefined;
  if (hint !== undefined) {
    // The hint, plus a little spread so parallel workers do not come back in the same instant.
    return Math.min(policy.maxThrottleMs, hint) + Math.floor(random() * Math.min(50, hint + 1));
  }
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt - 1, 20));
  return Math.floor(exp / 2 + random() * (exp / 2));
}

/** Server messages (Cosmos DB's especially) run over several lines; errors here are one line. */
export function firstLine(s: string): string {
  return s.split(/\r?\n/)[0]!.trim();
}

export interface RetryCounts { retries: number; throttled: number }

/** Shared by one backup or restore: counts retries, sleeps, and decides when to give up. */
export class Retrier {
  readonly counts: RetryCounts = { retries: 0, throttled: 0 };
  private readonly policy: RetryPolicy;
  private readonly onRetry?: (what: string, kind: FailureKind, delayMs: number, e: unknown) => void;

  constructor(policy: Partial<RetryPolicy> = {}, onRetry?: (what: string, kind: FailureKind, delayMs: number, e: unknown) => void) {
    this.policy = { ...DEFAULT_RETRY, ...policy };
    this.onRetry = onRetry;
  }

  /**
   * Called with a failure of attempt `attempt` (from 1): rethrows fatal errors and the last one
   * after maxAttempts, otherwise waits and returns so the caller tries again.
   */
  async handle(what: string, e: unknown, attempt: number): Promise<void> {
    const kind = classifyError(e);
    if (kind === 'fatal') throw e;
    if (attempt >= this.policy.maxAttempts) {
      const msg = firstLine((e as Error)?.message ?? String(e));
      throw new CosmosBackupError(kind === 'throttle' ? 'DATABASE_ERROR' : 'DATABASE_UNREACHABLE',
        `${what} still failing after ${attempt} attempts (${kind === 'throttle' ? 'throttled: raise the request units or lower --parallel' : 'server unreachable or unstable'}): ${msg}`, { cause: e });
    }
    const delay = retryDelay(kind, attempt, e, this.policy);
    this.counts.retries++;
    if (kind === 'throttle') this.counts.throttled++;
    this.onRetry?.(what, kind, delay, e);
    await new Promise((r) => setTimeout(r, delay));
  }

  /** Runs an idempotent operation until it succeeds, a fatal error, or too many attempts. */
  async run<T>(what: string, fn: (attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(attempt);
      } catch (e) {
        await this.handle(what, e, attempt);
      }
    }
  }
}
