// Opening, creating and reading a repository. Writing backups lives in backup-writer.ts,
// maintenance in gc.ts and verify.ts; all of them see only the ObjectStore interface.
import { randomBytes } from 'node:crypto';
import { CosmosBackupError, CorruptObjectError, NotFoundError, isCode } from '../errors.ts';
import type { ObjectStore } from '../storage/types.ts';
import { DEFAULT_CHUNKER, gearTable, type ChunkerParams } from './chunker.ts';
import { CODEC_NONE, compress, decompress, hasZstd } from './codec.ts';
import { keySealer, newMasterKey, type MasterKey, plainSealer, requirePassword, sha256, type ScryptParams, type Sealer } from './crypto.ts';
import { ChunkIndex, type Located } from './chunk-index.ts';
import { applyDelta } from './delta.ts';
import { BLOB_DATA, BLOB_DELTA, decodeConfig, decodePackTrailer, encodeConfig, ENTRY_BYTES, FORMAT_VERSION, KEYS, MAX_FRAME_RAW, type BlobEntry, type RepoConfigBody } from './format.ts';
import { addKey, unlockMasterKey } from './keys.ts';
import type { RestorePoint, RestorePointInfo } from './types.ts';

export const DEFAULT_PACK_SIZE = 4 * 1024 * 1024;

export interface InitOptions {
  password?: string;
  chunker?: ChunkerParams;
  packSize?: number;
  scrypt?: ScryptParams;
}

export interface OpenOptions {
  password?: string;
}

export class Repository {
  readonly store: ObjectStore;
  readonly config: RepoConfigBody;
  readonly sealer: Sealer;
  readonly gear: Uint32Array;
  private indexCache: Promise<ChunkIndex> | undefined;
  private readonly masterKey: MasterKey | undefined;

  private constructor(store: ObjectStore, config: RepoConfigBody, sealer: Sealer, gear: Uint32Array, masterKey?: MasterKey) {
    this.store = store;
    this.config = config;
    this.sealer = sealer;
    this.gear = gear;
    this.masterKey = masterKey;
  }

  get id(): string { return this.config.id; }
  get location(): string { return this.store.location; }

  static async init(store: ObjectStore, opts: InitOptions = {}): Promise<Repository> {
    if (await store.stat(KEYS.config)) {
      throw new CosmosBackupError('REPO_EXISTS', `a repository already exists at ${store.location}; use it, or choose another location`);
    }
    const chunker = opts.chunker ?? DEFAULT_CHUNKER;
    const encrypted = opts.password !== undefined;
    const master = encrypted ? newMasterKey() : undefined;
    const seed = encrypted ? undefined : randomBytes(32);
    const config: RepoConfigBody = {
      format: 'cosmos-backup-repository', version: FORMAT_VERSION, id: randomBytes(16).toString('hex'),
      createdAt: new Date().toISOString(),
      chunker: { algorithm: 'fastcdc-nc2-gear32', ...chunker, ...(seed ? { seed: seed.toString('hex') } : {}) },
      compression: hasZstd ? 'zstd' : 'deflate',
      encryption: encrypted ? 'aes-256-gcm' : 'none',
      packSize: opts.packSize ?? DEFAULT_PACK_SIZE,
    };
    if (master) await addKey(store, master, requirePassword(opts.password), opts.scrypt);
    // The config is written last: a repository without config does not exist yet.
    if (!(await store.putIfAbsent(KEYS.config, encodeConfig(config)))) {
      throw new CosmosBackupError('REPO_EXISTS', `a repository was created at ${store.location} at the same time; use it`);
    }
    return Repository.fromConfig(store, config, master);
  }

  static async open(store: ObjectStore, opts: OpenOptions = {}): Promise<Repository> {
    let bytes: Uint8Array;
    try {
      bytes = await store.get(KEYS.config);
    } catch (e) {
      if (isCode(e, 'NOT_FOUND')) throw new CosmosBackupError('REPO_NOT_FOUND', `no repository at ${store.location}: create one with \`repo init\``, { cause: e });
      throw e;
    }
    const config = decodeConfig(bytes);
    if (config.encryption === 'none') return Repository.fromConfig(store, config);
    const { master } = await unlockMasterKey(store, requirePassword(opts.password));
    return Repository.fromConfig(store, config, master);
  }

  private static fromConfig(store: ObjectStore, config: RepoConfigBody, master?: MasterKey): Repository {
    const sealer = master ? keySealer(master) : plainSealer();
    const seed = master ? master.chunkerSeed : Buffer.from(config.chunker.seed ?? '', 'hex');
    return new Repository(store, config, sealer, gearTable(seed), master);
  }

  get chunker(): ChunkerParams {
    const { minSize, avgSize, maxSize } = this.config.chunker;
    return { minSize, avgSize, maxSize };
  }

  /** Adds a key object for newPassword and removes the others; data is not rewritten. */
  async changePassword(newPassword: string, scrypt?: ScryptParams): Promise<void> {
    if (!this.masterKey) throw new CosmosBackupError('INVALID_ARGUMENT', 'this repository is not encrypted; it has no password to change');
    const old: string[] = [];
    for await (const o of this.store.list(KEYS.keyPrefix)) old.push(o.key);
    const id = await addKey(this.store, this.masterKey, requirePassword(newPassword), scrypt);
    // Only after the new key is stored (and opens) are the old ones removed.
    await unlockMasterKey(this.store, newPassword);
    for (const k of old) if (k !== KEYS.key(id)) await this.store.delete(k);
  }

  // ------------------------------------------------------------------------------------------
  // Documents (index, manifests): u8 codec || payload, then sealed; named by SHA-256 of the stored bytes.

  async encodeDocument(plain: Buffer, tryCompress: boolean): Promise<Buffer> {
    const c = tryCompress ? await compress(plain) : { codec: CODEC_NONE, data: plain };
    return this.sealer.seal(Buffer.concat([Buffer.from([c.codec]), c.data]));
  }

  async decodeDocument(name: string, stored: Uint8Array, checkName = true): Promise<Buffer> {
    if (checkName && sha256(stored).toString('hex') !== name.slice(name.lastIndexOf('/') + 1)) {
      throw new CorruptObjectError(name, 'content does not match its name (SHA-256)');
    }
    const opened = this.sealer.open(stored);
    if (!opened || opened.length < 1) throw new CorruptObjectError(name, 'cannot be decrypted (tampered or damaged)');
    try {
      return await decompress(opened[0]!, opened.subarray(1), 1 << 30);
    } catch (e) {
      throw new CorruptObjectError(name, 'cannot be decompressed', e);
    }
  }

  /** Stores a document under prefix + sha256(stored); returns the id. */
  async putDocument(prefix: string, plain: Buffer, tryCompress = true): Promise<string> {
    const stored = await this.encodeDocument(plain, tryCompress);
    const id = sha256(stored).toString('hex');
    await this.store.putIfAbsent(prefix + id, stored);
    return id;
  }

  // ------------------------------------------------------------------------------------------
  // Index

  /** The merged index of every index object (cached; call invalidateIndex after gc). */
  loadIndex(): Promise<ChunkIndex> {
    this.indexCache ??= (async () => {
      const idx = new ChunkIndex();
      const names: string[] = [];
      let bytes = 0;
      for await (const o of this.store.list(KEYS.indexPrefix)) { names.push(o.key); bytes += o.size; }
      idx.reserve(Math.ceil(bytes / ENTRY_BYTES)); // about one entry per ENTRY_BYTES stored
      await mapLimit(names, 8, async (name) => {
        const plain = await this.decodeDocument(name, await this.store.get(name));
        idx.addIndexObject(name, plain);
      });
      return idx;
    })();
    this.indexCache.catch(() => { this.indexCache = undefined; });
    return this.indexCache;
  }

  invalidateIndex(): void { this.indexCache = undefined; }

  /** Opens and expands one stored frame; CorruptObjectError names the pack on failure. */
  async openFrame(packId: string, offset: number, codec: number, stored: Uint8Array): Promise<Buffer> {
    const name = KEYS.pack(packId);
    const opened = this.sealer.open(stored);
    if (!opened) throw new CorruptObjectError(name, `frame at offset ${offset} cannot be decrypted (damaged or tampered)`);
    try {
      return await decompress(codec, opened, MAX_FRAME_RAW);
    } catch (e) {
      throw new CorruptObjectError(name, `frame at offset ${offset} cannot be decompressed`, e);
    }
  }

  /** The chunk's plaintext from its opened frame, re-hashed against its id (not for deltas: see chunkContent). */
  chunkFromFrame(loc: BlobEntry & { packId: string }, frame: Buffer): Buffer {
    const plain = frame.subarray(loc.rawOffset, loc.rawOffset + loc.rawLength);
    if (loc.type === BLOB_DELTA || plain.length !== loc.rawLength || !this.sealer.chunkId(plain).equals(loc.id)) {
      throw new CorruptObjectError(KEYS.pack(loc.packId), `chunk ${loc.id.toString('hex')} in the frame at offset ${loc.offset} does not match its hash`);
    }
    return plain;
  }

  /** A delta chunk's content: its patch (in its opened frame) applied to its bases' contents, re-hashed against its id. */
  deltaFromFrame(loc: BlobEntry & { packId: string }, frame: Buffer, bases: readonly Buffer[]): Buffer {
    const name = KEYS.pack(loc.packId);
    const what = `delta chunk ${loc.id.toString('hex')} in the frame at offset ${loc.offset}`;
    if (!loc.delta) throw new CorruptObjectError(name, `${what} has no record of its bases`);
    const patch = frame.subarray(loc.rawOffset, loc.rawOffset + loc.rawLength);
    if (patch.length !== loc.rawLength) throw new CorruptObjectError(name, `${what} lies outside its frame`);
    const content = applyDelta(patch, bases, name);
    if (content.length !== loc.delta.size || !this.sealer.chunkId(content).equals(loc.id)) throw new CorruptObjectError(name, `${what} does not match its hash`);
    return content;
  }

  /** Any chunk's content from its opened frame; a delta's bases are read here. */
  async chunkContent(loc: Located, frame: Buffer): Promise<Buffer> {
    if (loc.type !== BLOB_DELTA) return this.chunkFromFrame(loc, frame);
    const bases = await Promise.all((loc.delta?.bases ?? []).map((b) => this.readBase(b, loc.id)));
    return this.deltaFromFrame(loc, frame, bases);
  }

  /** The location of a delta's base: indexed, and a whole data chunk (deltas never chain). */
  async baseLocation(base: Buffer, of?: Buffer): Promise<Located> {
    const loc = (await this.loadIndex()).get(base);
    const name = of ? `chunk ${of.toString('hex')}` : `chunk ${base.toString('hex')} (a delta base)`;
    if (!loc) throw new CorruptObjectError(name, `its delta base ${base.toString('hex')} is not in the index (missing data)`);
    if (loc.type !== BLOB_DATA) throw new CorruptObjectError(name, `its delta base ${base.toString('hex')} is not a whole data chunk`);
    return loc;
  }

  private async readBase(base: Buffer, of: Buffer): Promise<Buffer> {
    const loc = await this.baseLocation(base, of);
    return this.chunkFromFrame(loc, await this.readFrame(loc));
  }

  /** The opened (decrypted, expanded) frame holding a chunk. */
  async readFrame(loc: Located): Promise<Buffer> {
    return this.openFrame(loc.packId, loc.offset, loc.codec, await this.store.getRange(KEYS.pack(loc.packId), loc.offset, loc.length));
  }

  async readBlob(id: Buffer): Promise<Buffer> {
    const idx = await this.loadIndex();
    const loc = idx.get(id);
    if (!loc) throw new CorruptObjectError(`chunk ${id.toString('hex')}`, 'referenced but not in the index');
    return this.chunkContent(loc, await this.readFrame(loc));
  }

  /** Opens and decodes the trailer of a whole pack's bytes (callers check the pack's hash). */
  async readPackTrailer(packId: string, pack: Uint8Array): Promise<BlobEntry[]> {
    const name = KEYS.pack(packId);
    const buf = Buffer.from(pack.buffer, pack.byteOffset, pack.byteLength);
    if (buf.length < 4) throw new CorruptObjectError(name, 'truncated pack');
    const tlen = buf.readUInt32LE(buf.length - 4);
    if (tlen + 4 > buf.length) throw new CorruptObjectError(name, 'bad trailer length');
    const opened = this.sealer.open(buf.subarray(buf.length - 4 - tlen, buf.length - 4));
    if (!opened) throw new CorruptObjectError(name, 'pack trailer cannot be decrypted');
    return decodePackTrailer(name, opened);
  }

  // ------------------------------------------------------------------------------------------
  // Restore points

  async listRestorePointIds(): Promise<string[]> {
    const ids: string[] = [];
    for await (const o of this.store.list(KEYS.restorePointPrefix)) ids.push(o.key.slice(KEYS.restorePointPrefix.length));
    return ids.sort();
  }

  async loadRestorePoint(idOrPrefix: string): Promise<RestorePoint> {
    const id = await this.resolveRestorePointId(idOrPrefix);
    const name = KEYS.restorePoint(id);
    let stored: Uint8Array;
    try {
      stored = await this.store.get(name);
    } catch (e) {
      if (isCode(e, 'NOT_FOUND')) throw new NotFoundError(name, `restore point ${id} not found in ${this.location}`);
      throw e;
    }
    const plain = await this.decodeDocument(name, stored);
    const rp = JSON.parse(plain.toString('utf8')) as RestorePoint;
    rp.id = id;
    return rp;
  }

  async listRestorePoints(): Promise<RestorePointInfo[]> {
    const ids = await this.listRestorePointIds();
    const out = await mapLimit(ids, 8, async (id) => {
      const { objects: _o, meta: _m, ...info } = await this.loadRestorePoint(id);
      return info;
    });
    return out.sort((a, b) => a.finishedAt.localeCompare(b.finishedAt));
  }

  /** Full id from a unique prefix of at least 6 hex digits (like git). */
  async resolveRestorePointId(idOrPrefix: string): Promise<string> {
    const p = idOrPrefix.toLowerCase();
    if (!/^[0-9a-f]{6,64}$/.test(p)) throw new CosmosBackupError('INVALID_ARGUMENT', `"${idOrPrefix}" is not a restore point id (hex, at least 6 digits)`);
    if (p.length === 64) return p;
    const matches = (await this.listRestorePointIds()).filter((id) => id.startsWith(p));
    if (matches.length === 0) throw new NotFoundError(KEYS.restorePoint(p), `no restore point with id ${p}… in ${this.location}`);
    if (matches.length > 1) throw new CosmosBackupError('INVALID_ARGUMENT', `restore point id ${p}… is ambiguous (${matches.length} match); give more digits`);
    return matches[0]!;
  }

  /** Data-chunk ids of an object, in order, read from its list blobs. */
  async *objectChunkIds(list: string[]): AsyncGenerator<Buffer> {
    for (const hex of list) {
      const blob = await this.readChunkList(hex);
      for (let o = 0; o < blob.length; o += 32) yield blob.subarray(o, o + 32);
    }
  }

  /** One chunk list blob (hex id): data-chunk ids, 32 bytes each, checked. */
  async readChunkList(hex: string): Promise<Buffer> {
    const blob = await this.readBlob(Buffer.from(hex, 'hex'));
    if (blob.length % 32 !== 0) throw new CorruptObjectError(`list ${hex}`, 'list blob length is not a multiple of 32');
    return blob;
  }
}


/** Runs fn over items with at most `limit` in flight; results keep input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
