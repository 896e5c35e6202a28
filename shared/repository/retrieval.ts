// Data retrieval for restore points whose packs sit in the Archive access tier. A pack in Archive
// cannot be read until it is rehydrated (hours on Azure), and the chunk lists that say which data
// packs a point needs are themselves in packs: so retrieval runs in two rounds. First the packs
// holding the points' chunk lists (the manifest names them), then, once those are readable, the
// data packs the lists reference. Each call looks again and starts what is not started yet.
import { CosmosBackupError } from '../errors.ts';
import type { AccessTier } from '../storage/types.ts';
import { KEYS } from './format.ts';
import { mapLimit, type Repository } from './repository.ts';

export interface RetrievalStatus {
  /**
   * online: nothing needed is archived; archived: some packs are archived and no rehydration runs
   * for them; rehydrating: rehydrations are under way; ready: every pack needed is readable
   */
  state: 'online' | 'archived' | 'rehydrating' | 'ready';
  /** packs known to be needed so far (the data packs are known once the chunk lists are readable) */
  packs: number;
  archived: number;
  rehydrating: number;
}

export interface RetrievalOptions {
  /** start rehydrating archived packs (false: only report) */
  start: boolean;
  priority?: 'Standard' | 'High';
  /** tier the packs are rehydrated to */
  to?: Exclude<AccessTier, 'Archive'>;
  concurrency?: number;
}

const isArchive = (tier: string | undefined) => tier?.toLowerCase() === 'archive';

/**
 * The store's tier rule for a repository whose data sits in `tier`: only packs take it; indexes,
 * manifests, keys and locks stay in the account's default tier, so dedup and listing never wait
 * for a rehydration. Hot (the default) needs no rule.
 */
export function packTierRule(tier: AccessTier | undefined): ((key: string) => AccessTier | undefined) | undefined {
  return tier && tier !== 'Hot' ? (key) => (key.startsWith(KEYS.dataPrefix) ? tier : undefined) : undefined;
}

/** The pack ids holding the given chunks (and the bases of those stored as deltas). */
async function packsOf(repo: Repository, chunkIds: Iterable<Buffer>): Promise<Set<string>> {
  const index = await repo.loadIndex();
  const out = new Set<string>();
  for (const id of chunkIds) {
    const loc = index.get(id);
    if (!loc) throw new CosmosBackupError('CORRUPT_OBJECT', `chunk ${id.toString('hex')} is not in the index of ${repo.location} (missing data)`);
    out.add(loc.packId);
    // A delta chunk is rebuilt from its bases: their packs are needed as well.
    for (const b of loc.delta?.bases ?? []) {
      const base = index.get(b);
      if (!base) throw new CosmosBackupError('CORRUPT_OBJECT', `chunk ${b.toString('hex')} (a delta's base) is not in the index of ${repo.location} (missing data)`);
      out.add(base.packId);
    }
  }
  return out;
}

async function listPacks(repo: Repository, pointIds: string[]): Promise<{ lists: Set<string>; objects: Array<{ list: string[] }> }> {
  const objects: Array<{ list: string[] }> = [];
  for (const id of pointIds) objects.push(...(await repo.loadRestorePoint(id)).objects);
  const lists = await packsOf(repo, objects.flatMap((o) => o.list.map((h) => Buffer.from(h, 'hex'))));
  return { lists, objects };
}

async function dataPacks(repo: Repository, objects: Array<{ list: string[] }>): Promise<Set<string>> {
  const ids: Buffer[] = [];
  const out = new Set<string>();
  for (const o of objects) {
    for await (const id of repo.objectChunkIds(o.list)) {
      ids.push(Buffer.from(id));
      // Bounded memory on large points: resolve ids in batches.
      if (ids.length >= 65536) for (const p of await packsOf(repo, ids.splice(0))) out.add(p);
    }
  }
  for (const p of await packsOf(repo, ids)) out.add(p);
  return out;
}

/** Looks at (and with `start`, rehydrates) the packs the restore points need. */
export async function retrieve(repo: Repository, pointIds: string[], opts: RetrievalOptions): Promise<RetrievalStatus> {
  const tiering = repo.store.tiering;
  if (!tiering) return { state: 'online', packs: 0, archived: 0, rehydrating: 0 };
  const limit = opts.concurrency ?? 16;
  let archived = 0;
  let rehydrating = 0;
  let started = false;
  const check = (packs: Set<string>) => mapLimit([...packs], limit, async (id) => {
    const s = await tiering.state(KEYS.pack(id));
    if (s.rehydrating) { rehydrating++; return false; }
    if (!isArchive(s.tier)) return true;
    if (!opts.start) { archived++; return false; }
    await tiering.setTier(KEYS.pack(id), opts.to ?? 'Hot', opts.priority ?? 'Standard');
    started = true;
    // Where the service rehydrates at once (Azurite), the pack is readable right away.
    const after = await tiering.state(KEYS.pack(id));
    if (isArchive(after.tier) || after.rehydrating) { rehydrating++; return false; }
    return true;
  });
  const { lists, objects } = await listPacks(repo, pointIds);
  const listsReady = (await check(lists)).every(Boolean);
  let total = lists.size;
  if (listsReady) {
    const data = await dataPacks(repo, objects);
    for (const p of lists) data.delete(p);
    total += data.size;
    await check(data);
  }
  const done = listsReady && archived === 0 && rehydrating === 0;
  const state = done ? (started ? 'ready' : 'online') : archived > 0 ? 'archived' : 'rehydrating';
  // "online" also covers a point rehydrated by an earlier call: nothing is left to wait for.
  return { state, packs: total, archived, rehydrating };
}

/** Moves every pack the restore points use (all readable now) back to `tier`; returns how many moved. */
export async function rearchive(repo: Repository, pointIds: string[], tier: AccessTier = 'Archive', concurrency = 16): Promise<number> {
  const tiering = repo.store.tiering;
  if (!tiering) return 0;
  const { lists, objects } = await listPacks(repo, pointIds);
  const all = await dataPacks(repo, objects);
  for (const p of lists) all.add(p);
  const moved = await mapLimit([...all], concurrency, async (id) => {
    const s = await tiering.state(KEYS.pack(id));
    if (s.tier?.toLowerCase() === tier.toLowerCase() || s.rehydrating) return 0;
    await tiering.setTier(KEYS.pack(id), tier);
    return 1;
  });
  return moved.reduce<number>((n, x) => n + x, 0);
}
