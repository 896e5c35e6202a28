// ObjectStore on an Azure Blob Storage container (optionally under a key prefix), via the official
// SDK. Integrity: every upload carries the body's MD5 both as the transactional Content-MD5 (the
// service rejects a body damaged in transit) and as the stored blob Content-MD5, and every whole
// read compares the stored MD5 with the bytes received. Leases are native blob leases.
import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { BlobLeaseClient, BlockBlobClient, BlockBlobUploadOptions, ContainerClient } from '@azure/storage-blob';
import { CorruptObjectError, CosmosBackupError, NotFoundError } from '../errors.ts';
import { checkRange, lockedError, shortRead } from './common.ts';
import { checkKey, checkPrefix } from './keys.ts';
import { decodeLease, encodeLease, isStale, leaseInfo, newToken, pidAlive, unknownLeaseInfo, type LeaseRecord } from './lease-record.ts';
import { retryAfterFromHeaders } from './retrying.ts';
import type { AccessTier, Lease, LeaseInfo, ObjectInfo, ObjectStore, Tiering } from './types.ts';

/** Azure lease durations are 15..60 s (or infinite); longer ttls are kept alive by a timer. */
export const AZURE_LEASE_MIN_S = 15;
export const AZURE_LEASE_MAX_S = 60;

export interface AzureBlobStoreOptions {
  container: ContainerClient;
  /** key prefix inside the container ("" or "a/b"); stored with a trailing "/" */
  prefix?: string;
  /** description without secrets, for messages; defaults to azblob://account/container/prefix */
  location?: string;
  /** access tier for a newly written blob (archive repositories put their packs in Cool, Cold or Archive); undefined = the account's default */
  tierFor?: (key: string) => AccessTier | undefined;
}

const md5 = (data: Uint8Array): Buffer => createHash('md5').update(data).digest();
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const EMPTY = new Uint8Array(0);

// The SDK forwards `transactionalContentMD5` on upload (sent as the Content-MD5 request header,
// which Put Blob verifies) although its options type does not list it (12.32, "Customized" mode).
type UploadOptions = BlockBlobUploadOptions & { transactionalContentMD5?: Uint8Array };

const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const NETWORK_CODES = new Set(['REQUEST_SEND_ERROR', 'ECONNRESET', 'ETIMEDOUT', 'ECONNREFUSED', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET']);
const CREDENTIAL_ERRORS = new Set(['CredentialUnavailableError', 'AuthenticationError', 'AggregateAuthenticationError', 'AuthenticationRequiredError']);

interface AzureErrorContext {
  op: string;
  key?: string;
  location: string;
  container: string;
}

function statusOf(err: unknown): number | undefined {
  const s = (err as any)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

function errorCodeOf(err: unknown): string | undefined {
  const e = err as any;
  return e?.details?.errorCode ?? e?.code ?? e?.response?.headers?.get?.('x-ms-error-code') ?? undefined;
}

/**
 * Maps SDK/network errors to typed errors with one clear line. Never includes request URLs (they
 * may carry a SAS) and does not attach the raw SDK error as cause for the same reason; status,
 * error code and request id go to `details`. `details.transient` tells the retry wrapper.
 */
export function mapAzureError(err: unknown, ctx: AzureErrorContext): unknown {
  if (err instanceof CosmosBackupError) return err;
  const e = err as any;
  const status = statusOf(err);
  const code = errorCodeOf(err);
  const where = ctx.key ? `${ctx.key} in ${ctx.location}` : ctx.location;
  const details: Record<string, unknown> = { status, errorCode: code, requestId: e?.response?.headers?.get?.('x-ms-request-id'), location: ctx.location };
  if (ctx.key) details.key = ctx.key;
  if (status !== undefined) {
    if (status === 404 && code === 'ContainerNotFound') {
      return new CosmosBackupError('REPO_NOT_FOUND', `container "${ctx.container}" does not exist (${ctx.location}); check the location, or create the repository with \`repo init\``, { details });
    }
    if (status === 404 && ctx.key) return new NotFoundError(ctx.key);
    if (status === 409 && code === 'BlobArchived') {
      return new CosmosBackupError('DATA_ARCHIVED', `${where} is in the Archive access tier: rehydrate it first (a restore through the controller does this), then retry`, { details });
    }
    if (status === 401 || status === 403) {
      return new CosmosBackupError('STORAGE_AUTH', `access denied ${ctx.op} ${where} (${status} ${code ?? ''}): check the SAS token's permissions and expiry, the account key, or the identity's role (Storage Blob Data Contributor)`.replace(' )', ')'), { details });
    }
    if (status === 400 && /md5/i.test(String(code) + String(e?.message))) {
      return new CosmosBackupError('STORAGE_UNAVAILABLE', `upload of ${where} arrived damaged (Content-MD5 mismatch); it can be retried`, { details: { ...details, transient: true } });
    }
    const get = typeof e?.response?.headers?.get === 'function' ? (n: string) => e.response.headers.get(n) : undefined;
    const transient = TRANSIENT_STATUS.has(status);
    return new CosmosBackupError('STORAGE_UNAVAILABLE', `Azure Blob ${ctx.op} ${where} failed: HTTP ${status}${code ? ` ${code}` : ''}`, {
      details: { ...details, transient, retryAfterMs: transient && get ? retryAfterFromHeaders(get) : undefined },
    });
  }
  if (CREDENTIAL_ERRORS.has(e?.name)) {
    return new CosmosBackupError('STORAGE_AUTH', `no usable Azure credential for ${ctx.location}: set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_SAS_TOKEN, use a SAS URL, or sign in (az login, managed identity)`, { details: { ...details, credentialError: e.name } });
  }
  if (e?.name === 'AbortError') return err;
  const sys = e?.cause?.code ?? e?.code;
  if (sys === 'ENOTFOUND' || e?.cause?.code === 'ENOTFOUND') {
    return new CosmosBackupError('STORAGE_UNAVAILABLE', `cannot resolve the storage host of ${ctx.location}: check the account name and DNS`, { details: { ...details, transient: false, errno: 'ENOTFOUND' } });
  }
  if (NETWORK_CODES.has(sys) || NETWORK_CODES.has(e?.code) || /socket hang up/i.test(String(e?.message))) {
    return new CosmosBackupError('STORAGE_UNAVAILABLE', `cannot reach ${ctx.location} while ${ctx.op}${ctx.key ? ` ${ctx.key}` : ''} (${sys ?? 'network error'})`, { details: { ...details, transient: true, errno: sys } });
  }
  return err;
}

/** Reads a response body into one buffer of the announced length (one copy, no concatenation). */
async function readBody(stream: NodeJS.ReadableStream | undefined, length: number, where: string): Promise<Buffer> {
  const out = Buffer.allocUnsafe(length);
  let got = 0;
  if (stream) {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (got + chunk.length > length) throw new CosmosBackupError('STORAGE_UNAVAILABLE', `response for ${where} is longer than announced`, { details: { transient: true } });
      chunk.copy(out, got);
      got += chunk.length;
    }
  }
  if (got !== length) throw new CosmosBackupError('STORAGE_UNAVAILABLE', `response for ${where} ended early (${got} of ${length} bytes)`, { details: { transient: true } });
  return out;
}

function leaseDurationSeconds(ttlMs: number): number {
  return Math.min(AZURE_LEASE_MAX_S, Math.max(AZURE_LEASE_MIN_S, Math.ceil(ttlMs / 1000)));
}

export class AzureBlobStore implements ObjectStore {
  readonly location: string;
  readonly container: ContainerClient;
  readonly prefix: string;
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #tierFor: ((key: string) => AccessTier | undefined) | undefined;

  constructor(opts: AzureBlobStoreOptions) {
    const p = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
    if (p) checkKey(p);
    this.prefix = p ? `${p}/` : '';
    this.container = opts.container;
    this.#tierFor = opts.tierFor;
    this.location = opts.location ?? `azblob://${opts.container.accountName}/${opts.container.containerName}${p ? `/${p}` : ''}`;
  }

  #ctx(op: string, key?: string): AzureErrorContext {
    return { op, key, location: this.location, container: this.container.containerName };
  }

  #blob(key: string): BlockBlobClient {
    checkKey(key);
    return this.container.getBlockBlobClient(this.prefix + key);
  }

  readonly tiering: Tiering = {
    state: async (key) => {
      try {
        const p = await this.#blob(key).getProperties();
        return { tier: p.accessTier, rehydrating: /^rehydrate-pending/i.test(p.archiveStatus ?? '') };
      } catch (err) {
        throw mapAzureError(err, this.#ctx('reading the tier of', key));
      }
    },
    setTier: async (key, tier, priority) => {
      try {
        await this.#blob(key).setAccessTier(tier, priority ? { rehydratePriority: priority } : {});
      } catch (err) {
        throw mapAzureError(err, this.#ctx(`moving to the ${tier} tier`, key));
      }
    },
  };

  /** Creates the container if it does not exist (for `repo init`). */
  async ensureContainer(): Promise<void> {
    try {
      await this.container.createIfNotExists();
    } catch (err) {
      const status = statusOf(err);
      if (status !== 403) throw mapAzureError(err, this.#ctx('creating container'));
      // A container-scoped SAS may not create containers; it is fine if the container exists and lists.
      try {
        await this.container.listBlobsFlat().byPage({ maxPageSize: 1 }).next();
      } catch (err2) {
        throw mapAzureError(err2, this.#ctx('creating container'));
      }
    }
  }

  #uploadOptions(data: Uint8Array, extra: BlockBlobUploadOptions = {}): UploadOptions {
    const sum = md5(data);
    return { ...extra, transactionalContentMD5: sum, blobHTTPHeaders: { blobContentMD5: sum, ...extra.blobHTTPHeaders } };
  }

  #tier(key: string): BlockBlobUploadOptions {
    const tier = this.#tierFor?.(key);
    return tier ? { tier } : {};
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const blob = this.#blob(key);
    try {
      await blob.upload(data, data.byteLength, this.#uploadOptions(data, this.#tier(key)));
    } catch (err) {
      throw mapAzureError(err, this.#ctx('writing', key));
    }
  }

  async putIfAbsent(key: string, data: Uint8Array): Promise<boolean> {
    const blob = this.#blob(key);
    try {
      await blob.upload(data, data.byteLength, this.#uploadOptions(data, { conditions: { ifNoneMatch: '*' }, ...this.#tier(key) }));
      return true;
    } catch (err) {
      // 409 BlobAlreadyExists; 412 ConditionNotMet, or LeaseIdMissing when the existing blob is leased.
      const status = statusOf(err);
      if (status === 409 || (status === 412 && errorCodeOf(err) !== 'ContainerNotFound')) return false;
      throw mapAzureError(err, this.#ctx('writing', key));
    }
  }

  async get(key: string): Promise<Uint8Array> {
    const blob = this.#blob(key);
    let res;
    try {
      res = await blob.download(0);
    } catch (err) {
      throw mapAzureError(err, this.#ctx('reading', key));
    }
    const body = await readBody(res.readableStreamBody, res.contentLength ?? 0, key);
    const stored = res.contentMD5 ?? res.blobContentMD5;
    if (stored && stored.byteLength === 16) {
      const actual = md5(body);
      if (!actual.equals(stored)) throw new CorruptObjectError(key, `Content-MD5 mismatch: stored ${hex(stored)}, received bytes hash to ${hex(actual)}`);
    }
    return body;
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    const blob = this.#blob(key);
    checkRange(key, offset, length);
    if (length === 0) {
      // The SDK treats count 0 as "to the end"; an empty range only needs the object to exist.
      if (!(await this.stat(key))) throw new NotFoundError(key);
      return EMPTY;
    }
    let res;
    try {
      res = await blob.download(offset, length);
    } catch (err) {
      if (statusOf(err) === 416) throw shortRead(key, offset, length, (await this.stat(key))?.size ?? 0);
      throw mapAzureError(err, this.#ctx('reading', key));
    }
    const got = res.contentLength ?? 0;
    const body = await readBody(res.readableStreamBody, got, key);
    if (got < length) throw shortRead(key, offset, length, Number(/\/(\d+)$/.exec(res.contentRange ?? '')?.[1] ?? offset + got));
    return body;
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const blob = this.#blob(key);
    try {
      const p = await blob.getProperties();
      return { key, size: p.contentLength ?? 0, modified: p.lastModified };
    } catch (err) {
      const mapped = mapAzureError(err, this.#ctx('reading', key));
      if (mapped instanceof NotFoundError) return undefined;
      throw mapped;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    checkPrefix(prefix);
    const pages = this.container.listBlobsFlat({ prefix: this.prefix + prefix }).byPage({ maxPageSize: 5000 });
    const it = pages[Symbol.asyncIterator]();
    for (;;) {
      let page;
      try {
        page = await it.next();
      } catch (err) {
        throw mapAzureError(err, this.#ctx('listing', prefix || undefined));
      }
      if (page.done) return;
      for (const item of page.value.segment.blobItems) yield { key: item.name.slice(this.prefix.length), size: item.properties.contentLength ?? 0, modified: item.properties.lastModified };
    }
  }

  async delete(key: string): Promise<void> {
    const blob = this.#blob(key);
    try {
      await blob.deleteIfExists();
    } catch (err) {
      throw mapAzureError(err, this.#ctx('deleting', key));
    }
  }

  /**
   * Takes a native blob lease. The Azure lease lasts clamp(ttl, 15..60 s); a longer ttl is kept
   * alive by a timer until the ttl passes without renew(). The blob's content records the holder.
   * A lease whose holder died lapses on the service within 60 s and can then be acquired again;
   * one still held past its recorded expiry (a hung holder) needs breakLease, as on a filesystem.
   */
  async acquireLease(key: string, holder: string, ttlMs: number): Promise<Lease> {
    const blob = this.#blob(key);
    const duration = leaseDurationSeconds(ttlMs);
    // A proposed lease id makes the SDK's own retries of the acquire request idempotent.
    const leaseClient = blob.getBlobLeaseClient(randomUUID());
    for (let attempt = 0; ; attempt++) {
      try {
        await blob.upload(EMPTY, 0, { conditions: { ifNoneMatch: '*' } });
      } catch (err) {
        const status = statusOf(err);
        if (status !== 409 && status !== 412) throw mapAzureError(err, this.#ctx('creating lease', key));
      }
      try {
        await leaseClient.acquireLease(duration);
        break;
      } catch (err) {
        const status = statusOf(err);
        if (status === 409) throw lockedError(key, (await this.readLease(key)) ?? unknownLeaseInfo());
        // Deleted by a release between our create and acquire: start over.
        if (status === 404 && errorCodeOf(err) === 'BlobNotFound' && attempt < 3) continue;
        throw mapAzureError(err, this.#ctx('acquiring lease', key));
      }
    }
    const leaseId = leaseClient.leaseId;
    const since = new Date().toISOString();
    const token = newToken();
    let expiresAt = 0;
    const write = async () => {
      expiresAt = Date.now() + ttlMs;
      const record: LeaseRecord = { holder, since, expires: new Date(expiresAt).toISOString(), host: hostname(), pid: process.pid, token };
      const body = encodeLease(record);
      await blob.upload(body, body.byteLength, this.#uploadOptions(body, { conditions: { leaseId }, blobHTTPHeaders: { blobContentType: 'application/json' } }));
    };
    try {
      await write();
    } catch (err) {
      await leaseClient.releaseLease().catch(() => undefined);
      throw mapAzureError(err, this.#ctx('writing lease', key));
    }
    const timer = duration * 1000 < ttlMs ? this.#keepAlive(leaseClient, duration, () => expiresAt) : undefined;
    const stop = () => {
      if (timer) {
        clearInterval(timer);
        this.#timers.delete(timer);
      }
    };
    return {
      key,
      renew: async () => {
        try {
          await leaseClient.renewLease();
        } catch (err) {
          const status = statusOf(err);
          if (status === 409 || status === 412 || status === 404) {
            stop();
            throw lockedError(key, (await this.readLease(key)) ?? { holder: 'nobody (the lease was broken)', since: '', expires: '', stale: true });
          }
          throw mapAzureError(err, this.#ctx('renewing lease', key));
        }
        try {
          await write();
        } catch (err) {
          throw mapAzureError(err, this.#ctx('renewing lease', key));
        }
      },
      release: async () => {
        stop();
        try {
          // Deleting under our lease id ends lease and blob at once; if it is no longer ours, leave it.
          await blob.delete({ conditions: { leaseId } });
        } catch (err) {
          const status = statusOf(err);
          if (status === 404 || status === 409 || status === 412) return;
          throw mapAzureError(err, this.#ctx('releasing lease', key));
        }
      },
    };
  }

  /** Renews the service lease at a third of its duration until the recorded expiry passes. */
  #keepAlive(leaseClient: BlobLeaseClient, durationS: number, expiresAt: () => number): NodeJS.Timeout {
    const timer = setInterval(() => {
      if (Date.now() >= expiresAt()) {
        clearInterval(timer);
        this.#timers.delete(timer);
        return;
      }
      // Failures are left to the holder's next renew(), which reports a lost lease.
      leaseClient.renewLease().catch(() => undefined);
    }, (durationS * 1000) / 3);
    timer.unref();
    this.#timers.add(timer);
    return timer;
  }

  async readLease(key: string): Promise<LeaseInfo | undefined> {
    const blob = this.#blob(key);
    let res;
    try {
      res = await blob.download(0);
    } catch (err) {
      const mapped = mapAzureError(err, this.#ctx('reading lease', key));
      if (mapped instanceof NotFoundError) return undefined;
      throw mapped;
    }
    const body = await readBody(res.readableStreamBody, res.contentLength ?? 0, key);
    const held = res.leaseState === 'leased';
    const r = decodeLease(body);
    if (!r) return { ...unknownLeaseInfo(), stale: !held };
    return leaseInfo(r, !held || isStale(r, Date.now(), hostname(), pidAlive));
  }

  async breakLease(key: string): Promise<void> {
    const blob = this.#blob(key);
    try {
      await blob.getBlobLeaseClient().breakLease(0);
    } catch (err) {
      const status = statusOf(err);
      // 409: no lease to break; 404: no blob at all.
      if (status !== 409 && status !== 404) throw mapAzureError(err, this.#ctx('breaking lease', key));
    }
    try {
      await blob.deleteIfExists();
    } catch (err) {
      // 412 LeaseIdMissing: someone acquired it right after our break; that lease is theirs.
      if (statusOf(err) !== 412) throw mapAzureError(err, this.#ctx('breaking lease', key));
    }
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers.clear();
  }
}
