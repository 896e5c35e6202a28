// In-memory chunk index: chunk id -> (pack, frame offset/length, offset/length in the frame). Struct-of-arrays so a large
// repository costs ~100 bytes per chunk rather than a JavaScript object each.
import type { BlobEntry, IndexPack } from './format.ts';

export interface Located extends BlobEntry { packId: string }

export class ChunkIndex {
  private readonly slots = new Map<string, number>();
  private readonly packIds: string[] = [];
  private readonly packSlot = new Map<string, number>();
  private pack = new Uint32Array(1024);
  private offset = new Uint32Array(1024);
  private length = new Uint32Array(1024);
  private rawOffset = new Uint32Array(1024);
  private rawLength = new Uint32Array(1024);
  private meta = new Uint8Array(1024); // type << 4 | codec
  private count = 0;

  get size(): number { return this.count; }

  has(id: Buffer): boolean {
    return this.slots.has(id.toString('latin1'));
  }

  /** Adds every entry of an index pack group; the first location of a chunk wins. */
  addPack(p: IndexPack): void {
    for (const e of p.entries) this.add(p.packId, e);
  }

  add(packId: string, e: BlobEntry): boolean {
    const key = e.id.toString('latin1');
    if (this.slots.has(key)) return false;
    let ps = this.packSlot.get(packId);
    if (ps === undefined) {
      ps = this.packIds.length;
      this.packIds.push(packId);
      this.packSlot.set(packId, ps);
    }
    if (this.count === this.pack.length) this.grow();
    const i = this.count++;
    this.pack[i] = ps;
    this.offset[i] = e.offset;
    this.length[i] = e.length;
    this.rawOffset[i] = e.rawOffset;
    this.rawLength[i] = e.rawLength;
    this.meta[i] = (e.type << 4) | e.codec;
    this.slots.set(key, i);
    return true;
  }

  get(id: Buffer): Located | undefined {
    const i = this.slots.get(id.toString('latin1'));
    if (i === undefined) return undefined;
    return {
      id, packId: this.packIds[this.pack[i]!]!, offset: this.offset[i]!, length: this.length[i]!,
      rawOffset: this.rawOffset[i]!, rawLength: this.rawLength[i]!, type: this.meta[i]! >> 4, codec: this.meta[i]! & 15,
    };
  }

  /** Every (packId, entry) pair. */
  *entries(): Generator<Located> {
    for (const [key, i] of this.slots) {
      yield {
        id: Buffer.from(key, 'latin1'), packId: this.packIds[this.pack[i]!]!, offset: this.offset[i]!, length: this.length[i]!,
        rawOffset: this.rawOffset[i]!, rawLength: this.rawLength[i]!, type: this.meta[i]! >> 4, codec: this.meta[i]! & 15,
      };
    }
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
