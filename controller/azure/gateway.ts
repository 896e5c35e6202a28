// The CloudGateway sessions use, over the real Azure SDK: accounts in a service account's
// subscriptions and continuous-backup enforcement. Clients are cached per service account.
import { createHash } from 'node:crypto';
import type { ServiceAccountCredentials } from '../db/config-store.ts';
import type { CloudGateway } from '../sessions/gateways.ts';
import { CONTINUOUS_NOT_APPLICABLE, continuousNotApplicableReason, type AccountKind, type CloudAccount } from '../policies/scope.ts';
import { CosmosBackupError } from '../../shared/errors.ts';
import { clientsFor, type AzureClients } from './clients.ts';
import { discover, type DiscoveredAccount } from './discovery.ts';
import { ensureContinuousBackup, type EnsureResult } from './continuous.ts';
import type { AzureSettings } from './settings.ts';

/** Live accounts of every kind: a Cassandra account in a scope is reported by the session, not hidden. */
export function toCloudAccount(a: DiscoveredAccount): CloudAccount | null {
  if (a.deletedAt) return null;
  return { id: a.armId, name: a.name, subscriptionId: a.subscriptionId, resourceGroup: a.resourceGroup, region: a.region, kind: a.kind as AccountKind, tags: a.tags };
}

export class AzureCloudGateway implements CloudGateway {
  readonly settings: AzureSettings;
  readonly #clients = new Map<string, AzureClients>();
  #migration: ((account: CloudAccount) => Promise<boolean | null>) | undefined;
  #endpoints: ((id: string) => Promise<{ armEndpoint: string | null; authorityHost: string | null }>) | undefined;

  constructor(settings: AzureSettings) {
    this.settings = settings;
  }

  /** Where a service account's own cloud endpoints come from (the configuration database). */
  useEndpoints(lookup: (serviceAccountId: string) => Promise<{ armEndpoint: string | null; authorityHost: string | null }>): void {
    this.#endpoints = lookup;
  }

  /** Whether the policy that processes an account allows migrating it from periodic backup. */
  useMigrationPolicy(lookup: (account: CloudAccount) => Promise<boolean | null>): void {
    this.#migration = lookup;
  }

  /** Clients for a service account, in its cloud; rebuilt when its credentials or cloud change. */
  async clients(sa: ServiceAccountCredentials): Promise<AzureClients> {
    const own = this.#endpoints ? await this.#endpoints(sa.id) : null;
    const settings = { ...this.settings, armEndpoint: own?.armEndpoint ?? this.settings.armEndpoint, authorityHost: own?.authorityHost ?? this.settings.authorityHost };
    const key = `${sa.id}:${createHash('sha256').update(JSON.stringify([sa.tenantId, sa.auth, sa.clientId, sa.clientSecret, settings.armEndpoint, settings.authorityHost])).digest('hex')}`;
    let c = this.#clients.get(key);
    if (!c) {
      for (const k of this.#clients.keys()) if (k.startsWith(`${sa.id}:`)) this.#clients.delete(k);
      c = clientsFor(sa, settings);
      this.#clients.set(key, c);
    }
    return c;
  }

  async listAccounts(sa: ServiceAccountCredentials): Promise<CloudAccount[]> {
    const { accounts } = await discover(sa, await this.clients(sa));
    return accounts.map(toCloudAccount).filter((a): a is CloudAccount => a !== null);
  }

  /**
   * Configuration sessions pass their policy's `allowMigration`. A caller that does not know the
   * choice leaves it out: it then follows the policy that owns the account (else the
   * controller-wide default).
   */
  async ensureContinuousBackup(sa: ServiceAccountCredentials, account: CloudAccount, tier: 7 | 30, opts?: { allowMigration?: boolean }): Promise<EnsureResult> {
    // A cluster is no DocumentDB account: asking the DocumentDB API about it could only fail.
    if (CONTINUOUS_NOT_APPLICABLE.includes(account.kind)) throw new CosmosBackupError('INVALID_ARGUMENT', `${account.name}: ${continuousNotApplicableReason(account.kind)}`);
    const allowMigration = opts?.allowMigration ?? (await this.#migration?.(account)) ?? this.settings.allowMigration;
    return ensureContinuousBackup(await this.clients(sa), account, tier, { allowMigration });
  }
}
