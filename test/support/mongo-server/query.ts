// Query evaluation for the stand-in. Filters on _id alone ({_id: X}, {_id: {$gt: X, $lte: Y}},
// $in, $and of those) are answered from the ordered _id array without decoding documents; any
// other filter, sort or projection decodes documents and uses mingo for MongoDB's semantics.
import { BSON, type Document } from 'bson';
import { Aggregator, Query } from 'mingo';
import { COMPARE_DECODE, comparable, compareValues, typeRank } from './compare.ts';
import { documentFromElements, elements } from './raw-bson.ts';
import type { Collection, DocEntry } from './store.ts';
import { serialize } from './store.ts';

export class QueryError extends Error {
  readonly code: number;
  readonly codeName: string;
  constructor(code: number, codeName: string, message: string) {
    super(message);
    this.code = code;
    this.codeName = codeName;
  }
}

type IdOp = '$eq' | '$gt' | '$gte' | '$lt' | '$lte' | '$in' | '$ne' | '$nin';
interface IdCondition { op: IdOp; value: unknown }
const ID_OPS = new Set<string>(['$eq', '$gt', '$gte', '$lt', '$lte', '$in', '$ne', '$nin']);

function isPlainObject(v: unknown): v is Document {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && (v as { _bsontype?: string })._bsontype === undefined;
}

function isRegex(v: unknown): boolean {
  return v instanceof RegExp || (typeof v === 'object' && v !== null && (v as { _bsontype?: string })._bsontype === 'BSONRegExp');
}

/** The filter as conditions on _id only, or undefined when it needs the general path. */
export function idConditions(filter: Document): IdCondition[] | undefined {
  const out: IdCondition[] = [];
  for (const [key, value] of Object.entries(filter)) {
    if (key === '$and' && Array.isArray(value)) {
      for (const sub of value) {
        if (!isPlainObject(sub)) return undefined;
        const c = idConditions(sub);
        if (!c) return undefined;
        out.push(...c);
      }
    } else if (key === '_id') {
      if (isPlainObject(value) && Object.keys(value).length > 0 && Object.keys(value).every((k) => k.startsWith('$'))) {
        for (const [op, operand] of Object.entries(value)) {
          if (!ID_OPS.has(op) || isRegex(operand)) return undefined;
          if ((op === '$in' || op === '$nin') && (!Array.isArray(operand) || operand.some(isRegex))) return undefined;
          out.push({ op: op as IdOp, value: operand });
        }
      } else {
        if (isRegex(value)) return undefined;
        out.push({ op: '$eq', value });
      }
    } else {
      return undefined;
    }
  }
  return out;
}

function equal(a: unknown, b: unknown): boolean {
  return compareValues(a, b) === 0;
}

function matchesId(id: unknown, conds: IdCondition[]): boolean {
  for (const { op, value } of conds) {
    switch (op) {
      case '$eq': if (!equal(id, value)) return false; break;
      case '$ne': if (equal(id, value)) return false; break;
      case '$in': if (!(value as unknown[]).some((v) => equal(id, v))) return false; break;
      case '$nin': if ((value as unknown[]).some((v) => equal(id, v))) return false; break;
      case '$gt': if (!comparable(id, value) || compareValues(id, value) <= 0) return false; break;
      case '$gte': if (!comparable(id, value) || compareValues(id, value) < 0) return false; break;
      case '$lt': if (!comparable(id, value) || compareValues(id, value) >= 0) return false; break;
      case '$lte': if (!comparable(id, value) || compareValues(id, value) > 0) return false; break;
    }
  }
  return true;
}

/** Entries matching _id conditions, in _id order, scanning only the part of the array that can match. */
function scanIds(coll: Collection, conds: IdCondition[]): DocEntry[] {
  let start = 0;
  let stop = coll.docs.length;
  for (const { op, value } of conds) {
    if (op === '$eq' || op === '$gte' || op === '$gt') {
      const b = coll.bound(value, op === '$gt');
      if (b > start) start = b;
      // Range operators only match their own type bracket: stop where the next bracket starts.
      if (op !== '$eq' && typeRank(value) !== -1 && typeRank(value) !== 127) {
        const end = bracketEnd(coll, typeRank(value), b);
        if (end < stop) stop = end;
      }
    }
    if (op === '$eq' || op === '$lte' || op === '$lt') {
      const b = coll.bound(value, op !== '$lt');
      if (b < stop) stop = b;
    }
  }
  const out: DocEntry[] = [];
  for (let i = start; i < stop; i++) {
    const e = coll.docs[i]!;
    if (matchesId(e.id, conds)) out.push(e);
  }
  return out;
}

function bracketEnd(coll: Collection, rank: number, from: number): number {
  let lo = from;
  let hi = coll.docs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (typeRank(coll.docs[mid]!.id) <= rank) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function decodeForMingo(raw: Buffer): Document {
  return BSON.deserialize(raw);
}

/** Entries matching `filter` (decoded with COMPARE_DECODE; `plainFilter` with defaults), in _id order. */
export function matchEntries(coll: Collection, filter: Document | undefined, plainFilter: Document | undefined): DocEntry[] {
  if (!filter || Object.keys(filter).length === 0) return coll.docs.slice();
  const conds = idConditions(filter);
  if (conds) return scanIds(coll, conds);
  let q: Query;
  try {
    q = new Query(plainFilter ?? filter);
  } catch (e) {
    throw new QueryError(2, 'BadValue', `unsupported filter: ${(e as Error).message}`);
  }
  return coll.docs.filter((e) => q.test(decodeForMingo(e.raw)));
}

function pathValue(doc: Document, path: string): unknown {
  let v: unknown = doc;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return null;
    v = (v as Document)[part];
  }
  return v === undefined ? null : v;
}

/** Sorts entries as MongoDB would for `sort`; _id order is the stored order. */
export function sortEntries(entries: DocEntry[], sort: Document | undefined): DocEntry[] {
  const keys = sort ? Object.entries(sort) : [];
  if (keys.length === 0) return entries;
  if (keys.length === 1 && (keys[0]![0] === '_id' || keys[0]![0] === '$natural')) {
    return Number(keys[0]![1]) < 0 ? entries.slice().reverse() : entries;
  }
  const decoded = entries.map((e) => ({ e, d: BSON.deserialize(e.raw, COMPARE_DECODE) }));
  decoded.sort((a, b) => {
    for (const [path, dir] of keys) {
      const c = compareValues(pathValue(a.d, path), pathValue(b.d, path));
      if (c !== 0) return Number(dir) < 0 ? -c : c;
    }
    return 0;
  });
  return decoded.map((x) => x.e);
}

/** Applies a find projection, keeping stored bytes for top-level inclusion/exclusion. */
export function project(raw: Buffer, projection: Document | undefined): Buffer {
  if (!projection) return raw;
  const spec = Object.entries(projection);
  if (spec.length === 0) return raw;
  const simple = spec.every(([k, v]) => !k.includes('.') && !k.startsWith('$') && (typeof v === 'number' || typeof v === 'boolean'));
  if (!simple) {
    const [doc] = new Query({}).find([BSON.deserialize(raw, { promoteValues: false, bsonRegExp: true })], projection).all();
    return serialize(doc as Document);
  }
  const idSpec = spec.find(([k]) => k === '_id');
  const others = spec.filter(([k]) => k !== '_id');
  const inclusion = others.length > 0 ? Boolean(others[0]![1]) : !idSpec || Boolean(idSpec[1]);
  const named = new Set(others.map(([k]) => k));
  const keepId = idSpec ? Boolean(idSpec[1]) : true;
  const els = elements(raw).filter((e) => {
    if (e.name === '_id') return keepId;
    return inclusion ? named.has(e.name) : !named.has(e.name);
  });
  return documentFromElements(raw, els);
}

/** Runs an aggregation pipeline with mingo over decoded documents; results are re-encoded. */
export function runPipeline(docs: Document[], pipeline: Document[]): Buffer[] {
  let agg: Aggregator;
  try {
    agg = new Aggregator(pipeline);
  } catch (e) {
    throw new QueryError(40324, 'Location40324', `unsupported pipeline: ${(e as Error).message}`);
  }
  return (agg.run(docs) as Document[]).map(serialize);
}

/** Count-only pipeline tails ($skip/$limit then $count or {$group: {_id: <const>, n: {$sum: 1}}}). */
export function countTail(stages: Document[]): { skip: number; limit?: number; output: (n: number) => Document[] } | undefined {
  let skip = 0;
  let limit: number | undefined;
  for (let i = 0; i < stages.length; i++) {
    const st = stages[i]!;
    const [name, arg] = Object.entries(st)[0] ?? [];
    const last = i === stages.length - 1;
    if (name === '$skip' && limit === undefined) skip += Number(arg);
    else if (name === '$limit') limit = Math.min(limit ?? Infinity, Number(arg));
    else if (name === '$count' && last && typeof arg === 'string') {
      return { skip, limit, output: (n) => (n > 0 ? [{ [arg]: n }] : []) };
    } else if (name === '$group' && last && isPlainObject(arg)) {
      const fields = Object.entries(arg);
      const id = arg._id;
      if (isPlainObject(id) || (typeof id === 'string' && id.startsWith('$'))) return undefined;
      const sums = fields.filter(([k]) => k !== '_id');
      if (!sums.every(([, v]) => isPlainObject(v) && Object.keys(v).length === 1 && Number(v.$sum) === 1)) return undefined;
      return { skip, limit, output: (n) => (n > 0 ? [{ _id: id, ...Object.fromEntries(sums.map(([k]) => [k, n])) }] : []) };
    } else return undefined;
  }
  return undefined;
}
