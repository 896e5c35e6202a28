// Which Azure cloud the controller talks to. Public Azure by default; sovereign clouds, private
// endpoints behind a TLS-inspecting proxy (and the project's ARM simulator) are configuration:
// the ARM endpoint, the Entra authority host and an optional extra CA bundle to trust.
import { readFileSync } from 'node:fs';
import { CosmosBackupError } from '../../shared/errors.ts';

export interface AzureSettings {
  armEndpoint: string;
  authorityHost: string;
  /** PEM of extra certificate authorities to trust for ARM and Entra, added to the system ones */
  caBundle: string | null;
  /** how often long-running operations are polled */
  pollIntervalMs: number;
  /** retries of throttled (429, honouring Retry-After) and transient ARM failures */
  maxRetries: number;
  /** Periodic accounts are migrated to continuous backup (one-way) unless a caller says otherwise */
  allowMigration: boolean;
}

export const PUBLIC_CLOUD = { armEndpoint: 'https://management.azure.com', authorityHost: 'https://login.microsoftonline.com' } as const;

const url = (name: string, v: string) => {
  let u: URL;
  try { u = new URL(v); } catch { throw new CosmosBackupError('INVALID_ARGUMENT', `${name}: not a URL: ${v}`); }
  if (u.protocol !== 'https:') throw new CosmosBackupError('INVALID_ARGUMENT', `${name}: must be an https:// URL (Azure clients refuse plain http)`);
  return v.replace(/\/+$/, '');
};

/**
 * COSMOS_BACKUP_AZURE_ARM_ENDPOINT, COSMOS_BACKUP_AZURE_AUTHORITY_HOST, COSMOS_BACKUP_AZURE_CA_FILE,
 * COSMOS_BACKUP_AZURE_POLL_INTERVAL_MS, COSMOS_BACKUP_AZURE_ALLOW_MIGRATION (true/false).
 */
export function loadAzureSettings(env: NodeJS.ProcessEnv = process.env): AzureSettings {
  const caFile = env.COSMOS_BACKUP_AZURE_CA_FILE;
  let caBundle: string | null = null;
  if (caFile) {
    try { caBundle = readFileSync(caFile, 'utf8'); } catch (e) {
      throw new CosmosBackupError('INVALID_ARGUMENT', `COSMOS_BACKUP_AZURE_CA_FILE: cannot read ${caFile}: ${(e as Error).message}`);
    }
  }
  const poll = Number(env.COSMOS_BACKUP_AZURE_POLL_INTERVAL_MS ?? 2000);
  if (!Number.isInteger(poll) || poll < 0) throw new CosmosBackupError('INVALID_ARGUMENT', 'COSMOS_BACKUP_AZURE_POLL_INTERVAL_MS: expected a whole number of milliseconds');
  return {
    armEndpoint: url('COSMOS_BACKUP_AZURE_ARM_ENDPOINT', env.COSMOS_BACKUP_AZURE_ARM_ENDPOINT || PUBLIC_CLOUD.armEndpoint),
    authorityHost: url('COSMOS_BACKUP_AZURE_AUTHORITY_HOST', env.COSMOS_BACKUP_AZURE_AUTHORITY_HOST || PUBLIC_CLOUD.authorityHost),
    caBundle,
    pollIntervalMs: poll,
    maxRetries: 8,
    allowMigration: env.COSMOS_BACKUP_AZURE_ALLOW_MIGRATION === 'true',
  };
}
