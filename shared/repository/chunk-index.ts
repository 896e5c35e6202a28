// In-memory chunk index: chunk id -> (pack, frame offset/length, offset/length in the frame).
// Flat typed arrays and an open-addressing hash table over the ids themselves: about 60 bytes per
// chunk, where a Map keyed by id strings cost twice that. The index grows with the repository
// (every restore and backup loads it), so this is what keeps their memory flat as data grows.
import type { BlobEntry, IndexPack } from './format.ts';

export interface Located extends BlobEntry { packId: string }

const ID = 32;

export class ChunkIndex {
  private readonly packIds: string[] = [];
  private readonly packSlot = new Map<string, number>();
  private ids = Buffer.alloc(ID * 1024);
  private pack = new Uint32Array(1024);
  private offset = new Uint32Array(1024);
  private length = new Uint32Array(1024);
  private rawOffset = new Uint32Array(1024);
  private rawLength = new Uint32Array(1024);
  private meta = new Uint8Array(1024); // type << 4 | codec
  /** open addressing, linear probing: entry number + 1, 0 = empty; at most half full */
  private table = new Int32Array(2048);
  private count = 0;

  get size(): number { return this.count; }

  /** Where id is in the table, or the empty place it would go. Ids are hashes: their first bytes are a good hash. */
  private probe(id: Uint8Array): number {
    const mask = this.table.length - 1;
    let h = ((id[0]! | (id[1]! << 8) | (id[2]! << 16) | (id[3]! << 24)) >>> 0) & mask;
    for (;;) {
      const e = this.table[h]!;
      if (e === 0 || this.ids.compare(id, 0, ID, (e - 1) * ID, e * ID) === 0) return h;
      h = (h + 1) & mask;
    }
  }

  private find(id: Uint8Array): number {
    if (id.length !== ID) return -1;
    return this.table[this.probe(id)]! - 1;
  }

  has(id: Buffer): boolean {
    return this.find(id) >= 0;
  }

  /** Adds every entry of an index pack group; the first location of a chunk wins. */
  addPack(p: IndexPack): void {
    for (const e of p.entries) this.add(p.packId, e);
  }

  add(packId: string, e: BlobEntry): boolean {
    if (e.id.length !== ID) throw new RangeError(`chunk ids are ${ID} bytes, got ${e.id.length}`);
    let h = this.probe(e.id);
    if (this.table[h] !== 0) return false;
    let ps = this.packSlot.get(packId);
    if (ps === undefined) {
      ps = this.packIds.length;
      this.packIds.push(packId);
      this.packSlot.set(packId, ps);
    }
    if (this.count === this.pack.length) this.grow();
    const i = this.count++;
    e.id.copy(this.ids, i * ID, 0, ID);
    this.pack[i] = ps;
    this.offset[i] = e.offset;
    this.length[i] = e.length;
    this.rawOffset[i] = e.rawOffset;
    this.rawLength[i] = e.rawLength;
    this.meta[i] = (e.type << 4) | e.codec;
    if (this.count * 2 > this.table.length) {
      this.rehash();
      h = this.probe(e.id);
    }
    this.table[h] = i + 1;
    return true;
  }

  private located(i: number, id: Buffer): Located {
    return {
      id, packId: this.packIds[this.pack[i]!]!, offset: this.offset[i]!, length: this.length[i]!,
      rawOffset: this.rawOffset[i]!, rawLength: this.rawLength[i]!, type: this.meta[i]! >> 4, codec: this.meta[i]! & 15,
    };
  }

  get(id: Buffer): Located | undefined {
    const i = this.find(id);
    return i < 0 ? undefined : this.located(i, id);
  }

  /** Every (packId, entry) pair, in the order they were added. */
  *entries(): Generator<Located> {
    for (let i = 0; i < this.count; i++) yield this.located(i, Buffer.from(this.ids.subarray(i * ID, (i + 1) * ID)));
  }

  packs(): string[] { return [...this.packIds]; }

  private grow(): void {
    const n = this.pack.length * 2;
    const g32 = (a: Uint32Array) => { const b = new Uint32Array(n); b.set(a); return b; };
    this.pack = g32(this.pack);
    this.offset = g32(this.offset);
    this.length = g32(this.length);
    this.rawOffset = g32(this.rawOffset);
    this.rawLength = g32(this.rawLength);
    const m = new Uint8Array(n); m.set(this.meta); this.meta = m;
    const ids = Buffer.alloc(n * ID); this.ids.copy(ids); this.ids = ids;
  }

  /** Doubles the table; entries 0..count-2 are placed again (the newest is placed by add). */
  private rehash(): void {
    this.table = new Int32Array(this.table.length * 2);
    for (let i = 0; i < this.count - 1; i++) this.table[this.probe(this.ids.subarray(i * ID, (i + 1) * ID))] = i + 1;
  }
}
