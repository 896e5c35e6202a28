// The repository's on-storage layout and encodings (docs/FORMAT.md is the spec). Pure: no I/O.
import { CorruptObjectError, CosmosBackupError } from '../errors.ts';
import type { ChunkerParams } from './chunker.ts';
import type { ScryptParams } from './crypto.ts';
import { sha256 } from './crypto.ts';
import { MAX_DELTA_BASES } from './delta.ts';

/** Written by `repo init`. Version 2 adds delta chunks (§4, §5, §6); version 1 repositories are
 * read and written as before (no deltas), so agents that read only version 1 keep working on them. */
export const FORMAT_VERSION = 2;
export const READABLE_VERSIONS = [1, 2];

export const KEYS = {
  config: 'config',
  keyPrefix: 'keys/',
  dataPrefix: 'data/',
  indexPrefix: 'index/',
  restorePointPrefix: 'restore-points/',
  lockPrefix: 'locks/',
  exclusiveLock: 'locks/exclusive',
  pack: (id: string) => `data/${id.slice(0, 2)}/${id}`,
  index: (id: string) => `index/${id}`,
  restorePoint: (id: string) => `restore-points/${id}`,
  key: (id: string) => `keys/${id}`,
};

export interface RepoConfigBody {
  format: 'cosmos-backup-repository';
  version: number;
  id: string;
  createdAt: string;
  chunker: ChunkerParams & { algorithm: 'fastcdc-nc2-gear32'; seed?: string };
  compression: 'zstd' | 'deflate';
  encryption: 'none' | 'aes-256-gcm';
  packSize: number;
}

/** The config object: its body plus a SHA-256 of the body's exact bytes, so any edit is detected. */
export function encodeConfig(body: RepoConfigBody): Buffer {
  const text = JSON.stringify(body);
  return Buffer.from(JSON.stringify({ body: text, sha256: sha256(Buffer.from(text)).toString('hex') }, null, 1) + '\n');
}

export function decodeConfig(data: Uint8Array): RepoConfigBody {
  let outer: { body?: unknown; sha256?: unknown };
  try {
    outer = JSON.parse(Buffer.from(data).toString('utf8')) as typeof outer;
  } catch (e) {
    throw new CorruptObjectError(KEYS.config, 'not JSON', e);
  }
  if (typeof outer.body !== 'string' || typeof outer.sha256 !== 'string' || sha256(Buffer.from(outer.body)).toString('hex') !== outer.sha256) {
    throw new CorruptObjectError(KEYS.config, 'checksum mismatch');
  }
  const body = JSON.parse(outer.body) as RepoConfigBody;
  if (body.format !== 'cosmos-backup-repository') throw new CosmosBackupError('UNSUPPORTED_FORMAT', 'this location holds something that is not a cosmos-backup repository');
  if (!READABLE_VERSIONS.includes(body.version)) throw new CosmosBackupError('UNSUPPORTED_FORMAT', `repository format version ${body.version} is not supported by this agent (it reads versions ${READABLE_VERSIONS.join(' and ')}); upgrade the agent`);
  return body;
}

export interface KeyFile {
  version: 1;
  kdf: 'scrypt';
  scrypt: ScryptParams;
  salt: string; // base64
  createdAt: string;
  host: string;
  /** base64 of seal(kdfKey, JSON {encryption, mac, chunkerSeed} base64 fields) */
  data: string;
}

// ---------------------------------------------------------------------------------------------
// Blobs, packs and the index

export const BLOB_DATA = 0;
export const BLOB_LIST = 1;
/** A data chunk stored as a patch against 1-4 data chunks (its bases); see delta.ts. */
export const BLOB_DELTA = 2;

/** What a delta entry adds to its index entry: the rebuilt content's length, and the bases. */
export interface DeltaInfo {
  size: number;
  bases: Buffer[]; // 32-byte ids of BLOB_DATA chunks, 1 to MAX_DELTA_BASES
}

/**
 * Where one chunk lives. Chunks are stored in frames: several consecutive new chunks of one
 * object compressed and sealed together (better ratio, far fewer codec calls); a frame is the
 * unit that is read, decrypted and decompressed, and the chunk is a slice of its plaintext.
 */
export interface BlobEntry {
  id: Buffer; // 32 bytes
  type: number; // BLOB_DATA | BLOB_LIST
  codec: number; // codec of the frame
  offset: number; // frame offset in the pack
  length: number; // frame stored length (sealed, compressed)
  rawOffset: number; // chunk offset in the frame plaintext
  rawLength: number; // chunk plaintext length (a delta's: the patch's)
  delta?: DeltaInfo; // type BLOB_DELTA only
}

export const ENTRY_BYTES = 32 + 1 + 1 + 4 + 4 + 4 + 4;
/** Where each field of an entry is (after its 32-byte id): u8 type, u8 codec, then u32le each. */
export const ENTRY_AT = { type: 32, codec: 33, offset: 34, length: 38, rawOffset: 42, rawLength: 46 } as const;
/** Frames never expand beyond this (readers cap decompression with it). */
export const MAX_FRAME_RAW = 16 * 1024 * 1024;
export const PACK_TRAILER_MAGIC = Buffer.from('CBPK');
/** A trailer with a delta section (only packs holding delta chunks have one). */
export const PACK_TRAILER_MAGIC_2 = Buffer.from('CBP2');

/** Pack trailer plaintext: magic, u32 count, entries (then the delta section, §5). Sealed when
 * encrypted; followed by u32le sealed length. */
export function encodePackTrailer(entries: BlobEntry[]): Buffer {
  const deltas = encodeDeltaSection(entries);
  const buf = Buffer.alloc(8 + entries.length * ENTRY_BYTES);
  (deltas ? PACK_TRAILER_MAGIC_2 : PACK_TRAILER_MAGIC).copy(buf, 0);
  buf.writeUInt32LE(entries.length, 4);
  let o = 8;
  for (const e of entries) o = writeEntry(buf, o, e);
  return deltas ? Buffer.concat([buf, deltas]) : buf;
}

export function decodePackTrailer(name: string, plain: Buffer): BlobEntry[] {
  const magic = plain.subarray(0, 4);
  const v2 = magic.equals(PACK_TRAILER_MAGIC_2);
  if (plain.length < 8 || (!v2 && !magic.equals(PACK_TRAILER_MAGIC))) throw new CorruptObjectError(name, 'bad pack trailer');
  const n = plain.readUInt32LE(4);
  const end = 8 + n * ENTRY_BYTES;
  if (v2 ? plain.length < end + 4 : plain.length !== end) throw new CorruptObjectError(name, 'pack trailer length mismatch');
  const out: BlobEntry[] = [];
  let o = 8;
  for (let i = 0; i < n; i++, o += ENTRY_BYTES) out.push(readEntry(plain, o));
  if (v2 && readDeltaSection(name, plain, end, out) !== plain.length) throw new CorruptObjectError(name, 'pack trailer length mismatch');
  return out;
}

/**
 * The delta section after a pack's entries (in trailers and index objects of version 2):
 * u32 m, then m records `u32 entry number in the pack, u32 content length, u8 k, k base ids`.
 * Undefined when no entry is a delta (trailers then keep the version 1 layout).
 */
function encodeDeltaSection(entries: BlobEntry[]): Buffer | undefined {
  let m = 0;
  let bytes = 4;
  for (const e of entries) if (e.delta) { m++; bytes += 9 + 32 * e.delta.bases.length; }
  if (m === 0) return undefined;
  const buf = Buffer.allocUnsafe(bytes);
  buf.writeUInt32LE(m, 0);
  let o = 4;
  entries.forEach((e, i) => {
    if (!e.delta) return;
    buf.writeUInt32LE(i, o);
    buf.writeUInt32LE(e.delta.size, o + 4);
    buf.writeUInt8(e.delta.bases.length, o + 8);
    o += 9;
    for (const b of e.delta.bases) { b.copy(buf, o); o += 32; }
  });
  return buf;
}

/** Reads a delta section at `o` into fn(entry number, info); returns the offset after it. */
function forEachDeltaRecord(name: string, buf: Buffer, o: number, count: number, fn: (entry: number, info: DeltaInfo) => void): number {
  if (o + 4 > buf.length) throw new CorruptObjectError(name, 'delta section truncated');
  const m = buf.readUInt32LE(o);
  o += 4;
  for (let j = 0; j < m; j++) {
    if (o + 9 > buf.length) throw new CorruptObjectError(name, 'delta section truncated');
    const entry = buf.readUInt32LE(o);
    const size = buf.readUInt32LE(o + 4);
    const k = buf.readUInt8(o + 8);
    o += 9;
    if (entry >= count || k < 1 || k > MAX_DELTA_BASES || o + 32 * k > buf.length) throw new CorruptObjectError(name, 'bad delta record');
    const bases: Buffer[] = [];
    for (let b = 0; b < k; b++, o += 32) bases.push(Buffer.from(buf.subarray(o, o + 32)));
    fn(entry, { size, bases });
  }
  return o;
}

function readDeltaSection(name: string, buf: Buffer, o: number, entries: BlobEntry[]): number {
  return forEachDeltaRecord(name, buf, o, entries.length, (i, info) => {
    if (entries[i]!.type !== BLOB_DELTA) throw new CorruptObjectError(name, 'delta record for a chunk that is not a delta');
    entries[i]!.delta = info;
  });
}

function writeEntry(buf: Buffer, o: number, e: BlobEntry): number {
  e.id.copy(buf, o);
  buf.writeUInt8(e.type, o + ENTRY_AT.type);
  buf.writeUInt8(e.codec, o + ENTRY_AT.codec);
  buf.writeUInt32LE(e.offset, o + ENTRY_AT.offset);
  buf.writeUInt32LE(e.length, o + ENTRY_AT.length);
  buf.writeUInt32LE(e.rawOffset, o + ENTRY_AT.rawOffset);
  buf.writeUInt32LE(e.rawLength, o + ENTRY_AT.rawLength);
  return o + ENTRY_BYTES;
}

function readEntry(buf: Buffer, o: number): BlobEntry {
  return {
    id: Buffer.from(buf.subarray(o, o + 32)),
    type: buf.readUInt8(o + ENTRY_AT.type),
    codec: buf.readUInt8(o + ENTRY_AT.codec),
    offset: buf.readUInt32LE(o + ENTRY_AT.offset),
    length: buf.readUInt32LE(o + ENTRY_AT.length),
    rawOffset: buf.readUInt32LE(o + ENTRY_AT.rawOffset),
    rawLength: buf.readUInt32LE(o + ENTRY_AT.rawLength),
  };
}

export interface IndexPack { packId: string; entries: BlobEntry[] }
export const INDEX_MAGIC = Buffer.from('CBIX');

/** Index plaintext: magic, u8 version, u32 packs, then per pack: id(32) u32 count entries, and in
 * version 2 the pack's delta section (§6). Version 2 is written in version 2 repositories only. */
export function encodeIndex(packs: IndexPack[], version: number): Buffer {
  return joinIndex(packs.map((p) => encodeIndexPack(p, version)), version);
}

/** One pack's part of an index object: writers encode a pack as soon as it is stored, so its
 * entries (thousands of small objects) need not stay on the heap until the index is written. */
export function encodeIndexPack(p: IndexPack, version: number): Buffer {
  const buf = Buffer.allocUnsafe(36 + p.entries.length * ENTRY_BYTES);
  Buffer.from(p.packId, 'hex').copy(buf, 0);
  buf.writeUInt32LE(p.entries.length, 32);
  let o = 36;
  for (const e of p.entries) o = writeEntry(buf, o, e);
  if (version < 2) {
    if (p.entries.some((e) => e.delta)) throw new CosmosBackupError('INTERNAL', 'delta chunks in a version 1 index');
    return buf;
  }
  return Buffer.concat([buf, encodeDeltaSection(p.entries) ?? Buffer.alloc(4)]);
}

/** An index object from parts made by encodeIndexPack with the same version. */
export function joinIndex(parts: Buffer[], version: number): Buffer {
  const head = Buffer.alloc(9);
  INDEX_MAGIC.copy(head, 0);
  head.writeUInt8(version < 2 ? 1 : 2, 4);
  head.writeUInt32LE(parts.length, 5);
  return Buffer.concat([head, ...parts]);
}

/** The packs of an index object, in order: each pack's entries are `count` runs of ENTRY_BYTES
 * of `plain` from `first` (the id, then the fields at ENTRY_AT; copy what you keep). Nothing is
 * decoded into an object per entry, or even a view, so a large index loads fast and leaves no
 * garbage. onPack sees every pack, even one listed with no entries; onDelta sees a pack's delta
 * records (n: the entry's number in its pack) after onPack. */
export function forEachIndexPack(
  name: string, plain: Buffer, onPack: (packId: string, plain: Buffer, first: number, count: number) => void,
  onDelta?: (packId: string, n: number, info: DeltaInfo) => void,
): void {
  const version = plain.length >= 9 && plain.subarray(0, 4).equals(INDEX_MAGIC) ? plain.readUInt8(4) : 0;
  if (version !== 1 && version !== 2) throw new CorruptObjectError(name, 'bad index header');
  const n = plain.readUInt32LE(5);
  let o = 9;
  for (let i = 0; i < n; i++) {
    if (o + 36 > plain.length) throw new CorruptObjectError(name, 'index truncated');
    const packId = plain.subarray(o, o + 32).toString('hex');
    const count = plain.readUInt32LE(o + 32);
    o += 36;
    if (o + count * ENTRY_BYTES > plain.length) throw new CorruptObjectError(name, 'index truncated');
    const first = o;
    onPack(packId, plain, first, count);
    o += count * ENTRY_BYTES;
    if (version === 2) {
      o = forEachDeltaRecord(name, plain, o, count, (j, info) => {
        if (plain[first + j * ENTRY_BYTES + ENTRY_AT.type] !== BLOB_DELTA) throw new CorruptObjectError(name, 'delta record for a chunk that is not a delta');
        onDelta?.(packId, j, info);
      });
    }
  }
  if (o !== plain.length) throw new CorruptObjectError(name, 'index has trailing bytes');
}

export function decodeIndex(name: string, plain: Buffer): IndexPack[] {
  const out: IndexPack[] = [];
  forEachIndexPack(name, plain, (packId, buf, first, count) => {
    const entries: BlobEntry[] = [];
    for (let j = 0; j < count; j++) entries.push(readEntry(buf, first + j * ENTRY_BYTES));
    out.push({ packId, entries });
  }, (_packId, j, info) => { out[out.length - 1]!.entries[j]!.delta = info; });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Chunk lists: the ordered data-chunk ids of one object, stored as LIST blobs.

/** A list blob ends after an id whose first two bytes (u16be) are 0 mod 512, or at 4096 ids. */
export const LIST_MIN_IDS = 64;
export const LIST_MAX_IDS = 4096;
export function endsListBlob(id: Buffer, count: number): boolean {
  if (count >= LIST_MAX_IDS) return true;
  return count >= LIST_MIN_IDS && id.readUInt16BE(0) % 512 === 0;
}
