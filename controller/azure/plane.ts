// The Azure control plane as the controller runs it: service-account checks, discovery into the
// configuration database (on demand and every 8 hours), account listing with the REST filters,
// restore windows, and point-in-time restores followed as restore sessions.
import { humanMessage } from '../../shared/errors.ts';
import type { Db } from '../db/db.ts';
import type { SecretBox } from '../db/secrets.ts';
import * as cfg from '../db/config-store.ts';
import * as st from '../db/session-store.ts';
import type { Session } from '../db/session-store.ts';
import { inScope, owners, type AccountKind, type CloudAccount } from '../policies/scope.ts';
import type { Logger } from '../sessions/runner.ts';
import { AzureError, azureError } from './errors.ts';
import { checkServiceAccount, discover, normRegion } from './discovery.ts';
import { IN_ACCOUNT_RESTORE_KINDS, inAccountItem, restorableInstance, restorableResources, restoreDeletedInAccount, restoreToNewAccount, type InAccountRestore, type RestoreSource } from './continuous.ts';
import type { AzureCloudGateway } from './gateway.ts';
import { ACCOUNT_NAME, CONTINUOUS_KINDS, restoreWindow, type RestoreWindow } from './model.ts';
import * as store from './store.ts';

export const RESCAN_INTERVAL_MS = 8 * 3600_000;
export type ProtectionStatus = 'Protected' | 'Unprotected' | 'Unsupported';

export interface AccountFilter {
  subscriptionId?: string; serviceAccountId?: string; search?: string; regions?: string[]; kinds?: string[];
  softDeleted?: boolean; protectionStatus?: ProtectionStatus;
}
export type AccountView = store.StoredAccount & { protectionStatus: ProtectionStatus; policyId: string | null; note: string | null };

export interface RestoreRequest {
  pointInTime: Date; targetName: string; targetResourceGroup: string; targetRegion?: string;
  databases?: { name: string; collections?: string[] }[]; tables?: string[];
}

const glob = (pattern: string) => {
  if (!pattern.includes('*')) return (s: string) => s.toLowerCase().includes(pattern.toLowerCase());
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join('.*')}$`, 'i');
  return (s: string) => re.test(s);
};

export class AzureControlPlane {
  readonly #db: Db;
  readonly #box: SecretBox;
  readonly #gw: AzureCloudGateway;
  readonly #logger: Logger;
  readonly #inflight = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #newTimer: NodeJS.Timeout | undefined;
  readonly #busy = new Map<string, Promise<unknown>>();

  constructor(opts: { db: Db; box: SecretBox; gateway: AzureCloudGateway; logger: Logger }) {
    this.#db = opts.db;
    this.#box = opts.box;
    this.#gw = opts.gateway;
    this.#logger = opts.logger;
    this.#gw.useEndpoints((id) => store.getCloud(this.#db, id));
    this.#gw.useMigrationPolicy(async (account) => {
      const policies = (await cfg.listPolicies(this.#db)).map((p) => ({ ...p, createdAt: new Date(p.createdAt) }));
      const owner = owners(policies, [account]).get(account.id.toLowerCase());
      return policies.find((p) => p.id === owner)?.allowMigration ?? null;
    });
  }

  /**
   * Rescans every service account every 8 hours, and within `newEveryMs` checks and scans a
   * service account that is new or changed since its last check (sign-in, subscriptions, missing
   * actions): creating one is enough to see its accounts.
   */
  startSchedule(intervalMs = RESCAN_INTERVAL_MS, newEveryMs = 15_000): void {
    this.#timer = setInterval(() => void this.rescanAll().catch((e) => this.#logger.error('scheduled rescan failed', { error: humanMessage(e) })), intervalMs);
    this.#timer.unref();
    this.#newTimer = setInterval(() => void this.checkNew().catch((e) => this.#logger.error('service account check failed', { error: humanMessage(e) })), newEveryMs);
    this.#newTimer.unref();
  }

  /** Checks and rescans service accounts never checked, or edited since their last check. */
  async checkNew(): Promise<string[]> {
    const rows = await this.#db.query(
      `SELECT s.id FROM service_accounts s LEFT JOIN service_account_checks c ON c.service_account_id = s.id
       WHERE c.service_account_id IS NULL OR c.checked_at < s.updated_at ORDER BY s.created_at`);
    for (const r of rows) {
      const c = await this.check(r.id);
      if (c.error) {
        this.#logger.error('service account check failed', { serviceAccountId: r.id, error: c.error });
        continue;
      }
      const missing = Object.entries(c.missingActions).filter(([, a]) => a.length);
      for (const [sub, actions] of missing) this.#logger.error('service account lacks Azure permissions', { serviceAccountId: r.id, subscription: sub, missing: actions });
      await this.rescan(r.id).catch((e) => this.#logger.error('rescan failed', { serviceAccountId: r.id, error: humanMessage(e) }));
    }
    return rows.map((r) => r.id as string);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    clearInterval(this.#newTimer);
    while (this.#inflight.size) await Promise.allSettled([...this.#inflight]);
  }

  async #creds(saId: string) { return cfg.serviceAccountCredentials(this.#db, this.#box, saId); }

  /** One check or rescan at a time per service account (the schedule and the API may overlap). */
  #serial<T>(saId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#busy.get(saId) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    const tail = next.catch(() => {});
    this.#busy.set(saId, tail);
    void tail.then(() => { if (this.#busy.get(saId) === tail) this.#busy.delete(saId); });
    return next;
  }

  /** Signs in, lists subscriptions, names missing actions; the result is stored for the API. */
  check(saId: string): Promise<store.CheckRecord> { return this.#serial(saId, () => this.#check(saId)); }
  async #check(saId: string): Promise<store.CheckRecord> {
    const sa = await this.#creds(saId);
    try {
      const r = await checkServiceAccount(sa, await this.#gw.clients(sa));
      await store.saveCheck(this.#db, saId, { subscriptions: r.subscriptions.map((s) => ({ id: s.subscriptionId, name: s.displayName })), missingActions: r.missingActions, error: null });
    } catch (e) {
      await store.saveCheck(this.#db, saId, { subscriptions: [], missingActions: {}, error: humanMessage(e) });
    }
    return (await store.getCheck(this.#db, saId))!;
  }

  /** Discovery for one service account; warnings name accounts continuous backup cannot cover. */
  rescan(saId: string): Promise<store.SaveResult & { warnings: string[] }> { return this.#serial(saId, () => this.#rescan(saId)); }
  async #rescan(saId: string): Promise<store.SaveResult & { warnings: string[] }> {
    const sa = await this.#creds(saId);
    const now = new Date();
    const { accounts, subscriptions } = await discover(sa, await this.#gw.clients(sa));
    const saved = await store.saveDiscovery(this.#db, saId, accounts, subscriptions, now);
    await store.markRescan(this.#db, saId, now);
    const warnings = accounts.filter((a) => !a.deletedAt && a.kind === 'Cassandra')
      .map((a) => `${a.name}: Cassandra accounts cannot use continuous backup (Azure supports NoSQL, MongoDB RU, Gremlin and Table); listed, not protected`);
    for (const w of warnings) this.#logger.info(w, { serviceAccountId: saId });
    return { ...saved, warnings };
  }

  async rescanAll(): Promise<void> {
    for (const sa of await cfg.listServiceAccounts(this.#db)) {
      try { await this.rescan(sa.id); } catch (e) { this.#logger.error('rescan failed', { serviceAccountId: sa.id, error: humanMessage(e) }); }
    }
  }

  async listAccounts(f: AccountFilter = {}): Promise<AccountView[]> {
    const rows = await store.listStoredAccounts(this.#db, f.serviceAccountId);
    const policies = await cfg.listPolicies(this.#db);
    const ranked = policies.map((p) => ({ ...p, createdAt: new Date(p.createdAt) }));
    const asCloud = (a: store.StoredAccount): CloudAccount => ({ id: a.armId, name: a.name, subscriptionId: a.subscriptionId, resourceGroup: a.resourceGroup, region: a.region, kind: a.kind as AccountKind, tags: a.tags });
    const own = owners(ranked, rows.map(asCloud));
    const match = f.search ? glob(f.search) : null;
    const regions = f.regions?.map(normRegion);
    const kinds = f.kinds?.map((k) => k.toLowerCase());
    return rows.map((a): AccountView => {
      const policyId = own.get(a.armId.toLowerCase()) ?? null;
      const supported = a.kind === 'PostgreSQL' || CONTINUOUS_KINDS.includes(a.kind);
      const protectionStatus: ProtectionStatus = !supported ? 'Unsupported' : policyId && ranked.some((p) => p.id === policyId && inScope(asCloud(a), p.scope)) ? 'Protected' : 'Unprotected';
      const note = !supported ? `${a.kind} accounts cannot use continuous backup` : a.backupType === 'Periodic' ? 'periodic backup: a policy with migration allowed moves it to continuous backup (one-way)' : null;
      return { ...a, protectionStatus, policyId, note };
    }).filter((a) => (!f.subscriptionId || a.subscriptionId.toLowerCase() === f.subscriptionId.toLowerCase())
      && (!match || match(a.name))
      && (!regions?.length || regions.includes(normRegion(a.region)))
      && (!kinds?.length || kinds.includes(a.kind.toLowerCase()))
      && (f.softDeleted === undefined || f.softDeleted === Boolean(a.deletedAt))
      && (!f.protectionStatus || a.protectionStatus === f.protectionStatus));
  }

  async #source(accountId: string): Promise<{ row: store.StoredAccount; sa: cfg.ServiceAccountCredentials; src: RestoreSource }> {
    const row = await store.getStoredAccount(this.#db, accountId);
    if (!CONTINUOUS_KINDS.includes(row.kind)) throw new AzureError('INVALID_ARGUMENT', `${row.name}: ${row.kind} accounts have no point-in-time restore through continuous backup`, 0, 'UnsupportedApiKind');
    if (!row.instanceId) throw new AzureError('INVALID_ARGUMENT', `${row.name}: Azure reported no instance id for this account; rescan first`, 0, 'NoInstanceId');
    const sa = await this.#creds(row.serviceAccountId);
    return { row, sa, src: { subscriptionId: row.subscriptionId, region: row.region, instanceId: row.instanceId, kind: row.kind, serverVersion: row.serverVersion } };
  }

  /** The restore window: the controller's records, bounded by what Azure can restore now. */
  async restoreWindow(accountId: string): Promise<(RestoreWindow & { oldestRestorableTime: Date | null }) | null> {
    const { row, sa, src } = await this.#source(accountId);
    let oldest: Date | null;
    let deletedAt: Date | null = row.deletedAt ? new Date(row.deletedAt) : null;
    try {
      const inst = await restorableInstance(await this.#gw.clients(sa), src);
      oldest = inst.oldestRestorableTime ? new Date(inst.oldestRestorableTime) : null;
      if (inst.deletionTime) deletedAt = new Date(inst.deletionTime);
    } catch (e) {
      if (!(e instanceof AzureError && e.status === 404)) throw e;
      return null; // Azure can no longer restore this instance at all
    }
    const w = restoreWindow(await store.continuousRecords(this.#db, row.armId), { oldestRestorableTime: oldest, deletedAt }, new Date());
    return w ? { ...w, oldestRestorableTime: oldest } : null;
  }

  async restoreRegions(accountId: string): Promise<string[]> {
    const { sa, src } = await this.#source(accountId);
    const inst = await restorableInstance(await this.#gw.clients(sa), src);
    return (inst.restorableLocations ?? []).filter((l) => !l.deletionTime).map((l) => normRegion(l.locationName ?? '')).filter(Boolean);
  }

  async restorableDatabases(accountId: string, at: Date): Promise<{ name: string; collections: string[] }[]> {
    const { sa, src } = await this.#source(accountId);
    return restorableResources(await this.#gw.clients(sa), src, at);
  }

  /**
   * Validates a point-in-time restore (window, name, region) and starts it as a restore session
   * that issues the restore PUT by instance id and follows it until the new account is ready.
   */
  async startRestore(accountId: string, req: RestoreRequest): Promise<Session> {
    const { row, sa, src } = await this.#source(accountId);
    if (!ACCOUNT_NAME.test(req.targetName)) throw new AzureError('INVALID_ARGUMENT', `targetName: "${req.targetName}" is not a valid Cosmos DB account name (3-44 lowercase letters, digits and hyphens)`, 400, 'InvalidName');
    const at = req.pointInTime;
    const w = await this.#inWindow(accountId, row.name, at);
    const regions = await this.restoreRegions(accountId);
    const region = normRegion(req.targetRegion ?? row.region);
    if (!regions.includes(region)) throw new AzureError('INVALID_ARGUMENT', `targetRegion: ${row.name} can be restored to ${regions.join(', ') || 'no region'}, not ${region}`, 400, 'InvalidRegion');
    return this.#restoreSession(row, `point-in-time restore of ${row.name} (instance ${src.instanceId}) at ${at.toISOString()} to new account ${req.targetName} in ${req.targetResourceGroup}/${region}`,
      async (log) => {
        const r = await restoreToNewAccount(await this.#gw.clients(sa), { ...src }, {
          name: req.targetName, resourceGroup: req.targetResourceGroup, region, pointInTime: at, tier: w.tierDays === 7 ? 7 : 30,
          databases: req.databases, tables: req.tables,
        }, (m) => void log('info', m));
        await log('info', `new account ${r.id} is ${r.provisioningState}; public network access is disabled and TTL was off during the restore`);
        return `restored to ${r.id}`;
      });
  }

  /** Restores a deleted database or collection into the same account, as a restore session. */
  async startRestoreDeleted(accountId: string, req: InAccountRestore): Promise<Session> {
    const { row, sa, src } = await this.#source(accountId);
    if (row.deletedAt) throw new AzureError('INVALID_ARGUMENT', `${row.name} is deleted; restore the account to a new account instead`, 409, 'AccountDeleted');
    if (!IN_ACCOUNT_RESTORE_KINDS.includes(row.kind)) throw new AzureError('INVALID_ARGUMENT', `${row.name}: restoring deleted databases into the same account is offered for NoSQL, MongoDB RU, Gremlin and Table accounts`, 400, 'UnsupportedApiKind');
    const { what } = inAccountItem(row.kind, req);
    await this.#inWindow(accountId, row.name, req.pointInTime);
    return this.#restoreSession(row, `restore of deleted ${what} into ${row.name} as it was at ${req.pointInTime.toISOString()}`, async () => {
      await restoreDeletedInAccount(await this.#gw.clients(sa), { ...src, id: row.armId, name: row.name, resourceGroup: row.resourceGroup }, req);
      return `${what} restored`;
    });
  }

  async #inWindow(accountId: string, name: string, at: Date): Promise<RestoreWindow> {
    const w = await this.restoreWindow(accountId);
    if (!w) throw new AzureError('INVALID_ARGUMENT', `${name}: no restore window yet: no configuration session has recorded this account's continuous backup`, 409, 'NoRestoreWindow');
    if (at < w.start || at > w.end) {
      throw new AzureError('INVALID_ARGUMENT', `pointInTime ${at.toISOString()} is outside the restore window of ${name}: ${w.start.toISOString()} to ${w.end.toISOString()}`, 400, 'OutsideRestoreWindow');
    }
    return w;
  }

  /** A restore session: its row, log and result; the work runs in the background. */
  async #restoreSession(row: store.StoredAccount, what: string, work: (log: (level: 'info' | 'warning' | 'error', m: string) => Promise<void>) => Promise<string>): Promise<Session> {
    const session = (await st.insertSession(this.#db, { type: 'restore', trigger: 'manual' }))!;
    const log = (level: 'info' | 'warning' | 'error', m: string) => st.appendLog(this.#db, session.id, level, m).catch(() => {});
    const base = { accountId: row.armId, accountName: row.name, bytes: 0 };
    const run = (async () => {
      await log('info', what);
      try {
        const message = await work(log);
        await st.setAccounts(this.#db, session.id, [{ ...base, state: 'success', message }]);
        await st.finishSession(this.#db, session.id, 'success');
      } catch (e) {
        const msg = humanMessage(e instanceof AzureError ? e : azureError(e, 'restore'));
        await log('error', msg);
        await st.setAccounts(this.#db, session.id, [{ ...base, state: 'failed', message: msg }]);
        await st.finishSession(this.#db, session.id, 'failed', msg);
      }
    })();
    const p = run.finally(() => this.#inflight.delete(p));
    this.#inflight.add(p);
    return session;
  }
}
