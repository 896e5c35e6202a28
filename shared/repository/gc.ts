// forget and gc. gc is mark-and-sweep under the exclusive lock: everything reachable from a
// restore point is live; packs and index objects younger than the grace period are never
// touched (a crashed or concurrent writer's data may still become referenced); packs that are
// mostly garbage are repacked. Order of writes keeps every state readable: new index first,
// then old index objects removed, then packs removed.
import { BLOB_DELTA, decodeIndex, KEYS, type BlobEntry, type IndexPack, encodeIndex } from './format.ts';
import { lockExclusive } from './locks.ts';
import { PackUploader } from './packer.ts';
import { mapLimit, type Repository } from './repository.ts';

export const DEFAULT_GRACE_MS = 24 * 3600_000;

export async function forget(repo: Repository, ids: string[]): Promise<string[]> {
  const full = await Promise.all(ids.map((i) => repo.resolveRestorePointId(i)));
  for (const id of full) await repo.store.delete(KEYS.restorePoint(id));
  return full;
}

export interface GcOptions {
  graceMs?: number;
  /** repack a pack when less than this fraction of its bytes is live (default 0.5) */
  repackBelow?: number;
  dryRun?: boolean;
  now?: number;
}

export interface GcResult {
  liveChunks: number;
  packsDeleted: number;
  packsRepacked: number;
  orphanPacksDeleted: number;
  bytesFreed: number;
  indexObjectsRewritten: number;
  keptForGrace: number;
}

export async function gc(repo: Repository, opts: GcOptions = {}): Promise<GcResult> {
  const grace = opts.graceMs ?? DEFAULT_GRACE_MS;
  const now = opts.now ?? Date.now();
  const lock = await lockExclusive(repo.store, 'garbage collection');
  try {
    repo.invalidateIndex();
    const cutoff = now - grace;
    const old = (m: Date | undefined) => m !== undefined && m.getTime() < cutoff; // unknown age counts as young

    // Mark.
    const live = new Set<string>();
    for (const id of await repo.listRestorePointIds()) {
      const rp = await repo.loadRestorePoint(id);
      for (const obj of rp.objects) {
        for (const l of obj.list) {
          const lid = Buffer.from(l, 'hex');
          live.add(lid.toString('latin1'));
          const blob = await repo.readChunkList(l);
          for (let o = 0; o < blob.length; o += 32) live.add(blob.subarray(o, o + 32).toString('latin1'));
        }
      }
    }

    const packInfo = new Map<string, { size: number; old: boolean }>();
    for await (const o of repo.store.list(KEYS.dataPrefix)) packInfo.set(o.key.slice(o.key.lastIndexOf('/') + 1), { size: o.size, old: old(o.modified) });

    const oldIndex: string[] = [];
    const youngPacks = new Set<string>();
    const entriesByPack = new Map<string, BlobEntry[]>();
    for await (const o of repo.store.list(KEYS.indexPrefix)) {
      const plain = await repo.decodeDocument(o.key, await repo.store.get(o.key));
      const packs = decodeIndex(o.key, plain);
      if (old(o.modified)) {
        oldIndex.push(o.key);
        for (const p of packs) if (!entriesByPack.has(p.packId)) entriesByPack.set(p.packId, p.entries);
      } else {
        for (const p of packs) {
          youngPacks.add(p.packId);
          // Bases of young deltas stay: a backup may come to use those deltas.
          for (const e of p.entries) for (const b of e.delta?.bases ?? []) live.add(b.toString('latin1'));
        }
      }
    }

    // A delta chunk needs its bases. Bases of every delta that stays indexed stay too: live ones,
    // dead ones in a live frame, and young ones (a backup may still come to use them). Bases are
    // whole data chunks, but keeping one can keep its frame and so more deltas: repeat until stable.
    let p = planSweep(entriesByPack, packInfo, youngPacks, live, opts.repackBelow ?? 0.5);
    for (;;) {
      let added = 0;
      for (const e of p.keptEntries()) for (const b of e.delta?.bases ?? []) if (!live.has(b.toString('latin1'))) { live.add(b.toString('latin1')); added++; }
      if (added === 0) break;
      p = planSweep(entriesByPack, packInfo, youngPacks, live, opts.repackBelow ?? 0.5);
    }
    const { keep, remove, repack } = p;
    const res: GcResult = { ...p.res, liveChunks: live.size, indexObjectsRewritten: oldIndex.length };
    for (const [packId, info] of packInfo) {
      if (!entriesByPack.has(packId) && !youngPacks.has(packId) && info.old) { remove.push(packId); res.orphanPacksDeleted++; res.bytesFreed += info.size; }
    }
    if (opts.dryRun) return res;
    if (remove.length === 0 && repack.length === 0) { res.indexObjectsRewritten = 0; return res; }

    // Repack: copy live blobs as stored (no re-encryption needed) into new packs.
    const newPacks: IndexPack[] = [];
    if (repack.length) {
      const up = new PackUploader({ store: repo.store, sealer: repo.sealer, packSize: repo.config.packSize, maxUploads: 2, onStored: (p) => newPacks.push(p) });
      let b = up.acquire();
      await mapLimit(repack, 1, async ({ packId, entries }) => {
        const bytes = Buffer.from(await repo.store.get(KEYS.pack(packId)));
        const byFrame = new Map<number, BlobEntry[]>();
        for (const e of entries) {
          let f = byFrame.get(e.offset);
          if (!f) byFrame.set(e.offset, (f = []));
          f.push(e);
        }
        for (const [offset, chunks] of byFrame) {
          const c0 = chunks[0]!;
          const stored = bytes.subarray(offset, offset + c0.length);
          // never carry damaged data forward
          const frame = await repo.openFrame(packId, offset, c0.codec, stored);
          for (const c of chunks) await repo.chunkContent({ ...c, packId }, frame);
          b.addFrame(chunks, c0.codec, Buffer.from(stored));
          if (b.size >= up.packSize) { await up.upload(b); b = up.acquire(); }
        }
        const info = packInfo.get(packId)!;
        res.bytesFreed += info.size;
        res.packsRepacked++;
        remove.push(packId);
      });
      await up.giveBack(b);
      await up.flush();
    }

    lock.check();
    const all = [...keep, ...newPacks];
    const written = new Set<string>();
    for (let i = 0; i < all.length; i += 2000) written.add(KEYS.index(await repo.putDocument(KEYS.indexPrefix, encodeIndex(all.slice(i, i + 2000), repo.config.version), false)));
    // A rewritten plain index can be byte-identical to an old one (same name): keep that one.
    for (const k of oldIndex) if (!written.has(k)) await repo.store.delete(k);
    // Likewise a repacked pack whose frames were all live comes out byte-identical to the old
    // one (same name): it must not be deleted as the old one.
    const rewritten = new Set(newPacks.map((n) => n.packId));
    await mapLimit(remove.filter((r) => !rewritten.has(r)), 8, (r) => repo.store.delete(KEYS.pack(r)));
    repo.invalidateIndex();
    return res;
  } finally {
    await lock.release();
  }
}

interface SweepPlan {
  keep: IndexPack[];
  remove: string[];
  repack: { packId: string; entries: BlobEntry[] }[];
  res: Pick<GcResult, 'packsDeleted' | 'packsRepacked' | 'orphanPacksDeleted' | 'bytesFreed' | 'keptForGrace'>;
  /** every entry that stays indexed (kept or repacked) */
  keptEntries(): Generator<BlobEntry>;
}

/** Which old packs go, are repacked or stay, given the live chunk ids (latin1). */
function planSweep(entriesByPack: Map<string, BlobEntry[]>, packInfo: Map<string, { size: number; old: boolean }>, youngPacks: Set<string>, live: Set<string>, repackBelow: number): SweepPlan {
  const res = { packsDeleted: 0, packsRepacked: 0, orphanPacksDeleted: 0, bytesFreed: 0, keptForGrace: 0 };
  const keep: IndexPack[] = [];
  const remove: string[] = [];
  const repack: { packId: string; entries: BlobEntry[] }[] = [];
  // Live chunks already kept somewhere (duplicates elsewhere are dropped). A copy stored as a
  // delta does not count: a whole copy of the same chunk may be some delta's base.
  const placed = new Set<string>();
  const place = (es: BlobEntry[]) => { for (const e of es) if (e.type !== BLOB_DELTA) placed.add(e.id.toString('latin1')); };
  for (const [packId, entries] of entriesByPack) {
    const info = packInfo.get(packId);
    if (!info) continue; // index pointed at a missing pack: verify reports it; nothing to keep
    if (youngPacks.has(packId) || !info.old) { keep.push({ packId, entries }); res.keptForGrace++; place(entries); continue; }
    // Frames are the unit of storage: a frame with any live chunk is live as a whole.
    const liveFrames = new Set(entries.filter((e) => live.has(e.id.toString('latin1')) && !placed.has(e.id.toString('latin1'))).map((e) => e.offset));
    const liveEntries = entries.filter((e) => liveFrames.has(e.offset));
    const liveBytes = [...liveFrames].reduce((s, off) => s + entries.find((e) => e.offset === off)!.length, 0);
    if (liveEntries.length === 0) { remove.push(packId); res.packsDeleted++; res.bytesFreed += info.size; continue; }
    if (liveBytes < info.size * repackBelow) {
      repack.push({ packId, entries: liveEntries });
      place(liveEntries);
      continue;
    }
    keep.push({ packId, entries });
    place(entries);
  }
  return {
    keep, remove, repack, res,
    *keptEntries() {
      for (const p of keep) yield* p.entries;
      for (const p of repack) yield* p.entries;
    },
  };
}
