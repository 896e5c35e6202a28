// Follows an object's previous version (its chunk list in the parent restore point) alongside the
// new stream, so a new chunk can be stored as a delta against the old chunks at the same place.
// Pure: the writer feeds it the parent's ids and sizes as it reads them, and asks it what it needs.
//
// Why positions in bytes: an UPDATE moves a row (PostgreSQL writes the new version elsewhere), so
// the new stream is the old one with rows cut out here and there (and added at the end). After a
// chunk that matches the parent, the next new chunk starts where the parent's next chunk starts;
// after a new one, the old position is the new position plus the shift seen at the last match,
// give or take the few rows cut since: enough slack covers them.

/** Old bytes before the expected range that still give candidates, when the position is not
 * exact (rows cut since the last match put the new stream behind the old one). */
const SLACK = 1024;
/** Old bytes after it: a changed row is rarely much longer than it was (every extra candidate
 * is read and hashed). */
const SLACK_AFTER = 256;
/** Old chunks kept behind the current position (re-anchoring on a chunk seen a little earlier). */
const KEEP_BEHIND = 64 * 1024;
/** Old bytes loaded ahead of the current position. */
export const LOOKAHEAD = 512 * 1024;

interface OldChunk { id: Buffer; start: number; end: number }

/** A map key for an id: its first 48 bits. Ids are hashes, so a collision is as rare as it is
 * harmless here (a re-anchoring at a wrong place costs a worse delta, never wrong data: patches
 * are made from the bases' real contents). A number key spares a string per chunk. */
const keyOf = (id: Buffer) => id.readUIntLE(0, 6);

export class ParentCursor {
  private readonly chunks: OldChunk[] = [];
  private first = 0; // index in `chunks` of the first one kept
  private readonly where = new Map<number, number>(); // keyOf(id) -> absolute number of its last loaded occurrence
  private dropped = 0; // chunks dropped from the front (absolute number of chunks[0])
  private loadedEnd = 0; // old bytes loaded
  private done = false;
  private newPos = 0;
  private shift = 0; // old offset - new offset, at the last match
  private anchored = true; // the last chunk matched the parent (or this is the start): the position is exact

  /** The next old chunk, in order (its id is kept: pass a view of something that stays). */
  add(id: Buffer, size: number): void {
    const n = this.dropped + this.chunks.length;
    this.chunks.push({ id, start: this.loadedEnd, end: this.loadedEnd + size });
    this.where.set(keyOf(id), n);
    this.loadedEnd += size;
  }

  /** The parent's list is read to its end. */
  end(): void { this.done = true; }

  /** Old bytes that should be loaded before `newBytes` more of the new stream are chunked. */
  wants(newBytes: number): number {
    return this.done ? 0 : Math.max(0, this.newPos + this.shift + newBytes + LOOKAHEAD - this.loadedEnd);
  }

  /** A chunk already stored: if the parent has it near here, the old and new streams line up again. */
  known(id: Buffer, size: number): void {
    const n = this.where.get(keyOf(id));
    this.anchored = n !== undefined && n >= this.dropped + this.first;
    if (this.anchored) this.shift = this.chunks[n! - this.dropped]!.end - (this.newPos + size);
    this.advance(size);
  }

  /**
   * A chunk to be stored: the ids of the old chunks overlapping where it would have been (in
   * order, at most `max`), then the position moves on.
   */
  candidates(size: number, max: number): Buffer[] {
    // Right after a match the chunk starts exactly where the parent's next one does.
    const from = this.newPos + this.shift - (this.anchored ? 0 : SLACK);
    const to = this.newPos + this.shift + size + SLACK_AFTER;
    const out: Buffer[] = [];
    for (let i = this.first; i < this.chunks.length && out.length < max; i++) {
      const c = this.chunks[i]!;
      if (c.start >= to) break;
      if (c.end > from) out.push(c.id);
    }
    this.anchored = false;
    this.advance(size);
    return out;
  }

  private advance(size: number): void {
    this.newPos += size;
    // Drop what lies well behind the current position (memory stays bounded).
    const behind = this.newPos + this.shift - KEEP_BEHIND;
    while (this.first < this.chunks.length && this.chunks[this.first]!.end < behind) {
      const c = this.chunks[this.first]!;
      const key = keyOf(c.id);
      if (this.where.get(key) === this.dropped + this.first) this.where.delete(key);
      this.first++;
    }
    if (this.first > 1024 && this.first * 2 > this.chunks.length) {
      this.chunks.splice(0, this.first);
      this.dropped += this.first;
      this.first = 0;
    }
  }
}
