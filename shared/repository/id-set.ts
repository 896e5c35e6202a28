// A set of 32-byte chunk ids in flat memory: the ids side by side in one buffer, numbered in the
// order they were added (the chunk index keeps its locations under the same numbers), and an
// open-addressing table of their positions. About 40 bytes per id and nothing for the garbage
// collector to trace, where a Set of latin1 strings cost about 100 bytes and one heap object per
// id: a backup's set of new chunks grows with the data (about 80 000 ids per GB of COPY text),
// and every major GC walked it. Pure; no I/O.

const ID = 32;

export class IdSet {
  private ids: Buffer;
  /** linear probing over entry number + 1; 0 = empty; kept at most half full */
  private table: Int32Array;
  private count = 0;

  constructor(capacity = 1024) {
    let n = 1024;
    while (n < capacity) n *= 2;
    this.ids = Buffer.allocUnsafeSlow(n * ID);
    this.table = new Int32Array(n * 2);
  }

  get size(): number { return this.count; }

  /** Where id is in the table, or the empty place it would go. Ids are hashes: their first bytes hash well. */
  private probe(id: Uint8Array): number {
    const mask = this.table.length - 1;
    let h = ((id[0]! | (id[1]! << 8) | (id[2]! << 16) | (id[3]! << 24)) >>> 0) & mask;
    for (;;) {
      const e = this.table[h]!;
      if (e === 0 || this.ids.compare(id, 0, ID, (e - 1) * ID, e * ID) === 0) return h;
      h = (h + 1) & mask;
    }
  }

  has(id: Uint8Array): boolean {
    return this.indexOf(id) >= 0;
  }

  /** The entry number of id (ids are numbered 0, 1, … in the order they were added), or -1. */
  indexOf(id: Uint8Array): number {
    if (id.length !== ID) return -1;
    return this.table[this.probe(id)]! - 1;
  }

  /** The id with entry number i (a view of the set's memory: copy it to keep it). */
  at(i: number): Buffer {
    return this.ids.subarray(i * ID, (i + 1) * ID);
  }

  /** Adds id as entry number `size`; false if it was there already. */
  add(id: Uint8Array): boolean {
    if (id.length !== ID) throw new RangeError(`chunk ids are ${ID} bytes, got ${id.length}`);
    const h = this.probe(id);
    if (this.table[h] !== 0) return false;
    if (this.count * ID === this.ids.length) {
      const bigger = Buffer.allocUnsafeSlow(this.ids.length * 2);
      this.ids.copy(bigger);
      this.ids = bigger;
    }
    this.ids.set(id, this.count * ID);
    this.count++;
    if (this.count * 2 > this.table.length) this.rehash();
    else this.table[h] = this.count;
    return true;
  }

  /** Doubles the table and places every entry again (the newest included). */
  private rehash(): void {
    this.table = new Int32Array(this.table.length * 2);
    for (let i = 0; i < this.count; i++) this.table[this.probe(this.ids.subarray(i * ID, (i + 1) * ID))] = i + 1;
  }
}
