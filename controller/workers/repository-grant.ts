// What a worker gets to reach a repository: the location, the blob endpoint, a SAS scoped to the
// repository's container (sealed into the command by the caller) and the repository password.
// The controller's own credential (a connection string with the account key, or its service
// account) never leaves the controller.
import { BlobServiceClient, ContainerSASPermissions, SASProtocol, StorageSharedKeyCredential, generateBlobSASQueryParameters } from '@azure/storage-blob';
import type { TokenCredential } from '@azure/identity';
import { CosmosBackupError } from '../../shared/errors.ts';
import { isConnectionString, locationUrl } from '../sessions/storage-repositories.ts';
import type { RepositoryAccess } from '../sessions/gateways.ts';

export interface RepositoryGrant {
  location: string;
  endpoint: string | undefined;
  /** SAS token without '?'; null for a local (file) repository */
  sas: string | null;
  password: string | null;
}

function parseConnectionString(cs: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of cs.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim().toLowerCase()] = part.slice(i + 1).trim();
  }
  return out;
}

/**
 * A container SAS for `hours`: read, add, create, write, delete and list (a backup writes packs
 * and its manifest, takes and drops a lock object; nothing outside the container).
 */
export async function grantRepository(r: RepositoryAccess, o: { hours: number; credential?: TokenCredential | null; now?: Date }): Promise<RepositoryGrant> {
  const location = locationUrl(r.location);
  if (r.location.kind === 'file') return { location, endpoint: undefined, sas: null, password: r.password };
  const now = o.now ?? new Date();
  const expiresOn = new Date(now.getTime() + o.hours * 3_600_000);
  const startsOn = new Date(now.getTime() - 5 * 60_000);
  const permissions = ContainerSASPermissions.parse('racwdl');
  const cred = r.storageCredential ?? null;
  if (cred && isConnectionString(cred)) {
    const p = parseConnectionString(cred);
    const account = p.accountname;
    const key = p.accountkey;
    if (!account || !key) throw new CosmosBackupError('INVALID_ARGUMENT', `repository at ${location}: its connection string has no AccountName/AccountKey, so no SAS can be made for workers`);
    const endpoint = (p.blobendpoint ?? `${p.defaultendpointsprotocol ?? 'https'}://${account}.blob.${p.endpointsuffix ?? 'core.windows.net'}`).replace(/\/+$/, '');
    const sas = generateBlobSASQueryParameters({
      containerName: r.location.container, permissions, startsOn, expiresOn,
      protocol: endpoint.startsWith('https:') ? SASProtocol.Https : SASProtocol.HttpsAndHttp,
    }, new StorageSharedKeyCredential(account, key)).toString();
    return { location, endpoint, sas, password: r.password };
  }
  if (cred) return { location, endpoint: undefined, sas: cred.replace(/^\?/, ''), password: r.password };
  if (!o.credential) throw new CosmosBackupError('INVALID_ARGUMENT', `repository at ${location}: no storage credential and no service account to make a SAS for workers`);
  // A user delegation SAS: signed with a key Entra hands out for the service account, no account key involved.
  const endpoint = `https://${r.location.storageAccount}.blob.core.windows.net`;
  const service = new BlobServiceClient(endpoint, o.credential);
  let key;
  try {
    key = await service.getUserDelegationKey(startsOn, expiresOn);
  } catch (e) {
    throw new CosmosBackupError('STORAGE_AUTH', `repository at ${location}: cannot get a user delegation key for a worker SAS (the service account needs "Storage Blob Delegator"): ${(e as Error).message}`, { cause: e });
  }
  const sas = generateBlobSASQueryParameters({ containerName: r.location.container, permissions, startsOn, expiresOn, protocol: SASProtocol.Https }, key, r.location.storageAccount).toString();
  return { location, endpoint, sas, password: r.password };
}
