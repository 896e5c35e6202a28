// Raw BSON helpers for the MongoDB stand-in: walk a document's top-level elements without
// decoding it, and build replies around stored document bytes so they go back out unchanged.
import { BSON, ObjectId, type Document } from 'bson';

export interface RawElement {
  type: number;
  name: string;
  /** Offset of the type byte: the element's bytes are [start, end). */
  start: number;
  /** Offset of the value, just past the name's NUL. */
  valueStart: number;
  end: number;
}

function cstringEnd(buf: Buffer, off: number): number {
  const nul = buf.indexOf(0, off);
  if (nul < 0) throw new Error('malformed BSON: unterminated cstring');
  return nul;
}

/** Byte length of a value of `type` starting at `off`. */
function valueLength(buf: Buffer, type: number, off: number): number {
  switch (type) {
    case 0x01: case 0x09: case 0x11: case 0x12: return 8;
    case 0x02: case 0x0d: case 0x0e: return 4 + buf.readInt32LE(off);
    case 0x03: case 0x04: case 0x0f: return buf.readInt32LE(off);
    case 0x05: return 5 + buf.readInt32LE(off);
    case 0x06: case 0x0a: case 0xff: case 0x7f: return 0;
    case 0x07: return 12;
    case 0x08: return 1;
    case 0x0b: { const p = cstringEnd(buf, off); return cstringEnd(buf, p + 1) + 1 - off; }
    case 0x0c: return 4 + buf.readInt32LE(off) + 12;
    case 0x10: return 4;
    case 0x13: return 16;
    default: throw new Error(`malformed BSON: unknown element type 0x${type.toString(16)}`);
  }
}

/** Top-level elements of the document at `buf[offset..]`. */
export function elements(buf: Buffer, offset = 0): RawElement[] {
  const size = buf.readInt32LE(offset);
  const stop = offset + size - 1;
  if (stop >= buf.length || buf[stop] !== 0) throw new Error('malformed BSON: bad document length');
  const out: RawElement[] = [];
  let p = offset + 4;
  while (p < stop) {
    const type = buf[p]!;
    const nameEnd = cstringEnd(buf, p + 1);
    const valueStart = nameEnd + 1;
    const end = valueStart + valueLength(buf, type, valueStart);
    if (end > stop) throw new Error('malformed BSON: element overruns document');
    out.push({ type, name: buf.toString('utf8', p + 1, nameEnd), start: p, valueStart, end });
    p = end;
  }
  return out;
}

/** The bytes of the sub-document or array stored in `el` (no copy). */
export function subDocument(buf: Buffer, el: RawElement): Buffer {
  return buf.subarray(el.valueStart, el.end);
}

/** The raw documents of an array field (an embedded `documents: [...]` in a command body). */
export function rawArrayItems(body: Buffer, field: string): Buffer[] | undefined {
  const el = elements(body).find((e) => e.name === field);
  if (!el || el.type !== 0x04) return undefined;
  const arr = subDocument(body, el);
  return elements(arr).map((item) => {
    if (item.type !== 0x03) throw new Error(`${field} must hold documents`);
    return subDocument(arr, item);
  });
}

/** Wraps element bytes into a one-element document and decodes it. */
export function decodeElement(buf: Buffer, el: RawElement, opts: BSON.DeserializeOptions): unknown {
  const len = el.end - el.start;
  const doc = Buffer.allocUnsafe(len + 5);
  doc.writeInt32LE(len + 5, 0);
  buf.copy(doc, 4, el.start, el.end);
  doc[len + 4] = 0;
  return Object.values(BSON.deserialize(doc, opts))[0];
}

/** Builds a document from raw element slices (each [start,end) of `src`). */
export function documentFromElements(src: Buffer, els: RawElement[], prefix?: Buffer): Buffer {
  let size = 5 + (prefix?.length ?? 0);
  for (const e of els) size += e.end - e.start;
  const out = Buffer.allocUnsafe(size);
  out.writeInt32LE(size, 0);
  let p = 4;
  if (prefix) p += prefix.copy(out, p);
  for (const e of els) p += src.copy(out, p, e.start, e.end);
  out[p] = 0;
  return out;
}

/** An `_id` element holding a fresh ObjectId. */
export function newObjectIdElement(): Buffer {
  const el = Buffer.alloc(1 + 4 + 12);
  el[0] = 0x07;
  el.write('_id\0', 1, 'latin1');
  Buffer.from(new ObjectId().id).copy(el, 5);
  return el;
}

/**
 * A value spliced into a reply without re-encoding: stored documents, arrays of them, or
 * documents built from such parts.
 */
export interface RawValue {
  type: number;
  chunks: Buffer[];
  size: number;
}

export function rawDoc(buf: Buffer): RawValue {
  return { type: 0x03, chunks: [buf], size: buf.length };
}

export function isRaw(v: unknown): v is RawValue {
  return typeof v === 'object' && v !== null && Array.isArray((v as RawValue).chunks) && typeof (v as RawValue).size === 'number' && typeof (v as RawValue).type === 'number';
}

/** A document (or array, type 0x04) from fields whose values are plain JS/BSON values or RawValues. */
export function buildDocument(fields: Array<[string, unknown]>, type = 0x03): RawValue {
  const chunks: Buffer[] = [];
  let size = 5;
  const header = Buffer.allocUnsafe(4);
  chunks.push(header);
  for (const [name, value] of fields) {
    if (value === undefined) continue;
    if (isRaw(value)) {
      const head = Buffer.from(`\0${name}\0`, 'utf8');
      head[0] = value.type;
      chunks.push(head);
      for (const c of value.chunks) chunks.push(c); // no spread: batches may hold 100k+ documents
      size += head.length + value.size;
    } else {
      const one = BSON.serialize({ [name]: value } as Document);
      const el = one.subarray(4, one.length - 1);
      chunks.push(Buffer.from(el.buffer, el.byteOffset, el.byteLength));
      size += el.length;
    }
  }
  header.writeInt32LE(size, 0);
  chunks.push(Buffer.from([0]));
  return { type, chunks, size };
}

export function buildArray(items: Buffer[]): RawValue {
  // Index keys are the decimal positions; the element type is "embedded document".
  const chunks: Buffer[] = [];
  const header = Buffer.allocUnsafe(4);
  chunks.push(header);
  let size = 5;
  for (let i = 0; i < items.length; i++) {
    const head = Buffer.from(`\x03${i}\0`, 'latin1');
    chunks.push(head, items[i]!);
    size += head.length + items[i]!.length;
  }
  header.writeInt32LE(size, 0);
  chunks.push(Buffer.from([0]));
  return { type: 0x04, chunks, size };
}
