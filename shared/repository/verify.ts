// verify: structure (every referenced chunk is indexed, every index entry points into an existing
// pack) and, with readData, every byte (pack hashes, trailers, every blob decrypted, expanded and
// re-hashed). Problems are collected, each naming the object, rather than stopping at the first.
import { CorruptObjectError, humanMessage } from '../errors.ts';
import { sha256 } from './crypto.ts';
import { BLOB_DATA, BLOB_DELTA, BLOB_LIST, decodeIndex, KEYS, type BlobEntry } from './format.ts';
import { mapLimit, type Repository } from './repository.ts';

export interface VerifyProblem { object: string; message: string }
export interface VerifyResult {
  problems: VerifyProblem[];
  restorePoints: number;
  indexObjects: number;
  packs: number;
  blobsChecked: number;
  bytesRead: number;
}

export async function verifyRepository(repo: Repository, opts: { readData?: boolean; onProgress?: (done: number, total: number) => void } = {}): Promise<VerifyResult> {
  const problems: VerifyProblem[] = [];
  const problem = (object: string, e: unknown) => problems.push({ object, message: e instanceof CorruptObjectError ? e.message : humanMessage(e) });
  const res: VerifyResult = { problems, restorePoints: 0, indexObjects: 0, packs: 0, blobsChecked: 0, bytesRead: 0 };

  const packSizes = new Map<string, number>();
  for await (const o of repo.store.list(KEYS.dataPrefix)) packSizes.set(o.key.slice(o.key.lastIndexOf('/') + 1), o.size);
  res.packs = packSizes.size;

  // Index objects, checked one by one so one bad object does not hide the others.
  // pack -> id (latin1) -> entries (one chunk can be in a pack twice: gc may repack a whole copy and
  // a delta copy, made by concurrent backups, side by side)
  const indexed = new Map<string, Map<string, BlobEntry[]>>();
  const indexNames: string[] = [];
  for await (const o of repo.store.list(KEYS.indexPrefix)) indexNames.push(o.key);
  res.indexObjects = indexNames.length;
  await mapLimit(indexNames, 8, async (name) => {
    try {
      const plain = await repo.decodeDocument(name, await repo.store.get(name));
      for (const p of decodeIndex(name, plain)) {
        const size = packSizes.get(p.packId);
        if (size === undefined) { problem(name, new Error(`points at pack ${p.packId} which does not exist`)); continue; }
        let m = indexed.get(p.packId);
        if (!m) indexed.set(p.packId, (m = new Map()));
        for (const e of p.entries) {
          if (e.offset + e.length > size) problem(KEYS.pack(p.packId), new Error(`index ${name} points past its end`));
          const key = e.id.toString('latin1');
          const list = m.get(key);
          if (list) list.push(e); else m.set(key, [e]);
        }
      }
    } catch (e) { problem(name, e); }
  });
  /** An indexed location of the chunk, a whole copy if there is one (as ChunkIndex picks). */
  const find = (id: Buffer) => {
    let found: BlobEntry | undefined;
    for (const m of indexed.values()) {
      for (const e of m.get(id.toString('latin1')) ?? []) { if (e.type !== BLOB_DELTA) return e; found ??= e; }
    }
    return found;
  };
  const has = (id: Buffer) => find(id) !== undefined;
  // Every delta's bases must be indexed whole data chunks (deltas never chain).
  for (const [packId, m] of indexed) {
    for (const e of [...m.values()].flat()) {
      if (e.type !== BLOB_DELTA) continue;
      if (!e.delta) { problem(KEYS.pack(packId), new Error(`delta chunk ${e.id.toString('hex')} has no record of its bases`)); continue; }
      for (const b of e.delta.bases) {
        const be = find(b);
        if (!be) problem(KEYS.pack(packId), new Error(`delta chunk ${e.id.toString('hex')}: its base ${b.toString('hex')} is not indexed`));
        else if (be.type !== BLOB_DATA) problem(KEYS.pack(packId), new Error(`delta chunk ${e.id.toString('hex')}: its base ${b.toString('hex')} is not a whole data chunk`));
      }
    }
  }

  // Restore points: every list blob and every data chunk they reference must be indexed.
  const ids = await repo.listRestorePointIds();
  res.restorePoints = ids.length;
  const checkedLists = new Set<string>();
  for (const id of ids) {
    const name = KEYS.restorePoint(id);
    try {
      const rp = await repo.loadRestorePoint(id);
      for (const obj of rp.objects) {
        for (const l of obj.list) {
          if (checkedLists.has(l)) continue;
          checkedLists.add(l);
          const lid = Buffer.from(l, 'hex');
          if (!has(lid)) { problem(name, new Error(`object ${obj.name}: chunk list ${l} is not indexed`)); continue; }
          try {
            const blob = await repo.readChunkList(l);
            for (let o = 0; o < blob.length; o += 32) {
              const cid = blob.subarray(o, o + 32);
              if (!has(cid)) problem(name, new Error(`object ${obj.name}: chunk ${cid.toString('hex')} is not indexed`));
            }
          } catch (e) { problem(name, e); }
        }
      }
    } catch (e) { problem(name, e); }
  }

  if (opts.readData) {
    const packs = [...packSizes.keys()];
    let done = 0;
    await mapLimit(packs, 2, async (packId) => {
      const name = KEYS.pack(packId);
      try {
        const bytes = Buffer.from(await repo.store.get(name));
        res.bytesRead += bytes.length;
        if (sha256(bytes).toString('hex') !== packId) throw new CorruptObjectError(name, 'content does not match its name (SHA-256)');
        const entries = await repo.readPackTrailer(packId, bytes);
        const idx = indexed.get(packId);
        const byFrame = new Map<number, BlobEntry[]>();
        for (const e of entries) {
          if (e.type !== BLOB_LIST && e.type !== BLOB_DATA && e.type !== BLOB_DELTA) throw new CorruptObjectError(name, `chunk ${e.id.toString('hex')} has unknown type ${e.type}`);
          const same = (ie: BlobEntry) => ie.offset === e.offset && ie.length === e.length && ie.codec === e.codec && ie.rawOffset === e.rawOffset && ie.rawLength === e.rawLength
            && ie.type === e.type && ie.delta?.size === e.delta?.size && ie.delta?.bases.map((b) => b.toString('hex')).join() === e.delta?.bases.map((b) => b.toString('hex')).join();
          const listed = idx?.get(e.id.toString('latin1'));
          if (listed && !listed.some(same)) {
            throw new CorruptObjectError(name, `index entry for chunk ${e.id.toString('hex')} disagrees with the pack trailer`);
          }
          let f = byFrame.get(e.offset);
          if (!f) byFrame.set(e.offset, (f = []));
          f.push(e);
        }
        for (const [offset, chunks] of byFrame) {
          const c0 = chunks[0]!;
          const frame = await repo.openFrame(packId, offset, c0.codec, bytes.subarray(offset, offset + c0.length));
          // A delta is rebuilt from its bases (read from their packs) and re-hashed too.
          for (const c of chunks) { await repo.chunkContent({ ...c, packId }, frame); res.blobsChecked++; }
        }
      } catch (e) { problem(name, e); }
      opts.onProgress?.(++done, packs.length);
    });
  }
  return res;
}
