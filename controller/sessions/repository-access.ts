// Everything needed to open a registered repository: its location, tier and sealed credentials
// opened. For sessions and the API's data-retrieval status; never stored or logged.
import type { Queryable } from '../db/db.ts';
import type { SecretBox } from '../db/secrets.ts';
import * as cfg from '../db/config-store.ts';
import type { RepositoryAccess } from './gateways.ts';

export async function repositoryAccess(db: Queryable, box: SecretBox, repositoryId: string): Promise<RepositoryAccess & { repo: cfg.Repository }> {
  const repo = await cfg.getRepository(db, repositoryId);
  return {
    repo,
    location: cfg.repositoryLocation(repo),
    serviceAccount: repo.serviceAccountId ? await cfg.serviceAccountCredentials(db, box, repo.serviceAccountId) : null,
    password: await cfg.repositoryPassword(db, box, repositoryId),
    storageCredential: await cfg.repositoryStorageCredential(db, box, repositoryId),
    accessTier: repo.accessTier,
  };
}

/** Whether a point's packs may sit in the Archive tier (recorded so, or its repository is so now): its data must be rehydrated before it is read. */
export function inArchiveTier(point: { accessTier: string | null }, access: Pick<RepositoryAccess, 'accessTier'>): boolean {
  return point.accessTier === 'Archive' || access.accessTier === 'Archive';
}
