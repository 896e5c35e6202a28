// Opening the repository named on the command line (--repo or COSMOS_BACKUP_REPO).
import { CosmosBackupError } from '../shared/errors.ts';
import { openStore } from '../shared/storage/open.ts';
import { Repository } from '../shared/repository/repository.ts';
import { readPassword, type PasswordSource } from './secrets.ts';

export interface RepoOptions extends PasswordSource { repo?: string }

export function repoLocation(o: RepoOptions): string {
  const loc = o.repo ?? process.env.COSMOS_BACKUP_REPO;
  if (!loc) throw new CosmosBackupError('INVALID_ARGUMENT', 'no repository given: use --repo LOCATION (a path, file:///path or azblob://account/container/prefix) or set COSMOS_BACKUP_REPO');
  return loc;
}

export async function openRepo(o: RepoOptions): Promise<Repository> {
  const store = await openStore(repoLocation(o));
  return Repository.open(store, { password: readPassword(o) });
}
