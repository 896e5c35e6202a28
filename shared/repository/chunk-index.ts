// In-memory chunk index: chunk id -> (pack, frame offset/length, offset/length in the frame).
// Flat typed arrays beside an IdSet (the ids and an open-addressing table over them): about 60 bytes per
// chunk, where a Map keyed by id strings cost twice that. The index grows with the repository
// (every restore and backup loads it), so this is what keeps their memory flat as data grows.
import { BLOB_DELTA, ENTRY_AT, ENTRY_BYTES, forEachIndexPack, type BlobEntry, type DeltaInfo } from './format.ts';
import { IdSet } from './id-set.ts';

export interface Located extends BlobEntry { packId: string }

export class ChunkIndex {
  private readonly packIds: string[] = [];
  private readonly packSlot = new Map<string, number>();
  /** the ids, numbered in the order they were added; entry i's location is at i in the arrays below */
  private readonly ids = new IdSet();
  private pack = new Uint32Array(1024);
  private offset = new Uint32Array(1024);
  private length = new Uint32Array(1024);
  private rawOffset = new Uint32Array(1024);
  private rawLength = new Uint32Array(1024);
  private meta = new Uint8Array(1024); // type << 4 | codec
  /** for delta entries, 1 + where their record is in `deltas` (u32 size, u8 k, k ids); 0 otherwise */
  private deltaAt: Uint32Array | undefined;
  private deltas = Buffer.alloc(0);
  private deltaBytes = 0;

  get size(): number { return this.ids.size; }

  has(id: Buffer): boolean {
    return this.ids.has(id);
  }

  /** Makes room for `entries` chunks in all (an estimate: fewer or more are fine), so that
   * loading them copies nothing as the arrays grow. */
  reserve(entries: number): void {
    this.ids.reserve(entries);
    let n = this.pack.length;
    while (n < entries) n *= 2;
    if (n > this.pack.length) this.grow(n);
  }

  /** Adds every entry of an index object's plaintext, read in place: loading hundreds of
   * thousands of entries leaves nothing per entry on the heap. The first location of a chunk
   * wins (a whole copy over a delta copy); a damaged index throws CorruptObjectError naming
   * `name`. One loop per pack with the entry's fields read inline: a restore or backup loads
   * the index first, before V8 has optimised anything, and calls are what cost there. */
  addIndexObject(name: string, plain: Buffer): void {
    let inPack = new Int32Array(64); // entry number of each entry of the current pack, -1 if a duplicate
    forEachIndexPack(name, plain, (packId, buf, first, count) => {
      if (inPack.length < count) inPack = new Int32Array(count);
      let ps = -1; // the pack's slot, taken once an entry of it is placed
      for (let j = 0, at = first; j < count; j++, at += ENTRY_BYTES) {
        let i = this.ids.size;
        if (this.ids.addAt(buf, at)) {
          inPack[j] = i;
          if (i === this.pack.length) this.grow(2 * i);
        } else {
          inPack[j] = -1;
          // The first location wins, except that a whole copy replaces a delta copy (one made by
          // a concurrent backup): a chunk may be some delta's base, and bases must be whole.
          i = this.ids.indexAt(buf, at);
          if (this.meta[i]! >> 4 !== BLOB_DELTA || buf[at + ENTRY_AT.type] === BLOB_DELTA) continue;
          if (this.deltaAt) this.deltaAt[i] = 0;
        }
        if (ps < 0) ps = this.packSlotOf(packId);
        this.pack[i] = ps;
        this.offset[i] = u32(buf, at + ENTRY_AT.offset);
        this.length[i] = u32(buf, at + ENTRY_AT.length);
        this.rawOffset[i] = u32(buf, at + ENTRY_AT.rawOffset);
        this.rawLength[i] = u32(buf, at + ENTRY_AT.rawLength);
        this.meta[i] = (buf[at + ENTRY_AT.type]! << 4) | buf[at + ENTRY_AT.codec]!;
      }
    }, (_packId, n, info) => {
      const i = inPack[n]!;
      if (i >= 0) this.addDelta(i, info);
    });
  }

  private packSlotOf(packId: string): number {
    let ps = this.packSlot.get(packId);
    if (ps === undefined) {
      ps = this.packIds.length;
      this.packIds.push(packId);
      this.packSlot.set(packId, ps);
    }
    return ps;
  }

  private addDelta(i: number, info: DeltaInfo): void {
    const need = 5 + 32 * info.bases.length;
    if (this.deltaBytes + need > this.deltas.length) {
      const b = Buffer.alloc(Math.max(64 * 1024, 2 * (this.deltaBytes + need)));
      this.deltas.copy(b, 0, 0, this.deltaBytes);
      this.deltas = b;
    }
    if (!this.deltaAt || this.deltaAt.length < this.pack.length) {
      const d = new Uint32Array(this.pack.length);
      if (this.deltaAt) d.set(this.deltaAt);
      this.deltaAt = d;
    }
    const o = this.deltaBytes;
    this.deltas.writeUInt32LE(info.size, o);
    this.deltas.writeUInt8(info.bases.length, o + 4);
    info.bases.forEach((b, k) => b.copy(this.deltas, o + 5 + 32 * k));
    this.deltaBytes += need;
    this.deltaAt[i] = o + 1;
  }

  private deltaOf(i: number): DeltaInfo | undefined {
    const at = this.deltaAt?.[i];
    if (!at) return undefined;
    const o = at - 1;
    const k = this.deltas[o + 4]!;
    // Copies: the store is replaced as it grows, and callers keep these.
    return { size: this.deltas.readUInt32LE(o), bases: Array.from({ length: k }, (_, j) => Buffer.from(this.deltas.subarray(o + 5 + 32 * j, o + 37 + 32 * j))) };
  }

  private located(i: number, id: Buffer): Located {
    const type = this.meta[i]! >> 4;
    const delta = type === BLOB_DELTA ? this.deltaOf(i) : undefined;
    return {
      id, packId: this.packIds[this.pack[i]!]!, offset: this.offset[i]!, length: this.length[i]!,
      rawOffset: this.rawOffset[i]!, rawLength: this.rawLength[i]!, type, codec: this.meta[i]! & 15, ...(delta ? { delta } : {}),
    };
  }

  /** The chunk's content length and type without building a location (backup's hot path), or undefined. */
  describe(id: Buffer): { type: number; size: number } | undefined {
    const i = this.ids.indexOf(id);
    if (i < 0) return undefined;
    const type = this.meta[i]! >> 4;
    const at = type === BLOB_DELTA ? this.deltaAt?.[i] : 0;
    return { type, size: at ? this.deltas.readUInt32LE(at - 1) : this.rawLength[i]! };
  }

  get(id: Buffer): Located | undefined {
    const i = this.ids.indexOf(id);
    return i < 0 ? undefined : this.located(i, id);
  }

  /** Every (packId, entry) pair, in the order they were added. */
  *entries(): Generator<Located> {
    for (let i = 0; i < this.ids.size; i++) yield this.located(i, Buffer.from(this.ids.at(i)));
  }

  packs(): string[] { return [...this.packIds]; }

  /** Makes the per-entry arrays n long (n > their length), keeping what they hold. */
  private grow(n: number): void {
    const g32 = (a: Uint32Array) => { const b = new Uint32Array(n); b.set(a); return b; };
    this.pack = g32(this.pack);
    this.offset = g32(this.offset);
    this.length = g32(this.length);
    this.rawOffset = g32(this.rawOffset);
    this.rawLength = g32(this.rawLength);
    const m = new Uint8Array(n); m.set(this.meta); this.meta = m;
  }
}

/** A little-endian u32: lighter than readUInt32LE, which validates its offset with another call. */
const u32 = (b: Buffer, o: number) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
