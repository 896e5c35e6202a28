// Packs: many sealed frames (groups of chunks) in one storage object, plus a sealed trailer listing them, so object
// counts and request costs stay low. A pool of pack builders with a bounded number of uploads in
// flight keeps memory bounded: at most (builders + uploads) x packSize bytes are held.
import { createHash } from 'node:crypto';
import type { ObjectStore } from '../storage/types.ts';
import type { Sealer } from './crypto.ts';
import { BufferPool } from '../buffer-pool.ts';
import { encodePackTrailer, KEYS, type BlobEntry, type DeltaInfo, type IndexPack } from './format.ts';

/**
 * One pack being filled. Frames are copied into one pack-sized buffer as they come, taken from
 * the uploader's pool and handed back once the pack is stored: a backup allocates a handful of
 * these instead of a new pack (and a frame list held until it is full) every few MiB; long-lived
 * buffers like those were most of what still started V8's major GCs (docs/PERFORMANCE.md).
 */
export class PackBuilder {
  readonly entries: BlobEntry[] = [];
  size = 0;
  private buf: Buffer | undefined;
  private readonly pool: BufferPool;

  constructor(pool: BufferPool) { this.pool = pool; }

  /** Appends one sealed frame holding the given chunks (ids with their place in the frame plaintext). */
  addFrame(chunks: { id: Buffer; type: number; rawOffset: number; rawLength: number; delta?: DeltaInfo }[], codec: number, sealed: Buffer): void {
    for (const c of chunks) {
      this.entries.push({ id: c.id, type: c.type, codec, offset: this.size, length: sealed.length, rawOffset: c.rawOffset, rawLength: c.rawLength, ...(c.delta ? { delta: c.delta } : {}) });
    }
    this.append(sealed);
  }

  private append(b: Uint8Array): void {
    const need = this.size + b.length;
    if (!this.buf || need > this.buf.length) {
      // A pack passes packSize by at most one frame and its trailer, so the pool's buffers
      // nearly always fit; a bigger one is a buffer of its own.
      const next = this.pool.take(need);
      if (this.buf) { this.buf.copy(next, 0, 0, this.size); this.pool.give(this.buf); }
      this.buf = next;
    }
    this.buf.set(b, this.size);
    this.size = need;
  }

  /** pack bytes := blobs || seal(trailer) || u32le(len(seal(trailer))). `release` gives the
   * buffer behind `bytes` back to the pool: call it once nothing reads them any more. */
  finish(sealer: Sealer): { id: string; bytes: Buffer; entries: BlobEntry[]; release: () => void } {
    const trailer = sealer.seal(encodePackTrailer(this.entries));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(trailer.length);
    this.append(trailer);
    this.append(len);
    const buf = this.buf!;
    const bytes = buf.subarray(0, this.size);
    this.buf = undefined;
    const id = createHash('sha256').update(bytes).digest('hex');
    return { id, bytes, entries: this.entries, release: () => this.pool.give(buf) };
  }
}

export interface PackUploaderOptions {
  store: ObjectStore;
  sealer: Sealer;
  packSize: number;
  maxUploads: number;
  /** called after a pack is durably stored, with its index entries */
  onStored: (pack: IndexPack, storedBytes: number) => void;
}

export class PackUploader {
  private readonly o: PackUploaderOptions;
  private readonly idle: PackBuilder[] = [];
  private inFlight = 0;
  private readonly waiters: (() => void)[] = [];
  private readonly uploads = new Set<Promise<void>>();
  private failure: unknown;
  private readonly pool: BufferPool;

  constructor(o: PackUploaderOptions) {
    this.o = o;
    // Room past packSize for the frame that fills a pack (frames are at most a few hundred KiB).
    this.pool = new BufferPool(o.packSize + 1024 * 1024, o.maxUploads + 2);
  }

  get packSize(): number { return this.o.packSize; }

  /** A builder for one writer's exclusive use until it is given back. */
  acquire(): PackBuilder {
    return this.idle.pop() ?? new PackBuilder(this.pool);
  }

  /** Gives a builder back: uploads it if full, otherwise keeps it for the next writer. */
  async giveBack(b: PackBuilder): Promise<void> {
    if (b.size >= this.o.packSize) await this.upload(b);
    else if (b.entries.length) this.idle.push(b);
  }

  /** Starts uploading b once an upload slot is free; resolves when it has started. */
  async upload(b: PackBuilder): Promise<void> {
    this.throwIfFailed();
    while (this.inFlight >= this.o.maxUploads) await new Promise<void>((r) => this.waiters.push(r));
    this.throwIfFailed();
    this.inFlight++;
    const { id, bytes, entries, release } = b.finish(this.o.sealer);
    const p = (async () => {
      try {
        await this.o.store.putIfAbsent(KEYS.pack(id), bytes);
        this.o.onStored({ packId: id, entries }, bytes.length);
      } catch (e) {
        this.failure ??= e;
      } finally {
        // A settled put reads the bytes no more (ObjectStore.putIfAbsent): the buffer is free.
        release();
        this.inFlight--;
        this.waiters.shift()?.();
      }
    })();
    this.uploads.add(p);
    void p.finally(() => this.uploads.delete(p));
  }

  /** Uploads every partly filled builder and waits for all uploads. */
  async flush(): Promise<void> {
    while (this.idle.length) await this.upload(this.idle.pop()!);
    await this.drain();
    this.throwIfFailed();
  }

  /** Waits for uploads in flight, without starting new ones (abort path). */
  async drain(): Promise<void> {
    while (this.uploads.size) await Promise.allSettled([...this.uploads]);
  }

  throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
