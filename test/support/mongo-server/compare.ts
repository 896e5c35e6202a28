// MongoDB's ordering of BSON values, for the stand-in's _id index and sorts: canonical type
// brackets first (MinKey < null < numbers < strings < objects < arrays < binary < ObjectId <
// bool < date < timestamp < regex < code < MaxKey), then the value within the bracket.
// Values come from BSON.deserialize with COMPARE_DECODE (Longs stay Long, regexes BSONRegExp).
import type { BSON } from 'bson';

export const COMPARE_DECODE: BSON.DeserializeOptions = { promoteLongs: false, bsonRegExp: true, promoteBuffers: false };

function bsontype(v: object): string | undefined {
  return (v as { _bsontype?: string })._bsontype;
}

/** MongoDB's canonical type bracket (mongo/bson/bsontypes.cpp canonicalizeBSONType). */
export function typeRank(v: unknown): number {
  if (v === undefined) return 0;
  if (v === null) return 5;
  switch (typeof v) {
    case 'number': case 'bigint': return 10;
    case 'string': return 15;
    case 'boolean': return 40;
    case 'object': break;
    default: return 20;
  }
  if (v instanceof Date) return 45;
  if (v instanceof RegExp) return 50;
  if (Array.isArray(v)) return 25;
  switch (bsontype(v)) {
    case 'MinKey': return -1;
    case 'MaxKey': return 127;
    case 'Long': case 'Int32': case 'Double': case 'Decimal128': return 10;
    case 'BSONSymbol': return 15;
    case 'Binary': return 30;
    case 'ObjectId': return 35;
    case 'Timestamp': return 47;
    case 'BSONRegExp': return 50;
    case 'Code': return (v as { scope?: unknown }).scope ? 65 : 60;
    default: return 20;
  }
}

/** A BSON number as a JS number or, for 64-bit integers, a bigint (exact). */
function numeric(v: unknown): number | bigint {
  if (typeof v === 'number' || typeof v === 'bigint') return v;
  const t = bsontype(v as object);
  if (t === 'Long') return BigInt((v as { toString(): string }).toString());
  if (t === 'Int32' || t === 'Double') return (v as { value: number }).value;
  if (t === 'Decimal128') {
    const s = (v as { toString(): string }).toString();
    if (/^-?\d+$/.test(s)) return BigInt(s);
    if (s === 'NaN' || s === '-NaN') return NaN;
    return Number(s); // Infinity/-Infinity parse; other values approximate
  }
  return NaN;
}

function compareNumbers(a: number | bigint, b: number | bigint): number {
  if (typeof a === 'number' && Number.isNaN(a)) return typeof b === 'number' && Number.isNaN(b) ? 0 : -1;
  if (typeof b === 'number' && Number.isNaN(b)) return 1;
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  // Mixed: compare exactly when the double is integral, else as doubles.
  const toBig = (n: number | bigint) => (typeof n === 'bigint' ? n : Number.isInteger(n) ? BigInt(n) : undefined);
  const bx = toBig(a);
  const by = toBig(b);
  if (bx !== undefined && by !== undefined) return bx < by ? -1 : bx > by ? 1 : 0;
  const dx = Number(a);
  const dy = Number(b);
  return dx < dy ? -1 : dx > dy ? 1 : 0;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function stringValue(v: unknown): string {
  return typeof v === 'string' ? v : String((v as { value: unknown }).value);
}

function compareStrings(a: string, b: string): number {
  // MongoDB's simple collation compares UTF-8 bytes, which differs from UTF-16 order.
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function entries(v: object): Array<[string, unknown]> {
  return Object.entries(v);
}

/** Total order over decoded BSON values, as MongoDB sorts them. */
export function compareValues(a: unknown, b: unknown): number {
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case -1: case 0: case 5: case 127: return 0;
    case 10: return compareNumbers(numeric(a), numeric(b));
    case 15: return compareStrings(stringValue(a), stringValue(b));
    case 20: {
      const ea = entries(a as object);
      const eb = entries(b as object);
      for (let i = 0; i < Math.min(ea.length, eb.length); i++) {
        const [ka, va] = ea[i]!;
        const [kb, vb] = eb[i]!;
        const t = typeRank(va) - typeRank(vb);
        if (t !== 0) return t < 0 ? -1 : 1;
        const k = compareStrings(ka, kb);
        if (k !== 0) return k;
        const c = compareValues(va, vb);
        if (c !== 0) return c;
      }
      return ea.length - eb.length === 0 ? 0 : ea.length < eb.length ? -1 : 1;
    }
    case 25: {
      const xa = a as unknown[];
      const xb = b as unknown[];
      for (let i = 0; i < Math.min(xa.length, xb.length); i++) {
        const c = compareValues(xa[i], xb[i]);
        if (c !== 0) return c;
      }
      return xa.length === xb.length ? 0 : xa.length < xb.length ? -1 : 1;
    }
    case 30: {
      const x = a as { sub_type: number; value(): Uint8Array };
      const y = b as { sub_type: number; value(): Uint8Array };
      const vx = x.value();
      const vy = y.value();
      if (vx.length !== vy.length) return vx.length < vy.length ? -1 : 1;
      if (x.sub_type !== y.sub_type) return x.sub_type < y.sub_type ? -1 : 1;
      return compareBytes(vx, vy);
    }
    case 35: return compareBytes((a as { id: Uint8Array }).id, (b as { id: Uint8Array }).id);
    case 40: return a === b ? 0 : a ? 1 : -1;
    case 45: return compareNumbers((a as Date).getTime(), (b as Date).getTime());
    case 47: {
      const x = BigInt.asUintN(64, BigInt((a as { toString(): string }).toString()));
      const y = BigInt.asUintN(64, BigInt((b as { toString(): string }).toString()));
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 50: {
      const pa = a instanceof RegExp ? [a.source, a.flags] : [(a as { pattern: string }).pattern, (a as { options: string }).options];
      const pb = b instanceof RegExp ? [b.source, b.flags] : [(b as { pattern: string }).pattern, (b as { options: string }).options];
      return compareStrings(pa[0]!, pb[0]!) || compareStrings(pa[1]!, pb[1]!);
    }
    case 60: case 65: return compareStrings((a as { code: string }).code, (b as { code: string }).code);
    default: return 0;
  }
}

/**
 * Whether a comparison operator ($gt, $lte, ...) with operand `bound` can match `v`:
 * MongoDB compares only within one type bracket, except that MinKey/MaxKey bounds span all.
 */
export function comparable(v: unknown, bound: unknown): boolean {
  const rb = typeRank(bound);
  return rb === -1 || rb === 127 || typeRank(v) === rb;
}
