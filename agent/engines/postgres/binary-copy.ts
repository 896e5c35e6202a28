// Binary COPY for tables whose columns are all built-in types with a fixed binary form. The
// server parses binary fields far more cheaply than text (no datetime, numeric or uuid parsing:
// docs/PERFORMANCE.md, tenth set), which is what bounds a restore. The binary forms of these
// types are the same on every architecture and have not changed across server versions, and
// their type OIDs are fixed in the catalog. `export --format sql` needs text, so this module
// also turns a binary COPY stream back into COPY text, as the server would print it with
// DateStyle ISO and TimeZone UTC. Pure: no I/O.
import { CosmosBackupError } from '../../../shared/errors.ts';

/** Built-in types moved in binary, by their fixed OID. Arrays, domains, enums, composites and
 * extension types are not here: tables with any of them are copied as text. */
export const BINARY_TYPES: ReadonlyMap<number, string> = new Map([
  [16, 'bool'], [17, 'bytea'], [20, 'int8'], [21, 'int2'], [23, 'int4'], [25, 'text'], [26, 'oid'],
  [114, 'json'], [700, 'float4'], [701, 'float8'], [1042, 'bpchar'], [1043, 'varchar'],
  [1082, 'date'], [1083, 'time'], [1114, 'timestamp'], [1184, 'timestamptz'], [1700, 'numeric'],
  [2950, 'uuid'], [3802, 'jsonb'],
]);

/** The column types to copy a table in binary with, or undefined when it must be text. */
export function binaryCopyTypes(columnTypes: readonly number[] | undefined, columns: number): number[] | undefined {
  if (!columnTypes || columns === 0 || columnTypes.length !== columns) return undefined;
  return columnTypes.every((t) => BINARY_TYPES.has(t)) ? [...columnTypes] : undefined;
}

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const DAY_US = 86_400_000_000n;
/** days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch for dates and timestamps */
const PG_EPOCH_DAYS = 10_957;

function corrupt(what: string): CosmosBackupError {
  return new CosmosBackupError('CORRUPT_OBJECT', `binary table data is damaged: ${what}`);
}

/** Proleptic Gregorian year, month, day of a day count from 1970-01-01 (civil-from-days). */
function civilFromDays(days: number): [number, number, number] {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

const pad = (n: number, w: number) => String(n).padStart(w, '0');

/** ISO date of a PostgreSQL day number; the BC flag separately, as the server appends it last. */
function isoDate(pgDays: number): { text: string; bc: boolean } {
  const [y, m, d] = civilFromDays(pgDays + PG_EPOCH_DAYS);
  // Year 0 is 1 BC.
  const bc = y <= 0;
  return { text: `${pad(bc ? 1 - y : y, 4)}-${pad(m, 2)}-${pad(d, 2)}`, bc };
}

/** HH:MM:SS[.ffffff without trailing zeros] of microseconds into a day (24:00:00 included). */
function isoTime(us: number): string {
  const secs = Math.floor(us / 1_000_000);
  const frac = us - secs * 1_000_000;
  const base = `${pad(Math.floor(secs / 3600), 2)}:${pad(Math.floor(secs / 60) % 60, 2)}:${pad(secs % 60, 2)}`;
  return frac ? `${base}.${pad(frac, 6).replace(/0+$/, '')}` : base;
}

function timestampText(b: Buffer, at: number, tz: boolean): string {
  const v = b.readBigInt64BE(at);
  if (v === 0x7fffffffffffffffn) return 'infinity';
  if (v === -0x8000000000000000n) return '-infinity';
  let days = v / DAY_US;
  let rem = v % DAY_US;
  if (rem < 0n) { rem += DAY_US; days -= 1n; }
  const date = isoDate(Number(days));
  return `${date.text} ${isoTime(Number(rem))}${tz ? '+00' : ''}${date.bc ? ' BC' : ''}`;
}

function numericText(b: Buffer, at: number, len: number): string {
  if (len < 8) throw corrupt('a numeric field is too short');
  const ndigits = b.readInt16BE(at);
  const weight = b.readInt16BE(at + 2);
  const sign = b.readUInt16BE(at + 4);
  const dscale = b.readInt16BE(at + 6);
  if (sign === 0xc000) return 'NaN';
  if (sign === 0xd000) return 'Infinity';
  if (sign === 0xf000) return '-Infinity';
  if (len !== 8 + 2 * ndigits) throw corrupt('a numeric field has the wrong length');
  const digit = (i: number) => (i >= 0 && i < ndigits ? b.readInt16BE(at + 8 + 2 * i) : 0);
  let int = '';
  if (weight < 0) int = '0';
  else for (let i = 0; i <= weight; i++) int += i === 0 ? String(digit(0)) : pad(digit(i), 4);
  let frac = '';
  for (let i = weight + 1; frac.length < dscale; i++) frac += pad(digit(i), 4);
  return `${sign === 0x4000 ? '-' : ''}${int}${dscale > 0 ? `.${frac.slice(0, dscale)}` : ''}`;
}

/** The shortest decimal that reads back as the same float4 (what the server prints by default). */
function float4Text(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  for (let p = 1; p < 9; p++) {
    const s = v.toPrecision(p);
    if (Math.fround(Number(s)) === v) return String(Number(s));
  }
  return v.toPrecision(9);
}

function float8Text(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
  return Object.is(v, -0) ? '-0' : String(v);
}

function uuidText(b: Buffer, at: number): string {
  const h = b.toString('hex', at, at + 16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const BACKSLASH = 0x5c;

/** Growable output of COPY text bytes. */
class TextOut {
  buf = Buffer.allocUnsafe(64 * 1024);
  length = 0;
  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  ascii(s: string): void {
    this.room(s.length);
    this.length += this.buf.write(s, this.length, 'latin1');
  }
  byte(c: number): void {
    this.room(1);
    this.buf[this.length++] = c;
  }
  /** Raw text bytes with COPY's escapes for backslash, newline, carriage return and tab. */
  escaped(b: Buffer, from: number, to: number): void {
    this.room(2 * (to - from));
    const o = this.buf;
    let w = this.length;
    for (let i = from; i < to; i++) {
      const c = b[i]!;
      if (c === BACKSLASH) { o[w++] = BACKSLASH; o[w++] = BACKSLASH; } else if (c === 0x0a) { o[w++] = BACKSLASH; o[w++] = 0x6e; } else if (c === 0x0d) { o[w++] = BACKSLASH; o[w++] = 0x72; } else if (c === 0x09) { o[w++] = BACKSLASH; o[w++] = 0x74; } else o[w++] = c;
    }
    this.length = w;
  }
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.length));
    this.length = 0;
    return out;
  }
}

/** Writes one non-NULL field of `type` as COPY text. */
function fieldText(out: TextOut, type: number, b: Buffer, at: number, len: number): void {
  const need = (n: number) => { if (len !== n) throw corrupt(`a ${BINARY_TYPES.get(type)} field is ${len} bytes, not ${n}`); };
  switch (type) {
    case 16: need(1); out.ascii(b[at] ? 't' : 'f'); return;
    case 17: out.ascii('\\\\x'); out.ascii(b.toString('hex', at, at + len)); return;
    case 20: need(8); out.ascii(b.readBigInt64BE(at).toString()); return;
    case 21: need(2); out.ascii(String(b.readInt16BE(at))); return;
    case 23: need(4); out.ascii(String(b.readInt32BE(at))); return;
    case 26: need(4); out.ascii(String(b.readUInt32BE(at))); return;
    case 700: need(4); out.ascii(float4Text(b.readFloatBE(at))); return;
    case 701: need(8); out.ascii(float8Text(b.readDoubleBE(at))); return;
    case 1082: {
      need(4);
      const d = b.readInt32BE(at);
      if (d === 0x7fffffff) out.ascii('infinity');
      else if (d === -0x80000000) out.ascii('-infinity');
      else { const t = isoDate(d); out.ascii(t.bc ? `${t.text} BC` : t.text); }
      return;
    }
    case 1083: need(8); out.ascii(isoTime(Number(b.readBigInt64BE(at)))); return;
    case 1114: need(8); out.ascii(timestampText(b, at, false)); return;
    case 1184: need(8); out.ascii(timestampText(b, at, true)); return;
    case 1700: out.ascii(numericText(b, at, len)); return;
    case 2950: need(16); out.ascii(uuidText(b, at)); return;
    case 3802:
      if (len < 1 || b[at] !== 1) throw corrupt('a jsonb field has an unknown version');
      out.escaped(b, at + 1, at + len);
      return;
    default: // text, varchar, bpchar, json: the text itself
      out.escaped(b, at, at + len);
  }
}

/**
 * Turns a binary COPY stream (`COPY … TO STDOUT (FORMAT binary)`) of columns of `types` into
 * COPY text, chunk by chunk. Only an unfinished row is carried between chunks.
 */
export class BinaryCopyToText {
  private pending: Buffer = Buffer.alloc(0);
  private headerDone = false;
  private ended = false;
  private readonly out = new TextOut();
  private readonly types: readonly number[];

  constructor(types: readonly number[]) {
    this.types = types;
    for (const t of types) if (!BINARY_TYPES.has(t)) throw new CosmosBackupError('INVALID_ARGUMENT', `type ${t} has no binary COPY support here`);
  }

  /** COPY text for the complete rows so far. */
  push(chunk: Buffer): Buffer {
    const b = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let i = 0;
    if (!this.headerDone) {
      if (b.length < SIGNATURE.length + 8) { this.pending = Buffer.from(b); return Buffer.alloc(0); }
      if (!b.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw corrupt('no binary COPY signature');
      const ext = b.readUInt32BE(SIGNATURE.length + 4);
      if (b.length < SIGNATURE.length + 8 + ext) { this.pending = Buffer.from(b); return Buffer.alloc(0); }
      i = SIGNATURE.length + 8 + ext;
      this.headerDone = true;
    }
    const n = this.types.length;
    while (i + 2 <= b.length) {
      if (this.ended) throw corrupt('data after the end of binary COPY');
      const fields = b.readInt16BE(i);
      if (fields === -1) { this.ended = true; i += 2; continue; }
      if (fields !== n) throw corrupt(`a row has ${fields} fields, not ${n}`);
      // Whole row present? Walk the lengths first, so a row is written once or not at all.
      let j = i + 2;
      let whole = true;
      for (let f = 0; f < n; f++) {
        if (j + 4 > b.length) { whole = false; break; }
        const len = b.readInt32BE(j);
        j += 4 + (len > 0 ? len : 0);
        if (j > b.length) { whole = false; break; }
      }
      if (!whole) break;
      j = i + 2;
      for (let f = 0; f < n; f++) {
        if (f) this.out.byte(0x09);
        const len = b.readInt32BE(j);
        j += 4;
        if (len < 0) { this.out.ascii('\\N'); continue; }
        fieldText(this.out, this.types[f]!, b, j, len);
        j += len;
      }
      this.out.byte(0x0a);
      i = j;
    }
    this.pending = i < b.length ? Buffer.from(b.subarray(i)) : Buffer.alloc(0);
    return this.out.take();
  }

  /** Checks the stream ended where it should: after its trailer, with no row cut short. */
  end(): void {
    if (!this.ended || this.pending.length) throw corrupt('the binary COPY stream is cut short');
  }
}
