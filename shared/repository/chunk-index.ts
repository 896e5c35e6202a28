// In-memory chunk index: chunk id -> (pack, frame offset/length, offset/length in the frame).
// Flat typed arrays beside an IdSet (the ids and an open-addressing table over them): about 60 bytes per
// chunk, where a Map keyed by id strings cost twice that. The index grows with the repository
// (every restore and backup loads it), so this is what keeps their memory flat as data grows.
import { ENTRY_AT, forEachIndexEntry, type BlobEntry } from './format.ts';
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

  get size(): number { return this.ids.size; }

  has(id: Buffer): boolean {
    return this.ids.has(id);
  }

  /** Adds every entry of an index object's plaintext, read in place: loading hundreds of
   * thousands of entries leaves nothing per entry on the heap (only views that die young). The
   * first location of a chunk wins; a damaged index throws CorruptObjectError naming `name`. */
  addIndexObject(name: string, plain: Buffer): void {
    forEachIndexEntry(name, plain, (packId, e) => {
      const i = this.ids.size; // the id's entry number, if it is new
      if (!this.ids.add(e.subarray(0, 32))) return;
      let ps = this.packSlot.get(packId);
      if (ps === undefined) {
        ps = this.packIds.length;
        this.packIds.push(packId);
        this.packSlot.set(packId, ps);
      }
      if (i === this.pack.length) this.grow();
      this.pack[i] = ps;
      this.offset[i] = e.readUInt32LE(ENTRY_AT.offset);
      this.length[i] = e.readUInt32LE(ENTRY_AT.length);
      this.rawOffset[i] = e.readUInt32LE(ENTRY_AT.rawOffset);
      this.rawLength[i] = e.readUInt32LE(ENTRY_AT.rawLength);
      this.meta[i] = (e[ENTRY_AT.type]! << 4) | e[ENTRY_AT.codec]!;
    });
  }

  private located(i: number, id: Buffer): Located {
    return {
      id, packId: this.packIds[this.pack[i]!]!, offset: this.offset[i]!, length: this.length[i]!,
      rawOffset: this.rawOffset[i]!, rawLength: this.rawLength[i]!, type: this.meta[i]! >> 4, codec: this.meta[i]! & 15,
    };
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

  private grow(): void {
    const n = this.pack.length * 2;
    const g32 = (a: Uint32Array) => { const b = new Uint32Array(n); b.set(a); return b; };
    this.pack = g32(this.pack);
    this.offset = g32(this.offset);
    this.length = g32(this.length);
    this.rawOffset = g32(this.rawOffset);
    this.rawLength = g32(this.rawLength);
    const m = new Uint8Array(n); m.set(this.meta); this.meta = m;
  }
}
