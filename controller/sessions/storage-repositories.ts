// The real RepositoryGateway: the repository format (shared/repository) on Azure Blob Storage or
// a local directory. The controller only initialises, attaches and forgets; backups, archives and
// restores write and read on workers.
//
// Where: azblob://<storageAccount>/<container>/<folder>, or file://<path> for local/demo use.
// Credentials for Azure, first that applies:
//   1. the repository's own storage credential (a connection string or a SAS token, sealed in the
//      configuration database);
//   2. the repository's service account (client secret, or managed identity);
//   3. the controller's environment: AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_SAS_TOKEN
//      (with AZURE_STORAGE_BLOB_ENDPOINT), else DefaultAzureCredential.
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import type { TokenCredential } from '@azure/identity';
import { CosmosBackupError, isCode } from '../../shared/errors.ts';
import { AZURE_PIPELINE_OPTIONS, openStore, parseLocation } from '../../shared/storage/open.ts';
import { AzureBlobStore } from '../../shared/storage/azure-blob.ts';
import { withRetries } from '../../shared/storage/retrying.ts';
import { withConcurrencyLimit } from '../../shared/storage/limiting.ts';
import type { ObjectStore } from '../../shared/storage/types.ts';
import { Repository } from '../../shared/repository/repository.ts';
import { forget, gc } from '../../shared/repository/gc.ts';
import { packTierRule, rearchive, retrieve } from '../../shared/repository/retrieval.ts';
import type { AccessTier } from '../../shared/storage/types.ts';
import type { RepositoryLocation, ServiceAccountCredentials } from '../db/config-store.ts';
import type { RepositoryAccess, RepositoryGateway, RetrievalStatus } from './gateways.ts';

const TIERS: readonly AccessTier[] = ['Hot', 'Cool', 'Cold', 'Archive'];
/** The repository's tier for data packs, when it is not the default (Hot). */
function packTier(access: RepositoryAccess): AccessTier | undefined {
  const t = TIERS.find((x) => x === access.accessTier);
  return t && t !== 'Hot' ? t : undefined;
}
/** Packs written by gc's repacking go to the repository's tier, as the workers' packs do. */
const tierFor = (access: RepositoryAccess) => packTierRule(packTier(access));

/** The repository location as the storage layer names it (pure). */
export function locationUrl(loc: RepositoryLocation): string {
  if (loc.kind === 'file') {
    if (!loc.path || !path.isAbsolute(loc.path)) throw new CosmosBackupError('INVALID_ARGUMENT', 'a file repository needs an absolute path');
    return pathToFileURL(loc.path).href;
  }
  const folder = loc.folder ? '/' + loc.folder.split('/').map(encodeURIComponent).join('/') : '';
  return `azblob://${loc.storageAccount}/${loc.container}${folder}`;
}

/** Connection strings name parts ("AccountName=…;"); anything else is taken as a SAS token. */
export function isConnectionString(credential: string): boolean {
  return /(^|;)\s*(AccountName|BlobEndpoint|UseDevelopmentStorage|DefaultEndpointsProtocol)\s*=/i.test(credential);
}

export interface StorageRepositoriesOptions {
  /** the controller's environment, for credentials of repositories without their own */
  env?: NodeJS.ProcessEnv;
  /** after forget, run garbage collection (skipped while a worker holds the repository lock) */
  gcAfterForget?: boolean;
  /** gc grace period; data younger than this is never removed */
  gcGraceMs?: number;
}

export class StorageRepositories implements RepositoryGateway {
  readonly #env: NodeJS.ProcessEnv;
  readonly #gc: boolean;
  readonly #graceMs: number | undefined;

  constructor(opts: StorageRepositoriesOptions = {}) {
    this.#env = opts.env ?? process.env;
    this.#gc = opts.gcAfterForget ?? true;
    this.#graceMs = opts.gcGraceMs;
  }

  async init(access: RepositoryAccess): Promise<{ formatId: string }> {
    const store = await this.#store(access, true);
    const repo = await Repository.init(store, { password: access.password ?? undefined });
    return { formatId: repo.id };
  }

  async attach(access: RepositoryAccess): Promise<{ formatId: string }> {
    const repo = await this.#open(access);
    if (repo.config.encryption === 'none' && access.password) {
      throw new CosmosBackupError('INVALID_ARGUMENT', `the repository at ${repo.location} is not encrypted; register it without a password`);
    }
    return { formatId: repo.id };
  }

  async forget(access: RepositoryAccess, formatPointIds: string[]): Promise<void> {
    const repo = await this.#open(access);
    for (const id of formatPointIds) {
      try {
        await forget(repo, [id]);
      } catch (e) {
        // Already gone (an earlier retention removed it but could not record that): nothing to do.
        if (!isCode(e, 'NOT_FOUND')) throw e;
      }
    }
    if (!this.#gc || formatPointIds.length === 0) return;
    try {
      // Archived packs cannot be read: never repack them, only delete packs with nothing live.
      const repack = packTier(access) === 'Archive' ? { repackBelow: 0 } : {};
      await gc(repo, { ...repack, ...(this.#graceMs === undefined ? {} : { graceMs: this.#graceMs }) });
    } catch (e) {
      // A worker is writing: the forgotten data is collected after a later retention.
      if (!isCode(e, 'REPO_LOCKED')) throw e;
    }
  }

  async retrieval(access: RepositoryAccess, formatPointIds: string[], opts: { start: boolean; priority?: 'Standard' | 'High' }): Promise<RetrievalStatus> {
    return retrieve(await this.#open(access), formatPointIds, opts);
  }

  async rearchive(access: RepositoryAccess, formatPointIds: string[]): Promise<number> {
    const tier = packTier(access);
    return tier ? rearchive(await this.#open(access), formatPointIds, tier) : 0;
  }

  async #open(access: RepositoryAccess): Promise<Repository> {
    const store = await this.#store(access, false);
    try {
      return await Repository.open(store, { password: access.password ?? undefined });
    } catch (e) {
      if (isCode(e, 'PASSWORD_REQUIRED')) throw new CosmosBackupError('PASSWORD_REQUIRED', `the repository at ${store.location} is encrypted: give its password`, { cause: e });
      if (isCode(e, 'WRONG_PASSWORD')) throw new CosmosBackupError('WRONG_PASSWORD', `wrong password for the repository at ${store.location}`, { cause: e });
      if (isCode(e, 'REPO_NOT_FOUND')) throw new CosmosBackupError('REPO_NOT_FOUND', `no repository at ${store.location}`, { cause: e });
      throw e;
    }
  }

  async #store(access: RepositoryAccess, create: boolean): Promise<ObjectStore> {
    const url = locationUrl(access.location);
    if (access.location.kind === 'file') return openStore(url, { create });
    const credential = access.storageCredential ?? null;
    if (credential) {
      const env: NodeJS.ProcessEnv = isConnectionString(credential)
        ? { AZURE_STORAGE_CONNECTION_STRING: credential }
        : { AZURE_STORAGE_SAS_TOKEN: credential, AZURE_STORAGE_BLOB_ENDPOINT: this.#env.AZURE_STORAGE_BLOB_ENDPOINT };
      return openStore(url, { create, env, tierFor: tierFor(access) });
    }
    if (access.serviceAccount) return this.#storeWithIdentity(url, access, access.serviceAccount, create);
    return openStore(url, { create, env: this.#env, tierFor: tierFor(access) });
  }

  /** The service account signs in to storage (it needs Storage Blob Data Contributor on the container). */
  async #storeWithIdentity(url: string, access: RepositoryAccess, sa: ServiceAccountCredentials, create: boolean): Promise<ObjectStore> {
    const spec = parseLocation(url, { AZURE_STORAGE_BLOB_ENDPOINT: this.#env.AZURE_STORAGE_BLOB_ENDPOINT });
    if (spec.kind !== 'azure') throw new CosmosBackupError('INTERNAL', 'expected an Azure location');
    const identity = await import('@azure/identity');
    let cred: TokenCredential;
    if (sa.auth === 'secret') {
      if (!sa.clientId || !sa.clientSecret) throw new CosmosBackupError('INVALID_ARGUMENT', `service account ${sa.id} has no client id or secret`);
      cred = new identity.ClientSecretCredential(sa.tenantId, sa.clientId, sa.clientSecret);
    } else {
      cred = sa.clientId ? new identity.ManagedIdentityCredential({ clientId: sa.clientId }) : new identity.ManagedIdentityCredential();
    }
    const client = new BlobServiceClient(spec.serviceUrl, cred, AZURE_PIPELINE_OPTIONS);
    const az = new AzureBlobStore({ container: client.getContainerClient(spec.container), prefix: spec.prefix, location: spec.location, tierFor: tierFor(access) });
    if (create) await az.ensureContainer();
    return withConcurrencyLimit(withRetries(az), 16);
  }
}
