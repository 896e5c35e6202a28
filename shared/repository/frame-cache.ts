// Reading old chunks while a backup runs (the bases of delta chunks): a few recently opened frames
// are kept, because the bases of consecutive new chunks are consecutive old chunks, usually in the
// same old frame (about 16 chunks of 8 KiB per 128 KiB frame).
import { CorruptObjectError } from '../errors.ts';
import type { ChunkIndex, Located } from './chunk-index.ts';
import { BLOB_DATA, KEYS } from './format.ts';
import type { Repository } from './repository.ts';

const FRAMES_KEPT = 16;

export class FrameCache {
  private readonly repo: Repository;
  private readonly index: ChunkIndex;
  /** packId:offset -> opened frame, oldest first (a Map keeps insertion order) */
  private readonly frames = new Map<string, Promise<Buffer>>();

  constructor(repo: Repository, index: ChunkIndex) {
    this.repo = repo;
    this.index = index;
  }

  /** The verified contents of whole data chunks, by id (latin1). */
  async chunks(ids: Buffer[]): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    await Promise.all(ids.map(async (id) => {
      const key = id.toString('latin1');
      if (out.has(key)) return;
      const loc = this.index.get(id);
      if (!loc || loc.type !== BLOB_DATA) throw new CorruptObjectError(`chunk ${id.toString('hex')}`, 'not a whole data chunk in the index');
      out.set(key, this.repo.chunkFromFrame(loc, await this.frame(loc)));
    }));
    return out;
  }

  private frame(loc: Located): Promise<Buffer> {
    const key = `${loc.packId}:${loc.offset}`;
    let f = this.frames.get(key);
    if (f) {
      this.frames.delete(key); // most recently used goes last
    } else {
      f = this.repo.store.getRange(KEYS.pack(loc.packId), loc.offset, loc.length).then((raw) => this.repo.openFrame(loc.packId, loc.offset, loc.codec, raw));
      f.catch(() => this.frames.delete(key));
    }
    this.frames.set(key, f);
    while (this.frames.size > FRAMES_KEPT) this.frames.delete(this.frames.keys().next().value!);
    return f;
  }
}
