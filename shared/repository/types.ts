// Public shapes of the repository: what engines write and read. The format itself is in docs/FORMAT.md.
import type { Readable, Writable } from 'node:stream';

/** One stored object of a restore point: a table's COPY data, a collection's BSON, a schema document. */
export interface ManifestObject {
  /** unique within the restore point, e.g. "data/public.orders", "schema.json" */
  name: string;
  /** engine-defined kind, e.g. "table-data", "collection-bson", "schema", "large-object" */
  kind: string;
  /** plaintext bytes */
  size: number;
  /**
   * SHA-256 (hex) of the plaintext: written by earlier versions, checked when present. Objects
   * written now rely on every chunk's id check, the id-checked chunk lists and the size
   * (docs/FORMAT.md §7), which saves a second hash pass over all data on backup and on restore.
   */
  sha256?: string;
  /** hex ids of the chunks holding the object's chunk-id list (see FORMAT.md "chunk lists") */
  list: string[];
  /** number of data chunks */
  chunks: number;
  /** engine metadata for this object (row count, columns, …); never secrets */
  meta?: Record<string, unknown>;
}

export interface RestorePointInfo {
  /** hex id = SHA-256 of the stored manifest object */
  id: string;
  engine: string;
  /** logical database name as seen by the engine */
  database: string;
  /** host/cluster label of the source (never a connection string) */
  source: string;
  startedAt: string;
  finishedAt: string;
  tags: string[];
  labels: Record<string, string>;
  /** engine facts: server version, encoding, collation, extensions, … */
  server: Record<string, unknown>;
  stats: { objects: number; bytes: number; chunks: number; newChunks: number; storedBytes: number; /** new chunks stored as deltas (version 2 repositories) */ deltaChunks?: number };
}

export interface RestorePoint extends RestorePointInfo {
  objects: ManifestObject[];
  /** engine-level document (schema sections, ordering); never secrets */
  meta: Record<string, unknown>;
}

export interface BackupOptions {
  engine: string;
  database: string;
  source: string;
  tags?: string[];
  labels?: Record<string, string>;
  server?: Record<string, unknown>;
}

/** Writes one object. End the stream (or call finish) to seal it; destroy it to abandon it. */
export interface ObjectWriter extends Writable {
  /** Resolves when every chunk of the object is accepted (not necessarily uploaded yet). */
  finish(): Promise<ManifestObject>;
}

/** An in-progress backup: holds a shared repository lock until commit or abort. */
export interface BackupWriter {
  /** A writable stream for one object; several may be open at once (parallel tables). */
  createObject(name: string, kind: string, meta?: Record<string, unknown>): ObjectWriter;
  /** Convenience for small objects held in memory. */
  putObject(name: string, kind: string, data: Uint8Array, meta?: Record<string, unknown>): Promise<ManifestObject>;
  /** Uploads what is pending, writes index and the manifest last and atomically; returns the restore point. */
  commit(meta?: Record<string, unknown>): Promise<RestorePoint>;
  /** Stops, releases the lock, leaves no restore point (data already uploaded becomes garbage for gc). */
  abort(reason?: unknown): Promise<void>;
}

export interface ProgressInfo {
  bytesRead: number;
  bytesStored: number;
  objectsDone: number;
}
export type ProgressFn = (p: ProgressInfo) => void;

/** Reading side, used by restore/export. */
export interface RestorePointReader {
  readonly restorePoint: RestorePoint;
  /** Plaintext of one object as a stream; fails loudly (CorruptObjectError) instead of returning wrong bytes. */
  openObject(obj: ManifestObject): Readable;
  readObject(obj: ManifestObject): Promise<Buffer>;
}
