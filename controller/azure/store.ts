// Discovered accounts in the configuration database, and each service account's last check.
import { randomUUID } from 'node:crypto';
import type { Queryable } from '../db/db.ts';
import { notFound } from '../db/errors.ts';
import type { DiscoveredAccount } from './discovery.ts';
import type { DiscoveredKind } from './model.ts';

export interface StoredAccount {
  id: string; serviceAccountId: string; armId: string; instanceId: string | null; name: string; subscriptionId: string;
  resourceGroup: string; region: string; kind: DiscoveredKind; tags: Record<string, string>;
  backupType: 'Periodic' | 'Continuous' | null; continuousTier: number | null; migrating: boolean;
  oldestRestorableTime: string | null; serverVersion: string | null; coordinatorFqdn: string | null;
  discoveredAt: string; lastSeenAt: string; deletedAt: string | null;
}

const iso = (d: unknown) => (d === null || d === undefined ? null : new Date(d as string).toISOString());
const row = (r: any): StoredAccount => ({
  id: r.id, serviceAccountId: r.service_account_id, armId: r.arm_id, instanceId: r.instance_id, name: r.name, subscriptionId: r.subscription_id,
  resourceGroup: r.resource_group, region: r.region, kind: r.kind, tags: r.tags, backupType: r.backup_type, continuousTier: r.continuous_tier,
  migrating: r.migrating, oldestRestorableTime: iso(r.oldest_restorable_time), serverVersion: r.server_version, coordinatorFqdn: r.coordinator_fqdn,
  discoveredAt: iso(r.discovered_at)!, lastSeenAt: iso(r.last_seen_at)!, deletedAt: iso(r.deleted_at),
});

export interface SaveResult { added: number; updated: number; deleted: number }

/**
 * Records one discovery. An instance is matched by instance id when it has one (a deleted account
 * seen only through its restorable instance is the same row as when it was alive), else by ARM id.
 * Rows of the scanned subscriptions that were not seen are marked deleted, never removed.
 */
export async function saveDiscovery(db: Queryable, serviceAccountId: string, accounts: DiscoveredAccount[], scanned: string[], now: Date): Promise<SaveResult> {
  const existing = (await db.query('SELECT * FROM cloud_accounts WHERE service_account_id = $1', [serviceAccountId])).map(row);
  const seen = new Set<string>();
  const res: SaveResult = { added: 0, updated: 0, deleted: 0 };
  for (const a of accounts) {
    const match = existing.find((e) => (a.instanceId
      ? e.instanceId?.toLowerCase() === a.instanceId.toLowerCase()
      : !e.instanceId && e.armId.toLowerCase() === a.armId.toLowerCase()));
    if (match) {
      seen.add(match.id);
      // A restorable-only sighting knows no resource group or tags: keep what the live account said.
      const restorableOnly = !a.resourceGroup;
      await db.query(
        `UPDATE cloud_accounts SET arm_id=$2, name=$3, resource_group=$4, region=$5, kind=$6, tags=$7, backup_type=$8, continuous_tier=$9, migrating=$10,
           oldest_restorable_time=$11, server_version=coalesce($12, server_version), coordinator_fqdn=$13, last_seen_at=$14, deleted_at=$15 WHERE id=$1`,
        [match.id, restorableOnly ? match.armId : a.armId, a.name, restorableOnly ? match.resourceGroup : a.resourceGroup, a.region, a.kind,
          JSON.stringify(restorableOnly ? match.tags : a.tags), a.backupType ?? match.backupType, a.tierDays ?? (restorableOnly ? match.continuousTier : null), a.migrating,
          a.oldestRestorableTime, a.serverVersion, a.coordinatorFqdn, now, a.deletedAt ?? (restorableOnly ? (match.deletedAt ?? now) : null)]);
      res.updated++;
    } else {
      const id = randomUUID();
      seen.add(id);
      await db.query(
        `INSERT INTO cloud_accounts (id, service_account_id, arm_id, instance_id, name, subscription_id, resource_group, region, kind, tags, backup_type,
           continuous_tier, migrating, oldest_restorable_time, server_version, coordinator_fqdn, discovered_at, last_seen_at, deleted_at)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$17,$18)`,
        [id, serviceAccountId, a.armId, a.instanceId, a.name, a.subscriptionId, a.resourceGroup, a.region, a.kind, JSON.stringify(a.tags), a.backupType,
          a.tierDays, a.migrating, a.oldestRestorableTime, a.serverVersion, a.coordinatorFqdn, now, a.deletedAt]);
      res.added++;
    }
  }
  const subs = new Set(scanned.map((s) => s.toLowerCase()));
  for (const e of existing) {
    if (seen.has(e.id) || e.deletedAt || !subs.has(e.subscriptionId.toLowerCase())) continue;
    await db.query('UPDATE cloud_accounts SET deleted_at = $2 WHERE id = $1', [e.id, now]);
    res.deleted++;
  }
  return res;
}

export async function listStoredAccounts(db: Queryable, serviceAccountId?: string): Promise<StoredAccount[]> {
  return (await db.query('SELECT * FROM cloud_accounts WHERE ($1::text IS NULL OR service_account_id = $1) ORDER BY lower(name), discovered_at', [serviceAccountId ?? null])).map(row);
}

export async function getStoredAccount(db: Queryable, id: string): Promise<StoredAccount> {
  const r = (await db.query('SELECT * FROM cloud_accounts WHERE id = $1', [id]))[0];
  if (!r) throw notFound('account', id);
  return row(r);
}

export interface CheckRecord { serviceAccountId: string; checkedAt: string; subscriptions: { id: string; name: string }[]; missingActions: Record<string, string[]>; error: string | null; lastRescanAt: string | null }

export async function saveCheck(db: Queryable, saId: string, c: { subscriptions: { id: string; name: string }[]; missingActions: Record<string, string[]>; error: string | null }): Promise<void> {
  await db.query(
    `INSERT INTO service_account_checks (service_account_id, checked_at, subscriptions, missing_actions, error) VALUES ($1, now(), $2, $3, $4)
     ON CONFLICT (service_account_id) DO UPDATE SET checked_at = now(), subscriptions = EXCLUDED.subscriptions, missing_actions = EXCLUDED.missing_actions, error = EXCLUDED.error`,
    [saId, JSON.stringify(c.subscriptions), JSON.stringify(c.missingActions), c.error]);
}

export async function markRescan(db: Queryable, saId: string, at: Date): Promise<void> {
  await db.query(
    `INSERT INTO service_account_checks (service_account_id, last_rescan_at) VALUES ($1, $2)
     ON CONFLICT (service_account_id) DO UPDATE SET last_rescan_at = EXCLUDED.last_rescan_at`, [saId, at]);
}

export async function getCheck(db: Queryable, saId: string): Promise<CheckRecord | null> {
  const r = (await db.query('SELECT * FROM service_account_checks WHERE service_account_id = $1', [saId]))[0];
  return r ? { serviceAccountId: saId, checkedAt: iso(r.checked_at)!, subscriptions: r.subscriptions, missingActions: r.missing_actions, error: r.error, lastRescanAt: iso(r.last_rescan_at) } : null;
}

/** The continuous restore-point records of an account (one per configuration session). */
export async function continuousRecords(db: Queryable, armId: string): Promise<{ createdAt: Date; windowStart: Date | null; continuousTier: number | null }[]> {
  const rows = await db.query(`SELECT created_at, window_start, continuous_tier FROM restore_points WHERE kind = 'continuous' AND lower(account_id) = lower($1) ORDER BY created_at`, [armId]);
  return rows.map((r) => ({ createdAt: new Date(r.created_at), windowStart: r.window_start ? new Date(r.window_start) : null, continuousTier: r.continuous_tier }));
}

export interface CloudEndpoints { armEndpoint: string | null; authorityHost: string | null }

export async function getCloud(db: Queryable, saId: string): Promise<CloudEndpoints> {
  const r = (await db.query('SELECT arm_endpoint, authority_host FROM service_accounts WHERE id = $1', [saId]))[0];
  if (!r) throw notFound('service account', saId);
  return { armEndpoint: r.arm_endpoint, authorityHost: r.authority_host };
}

/** Sets the service account's cloud; it counts as an edit, so the account is checked again. */
export async function setCloud(db: Queryable, saId: string, c: CloudEndpoints): Promise<CloudEndpoints> {
  const rows = await db.query('UPDATE service_accounts SET arm_endpoint = $2, authority_host = $3, updated_at = now() WHERE id = $1 RETURNING id', [saId, c.armEndpoint, c.authorityHost]);
  if (!rows.length) throw notFound('service account', saId);
  return getCloud(db, saId);
}
