// The stand-in's data model: databases of collections (or views), each document kept as the
// exact BSON bytes it was inserted with, in an array ordered by _id (MongoDB's value order).
import { BSON, UUID, type Document } from 'bson';
import { COMPARE_DECODE, compareValues } from './compare.ts';
import { decodeElement, documentFromElements, elements, newObjectIdElement, type RawElement } from './raw-bson.ts';

export interface DocEntry {
  /** The decoded _id (COMPARE_DECODE), the sort key. */
  id: unknown;
  raw: Buffer;
}

export type CollectionKind = 'collection' | 'view' | 'timeseries';

export const ID_INDEX: Document = { v: 2, key: { _id: 1 }, name: '_id_' };

export class Collection {
  readonly name: string;
  readonly kind: CollectionKind;
  /** Options as given to `create`, with their BSON types kept (decoded with promoteValues: false). */
  readonly options: Document;
  readonly uuid = new UUID();
  /** Index specifications as listIndexes returns them, `_id_` first (none for views). */
  indexes: Document[];
  docs: DocEntry[] = [];
  bytes = 0;

  constructor(name: string, kind: CollectionKind, options: Document) {
    this.name = name;
    this.kind = kind;
    this.options = options;
    this.indexes = initialIndexes(kind, options);
  }

  /** First position whose _id is >= id (or > id when `after`). */
  bound(id: unknown, after = false): number {
    let lo = 0;
    let hi = this.docs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareValues(this.docs[mid]!.id, id);
      if (c < 0 || (after && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  indexOfId(id: unknown): number {
    const i = this.bound(id);
    return i < this.docs.length && compareValues(this.docs[i]!.id, id) === 0 ? i : -1;
  }

  /** Adds a document; false when its _id is already present. Appends in O(1) for ascending ids. */
  add(entry: DocEntry): boolean {
    const n = this.docs.length;
    if (n === 0 || compareValues(this.docs[n - 1]!.id, entry.id) < 0) {
      this.docs.push(entry);
    } else {
      const i = this.bound(entry.id);
      if (i < n && compareValues(this.docs[i]!.id, entry.id) === 0) return false;
      this.docs.splice(i, 0, entry);
    }
    this.bytes += entry.raw.length;
    return true;
  }

  removeAt(i: number): void {
    const [gone] = this.docs.splice(i, 1);
    if (gone) this.bytes -= gone.raw.length;
  }

  replaceAt(i: number, raw: Buffer): void {
    const entry = this.docs[i]!;
    this.bytes += raw.length - entry.raw.length;
    entry.raw = raw;
  }
}

/** The indexes mongod 7.0 creates with a collection. */
function initialIndexes(kind: CollectionKind, options: Document): Document[] {
  if (kind === 'view') return [];
  if (kind === 'timeseries') {
    // No _id index; since 6.3 a {meta: 1, time: 1} index when there is a metaField.
    const ts = options.timeseries as { timeField: string; metaField?: string };
    return ts.metaField ? [{ v: 2, key: { [ts.metaField]: 1, [ts.timeField]: 1 }, name: `${ts.metaField}_1_${ts.timeField}_1` }] : [];
  }
  if (options.clusteredIndex) return [{ v: 2, key: { _id: 1 }, name: '_id_', unique: true, clustered: true }];
  return [{ ...ID_INDEX, key: { _id: 1 } }];
}

export class Database {
  readonly name: string;
  readonly collections = new Map<string, Collection>();
  constructor(name: string) {
    this.name = name;
  }
}

export class Store {
  readonly databases = new Map<string, Database>();

  database(name: string, create: boolean): Database | undefined {
    let db = this.databases.get(name);
    if (!db && create) {
      db = new Database(name);
      this.databases.set(name, db);
    }
    return db;
  }

  collection(db: string, name: string): Collection | undefined {
    return this.databases.get(db)?.collections.get(name);
  }

  /** The collection, created (with no options) when absent, as an insert does. */
  ensureCollection(db: string, name: string): Collection {
    const d = this.database(db, true)!;
    let c = d.collections.get(name);
    if (!c) {
      c = new Collection(name, 'collection', {});
      d.collections.set(name, c);
    }
    return c;
  }

  dropCollection(db: string, name: string): Collection | undefined {
    const d = this.databases.get(db);
    const c = d?.collections.get(name);
    if (d && c) {
      d.collections.delete(name);
      if (d.collections.size === 0) this.databases.delete(db);
    }
    return c;
  }
}

/** Finds the _id element, cheaply when it comes first (as mongod stores it). */
export function idElement(raw: Buffer): RawElement | undefined {
  if (raw.length > 9 && raw[5] === 0x5f && raw[6] === 0x69 && raw[7] === 0x64 && raw[8] === 0) {
    const els = elements(raw);
    return els[0];
  }
  return elements(raw).find((e) => e.name === '_id');
}

/**
 * Prepares a document for storage as mongod does: _id first (a new ObjectId when absent).
 * Documents that already start with _id are kept byte for byte.
 */
export function prepareForInsert(raw: Buffer): DocEntry {
  const els = elements(raw);
  const idx = els.findIndex((e) => e.name === '_id');
  let stored = raw;
  if (idx < 0) {
    stored = documentFromElements(raw, els, newObjectIdElement());
  } else if (idx > 0) {
    stored = documentFromElements(raw, [els[idx]!, ...els.filter((_, i) => i !== idx)]);
  }
  const idEl = idx < 0 ? elements(stored)[0]! : idx === 0 ? els[0]! : elements(stored)[0]!;
  if (idEl.type === 0x04 || idEl.type === 0x0b || idEl.type === 0x06) {
    throw new Error(`can't use ${idEl.type === 0x04 ? 'an array' : idEl.type === 0x0b ? 'a regex' : 'undefined'} for _id`);
  }
  return { id: decodeElement(stored, idEl, COMPARE_DECODE), raw: stored };
}

export function decodeId(raw: Buffer): unknown {
  const el = idElement(raw);
  return el ? decodeElement(raw, el, COMPARE_DECODE) : undefined;
}

export function serialize(doc: Document): Buffer {
  return Buffer.from(BSON.serialize(doc));
}
