// `repo upgrade`: raises a repository's format version to this agent's (1 -> 2), so that later
// backups store changed chunks as deltas. Nothing stored is rewritten: version 2 readers read
// version 1 index objects and pack trailers as they are, and every later index object and pack is
// written in version 2. Agents that read only version 1 refuse the repository afterwards, with
// their "upgrade the agent" line, which is why this is a command and not automatic.
import { CosmosBackupError } from '../errors.ts';
import { decodeConfig, encodeConfig, FORMAT_VERSION, KEYS } from './format.ts';
import { lockExclusive } from './locks.ts';
import type { Repository } from './repository.ts';

export interface UpgradeResult {
  from: number;
  to: number;
}

/**
 * Rewrites the config with the current format version under the exclusive lock (no backup may
 * run meanwhile: one that started with the old version would go on writing version 1 objects,
 * which is harmless, but the lock makes the moment unambiguous). Open the repository again
 * afterwards to use the new format.
 */
export async function upgradeFormat(repo: Repository): Promise<UpgradeResult> {
  if (repo.config.version >= FORMAT_VERSION) return { from: repo.config.version, to: repo.config.version };
  const lock = await lockExclusive(repo.store, 'format upgrade');
  try {
    // The config as stored now, not as this process read it.
    const current = decodeConfig(await repo.store.get(KEYS.config));
    if (current.id !== repo.config.id) throw new CosmosBackupError('REPO_NOT_FOUND', `the repository at ${repo.location} was replaced while upgrading; nothing was changed`);
    if (current.version >= FORMAT_VERSION) return { from: current.version, to: current.version };
    // put replaces the object atomically: readers see the old config or the new one.
    await repo.store.put(KEYS.config, encodeConfig({ ...current, version: FORMAT_VERSION }));
    return { from: current.version, to: FORMAT_VERSION };
  } finally {
    await lock.release();
  }
}
