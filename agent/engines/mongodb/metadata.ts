// The per-database metadata document of a MongoDB restore point: collections with their options,
// indexes and views, as listCollections/listIndexes answered. Stored as MongoDB Extended JSON v2
// in canonical form so every BSON type (Int32 vs Double, regexes, dates in filters) survives.
import { EJSON, type Binary, type Document } from 'bson';
import { CosmosBackupError } from '../../../shared/errors.ts';

export const ENGINE = 'mongodb';
export const METADATA_OBJECT = 'metadata.json';
export const DATA_KIND = 'collection-bson';
export const FORMAT_VERSION = 1;

export type CollectionType = 'collection' | 'timeseries' | 'view';

export interface CollectionMeta {
  name: string;
  type: CollectionType;
  /** options exactly as listCollections reported them */
  options: Document;
  /** collection UUID (info.uuid), when the server reports one */
  uuid?: Binary;
  idIndex?: Document;
  /** every index as listIndexes reported it, `_id_` included */
  indexes: Document[];
  /** repository object holding the concatenated raw documents (not for views) */
  object?: string;
  /** documents written to the object, and their bytes */
  documents?: number;
  bytes?: number;
  /** estimated count when the backup of this collection started */
  countAtStart?: number;
  startedAt?: string;
  finishedAt?: string;
}

export interface MongoMetadata {
  format: number;
  database: string;
  server: Document;
  collections: CollectionMeta[];
}

export function encodeMetadata(m: MongoMetadata): Buffer {
  return Buffer.from(EJSON.stringify(m, { relaxed: false }));
}

export function decodeMetadata(data: Buffer, what: string): MongoMetadata {
  let m: MongoMetadata;
  try {
    m = EJSON.parse(data.toString('utf8'), { relaxed: false }) as MongoMetadata;
  } catch (e) {
    throw new CosmosBackupError('CORRUPT_OBJECT', `${what}: the metadata is not valid Extended JSON: ${(e as Error).message}`, { cause: e });
  }
  if (Number(m.format) !== FORMAT_VERSION || !Array.isArray(m.collections)) {
    throw new CosmosBackupError('UNSUPPORTED_FORMAT', `${what}: MongoDB metadata format ${String(m.format)} is not supported by this agent (it reads ${FORMAT_VERSION}); use a newer agent`);
  }
  return m;
}

/** Numbers in canonical EJSON come back as Int32/Double/Long wrappers. */
export function num(v: unknown): number {
  return v === undefined || v === null ? 0 : Number(v);
}

/** Hex form of a UUID Binary, as mongodump writes it ("3b24…a962"). */
export function uuidHex(u: Binary | undefined): string | undefined {
  if (!u) return undefined;
  return Buffer.from(u.buffer).toString('hex');
}

/**
 * The `<coll>.metadata.json` mongodump writes: options, indexes, uuid, collectionName, type,
 * in canonical Extended JSON (mongorestore reads it back to create the collection).
 */
export function mongodumpMetadata(c: CollectionMeta): string {
  const out: Document = { options: c.options ?? {}, indexes: c.type === 'view' ? [] : c.indexes };
  const uuid = uuidHex(c.uuid);
  if (uuid) out.uuid = uuid;
  out.collectionName = c.name;
  out.type = c.type;
  return EJSON.stringify(out, { relaxed: false });
}

/** Index definitions as createIndexes takes them: what listIndexes gave, minus `v` and `ns`. */
export function indexSpecs(indexes: Document[]): Document[] {
  return indexes
    .filter((i) => i.name !== '_id_')
    .map((i) => {
      const { v: _v, ns: _ns, ...rest } = i;
      return rest;
    });
}

/** Views in an order where a view comes after the views it reads from. */
export function viewOrder(views: CollectionMeta[]): CollectionMeta[] {
  const byName = new Map(views.map((v) => [v.name, v]));
  const out: CollectionMeta[] = [];
  const seen = new Set<string>();
  const visit = (v: CollectionMeta, depth: number) => {
    if (seen.has(v.name) || depth > 100) return;
    seen.add(v.name);
    const on = byName.get(String(v.options.viewOn));
    if (on) visit(on, depth + 1);
    out.push(v);
  };
  for (const v of views) visit(v, 0);
  return out;
}
