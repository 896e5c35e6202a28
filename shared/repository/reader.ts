// Reading objects back: chunk ids from the list blobs, locations from the index, ranged reads
// coalesced per pack and fetched ahead with bounded concurrency, every blob re-hashed against its
// id, and the object's size (and SHA-256, where older restore points recorded one) checked at the
// end. Wrong bytes are never returned silently.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { CorruptObjectError } from '../errors.ts';
import type { Located } from './chunk-index.ts';
import { BLOB_DELTA, KEYS } from './format.ts';
import type { Repository } from './repository.ts';
import type { ManifestObject, RestorePoint, RestorePointReader } from './types.ts';

const BATCH_BYTES = 4 * 1024 * 1024; // plaintext per read-ahead batch
const MAX_RANGE = 4 * 1024 * 1024; // largest single ranged read
const RANGES_IN_FLIGHT = 4;

export async function openRestorePoint(repo: Repository, id: string): Promise<RestorePointReader> {
  const rp = await repo.loadRestorePoint(id);
  return new Reader(repo, rp);
}

class Reader implements RestorePointReader {
  readonly restorePoint: RestorePoint;
  private readonly repo: Repository;
  constructor(repo: Repository, rp: RestorePoint) { this.repo = repo; this.restorePoint = rp; }

  openObject(obj: ManifestObject): Readable {
    return Readable.from(readObjectChunks(this.repo, obj), { objectMode: false, highWaterMark: 256 * 1024 });
  }

  async readObject(obj: ManifestObject): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const c of readObjectChunks(this.repo, obj)) parts.push(c);
    return Buffer.concat(parts);
  }
}

/** Consecutive chunks of one frame share one read and one decompression. */
interface Frame { packId: string; offset: number; length: number; codec: number; chunks: Located[] }
interface Range { packId: string; offset: number; length: number; frames: Frame[] }

function frames(locs: Located[]): Frame[] {
  const out: Frame[] = [];
  for (const l of locs) {
    const last = out[out.length - 1];
    if (last && last.packId === l.packId && last.offset === l.offset) last.chunks.push(l);
    else out.push({ packId: l.packId, offset: l.offset, length: l.length, codec: l.codec, chunks: [l] });
  }
  return out;
}

function coalesce(fs: Frame[]): Range[] {
  const out: Range[] = [];
  for (const f of fs) {
    const last = out[out.length - 1];
    if (last && last.packId === f.packId && last.offset + last.length === f.offset && last.length + f.length <= MAX_RANGE) {
      last.length += f.length;
      last.frames.push(f);
    } else if (last && last.packId === f.packId && last.frames[last.frames.length - 1]!.offset === f.offset) {
      last.frames.push(f); // the same frame again (a chunk repeated within an object)
    } else {
      out.push({ packId: f.packId, offset: f.offset, length: f.length, frames: [f] });
    }
  }
  return out;
}

/** Reads the ranges (RANGES_IN_FLIGHT at once) and opens their frames: per range, per frame. */
async function openRanges(repo: Repository, ranges: Range[]): Promise<Buffer[][]> {
  const opened: Buffer[][] = new Array(ranges.length);
  let next = 0;
  const worker = async () => {
    while (next < ranges.length) {
      const i = next++;
      const r = ranges[i]!;
      const raw = await repo.store.getRange(KEYS.pack(r.packId), r.offset, r.length);
      const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength); // a view, not a copy
      if (bytes.length !== r.length) throw new CorruptObjectError(KEYS.pack(r.packId), `short read at ${r.offset}: ${bytes.length} of ${r.length} bytes`);
      opened[i] = await Promise.all(r.frames.map((f) => repo.openFrame(f.packId, f.offset, f.codec, bytes.subarray(f.offset - r.offset, f.offset - r.offset + f.length))));
    }
  };
  await Promise.all(Array.from({ length: Math.min(RANGES_IN_FLIGHT, ranges.length) }, worker));
  return opened;
}

/**
 * The bases of a batch's delta chunks, read together (they are mostly neighbours in an older
 * backup's frames, so few ranged reads), each verified: id (latin1) -> content.
 */
async function fetchBases(repo: Repository, deltas: Located[]): Promise<Map<string, Buffer>> {
  const locs = new Map<string, Located>();
  for (const d of deltas) {
    for (const b of d.delta?.bases ?? []) {
      const key = b.toString('latin1');
      if (!locs.has(key)) locs.set(key, await repo.baseLocation(b, d.id));
    }
  }
  const sorted = [...locs.values()].sort((a, b) => (a.packId < b.packId ? -1 : a.packId > b.packId ? 1 : a.offset - b.offset || a.rawOffset - b.rawOffset));
  const ranges = coalesce(frames(sorted));
  const opened = await openRanges(repo, ranges);
  const out = new Map<string, Buffer>();
  ranges.forEach((r, i) => r.frames.forEach((f, j) => {
    for (const c of f.chunks) out.set(c.id.toString('latin1'), repo.chunkFromFrame(c, opened[i]![j]!));
  }));
  return out;
}

async function fetchBatch(repo: Repository, locs: Located[]): Promise<Buffer[]> {
  const ranges = coalesce(frames(locs));
  const opened = await openRanges(repo, ranges);
  const deltas = locs.filter((l) => l.type === BLOB_DELTA);
  const bases = deltas.length ? await fetchBases(repo, deltas) : undefined;
  return ranges.flatMap((r, i) => r.frames.flatMap((f, j) => contents(repo, f.chunks, opened[i]![j]!, bases)));
}

/**
 * The verified contents of a frame's chunks, in order. Data chunks that follow each other in the
 * frame's plaintext (the usual case: a backup stores new chunks in order) become one view, so
 * consumers get about one buffer per frame instead of one per 8 KiB chunk (each a socket write
 * when restoring); a delta chunk is rebuilt from its bases into a buffer of its own.
 */
function contents(repo: Repository, locs: Located[], frame: Buffer, bases: Map<string, Buffer> | undefined): Buffer[] {
  const out: Buffer[] = [];
  let start = -1;
  let end = -1;
  const cut = () => { if (start >= 0) out.push(frame.subarray(start, end)); start = -1; end = -1; };
  for (const l of locs) {
    if (l.type === BLOB_DELTA) {
      cut();
      out.push(repo.deltaFromFrame(l, frame, (l.delta?.bases ?? []).map((b) => bases!.get(b.toString('latin1'))!)));
      continue;
    }
    repo.chunkFromFrame(l, frame); // verifies the chunk's hash
    if (l.rawOffset === end) { end += l.rawLength; continue; }
    cut();
    start = l.rawOffset;
    end = l.rawOffset + l.rawLength;
  }
  cut();
  return out;
}

/** Yields the plaintext of obj chunk by chunk, reading one batch ahead. */
export async function* readObjectChunks(repo: Repository, obj: ManifestObject): AsyncGenerator<Buffer> {
  const index = await repo.loadIndex();
  const hash = obj.sha256 !== undefined ? createHash('sha256') : undefined;
  let size = 0;
  let batch: Located[] = [];
  let batchBytes = 0;
  let pending: Promise<Buffer[]> | undefined;
  const name = `${obj.name} (object of a restore point)`;
  async function* drain(p: Promise<Buffer[]>): AsyncGenerator<Buffer> {
    for (const b of await p) {
      hash?.update(b);
      size += b.length;
      yield b;
    }
  }
  for await (const id of repo.objectChunkIds(obj.list)) {
    const loc = index.get(Buffer.from(id));
    if (!loc) throw new CorruptObjectError(name, `chunk ${id.toString('hex')} is not in the index (missing data)`);
    batch.push(loc);
    batchBytes += loc.delta?.size ?? loc.rawLength;
    if (batchBytes >= BATCH_BYTES) {
      const started = fetchBatch(repo, batch);
      started.catch(() => undefined);
      if (pending) yield* drain(pending);
      pending = started;
      batch = [];
      batchBytes = 0;
    }
  }
  const last = batch.length ? fetchBatch(repo, batch) : undefined;
  last?.catch(() => undefined);
  if (pending) yield* drain(pending);
  if (last) yield* drain(last);
  if (size !== obj.size) throw new CorruptObjectError(name, `restored ${size} bytes, but the recorded size is ${obj.size}`);
  if (hash && hash.digest('hex') !== obj.sha256) throw new CorruptObjectError(name, `the restored bytes do not match the recorded SHA-256 checksum`);
}
