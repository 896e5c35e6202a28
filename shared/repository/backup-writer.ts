// Writing a restore point: objects are chunked, deduplicated against the repository index,
// compressed on compression threads and sealed, packed and uploaded with bounded concurrency; the
// index follows the packs, and the manifest is written last and atomically.
import { hostname } from 'node:os';
import { Writable } from 'node:stream';
import { CorruptObjectError, CosmosBackupError } from '../errors.ts';
import { BufferPool } from '../buffer-pool.ts';
import { Chunker } from './chunker.ts';
import { compactBases, diffChunk, MAX_DELTA_BASES } from './delta.ts';
import { FrameCache } from './frame-cache.ts';
import { ParentCursor } from './parent-cursor.ts';
import { IdSet } from './id-set.ts';
import type { ChunkIndex } from './chunk-index.ts';
import { compressOwned } from './codec.ts';
import { BLOB_DATA, BLOB_DELTA, BLOB_LIST, encodeIndexPack, endsListBlob, joinIndex, KEYS, type DeltaInfo } from './format.ts';
import { lockShared, type RepoLock } from './locks.ts';
import { PackUploader, type PackBuilder } from './packer.ts';
import type { Repository } from './repository.ts';
import type { BackupOptions, BackupWriter, ManifestObject, ObjectWriter, ProgressFn, RestorePoint } from './types.ts';

/** Index entries per index object before one is written mid-backup (keeps memory flat). */
const INDEX_FLUSH_ENTRIES = 50_000;
/** Frames being compressed/sealed per object writer at once. */
const FRAMES_IN_FLIGHT = 8;
/** Plaintext gathered into one compressed frame. */
export const FRAME_TARGET = 128 * 1024;
/** Idle frame buffers kept for reuse (more than the frames any backup has in flight). */
const FRAME_POOL_MAX = 64;

export interface StartBackupOptions extends BackupOptions {
  onProgress?: ProgressFn;
  /** upload slots (each holds up to one pack in memory) */
  maxUploads?: number;
  /**
   * The restore point whose objects' chunks changed chunks are stored as deltas against (same
   * object names). Default: the latest of the same engine, database and source; null: none.
   */
  parent?: RestorePoint | null;
}

/** Delta chunks need a version 2 repository (docs/FORMAT.md); older ones get whole chunks. */
const DELTA_VERSION = 2;

export async function startBackup(repo: Repository, opts: StartBackupOptions): Promise<BackupWriter> {
  const lock = await lockShared(repo.store, `backup of ${opts.engine} database ${opts.database}`);
  try {
    const index = await repo.loadIndex();
    const parent = repo.config.version < DELTA_VERSION ? null : opts.parent !== undefined ? opts.parent : await latestOf(repo, opts);
    return new RepoBackupWriter(repo, index, lock, opts, parent);
  } catch (e) {
    await lock.release();
    throw e;
  }
}

/**
 * The newest restore point of the same engine, database and source, if any. Deltas are an
 * optimisation: a manifest that cannot be read (damaged, or removed by a concurrent forget)
 * means whole chunks for this backup, never a failed one.
 */
async function latestOf(repo: Repository, opts: BackupOptions): Promise<RestorePoint | null> {
  try {
    const same = (await repo.listRestorePoints()).filter((r) => r.engine === opts.engine && r.database === opts.database && r.source === opts.source);
    const last = same[same.length - 1];
    return last ? await repo.loadRestorePoint(last.id) : null;
  } catch {
    return null;
  }
}

class RepoBackupWriter implements BackupWriter {
  readonly repo: Repository;
  private readonly index: ChunkIndex;
  private readonly lock: RepoLock;
  private readonly opts: StartBackupOptions;
  readonly uploader: PackUploader;
  /** ids stored (or being stored) by this backup */
  private readonly session = new IdSet();
  /** stored packs not yet in an index object, each encoded (encodeIndexPack) */
  private pendingIndex: Buffer[] = [];
  private pendingEntries = 0;
  private readonly indexWrites: Promise<string>[] = [];
  private readonly objects = new Map<string, ManifestObject | null>();
  private readonly writers = new Set<RepoObjectWriter>();
  private readonly startedAt = new Date().toISOString();
  private state: 'open' | 'committed' | 'aborted' = 'open';
  private failure: unknown;
  stats = { bytes: 0, chunks: 0, newChunks: 0, deltaChunks: 0, storedBytes: 0 };
  /** the parent's objects by name (delta chunks are made against them) */
  readonly parentObjects = new Map<string, ManifestObject>();
  readonly bases: FrameCache;
  private lastProgress = 0;
  /** frame buffers: a frame is flushed once it reaches FRAME_TARGET, so it never needs more
   * than FRAME_TARGET plus one chunk (a chunk list, alone in its frame, is at most FRAME_TARGET) */
  private readonly framePool: BufferPool;

  constructor(repo: Repository, index: ChunkIndex, lock: RepoLock, opts: StartBackupOptions, parent: RestorePoint | null) {
    this.repo = repo;
    this.index = index;
    for (const o of parent?.objects ?? []) this.parentObjects.set(o.name, o);
    this.bases = new FrameCache(repo);
    this.lock = lock;
    this.opts = opts;
    this.framePool = new BufferPool(FRAME_TARGET + repo.chunker.maxSize, FRAME_POOL_MAX);
    this.uploader = new PackUploader({
      store: repo.store, sealer: repo.sealer, packSize: repo.config.packSize, maxUploads: opts.maxUploads ?? 3,
      onStored: (pack, bytes) => {
        this.stats.storedBytes += bytes;
        this.pendingIndex.push(encodeIndexPack(pack, repo.config.version));
        this.pendingEntries += pack.entries.length;
        if (this.pendingEntries >= INDEX_FLUSH_ENTRIES) this.flushIndex();
        this.progress();
      },
    });
  }

  /** true if the chunk must be stored (not in the repository, not already stored by this backup) */
  claim(id: Buffer): boolean {
    return !this.index.has(id) && this.session.add(id);
  }

  fail(e: unknown): void { this.failure ??= e; }

  /** Content length of a stored chunk (the parent's chunks are all in the index), or undefined. */
  sizeOf(id: Buffer): number | undefined { return this.index.describe(id)?.size; }

  /** The whole data chunks a new chunk may be a delta of, from the parent's chunks at its place
   * (a delta there stands for its own bases: deltas never chain). */
  basesFor(parentIds: Buffer[]): Buffer[] {
    const out: Buffer[] = [];
    const seen = new Set<string>();
    for (const id of parentIds) {
      const loc = this.index.get(id);
      for (const b of loc?.type === BLOB_DATA ? [id] : loc?.type === BLOB_DELTA ? loc.delta?.bases ?? [] : []) {
        const key = b.toString('latin1');
        if (out.length < MAX_DELTA_BASES && !seen.has(key)) { seen.add(key); out.push(b); }
      }
    }
    return out;
  }

  /**
   * Replaces the chunks of a frame that have candidate bases by patches where a patch is worth
   * it (delta.ts), and returns the frame's new plaintext (or `plain` itself if none was).
   * `chunks` are updated in place: type, place in the frame, delta record.
   */
  async deltaFrame(chunks: FrameChunk[], plain: Buffer): Promise<{ plain: Buffer; tried: number; made: number }> {
    const tried = chunks.filter((c) => c.bases?.length);
    let contents: Map<string, Buffer>;
    try {
      contents = await this.bases.chunks(tried.flatMap((c) => c.bases!));
    } catch (e) {
      // A damaged old chunk must not stop today's backup: store these chunks whole.
      if (e instanceof CorruptObjectError) return { plain, tried: tried.length, made: 0 };
      throw e;
    }
    const patches = chunks.map((c) => {
      if (!c.bases?.length) return undefined;
      const p = diffChunk(plain.subarray(c.rawOffset, c.rawOffset + c.rawLength), c.bases.map((b) => contents.get(b.toString('latin1'))!));
      if (!p) return undefined;
      const compact = compactBases(p, c.bases);
      c.bases = compact.bases;
      return compact.patch;
    });
    const made = patches.filter(Boolean).length;
    if (made === 0) return { plain, tried: tried.length, made };
    const total = chunks.reduce((n, c, i) => n + (patches[i]?.length ?? c.rawLength), 0);
    const out = this.frameBuffer(total);
    let at = 0;
    chunks.forEach((c, i) => {
      const p = patches[i];
      if (p) {
        out.set(p, at);
        c.delta = { size: c.rawLength, bases: c.bases! };
        c.type = BLOB_DELTA;
      } else {
        plain.copy(out, at, c.rawOffset, c.rawOffset + c.rawLength);
      }
      c.rawOffset = at;
      c.rawLength = p?.length ?? c.rawLength;
      at += c.rawLength;
    });
    this.stats.deltaChunks += made;
    this.releaseFrame(plain);
    return { plain: out, tried: tried.length, made };
  }

  private releaseFrame(b: Buffer): void {
    this.framePool.give(b);
  }

  checkOpen(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.state !== 'open') throw new CosmosBackupError('ABORTED', `backup already ${this.state}`);
  }

  progress(force = false): void {
    const now = Date.now();
    if (!this.opts.onProgress || (!force && now - this.lastProgress < 250)) return;
    this.lastProgress = now;
    this.opts.onProgress({ bytesRead: this.stats.bytes, bytesStored: this.stats.storedBytes, objectsDone: [...this.objects.values()].filter(Boolean).length });
  }

  private flushIndex(): void {
    if (!this.pendingIndex.length) return;
    const packs = this.pendingIndex;
    this.pendingIndex = [];
    this.pendingEntries = 0;
    const p = this.repo.putDocument(KEYS.indexPrefix, joinIndex(packs, this.repo.config.version), false);
    p.catch((e: unknown) => this.fail(e));
    this.indexWrites.push(p);
  }

  createObject(name: string, kind: string, meta?: Record<string, unknown>): ObjectWriter {
    this.checkOpen();
    if (this.objects.has(name)) throw new CosmosBackupError('INVALID_ARGUMENT', `object ${name} written twice in one restore point`);
    this.objects.set(name, null);
    const w = new RepoObjectWriter(this, name, kind, meta);
    this.writers.add(w);
    w.finish().then((obj) => { this.objects.set(name, obj); this.progress(); }, (e: unknown) => this.fail(e)).finally(() => this.writers.delete(w));
    return w;
  }

  async putObject(name: string, kind: string, data: Uint8Array, meta?: Record<string, unknown>): Promise<ManifestObject> {
    const w = this.createObject(name, kind, meta);
    w.end(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    return w.finish();
  }

  async commit(meta: Record<string, unknown> = {}): Promise<RestorePoint> {
    this.checkOpen();
    try {
      if (this.writers.size) {
        await Promise.allSettled([...this.writers].map((w) => w.finish()));
      }
      this.checkOpen();
      const unfinished = [...this.objects].filter(([, o]) => o === null).map(([n]) => n);
      if (unfinished.length) throw new CosmosBackupError('INTERNAL', `objects not finished before commit: ${unfinished.join(', ')}`);
      await this.uploader.flush();
      this.flushIndex();
      await Promise.all(this.indexWrites);
      this.checkOpen();
      this.lock.check();
      const objects = [...this.objects.values()] as ManifestObject[];
      const manifest = {
        engine: this.opts.engine, database: this.opts.database, source: this.opts.source,
        startedAt: this.startedAt, finishedAt: new Date().toISOString(), host: hostname(),
        tags: this.opts.tags ?? [], labels: this.opts.labels ?? {}, server: this.opts.server ?? {},
        stats: { objects: objects.length, ...this.stats },
        objects, meta,
      };
      const id = await this.repo.putDocument(KEYS.restorePointPrefix, Buffer.from(JSON.stringify(manifest)));
      this.state = 'committed';
      this.progress(true);
      return { id, ...manifest };
    } catch (e) {
      await this.abort(e);
      throw e;
    } finally {
      await this.lock.release().catch(() => undefined);
      this.repo.invalidateIndex();
    }
  }

  async abort(reason?: unknown): Promise<void> {
    if (this.state === 'aborted') return;
    if (this.state === 'open') this.state = 'aborted';
    const err = new CosmosBackupError('ABORTED', 'backup aborted', { cause: reason });
    for (const w of this.writers) w.destroy(err);
    await this.uploader.drain();
    await Promise.all(this.indexWrites.map((p) => p.catch(() => undefined)));
    await this.lock.release().catch(() => undefined);
  }

  // ---- used by object writers
  /**
   * A buffer for one frame's plaintext, reused from frames already compressed: one allocation
   * fewer per frame, part of what halved the backup's major GCs (docs/PERFORMANCE.md).
   */
  get frameBufferSize(): number { return this.framePool.size; }

  frameBuffer(size: number): Buffer {
    return this.framePool.take(size).subarray(0, size);
  }

  /**
   * Compresses a frame on a compression thread and seals it; the caller places the result in
   * order. `plain` (from frameBuffer) moves to the thread and back, then returns to the pool.
   */
  async sealFrame(plain: Buffer): Promise<{ codec: number; sealed: Buffer }> {
    const c = await compressOwned(plain);
    // Stored uncompressed (and unencrypted), the frame would be a view of the pooled buffer.
    const data = c.data === c.input ? Buffer.from(c.input) : c.data;
    this.releaseFrame(c.input);
    return { codec: c.codec, sealed: this.repo.sealer.seal(data) };
  }

  /** Appends a sealed frame to the writer's pack, uploading the pack when it is full. */
  async placeFrame(chunks: FrameChunk[], s: { codec: number; sealed: Buffer }, holder: { builder: PackBuilder | undefined }): Promise<void> {
    holder.builder ??= this.uploader.acquire();
    holder.builder.addFrame(chunks, s.codec, s.sealed);
    if (holder.builder.size >= this.uploader.packSize) {
      const full = holder.builder;
      holder.builder = undefined;
      await this.uploader.upload(full);
    }
  }
}

interface FrameChunk {
  id: Buffer; type: number; rawOffset: number; rawLength: number;
  /** candidate bases (a delta may be made) */
  bases?: Buffer[];
  /** set when the chunk is stored as a delta */
  delta?: DeltaInfo;
}

/** After this many delta attempts in one object, stop trying if fewer than 1 in 8 succeeded
 * (a table rewritten from scratch would otherwise pay for reading and diffing old chunks). */
const DELTA_PROBATION = 256;

class RepoObjectWriter extends Writable implements ObjectWriter {
  private readonly bw: RepoBackupWriter;
  private readonly name: string;
  private readonly kind: string;
  private readonly meta: Record<string, unknown> | undefined;
  private readonly chunker: Chunker;
  private size = 0;
  private chunkCount = 0;
  private listIds: Buffer[] = [];
  private readonly list: string[] = [];
  private inFlight = 0;
  private frame: FrameChunk[] = [];
  /** the frame's plaintext so far, [0, frameBytes): chunks are copied in as they come, since
   * they are views valid only while the chunker hands them over (and the caller's buffers are
   * reused once written) */
  private plain: Buffer | undefined;
  private frameBytes = 0;
  private tail: Promise<void> = Promise.resolve();
  private readonly waiters: (() => void)[] = [];
  private readonly holder: { builder: PackBuilder | undefined } = { builder: undefined };
  private error: unknown;
  private readonly done: Promise<ManifestObject>;
  private resolveDone!: (o: ManifestObject) => void;
  private rejectDone!: (e: unknown) => void;
  /** the object's previous version, followed for delta candidates (undefined: no deltas) */
  private cursor: ParentCursor | undefined;
  private parentLists: string[] | undefined;
  private deltaTries = 0;
  private deltaHits = 0;
  private deltasOff = false;

  constructor(bw: RepoBackupWriter, name: string, kind: string, meta?: Record<string, unknown>) {
    super({ highWaterMark: 1 << 20 });
    this.bw = bw;
    this.name = name;
    this.kind = kind;
    this.meta = meta;
    this.chunker = new Chunker(bw.repo.chunker, bw.repo.gear, (c) => this.onChunk(c));
    this.done = new Promise((res, rej) => { this.resolveDone = res; this.rejectDone = rej; });
    this.done.catch(() => undefined);
    this.once('error', (e) => this.rejectDone(e));
    const parent = bw.parentObjects.get(name);
    if (parent && parent.kind === kind && parent.chunks > 0) {
      this.cursor = new ParentCursor();
      this.parentLists = [...parent.list];
    }
  }

  /** Reads the parent's chunk lists on as far as the cursor wants (a few hundred KiB ahead), a
   * whole list blob (up to 4096 ids) at a time. */
  private async loadParent(bytes: number): Promise<void> {
    const cursor = this.cursor!;
    let loaded = 0;
    while (loaded < bytes) {
      const hex = this.parentLists!.shift();
      if (hex === undefined) { cursor.end(); return; }
      const blob = await this.bw.repo.readChunkList(hex);
      for (let o = 0; o < blob.length; o += 32) {
        const id = blob.subarray(o, o + 32);
        const size = this.bw.sizeOf(id);
        if (size === undefined) { cursor.end(); this.parentLists!.length = 0; return; }
        cursor.add(id, size);
        loaded += size;
      }
    }
  }

  finish(): Promise<ManifestObject> { return this.done; }

  private onChunk(chunk: Buffer): void {
    const id = this.bw.repo.sealer.chunkId(chunk);
    this.chunkCount++;
    this.bw.stats.chunks++;
    if (this.bw.claim(id)) {
      this.bw.stats.newChunks++;
      const near = this.deltasOff ? undefined : this.cursor?.candidates(chunk.length, MAX_DELTA_BASES);
      this.addToFrame(id, BLOB_DATA, chunk, near?.length ? this.bw.basesFor(near) : undefined);
    } else {
      this.cursor?.known(id, chunk.length);
    }
    this.listIds.push(id);
    if (endsListBlob(id, this.listIds.length)) this.flushList();
  }

  /** New chunks gather in a frame until it reaches FRAME_TARGET bytes of plaintext. */
  private addToFrame(id: Buffer, type: number, chunk: Buffer, bases?: Buffer[]): void {
    this.frame.push({ id, type, rawOffset: this.frameBytes, rawLength: chunk.length, ...(bases?.length ? { bases } : {}) });
    // Before the add the frame holds under FRAME_TARGET bytes, and a chunk is at most the
    // chunker's maxSize (a list blob, alone in its frame, at most FRAME_TARGET): it fits.
    this.plain ??= this.bw.frameBuffer(this.bw.frameBufferSize);
    chunk.copy(this.plain, this.frameBytes);
    this.frameBytes += chunk.length;
    if (this.frameBytes >= FRAME_TARGET) this.flushFrame();
  }

  private flushList(): void {
    if (!this.listIds.length) return;
    const blob = Buffer.concat(this.listIds);
    this.listIds = [];
    const id = this.bw.repo.sealer.chunkId(blob);
    this.list.push(id.toString('hex'));
    if (this.bw.claim(id)) {
      // Chunk lists get frames of their own: they are read on their own (gc, verify).
      this.flushFrame();
      this.addToFrame(id, BLOB_LIST, blob);
      this.flushFrame();
    }
  }

  private flushFrame(): void {
    if (!this.frame.length) return;
    const chunks = this.frame;
    const plain = this.plain!.subarray(0, this.frameBytes);
    this.frame = [];
    this.plain = undefined;
    this.frameBytes = 0;
    // Compression runs in parallel, but frames enter the pack in order so that a restore reads
    // long contiguous ranges (one request for many frames).
    this.inFlight++;
    const sealed = chunks.some((c) => c.bases) ? this.deltaThenSeal(chunks, plain) : this.bw.sealFrame(plain);
    sealed.catch(() => undefined);
    this.tail = this.tail.then(async () => {
      if (this.error !== undefined) return;
      await this.bw.placeFrame(chunks, await sealed, this.holder);
    }).catch((e: unknown) => { this.error ??= e; }).finally(() => {
      this.inFlight--;
      this.waiters.shift()?.();
    });
  }

  private async deltaThenSeal(chunks: FrameChunk[], plain: Buffer): Promise<{ codec: number; sealed: Buffer }> {
    const d = await this.bw.deltaFrame(chunks, plain);
    this.deltaTries += d.tried;
    this.deltaHits += d.made;
    if (this.deltaTries >= DELTA_PROBATION && this.deltaHits * 8 < this.deltaTries) this.deltasOff = true;
    return this.bw.sealFrame(d.plain);
  }

  private async room(limit: number): Promise<void> {
    while (this.inFlight > limit) await new Promise<void>((r) => this.waiters.push(r));
    if (this.error !== undefined) throw this.error;
  }

  override _write(data: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    const want = this.deltasOff ? 0 : this.cursor?.wants(data.length) ?? 0;
    if (want > 0) {
      this.loadParent(want).then(() => this.chunkData(data, cb), (e: unknown) => {
        // A damaged chunk list of the previous backup must not stop this one: no deltas then.
        if (!(e instanceof CorruptObjectError)) { cb(e as Error); return; }
        this.deltasOff = true;
        this.chunkData(data, cb);
      });
      return;
    }
    this.chunkData(data, cb);
  }

  private chunkData(data: Buffer, cb: (e?: Error | null) => void): void {
    try {
      this.bw.checkOpen();
      this.size += data.length;
      this.bw.stats.bytes += data.length;
      this.chunker.push(data);
    } catch (e) {
      cb(e as Error);
      return;
    }
    this.room(FRAMES_IN_FLIGHT).then(() => { this.bw.progress(); cb(); }, (e: unknown) => cb(e as Error));
  }

  override _final(cb: (e?: Error | null) => void): void {
    (async () => {
      this.chunker.finish();
      this.flushFrame();
      this.flushList();
      await this.room(0);
      if (this.holder.builder) {
        const b = this.holder.builder;
        this.holder.builder = undefined;
        await this.bw.uploader.giveBack(b);
      }
      const obj: ManifestObject = {
        name: this.name, kind: this.kind, size: this.size,
        list: this.list, chunks: this.chunkCount, ...(this.meta ? { meta: this.meta } : {}),
      };
      this.resolveDone(obj);
    })().then(() => cb(), (e: unknown) => { this.rejectDone(e); cb(e as Error); });
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.rejectDone(err ?? new CosmosBackupError('ABORTED', `writing ${this.name} was abandoned`));
    cb(err);
  }
}
