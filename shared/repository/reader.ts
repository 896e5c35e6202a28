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
/** The first batch is smaller, and each next one twice the last up to BATCH_BYTES: the first bytes
 * go out (to a COPY, a file) after one small read instead of a whole batch's. */
const FIRST_BATCH_BYTES = 256 * 1024;
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

/** A frame to read: where it is, and how its plaintext is stored. */
interface Frame { packId: string; offset: number; length: number; codec: number }
interface Range { packId: string; offset: number; length: number; frames: Frame[] }
const frameKey = (l: { packId: string; offset: number }) => `${l.packId}:${l.offset}`;

/**
 * Opens every distinct frame holding one of the chunks, once: a batch of a later backup
 * alternates between old frames (unchanged chunks) and new ones (changed chunks and deltas), and
 * each frame is read and expanded only once however often the object comes back to it. Frames
 * next to each other in a pack share one ranged read (up to MAX_RANGE).
 */
async function openFrames(repo: Repository, locs: Iterable<Located>, into = new Map<string, Buffer>()): Promise<Map<string, Buffer>> {
  const distinct = new Map<string, Frame>();
  for (const l of locs) {
    const key = frameKey(l);
    if (!into.has(key) && !distinct.has(key)) distinct.set(key, { packId: l.packId, offset: l.offset, length: l.length, codec: l.codec });
  }
  const sorted = [...distinct.values()].sort((a, b) => (a.packId < b.packId ? -1 : a.packId > b.packId ? 1 : a.offset - b.offset));
  const ranges: Range[] = [];
  for (const f of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && last.packId === f.packId && last.offset + last.length === f.offset && last.length + f.length <= MAX_RANGE) {
      last.length += f.length;
      last.frames.push(f);
    } else {
      ranges.push({ packId: f.packId, offset: f.offset, length: f.length, frames: [f] });
    }
  }
  let next = 0;
  const worker = async () => {
    while (next < ranges.length) {
      const r = ranges[next++]!;
      const raw = await repo.store.getRange(KEYS.pack(r.packId), r.offset, r.length);
      const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength); // a view, not a copy
      if (bytes.length !== r.length) throw new CorruptObjectError(KEYS.pack(r.packId), `short read at ${r.offset}: ${bytes.length} of ${r.length} bytes`);
      const opened = await Promise.all(r.frames.map((f) => repo.openFrame(f.packId, f.offset, f.codec, bytes.subarray(f.offset - r.offset, f.offset - r.offset + f.length))));
      r.frames.forEach((f, j) => into.set(frameKey(f), opened[j]!));
    }
  };
  await Promise.all(Array.from({ length: Math.min(RANGES_IN_FLIGHT, ranges.length) }, worker));
  return into;
}

/**
 * The bases of a batch's delta chunks, each verified: id (latin1) -> content. A base usually sits
 * in a frame the batch has opened already (beside the unchanged chunks around the changed one);
 * the others are read together (mostly neighbours in an older backup's frames).
 */
async function fetchBases(repo: Repository, deltas: Located[], opened: Map<string, Buffer>): Promise<Map<string, Buffer>> {
  const locs = new Map<string, Located>();
  for (const d of deltas) {
    for (const b of d.delta?.bases ?? []) {
      const key = b.toString('latin1');
      if (!locs.has(key)) locs.set(key, await repo.baseLocation(b, d.id));
    }
  }
  await openFrames(repo, locs.values(), opened);
  const out = new Map<string, Buffer>();
  for (const [key, l] of locs) out.set(key, repo.chunkFromFrame(l, opened.get(frameKey(l))!));
  return out;
}

async function fetchBatch(repo: Repository, locs: Located[]): Promise<Buffer[]> {
  const opened = await openFrames(repo, locs);
  const deltas = locs.filter((l) => l.type === BLOB_DELTA);
  const bases = deltas.length ? await fetchBases(repo, deltas, opened) : undefined;
  // In object order: each run of chunks from one frame at a time.
  const out: Buffer[] = [];
  for (let i = 0; i < locs.length;) {
    let j = i + 1;
    while (j < locs.length && locs[j]!.packId === locs[i]!.packId && locs[j]!.offset === locs[i]!.offset) j++;
    out.push(...contents(repo, locs.slice(i, j), opened.get(frameKey(locs[i]!))!, bases));
    i = j;
  }
  return out;
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
  let limit = FIRST_BATCH_BYTES;
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
    if (batchBytes >= limit) {
      limit = Math.min(2 * limit, BATCH_BYTES);
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
