// Reading old chunks while a backup runs (the bases of delta chunks): a few recently opened frames
// are kept, because the bases of consecutive new chunks are consecutive old chunks, usually in the
// same old frame (about 16 chunks of 8 KiB per 128 KiB frame).
import type { Located } from './chunk-index.ts';
import type { Repository } from './repository.ts';

const FRAMES_KEPT = 16;

export class FrameCache {
  private readonly repo: Repository;
  /** packId:offset -> opened frame, oldest first (a Map keeps insertion order) */
  private readonly frames = new Map<string, Promise<Buffer>>();

  constructor(repo: Repository) {
    this.repo = repo;
  }

  /** The verified contents of whole data chunks, by id (latin1). */
  async chunks(ids: Buffer[]): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    await Promise.all(ids.map(async (id) => {
      const key = id.toString('latin1');
      if (out.has(key)) return;
      const loc = await this.repo.baseLocation(id);
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
      f = this.repo.readFrame(loc);
      f.catch(() => this.frames.delete(key));
    }
    this.frames.set(key, f);
    while (this.frames.size > FRAMES_KEPT) this.frames.delete(this.frames.keys().next().value!);
    return f;
  }
}
