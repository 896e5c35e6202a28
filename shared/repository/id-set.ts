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

  /** Makes room for `capacity` ids in all, so that adding them copies and rehashes nothing. */
  reserve(capacity: number): void {
    let n = this.ids.length / ID;
    while (n < capacity) n *= 2;
    if (n === this.ids.length / ID) return;
    const bigger = Buffer.allocUnsafeSlow(n * ID);
    this.ids.copy(bigger, 0, 0, this.count * ID);
    this.ids = bigger;
    if (n * 2 > this.table.length) this.rehash(n * 2);
  }

  /** Where the id at src[at, at + 32) is in the table, or the empty place it would go. Ids are hashes: their first bytes hash well. */
  private probe(src: Uint8Array, at: number): number {
    const mask = this.table.length - 1;
    let h = ((src[at]! | (src[at + 1]! << 8) | (src[at + 2]! << 16) | (src[at + 3]! << 24)) >>> 0) & mask;
    for (;;) {
      const e = this.table[h]!;
      if (e === 0 || this.ids.compare(src, at, at + ID, (e - 1) * ID, e * ID) === 0) return h;
      h = (h + 1) & mask;
    }
  }

  has(id: Uint8Array): boolean {
    return this.indexOf(id) >= 0;
  }

  /** The entry number of id (ids are numbered 0, 1, … in the order they were added), or -1. */
  indexOf(id: Uint8Array): number {
    if (id.length !== ID) return -1;
    return this.table[this.probe(id, 0)]! - 1;
  }

  /** As indexOf, for the id at src[at, at + 32). */
  indexAt(src: Uint8Array, at: number): number {
    return this.table[this.probe(src, at)]! - 1;
  }

  /** The id with entry number i (a view of the set's memory: copy it to keep it). */
  at(i: number): Buffer {
    return this.ids.subarray(i * ID, (i + 1) * ID);
  }

  /** Adds id as entry number `size`; false if it was there already. */
  add(id: Uint8Array): boolean {
    if (id.length !== ID) throw new RangeError(`chunk ids are ${ID} bytes, got ${id.length}`);
    return this.addAt(id, 0);
  }

  /** As add, for the id at src[at, at + 32) (no view to make per id when reading an index). */
  addAt(src: Uint8Array, at: number): boolean {
    if (at < 0 || at + ID > src.length) throw new RangeError(`no whole chunk id at ${at}`);
    // probe(), inlined: this runs per entry when an index loads, before V8 optimises anything.
    const mask = this.table.length - 1;
    let h = ((src[at]! | (src[at + 1]! << 8) | (src[at + 2]! << 16) | (src[at + 3]! << 24)) >>> 0) & mask;
    for (let e = this.table[h]!; e !== 0; e = this.table[h]!) {
      if (this.ids.compare(src, at, at + ID, (e - 1) * ID, e * ID) === 0) return false;
      h = (h + 1) & mask;
    }
    if (this.count * ID === this.ids.length) {
      const bigger = Buffer.allocUnsafeSlow(this.ids.length * 2);
      this.ids.copy(bigger);
      this.ids = bigger;
    }
    this.ids.set(src.subarray(at, at + ID), this.count * ID);
    this.count++;
    if (this.count * 2 > this.table.length) this.rehash(this.table.length * 2);
    else this.table[h] = this.count;
    return true;
  }

  /** Makes the table `size` slots and places every entry again (the newest included). */
  private rehash(size: number): void {
    this.table = new Int32Array(size);
    for (let i = 0; i < this.count; i++) this.table[this.probe(this.ids, i * ID)] = i + 1;
  }
}
