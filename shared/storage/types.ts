// The one storage interface every backend implements (filesystem, Azure Blob, memory).
// Keys are '/'-separated relative paths like "data/ab/abcdef…"; they never start with '/'.
// Every backend enforces the same key rules (keys.ts): no empty, "." or ".." segments, no
// backslash, no segment starting with ".tmp-"; a bad key is an INVALID_ARGUMENT error.
// Errors are typed (shared/errors.ts): NOT_FOUND, CORRUPT_OBJECT, REPO_LOCKED, REPO_NOT_FOUND,
// STORAGE_AUTH, STORAGE_FULL, STORAGE_UNAVAILABLE (details.transient says whether a retry may help).

export interface ObjectInfo {
  key: string;
  size: number;
  /** last modification time as the backend reports it (gc's grace period relies on it) */
  modified?: Date;
}

/** A held, expiring, exclusive lease on one key (Blob lease on Azure, lock file with expiry on a filesystem). */
export interface Lease {
  readonly key: string;
  /** Extends the lease by its ttl; throws REPO_LOCKED if it was lost (expired and taken by another). */
  renew(): Promise<void>;
  release(): Promise<void>;
}

export interface LeaseInfo {
  holder: string;
  since: string;
  expires: string;
  /** true when the lease has expired (or its holder is provably gone) and may be broken */
  stale: boolean;
}

export interface ObjectStore {
  /** Human description without secrets, e.g. "file:///backups/repo" or "azblob://acct/container/prefix". */
  readonly location: string;
  /** Stores data under key only if no object exists there; atomic (readers never see a partial object). Returns false if it existed.
   * `data` is not read once the promise settles (callers reuse the buffer). */
  putIfAbsent(key: string, data: Uint8Array): Promise<boolean>;
  /** Stores or replaces data under key atomically. */
  put(key: string, data: Uint8Array): Promise<void>;
  /** Whole object; throws NotFoundError. Backends verify transport checksums (Content-MD5) where they exist. */
  get(key: string): Promise<Uint8Array>;
  /** length bytes from offset; throws NotFoundError, or CorruptObjectError when the object ends before offset+length. */
  getRange(key: string, offset: number, length: number): Promise<Uint8Array>;
  stat(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with prefix, in no particular order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Removes key; succeeds if it does not exist. */
  delete(key: string): Promise<void>;
  /**
   * Takes an exclusive lease on key (creating the object if needed) or throws RepoLockedError naming the holder.
   * A stale lease is not taken over (breakLease first); on Azure the service itself ends the lease of a
   * holder that stopped renewing within 60 s, after which acquiring succeeds. The object at key holds the
   * holder record (JSON) and is listed like any other object; release deletes it.
   */
  acquireLease(key: string, holder: string, ttlMs: number): Promise<Lease>;
  /** Who holds the lease on key, if anyone. */
  readLease(key: string): Promise<LeaseInfo | undefined>;
  /** Ends any lease on key regardless of holder (for stale locks). */
  breakLease(key: string): Promise<void>;
  /** Releases connections and timers. */
  close?(): Promise<void>;
  /** Access tiers of stored objects (Azure Blob); absent on backends without tiers. */
  readonly tiering?: Tiering;
}

export type AccessTier = 'Hot' | 'Cool' | 'Cold' | 'Archive';

export interface TierState {
  /** the object's tier as the service reports it (undefined: the account's default, not set per object) */
  tier: string | undefined;
  /** a rehydration out of the Archive tier is under way */
  rehydrating: boolean;
}

export interface Tiering {
  state(key: string): Promise<TierState>;
  /** Moves key to tier; out of Archive this starts a rehydration that can take hours (Standard) or about one (High). */
  setTier(key: string, tier: AccessTier, priority?: 'Standard' | 'High'): Promise<void>;
}
