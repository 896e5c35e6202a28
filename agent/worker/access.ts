// Reaching what a command names, with the secrets it carries sealed: the repository (SAS or
// managed identity) and the databases. Plaintext secrets only live in the objects built here.
// Every store is wrapped so that aborting a job (SIGTERM, cancel) makes its next storage call fail:
// the engines then abort their backup writer, which leaves no restore point behind.
import { CosmosBackupError } from '../../shared/errors.ts';
import type { DatabaseTarget, Repository as RepositoryRef, Tls } from '../../shared/protocol/messages.ts';
import { openStore } from '../../shared/storage/open.ts';
import type { ObjectStore } from '../../shared/storage/types.ts';
import { Repository } from '../../shared/repository/repository.ts';
import { packTierRule } from '../../shared/repository/retrieval.ts';
import type { PgTarget } from '../engines/postgres/connection.ts';

export type Secrets = ReadonlyMap<string, Buffer>;

function secret(secrets: Secrets, path: string): string | undefined {
  return secrets.get(path)?.toString('utf8');
}

function aborted(signal: AbortSignal): CosmosBackupError {
  return new CosmosBackupError('ABORTED', 'the job was aborted', { cause: signal.reason });
}

/** A store whose reads and writes fail once the signal fires; deletes and lease breaks still work (lock release). */
export function abortableStore(inner: ObjectStore, signal: AbortSignal): ObjectStore {
  const check = () => { if (signal.aborted) throw aborted(signal); };
  return {
    location: inner.location,
    async putIfAbsent(key, data) { check(); return inner.putIfAbsent(key, data); },
    async put(key, data) { check(); return inner.put(key, data); },
    async get(key) { check(); return inner.get(key); },
    async getRange(key, offset, length) { check(); return inner.getRange(key, offset, length); },
    async stat(key) { check(); return inner.stat(key); },
    async *list(prefix) { check(); for await (const o of inner.list(prefix)) { check(); yield o; } },
    delete: (key) => inner.delete(key),
    async acquireLease(key, holder, ttlMs) { check(); return inner.acquireLease(key, holder, ttlMs); },
    readLease: (key) => inner.readLease(key),
    breakLease: (key) => inner.breakLease(key),
    close: inner.close ? () => inner.close!() : undefined,
    tiering: inner.tiering,
  };
}

/**
 * The openStore location for a repository reference: the SAS goes into the URL's query (openStore
 * strips it from every description), a managed identity works through DefaultAzureCredential.
 */
export function storeLocation(ref: RepositoryRef, sas: string | undefined): { location: string; env: NodeJS.ProcessEnv } {
  const loc = ref.location;
  if (/^file:/i.test(loc)) return { location: loc, env: {} };
  let container: string;
  let prefix: string;
  let serviceUrl: string;
  const u = new URL(loc);
  if (u.protocol === 'azblob:') {
    [container = '', prefix = ''] = ((s) => [s[0], s.slice(1).join('/')])(u.pathname.replace(/^\/+/, '').split('/'));
    serviceUrl = (ref.endpoint ?? `https://${u.hostname}.blob.core.windows.net`).replace(/\/+$/, '');
  } else if (u.protocol === 'https:' || u.protocol === 'http:') {
    if (ref.access === 'managed-identity') return { location: loc, env: {} };
    return { location: `${loc.replace(/\/+$/, '')}?${sas ?? ''}`, env: {} };
  } else {
    throw new CosmosBackupError('INVALID_ARGUMENT', `unsupported repository location scheme ${u.protocol}`);
  }
  if (ref.access === 'sas') {
    if (!sas) throw new CosmosBackupError('INVALID_ARGUMENT', 'the repository uses SAS access but the command carries no sealed SAS');
    return { location: `${serviceUrl}/${container}${prefix ? `/${prefix}` : ''}?${sas.replace(/^\?/, '')}`, env: {} };
  }
  // Managed identity: the blob endpoint for azblob:// comes through openStore's environment.
  return { location: loc, env: { AZURE_STORAGE_BLOB_ENDPOINT: serviceUrl, ...(ref.clientId ? { AZURE_CLIENT_ID: ref.clientId } : {}) } };
}

/** Opens the repository a command names; `field` is its path in the command ('repository', 'from', 'to'). */
export async function openCommandRepository(ref: RepositoryRef, field: string, secrets: Secrets, signal: AbortSignal): Promise<Repository> {
  const sas = ref.access === 'sas' ? secret(secrets, `${field}.sas`) : undefined;
  const { location, env } = storeLocation(ref, sas);
  if (ref.access === 'managed-identity' && ref.clientId) {
    // DefaultAzureCredential's managed identity reads the user-assigned identity from the environment.
    process.env.AZURE_CLIENT_ID = ref.clientId;
  }
  const store = abortableStore(await openStore(location, { env, tierFor: packTierRule(ref.accessTier) }), signal);
  return Repository.open(store, { password: secret(secrets, `${field}.password`) });
}

function sslOf(tls: Tls): PgTarget['ssl'] {
  switch (tls.mode) {
    case 'disable': return undefined;
    case 'require': return { rejectUnauthorized: false };
    case 'verify-ca':
      // verify-ca checks the chain but not the host name, as libpq does.
      return { rejectUnauthorized: true, ca: tls.ca, checkServerIdentity: () => undefined };
    case 'verify-full': return { rejectUnauthorized: true, ca: tls.ca, servername: tls.servername };
  }
}

/** A PostgreSQL connection for one database of a command's endpoint (`field` = 'source' or 'target'). */
export function pgTarget(ep: DatabaseTarget, field: string, secrets: Secrets, database: string): PgTarget {
  return {
    host: ep.host, port: ep.port, user: ep.user, database,
    password: secret(secrets, `${field}.password`),
    ssl: sslOf(ep.tls),
    label: `${ep.host}:${ep.port}`,
  };
}
