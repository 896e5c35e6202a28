// Byte-level BSON helpers for the backup and restore paths: the `_id` of a raw document without
// decoding the rest, splitting a stream of concatenated documents, and turning a raw document
// into a value the driver serializes back to the very same bytes.
import { BSON, Binary, MaxKey, MinKey, ObjectId, Timestamp, type Document } from 'bson';
import { CorruptObjectError } from '../../../shared/errors.ts';

/** Decoding that keeps every type as it is: Int32 stays Int32, Double stays Double, regex flags stay. */
export const EXACT: BSON.DeserializeOptions = { promoteValues: false, promoteLongs: false, promoteBuffers: false, bsonRegExp: true, useBigInt64: false };

export const MAX_BSON_SIZE = 16 * 1024 * 1024;

/** Size of an element's value starting at `at`, by BSON type. */
export function valueSize(buf: Buffer, type: number, at: number): number {
  switch (type) {
    case 0x01: case 0x09: case 0x11: case 0x12: return 8;
    case 0x02: case 0x0d: case 0x0e: return 4 + buf.readInt32LE(at);
    case 0x03: case 0x04: case 0x0f: return buf.readInt32LE(at);
    case 0x05: return 5 + buf.readInt32LE(at);
    case 0x06: case 0x0a: case 0x7f: case 0xff: return 0;
    case 0x07: return 12;
    case 0x08: return 1;
    case 0x0b: {
      let p = buf.indexOf(0, at);
      p = buf.indexOf(0, p + 1);
      return p + 1 - at;
    }
    case 0x0c: return 4 + buf.readInt32LE(at) + 12;
    case 0x10: return 4;
    case 0x13: return 16;
    default: throw new RangeError(`unknown BSON type 0x${type.toString(16)}`);
  }
}

export interface RawElement { type: number; name: string; nameStart: number; valueStart: number; end: number }

/** The elements of a raw document (or array) in order. */
export function* rawElements(doc: Buffer): Generator<RawElement> {
  const len = doc.readInt32LE(0);
  let o = 4;
  while (o < len - 1) {
    const type = doc[o]!;
    const nameEnd = doc.indexOf(0, o + 1);
    if (nameEnd < 0 || nameEnd >= len) throw new RangeError('unterminated element name');
    const valueStart = nameEnd + 1;
    const end = valueStart + valueSize(doc, type, valueStart);
    if (end > len - 1) throw new RangeError('element runs past the end of the document');
    yield { type, name: doc.toString('utf8', o + 1, nameEnd), nameStart: o + 1, valueStart, end };
    o = end;
  }
}

/** One element wrapped as a document {name: value}, decoded exactly. */
function decodeElement(doc: Buffer, e: RawElement): unknown {
  const body = doc.subarray(e.nameStart - 1, e.end);
  const wrapped = Buffer.allocUnsafe(body.length + 5);
  wrapped.writeInt32LE(wrapped.length, 0);
  body.copy(wrapped, 4);
  wrapped[wrapped.length - 1] = 0;
  return BSON.deserialize(wrapped, EXACT)[e.name];
}

export interface RawId { type: number; value: unknown }

/** The `_id` of a raw document: mongod (and Cosmos DB) store it first, so this is usually one step. */
export function readId(doc: Buffer): RawId {
  for (const e of rawElements(doc)) {
    if (e.name === '_id') return { type: e.type, value: decodeElement(doc, e) };
  }
  throw new RangeError('document has no _id');
}

/**
 * MongoDB's sort order puts types in brackets (MinKey, null, numbers, strings, objects, arrays,
 * binary, ObjectId, bool, date, timestamp, regex, …, MaxKey), and `$gt` never leaves the bracket
 * of its operand. BSON types per bracket, in order:
 */
const BRACKETS: number[][] = [
  [0xff], [0x0a, 0x06], [0x01, 0x10, 0x12, 0x13], [0x02, 0x0e], [0x03], [0x04], [0x05], [0x07], [0x08], [0x09], [0x11], [0x0b], [0x0c], [0x0d], [0x0f], [0x7f],
];

export function bracketOf(type: number): number {
  const i = BRACKETS.findIndex((b) => b.includes(type));
  if (i < 0) throw new RangeError(`unknown BSON type 0x${type.toString(16)}`);
  return i;
}

/**
 * Filters that select a whole bracket, in `_id` order: range filters from the bracket's smallest
 * value where there is one (they use the `_id` index), `$type` for the exotic rest.
 */
function bracketFilters(b: number): Document[] {
  switch (b) {
    case 0: return [{ _id: new MinKey() }];
    case 1: return [{ _id: null }];
    // NaN sorts before every other number but is not $gte -Infinity.
    case 2: return [{ _id: NaN }, { _id: { $gte: -Infinity } }];
    case 3: return [{ _id: { $gte: '' } }];
    case 4: return [{ _id: { $gte: {} } }];
    case 5: return []; // an _id is never an array
    case 6: return [{ _id: { $gte: new Binary(Buffer.alloc(0), 0) } }];
    case 7: return [{ _id: { $gte: new ObjectId('000000000000000000000000') } }];
    case 8: return [{ _id: { $gte: false } }];
    case 9: return [{ _id: { $gte: new Date(-8_640_000_000_000_000) } }];
    case 10: return [{ _id: { $gte: new Timestamp({ t: 0, i: 0 }) } }];
    case 15: return [{ _id: new MaxKey() }];
    default: return [{ _id: { $type: BRACKETS[b]![0]! } }];
  }
}

function isNaNValue(v: unknown): boolean {
  if (typeof v === 'number') return Number.isNaN(v);
  const t = (v as { _bsontype?: string } | null)?._bsontype;
  if (t === 'Double') return Number.isNaN((v as { value: number }).value);
  if (t === 'Decimal128') return /NaN/.test(String(v));
  return false;
}

/**
 * The scans that continue an `_id`-ordered read after `last`, up to the bracket of the largest
 * `_id` (`maxType`): the rest of `last`'s bracket, then each later bracket whole.
 */
export function resumeFilters(last: RawId, maxType: number | undefined): Document[] {
  const from = bracketOf(last.type);
  // MinKey, null and MaxKey brackets hold one value; after NaN come the other numbers.
  const out: Document[] = from === 0 || from === 1 || from === 15 ? []
    : isNaNValue(last.value) ? [{ _id: { $gte: -Infinity } }]
      : [{ _id: { $gt: last.value } }];
  const to = maxType === undefined ? from : bracketOf(maxType);
  for (let b = from + 1; b <= to; b++) out.push(...bracketFilters(b));
  return out;
}

/** Splits a stream of concatenated BSON documents into one Buffer per document. */
export async function* splitDocuments(source: AsyncIterable<Buffer | Uint8Array>, what: string): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let offset = 0; // bytes of pending[0] already consumed
  const take = (n: number): Buffer => {
    const first = pending[0]!;
    if (first.length - offset >= n) {
      const out = first.subarray(offset, offset + n);
      offset += n;
      if (offset === first.length) { pending.shift(); offset = 0; }
      pendingBytes -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const b = pending[0]!;
      const k = Math.min(b.length - offset, n - filled);
      b.copy(out, filled, offset, offset + k);
      filled += k;
      offset += k;
      if (offset === b.length) { pending.shift(); offset = 0; }
    }
    pendingBytes -= n;
    return out;
  };
  const peekLength = (): number => {
    const head = Buffer.allocUnsafe(4);
    let filled = 0;
    for (let i = 0, off = offset; filled < 4; i++, off = 0) {
      const b = pending[i]!;
      const k = Math.min(b.length - off, 4 - filled);
      b.copy(head, filled, off, off + k);
      filled += k;
    }
    return head.readInt32LE(0);
  };
  let docs = 0;
  for await (const c of source) {
    const chunk = Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    if (!chunk.length) continue;
    pending.push(chunk);
    pendingBytes += chunk.length;
    while (pendingBytes >= 4) {
      const len = peekLength();
      if (len < 5 || len > MAX_BSON_SIZE + 16 * 1024) throw new CorruptObjectError(what, `document ${docs + 1} has an impossible length ${len}`);
      if (pendingBytes < len) break;
      const doc = take(len);
      if (doc[len - 1] !== 0) throw new CorruptObjectError(what, `document ${docs + 1} does not end with a zero byte`);
      docs++;
      yield doc;
    }
  }
  if (pendingBytes !== 0) throw new CorruptObjectError(what, `ends with ${pendingBytes} bytes of an incomplete document`);
  pending = [];
}

function isIndexKey(name: string): boolean {
  const c = name.charCodeAt(0);
  if (c < 48 || c > 57) return false;
  return /^(0|[1-9]\d{0,9})$/.test(name) && Number(name) < 4294967295;
}

/**
 * JavaScript objects list integer-like keys ("7", "2024") first, whatever their stored order, so
 * a decoded document with such keys would be written back in another field order.
 */
export function needsOrderedDecode(doc: Buffer, isArray = false): boolean {
  for (const e of rawElements(doc)) {
    if (!isArray && isIndexKey(e.name)) return true;
    if ((e.type === 0x03 || e.type === 0x04) && needsOrderedDecode(doc.subarray(e.valueStart, e.end), e.type === 0x04)) return true;
  }
  return false;
}

type Value = unknown;

/** Decodes into Maps (which keep insertion order for every key) and arrays. */
export function decodeOrdered(doc: Buffer, isArray = false): Map<string, Value> | Value[] {
  const out: [string, Value][] = [];
  for (const e of rawElements(doc)) {
    let v: Value;
    if (e.type === 0x03) v = decodeOrdered(doc.subarray(e.valueStart, e.end), false);
    else if (e.type === 0x04) v = decodeOrdered(doc.subarray(e.valueStart, e.end), true);
    else v = decodeElement(doc, e);
    out.push([e.name, v]);
  }
  return isArray ? out.map(([, v]) => v) : new Map(out);
}

/** A value the driver serializes to exactly `doc`'s bytes. */
export function insertable(doc: Buffer): Document | Map<string, Value> {
  if (!needsOrderedDecode(doc)) return BSON.deserialize(doc, EXACT);
  return decodeOrdered(doc) as Map<string, Value>;
}
