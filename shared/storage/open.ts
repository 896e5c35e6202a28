// The one place that turns a repository location into a store, stacked with the wrappers:
//   /abs/path | ./rel | file:///abs/path                    -> FilesystemStore
//   azblob://<account>/<container>[/<prefix>]                -> AzureBlobStore, credentials from env
//   https://<account>.blob.core.windows.net/<container>[/<prefix>][?<SAS>]
//   http://127.0.0.1:<port>/<account>/<container>[/<prefix>][?<SAS>]   (Azurite, path-style)
// Parsing is pure (parseLocation); openStore does the I/O.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isIP } from 'node:net';
import type { BlobServiceClient, StoragePipelineOptions } from '@azure/storage-blob';
import { CosmosBackupError } from '../errors.ts';
import { FilesystemStore } from './filesystem.ts';
import { checkKey } from './keys.ts';
import { withConcurrencyLimit } from './limiting.ts';
import { withRetries, type RetryOptions } from './retrying.ts';
import type { ObjectStore } from './types.ts';
import type { AccessTier } from './types.ts';

export type AzureAuth =
  | { kind: 'connection-string'; connectionString: string }
  | { kind: 'sas'; sas: string }
  | { kind: 'default-credential' };

export type StoreSpec =
  | { kind: 'file'; root: string; location: string }
  | { kind: 'azure'; account: string; container: string; prefix: string; serviceUrl: string; auth: AzureAuth; location: string };

export interface OpenStoreOptions {
  env?: NodeJS.ProcessEnv;
  /** create the directory / container if missing (for `repo init`) */
  create?: boolean;
  retry?: RetryOptions;
  /** calls in flight; defaults to 8 for a filesystem, 16 for Azure */
  concurrency?: number;
  /** Azure: access tier of newly written blobs by key (other backends have no tiers) */
  tierFor?: (key: string) => AccessTier | undefined;
}

/**
 * SDK-level retries stay on but small: they work per HTTP request (resuming a broken download
 * stream, re-sending an acquire with the same proposed lease id), which our call-level wrapper
 * cannot do. withRetries() sits above them, sees typed errors, honours Retry-After and bounds
 * whole calls. Worst case is maxTries x maxAttempts = 3 x 6 requests for one call.
 */
export const AZURE_PIPELINE_OPTIONS: StoragePipelineOptions = {
  retryOptions: { maxTries: 3, retryDelayInMs: 400, maxRetryDelayInMs: 4000, tryTimeoutInMs: 10 * 60_000 },
};

const bad = (msg: string) => new CosmosBackupError('INVALID_ARGUMENT', msg);
const SECRET_PAIRS = /\b(AccountKey|SharedAccessSignature|sig|SharedAccessKey|password)=([^;&\s]+)/gi;

/** The location with any SAS, account key, password or user info removed: safe for logs and errors. */
export function describeLocation(location: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(location)?.[1]?.toLowerCase();
  if (scheme) {
    try {
      const u = new URL(location);
      u.username = '';
      u.password = '';
      u.search = '';
      u.hash = '';
      return u.toString();
    } catch {
      return location.replace(/[?#].*$/s, '').replace(/\/\/[^/@]*@/, '//');
    }
  }
  return location.replace(SECRET_PAIRS, '$1=***');
}

/** Parses "a=b;c=d" connection strings (keys case-insensitive). */
function connectionStringParts(cs: string): Map<string, string> {
  const parts = new Map<string, string>();
  for (const piece of cs.split(';')) {
    const eq = piece.indexOf('=');
    if (eq > 0) parts.set(piece.slice(0, eq).trim().toLowerCase(), piece.slice(eq + 1).trim());
  }
  return parts;
}

function checkAccount(account: string, location: string): void {
  if (!/^[a-z0-9]{3,24}$/.test(account)) throw bad(`invalid storage account "${account}" in ${describeLocation(location)}: 3-24 lowercase letters and digits`);
}

function checkContainer(container: string, location: string): void {
  if (!/^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/.test(container)) {
    throw bad(`invalid container name "${container}" in ${describeLocation(location)}: 3-63 lowercase letters, digits and single hyphens`);
  }
}

function cleanPrefix(segments: string[], location: string): string {
  const prefix = segments.map((s) => decodeURIComponent(s)).filter((s) => s !== '').join('/');
  if (prefix) {
    try {
      checkKey(prefix);
    } catch {
      throw bad(`invalid prefix "${prefix}" in ${describeLocation(location)}`);
    }
  }
  return prefix;
}

function stripQ(sas: string): string {
  return sas.startsWith('?') ? sas.slice(1) : sas;
}

/** Credentials for azblob:// (and SAS-less https) locations, from the environment. */
function authFromEnv(account: string, env: NodeJS.ProcessEnv, location: string): { auth: AzureAuth; serviceUrl: string } {
  const defaultUrl = (env.AZURE_STORAGE_BLOB_ENDPOINT || `https://${account}.blob.core.windows.net`).replace(/\/+$/, '');
  const cs = env.AZURE_STORAGE_CONNECTION_STRING;
  if (cs) {
    const parts = connectionStringParts(cs);
    const dev = /^UseDevelopmentStorage=true/i.test(cs.trim());
    const csAccount = dev ? 'devstoreaccount1' : parts.get('accountname');
    if (csAccount && csAccount !== account) {
      throw bad(`AZURE_STORAGE_CONNECTION_STRING is for storage account "${csAccount}" but the location ${describeLocation(location)} names "${account}"`);
    }
    // Its BlobEndpoint (e.g. Azurite's http://127.0.0.1:PORT/devstoreaccount1) is used as-is.
    const endpoint = parts.get('blobendpoint');
    return { auth: { kind: 'connection-string', connectionString: cs }, serviceUrl: (endpoint || defaultUrl).replace(/\/+$/, '') };
  }
  if (env.AZURE_STORAGE_SAS_TOKEN) return { auth: { kind: 'sas', sas: stripQ(env.AZURE_STORAGE_SAS_TOKEN) }, serviceUrl: defaultUrl };
  return { auth: { kind: 'default-credential' }, serviceUrl: defaultUrl };
}

/** Path-style hosts (emulators, IP endpoints) carry the account as the first path segment. */
function isPathStyle(u: URL): boolean {
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return isIP(host) !== 0 || host === 'localhost' || host.endsWith('.localhost');
}

export function parseLocation(location: string, env: NodeJS.ProcessEnv = process.env): StoreSpec {
  const loc = location.trim();
  if (!loc) throw bad('repository location is empty: give a directory, file:///path, azblob://account/container/prefix or a container SAS URL');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(loc)?.[1]?.toLowerCase();
  // "C:\backups" or "C:/backups" are Windows paths, not URLs
  if (!scheme || /^[a-z]:[\\/]/i.test(loc)) {
    const root = path.resolve(loc);
    return { kind: 'file', root, location: pathToFileURL(root).href };
  }
  let u: URL;
  try {
    u = new URL(loc);
  } catch {
    throw bad(`repository location ${describeLocation(loc)} is not a valid URL`);
  }
  if (scheme === 'file') {
    const root = fileURLToPath(u);
    return { kind: 'file', root, location: pathToFileURL(root).href };
  }
  if (scheme === 'azblob') {
    const account = u.hostname.toLowerCase();
    checkAccount(account, loc);
    const [container = '', ...rest] = u.pathname.replace(/^\/+/, '').split('/');
    if (!container) throw bad(`repository location ${describeLocation(loc)} names no container: use azblob://account/container[/prefix]`);
    checkContainer(container, loc);
    const prefix = cleanPrefix(rest, loc);
    const { auth, serviceUrl } = authFromEnv(account, env, loc);
    return { kind: 'azure', account, container, prefix, serviceUrl, auth, location: `azblob://${account}/${container}${prefix ? `/${prefix}` : ''}` };
  }
  if (scheme === 'https' || scheme === 'http') {
    const segments = u.pathname.replace(/^\/+/, '').split('/');
    const pathStyle = isPathStyle(u);
    const account = pathStyle ? (segments.shift() ?? '') : u.hostname.split('.')[0]!.toLowerCase();
    checkAccount(account, loc);
    const container = segments.shift() ?? '';
    if (!container) throw bad(`repository location ${describeLocation(loc)} names no container: use https://account.blob.core.windows.net/container[/prefix]?<SAS>`);
    checkContainer(container, loc);
    const prefix = cleanPrefix(segments, loc);
    const serviceUrl = `${u.protocol}//${u.host}${pathStyle ? `/${account}` : ''}`;
    const sas = stripQ(u.search);
    const auth: AzureAuth = sas ? { kind: 'sas', sas } : authFromEnv(account, env, loc).auth.kind === 'sas' ? { kind: 'sas', sas: stripQ(env.AZURE_STORAGE_SAS_TOKEN!) } : { kind: 'default-credential' };
    return { kind: 'azure', account, container, prefix, serviceUrl, auth, location: describeLocation(`${serviceUrl}/${container}${prefix ? `/${prefix}` : ''}`) };
  }
  throw bad(`unsupported repository location scheme "${scheme}:" in ${describeLocation(loc)}: use a directory, file:///path, azblob://account/container/prefix or an https container SAS URL`);
}

async function serviceClient(spec: Extract<StoreSpec, { kind: 'azure' }>): Promise<BlobServiceClient> {
  // Loaded on first use: a filesystem repository never pays for the Azure SDK.
  const { AnonymousCredential, BlobServiceClient } = await import('@azure/storage-blob');
  switch (spec.auth.kind) {
    case 'connection-string':
      try {
        return BlobServiceClient.fromConnectionString(spec.auth.connectionString, AZURE_PIPELINE_OPTIONS);
      } catch {
        // The SDK's message could echo parts of the string; say only which variable is wrong.
        throw bad('AZURE_STORAGE_CONNECTION_STRING is not a valid storage connection string');
      }
    case 'sas':
      return new BlobServiceClient(`${spec.serviceUrl}?${spec.auth.sas}`, new AnonymousCredential(), AZURE_PIPELINE_OPTIONS);
    case 'default-credential': {
      // Loaded only when needed: @azure/identity is large and most runs use a SAS or a path.
      const { DefaultAzureCredential } = await import('@azure/identity');
      return new BlobServiceClient(spec.serviceUrl, new DefaultAzureCredential(), AZURE_PIPELINE_OPTIONS);
    }
  }
}

/** Opens the store for a location (without touching it unless `create`), wrapped with retries and a concurrency limit. */
export async function openStore(location: string, opts: OpenStoreOptions = {}): Promise<ObjectStore> {
  const spec = parseLocation(location, opts.env ?? process.env);
  let raw: ObjectStore;
  if (spec.kind === 'file') {
    const fs = new FilesystemStore(spec.root);
    if (opts.create) await fs.ensureRoot();
    raw = fs;
  } else {
    const client = await serviceClient(spec);
    const { AzureBlobStore } = await import('./azure-blob.ts');
    const az = new AzureBlobStore({ container: client.getContainerClient(spec.container), prefix: spec.prefix, location: spec.location, tierFor: opts.tierFor });
    if (opts.create) await az.ensureContainer();
    raw = az;
  }
  return withConcurrencyLimit(withRetries(raw, opts.retry), opts.concurrency ?? (spec.kind === 'file' ? 8 : 16));
}
