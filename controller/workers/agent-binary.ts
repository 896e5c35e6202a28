// The agent binary the controller deploys: the build's manifest (scripts/build-agent.ts writes it
// beside the binary), its upload to a regional storage account with MD5 checked on both sides,
// and the short-lived read-only SAS URI a worker VM downloads it through.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { BlobSASPermissions, BlobServiceClient, SASProtocol, StorageSharedKeyCredential, generateBlobSASQueryParameters } from '@azure/storage-blob';
import { CosmosBackupError } from '../../shared/errors.ts';
import { AGENT_BINARY_NAME, type AgentManifest } from '../../shared/agent-manifest.ts';

export const AGENT_CONTAINER = 'cosmos-backup-agent';
/** Agent download links live less than an hour. */
export const AGENT_SAS_MINUTES = 50;

export interface AgentBinary { file: string; manifest: AgentManifest }

/** The built agent (dist/ by default; COSMOS_BACKUP_AGENT_DIR elsewhere). */
export function loadAgentBinary(dir: string): AgentBinary {
  const file = path.join(dir, AGENT_BINARY_NAME);
  const manifestFile = `${file}.json`;
  if (!existsSync(file) || !existsSync(manifestFile)) {
    throw new CosmosBackupError('NOT_FOUND', `no agent binary in ${dir}: build it with "npm run build:agent" (workers run the built agent)`);
  }
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as AgentManifest;
  const size = statSync(file).size;
  if (size !== manifest.size) {
    throw new CosmosBackupError('CORRUPT_OBJECT', `the agent binary ${file} is ${size} bytes but its manifest says ${manifest.size}: rebuild it with "npm run build:agent"`);
  }
  return { file, manifest };
}

export interface AgentStorage { blobEndpoint: string; sharedKeyAccountName: string; accountKey: string }

const blobName = (m: AgentManifest) => `${m.version}-${m.md5.hex}/${AGENT_BINARY_NAME}`;

function service(s: AgentStorage): { client: BlobServiceClient; credential: StorageSharedKeyCredential } {
  const credential = new StorageSharedKeyCredential(s.sharedKeyAccountName, s.accountKey);
  return { client: new BlobServiceClient(s.blobEndpoint, credential), credential };
}

/**
 * Makes sure the regional account holds this build's agent: reuses a blob whose stored MD5 is the
 * manifest's, else uploads it, hashing while uploading, and compares what the service reports
 * with what was sent before anyone may use it. Returns the blob URL (no SAS).
 */
export async function ensureAgentBlob(s: AgentStorage, agent: AgentBinary, log: (line: string) => void = () => {}): Promise<{ url: string; uploaded: boolean }> {
  const { client } = service(s);
  const container = client.getContainerClient(AGENT_CONTAINER);
  await container.createIfNotExists();
  const blob = container.getBlockBlobClient(blobName(agent.manifest));
  const expected = agent.manifest.md5.base64;
  const props = await blob.getProperties().catch((e: { statusCode?: number }) => {
    if (e.statusCode === 404) return null;
    throw new CosmosBackupError('STORAGE_UNAVAILABLE', `cannot read the agent blob in ${s.blobEndpoint}: ${(e as Error).message}`, { cause: e });
  });
  if (props?.contentMD5 && Buffer.from(props.contentMD5).toString('base64') === expected && props.contentLength === agent.manifest.size) {
    return { url: blob.url, uploaded: false };
  }
  const md5 = createHash('md5');
  const hashing = new Transform({ transform(chunk: Buffer, _enc, cb) { md5.update(chunk); cb(null, chunk); } });
  const source = createReadStream(agent.file);
  source.on('error', (e) => hashing.destroy(e));
  log(`uploading the agent binary (${(agent.manifest.size / 1048576).toFixed(0)} MiB, md5 ${agent.manifest.md5.hex})`);
  await blob.uploadStream(source.pipe(hashing), 4 * 1024 * 1024, 4, {
    blobHTTPHeaders: { blobContentType: 'application/octet-stream', blobContentMD5: Buffer.from(expected, 'base64') },
  });
  const sent = md5.digest('base64');
  if (sent !== expected) {
    await blob.deleteIfExists();
    throw new CosmosBackupError('CORRUPT_OBJECT', `the agent binary ${agent.file} does not match its manifest (md5 ${Buffer.from(sent, 'base64').toString('hex')}, manifest ${agent.manifest.md5.hex}): rebuild it with "npm run build:agent"`);
  }
  const stored = await blob.getProperties();
  const storedMd5 = stored.contentMD5 ? Buffer.from(stored.contentMD5).toString('base64') : null;
  if (storedMd5 !== sent || stored.contentLength !== agent.manifest.size) {
    await blob.deleteIfExists();
    throw new CosmosBackupError('CORRUPT_OBJECT', `the storage service reports the uploaded agent binary as md5 ${storedMd5 ? Buffer.from(storedMd5, 'base64').toString('hex') : 'none'}, ${stored.contentLength} bytes; sent ${agent.manifest.md5.hex}, ${agent.manifest.size} bytes`);
  }
  return { url: blob.url, uploaded: true };
}

/** A read-only SAS URI for the agent blob that expires within the hour. */
export function agentDownloadUrl(s: AgentStorage, agent: AgentBinary, now = new Date()): { url: string; expiresOn: Date } {
  const { client, credential } = service(s);
  const blob = client.getContainerClient(AGENT_CONTAINER).getBlockBlobClient(blobName(agent.manifest));
  const expiresOn = new Date(now.getTime() + AGENT_SAS_MINUTES * 60_000);
  const sas = generateBlobSASQueryParameters({
    containerName: AGENT_CONTAINER, blobName: blobName(agent.manifest), permissions: BlobSASPermissions.parse('r'),
    startsOn: new Date(now.getTime() - 5 * 60_000), expiresOn,
    protocol: s.blobEndpoint.startsWith('https:') ? SASProtocol.Https : SASProtocol.HttpsAndHttp,
  }, credential).toString();
  return { url: `${blob.url}?${sas}`, expiresOn };
}
