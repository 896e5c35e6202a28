// Reused buffers of one size. The backup hands every byte of a database through buffers like these
// (socket slabs, frames, packs): a new one each time is external memory that only a major GC
// frees once it has lived a while, and those buffers were most of what started V8's major GCs
// (docs/PERFORMANCE.md, eighth set). Pure; no I/O.

export class BufferPool {
  readonly size: number;
  /** buffers of `size` this pool has made in all (bounded memory can be checked against it) */
  allocated = 0;
  private readonly free: Buffer[] = [];
  private readonly max: number;

  /** `max`: how many free buffers are kept; more given back are left to the GC. */
  constructor(size: number, max: number) { this.size = size; this.max = max; }

  /** A buffer of at least `min` bytes: a pooled one of `size`, or one of its own when bigger. */
  take(min = this.size): Buffer {
    if (min > this.size) return Buffer.allocUnsafeSlow(min);
    const b = this.free.pop();
    if (b) return b;
    this.allocated++;
    return Buffer.allocUnsafeSlow(this.size);
  }

  /** Gives a buffer back once nothing refers to its bytes any more. Any view of a pooled
   * buffer's whole memory will do (one that came back from a thread is a new object); other
   * buffers are left to the GC. */
  give(b: Buffer): void {
    if (b.buffer.byteLength !== this.size || this.free.length >= this.max) return;
    this.free.push(b.length === this.size && b.byteOffset === 0 ? b : Buffer.from(b.buffer, 0, this.size));
  }
}
