// THE ARM SIMULATOR'S STATE — a test stand-in, not Azure. It keeps in memory the resources the
// controller manages (subscriptions, resource groups, Cosmos DB accounts and their continuous
// backup, restorable accounts, PostgreSQL clusters, role permissions) and reproduces the refusals
// Azure documents. Pure state: HTTP lives in server.ts.
import { randomUUID, randomBytes } from 'node:crypto';

export type ApiKind = 'Sql' | 'MongoDB' | 'Table' | 'Gremlin' | 'Cassandra';
export type Tier = 'Continuous7Days' | 'Continuous30Days';
const DAY = 86_400_000;
const tierDays = (t: Tier) => (t === 'Continuous7Days' ? 7 : 30);

export class ArmError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export interface SimCollection { name: string; rid: string; createdAt: Date; deletedAt?: Date }
export interface SimDatabase { name: string; rid: string; createdAt: Date; deletedAt?: Date; collections: SimCollection[] }

export interface SimAccount {
  id: string; name: string; subscriptionId: string; resourceGroup: string; location: string; api: ApiKind;
  tags: Record<string, string>; instanceId: string; createdAt: Date; deletedAt?: Date;
  backup: { type: 'Periodic' } | { type: 'Continuous'; tier: Tier };
  /** restores cannot go before this (continuous since, or the older tier's reach after 7 -> 30) */
  restoreFloor: Date | null;
  migration?: { tier: Tier; startTime: Date; pollsLeft: number };
  provisioningState: string;
  publicNetworkAccess: 'Enabled' | 'Disabled';
  serverVersion?: string;
  restoreParameters?: Record<string, unknown>;
  databases: SimDatabase[];
  /** what listConnectionStrings returns for a MongoDB account (control: point it at a stand-in) */
  mongoConnectionString?: string;
  keys: { primaryMasterKey: string; secondaryMasterKey: string; primaryReadonlyMasterKey: string; secondaryReadonlyMasterKey: string };
}

export interface SimCluster {
  id: string; name: string; subscriptionId: string; resourceGroup: string; location: string; tags: Record<string, string>;
  workers: number; coordinatorFqdn: string; postgresqlVersion: string; administratorLogin: string; createdAt: Date;
}

export interface SimPrincipal { tenantId: string; clientId: string; secret: string; subscriptions: string[] | '*'; actions: string[]; notActions: string[] }

export interface SimOperation {
  id: string; location: string; subscriptionId: string; pollsLeft: number;
  status: 'InProgress' | 'Succeeded' | 'Failed';
  error?: { code: string; message: string };
  /** runs once when the operation completes successfully */
  complete(): void;
  /** advances one poll of work that has its own counter (a migration) */
  step?(): boolean;
  /** fault injection: the operation ends Failed at its next poll, undoing what it started */
  failOnPoll?: boolean;
  undo?(): void;
}

export interface AccountSeed {
  subscriptionId: string; resourceGroup: string; name: string; location?: string; api?: ApiKind;
  tags?: Record<string, string>; backup?: 'Periodic' | Tier;
  /** how long ago the account (and its continuous backup) started; default 60 days */
  ageDays?: number;
  databases?: { name: string; collections?: string[] }[];
  serverVersion?: string;
}
export interface ClusterSeed { subscriptionId: string; resourceGroup: string; name: string; location?: string; tags?: Record<string, string>; workers?: number }

const low = (s: string) => s.toLowerCase();
const rid = () => randomBytes(6).toString('base64');
const key = () => randomBytes(48).toString('base64');

export class SimState {
  /** milliseconds added to the wall clock: "advance time" */
  offsetMs = 0;
  /** polls an operation takes; a migration from Periodic takes migrationPolls */
  lroPolls = 2;
  migrationPolls = 3;
  readonly subscriptions = new Map<string, { id: string; displayName: string; tenantId: string }>();
  readonly resourceGroups = new Map<string, { subscriptionId: string; name: string; location: string; tags: Record<string, string> }>();
  readonly accounts = new Map<string, SimAccount>();
  readonly deletedAccounts: SimAccount[] = [];
  readonly clusters = new Map<string, SimCluster>();
  readonly principals = new Map<string, SimPrincipal>();
  readonly operations = new Map<string, SimOperation>();

  now(): Date { return new Date(Date.now() + this.offsetMs); }
  advance(ms: number): void { this.offsetMs += ms; }

  addSubscription(id: string, displayName: string, tenantId: string): void {
    this.subscriptions.set(low(id), { id, displayName, tenantId });
  }
  subscription(id: string) {
    const s = this.subscriptions.get(low(id));
    if (!s) throw new ArmError(404, 'SubscriptionNotFound', `The subscription '${id}' could not be found.`);
    return s;
  }
  ensureResourceGroup(subscriptionId: string, name: string, location = 'westeurope', tags: Record<string, string> = {}) {
    this.subscription(subscriptionId);
    const k = low(`${subscriptionId}/${name}`);
    const existing = this.resourceGroups.get(k);
    if (existing) return existing;
    const rg = { subscriptionId, name, location, tags };
    this.resourceGroups.set(k, rg);
    return rg;
  }
  resourceGroup(subscriptionId: string, name: string) {
    this.subscription(subscriptionId);
    const rg = this.resourceGroups.get(low(`${subscriptionId}/${name}`));
    if (!rg) throw new ArmError(404, 'ResourceGroupNotFound', `Resource group '${name}' could not be found.`);
    return rg;
  }

  accountId(subscriptionId: string, resourceGroup: string, name: string): string {
    return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.DocumentDB/databaseAccounts/${name}`;
  }

  addAccount(seed: AccountSeed): SimAccount {
    const rg = this.ensureResourceGroup(seed.subscriptionId, seed.resourceGroup);
    const now = this.now();
    const created = new Date(now.getTime() - (seed.ageDays ?? 60) * DAY);
    const api = seed.api ?? 'Sql';
    const backup = seed.backup ?? 'Continuous30Days';
    const acc: SimAccount = {
      id: this.accountId(seed.subscriptionId, rg.name, seed.name), name: seed.name, subscriptionId: seed.subscriptionId, resourceGroup: rg.name,
      location: seed.location ?? rg.location, api, tags: seed.tags ?? {}, instanceId: randomUUID(), createdAt: created,
      backup: backup === 'Periodic' ? { type: 'Periodic' } : { type: 'Continuous', tier: backup },
      restoreFloor: backup === 'Periodic' ? null : created,
      provisioningState: 'Succeeded', publicNetworkAccess: 'Enabled',
      serverVersion: api === 'MongoDB' ? (seed.serverVersion ?? '4.2') : undefined,
      databases: (seed.databases ?? []).map((d) => ({
        name: d.name, rid: rid(), createdAt: created, collections: (d.collections ?? []).map((c) => ({ name: c, rid: rid(), createdAt: created })),
      })),
      keys: { primaryMasterKey: key(), secondaryMasterKey: key(), primaryReadonlyMasterKey: key(), secondaryReadonlyMasterKey: key() },
    };
    if (this.accounts.has(low(acc.id))) throw new ArmError(409, 'Conflict', `account ${seed.name} already exists`);
    this.accounts.set(low(acc.id), acc);
    return acc;
  }

  account(subscriptionId: string, resourceGroup: string, name: string): SimAccount {
    this.resourceGroup(subscriptionId, resourceGroup);
    const a = this.accounts.get(low(this.accountId(subscriptionId, resourceGroup, name)));
    if (!a) throw new ArmError(404, 'ResourceNotFound', `The Resource 'Microsoft.DocumentDB/databaseAccounts/${name}' under resource group '${resourceGroup}' was not found.`);
    return a;
  }

  findAccount(name: string): SimAccount {
    const a = [...this.accounts.values()].find((x) => low(x.name) === low(name));
    if (!a) throw new Error(`simulator: no live account named ${name}`);
    return a;
  }

  deleteAccount(a: SimAccount): void {
    this.accounts.delete(low(a.id));
    a.deletedAt = this.now();
    this.deletedAccounts.push(a);
  }

  /** Oldest time a restore can target, or null when the account has no continuous backup yet. */
  oldestRestorableTime(a: SimAccount): Date | null {
    if (a.backup.type !== 'Continuous' || !a.restoreFloor) return null;
    const end = a.deletedAt ?? this.now();
    return new Date(Math.max(a.restoreFloor.getTime(), end.getTime() - tierDays(a.backup.tier) * DAY));
  }

  /** Every account instance Azure can restore from: live continuous ones and deleted ones. */
  restorables(): SimAccount[] {
    return [...this.accounts.values(), ...this.deletedAccounts].filter((a) => a.backup.type === 'Continuous' && a.restoreFloor && a.provisioningState === 'Succeeded');
  }
  restorable(instanceId: string): SimAccount {
    const a = this.restorables().find((x) => low(x.instanceId) === low(instanceId));
    if (!a) throw new ArmError(404, 'NotFound', `Restorable database account with instance id ${instanceId} was not found`);
    return a;
  }

  /**
   * PATCH of an account, with Azure's documented refusals. Returns the operation that finishes
   * the change, or null when nothing needs time.
   */
  patchAccount(a: SimAccount, body: { tags?: Record<string, string>; location?: string; properties?: Record<string, any> }): SimOperation | null {
    const props = body.properties ?? {};
    const bp = props.backupPolicy as { type?: string; continuousModeProperties?: { tier?: Tier } } | undefined;
    const others = Object.keys(props).filter((k) => k !== 'backupPolicy').length + (body.tags ? 1 : 0) + (body.location ? 1 : 0);
    if (bp) {
      if (bp.continuousModeProperties?.tier && others > 0) {
        throw new ArmError(400, 'BadRequest', 'Cannot update Continuous Mode Tier and other properties at the same time');
      }
      if (a.migration) throw new ArmError(400, 'BadRequest', 'Backup policy migration is in progress for this account; backup policy changes are not allowed until it completes.');
      if (bp.type === 'Continuous' && a.api === 'Cassandra') throw new ArmError(400, 'BadRequest', 'Continuous backup mode is not supported for Cassandra API accounts.');
      if (bp.type === 'Periodic' && a.backup.type === 'Continuous') throw new ArmError(400, 'BadRequest', 'Cannot change backup policy from Continuous to Periodic.');
    }
    if (body.tags) a.tags = body.tags;
    if (!bp || bp.type !== 'Continuous') return null;
    const tier: Tier = bp.continuousModeProperties?.tier ?? 'Continuous30Days';
    if (tier !== 'Continuous7Days' && tier !== 'Continuous30Days') throw new ArmError(400, 'BadRequest', `Invalid continuous mode tier ${String(tier)}`);
    if (a.backup.type === 'Periodic') {
      a.migration = { tier, startTime: this.now(), pollsLeft: this.migrationPolls };
      a.provisioningState = 'Updating';
      return this.newOperation(a, () => {
        a.backup = { type: 'Continuous', tier };
        a.restoreFloor = this.now();
        a.migration = undefined;
        a.provisioningState = 'Succeeded';
      }, () => --a.migration!.pollsLeft <= 0, () => { a.migration = undefined; a.provisioningState = 'Succeeded'; });
    }
    if (a.backup.tier === tier) return null;
    const from = a.backup.tier;
    a.provisioningState = 'Updating';
    return this.newOperation(a, () => {
      // 7 -> 30 does not give 30 days at once: the floor stays where 7 days reached.
      if (from === 'Continuous7Days' && tier === 'Continuous30Days') {
        a.restoreFloor = new Date(Math.max(a.restoreFloor!.getTime(), this.now().getTime() - 7 * DAY));
      }
      a.backup = { type: 'Continuous', tier };
      a.provisioningState = 'Succeeded';
    }, undefined, () => { a.provisioningState = 'Succeeded'; });
  }

  /** PUT with createMode Restore: a new account from a restorable instance at a point in time. */
  restoreAccount(subscriptionId: string, resourceGroup: string, name: string, body: any): { account: SimAccount; op: SimOperation } {
    const p = body.properties ?? {};
    const rp = p.restoreParameters ?? {};
    const m = /\/restorableDatabaseAccounts\/([^/]+)$/i.exec(String(rp.restoreSource ?? ''));
    if (!m) throw new ArmError(400, 'BadRequest', 'restoreParameters.restoreSource must be a restorableDatabaseAccounts resource id');
    const src = this.restorable(m[1]!);
    const ts = new Date(String(rp.restoreTimestampInUtc));
    if (Number.isNaN(ts.getTime())) throw new ArmError(400, 'BadRequest', 'restoreParameters.restoreTimestampInUtc is not a valid timestamp');
    const oldest = this.oldestRestorableTime(src)!;
    const latest = src.deletedAt ?? this.now();
    if (ts < oldest || ts > latest) {
      throw new ArmError(400, 'BadRequest', `No database accounts found for restore with the given restore timestamp ${ts.toISOString()}: the account is restorable from ${oldest.toISOString()} to ${latest.toISOString()}`);
    }
    const location = String(body.location ?? '');
    if (low(location.replace(/\s/g, '')) !== low(src.location.replace(/\s/g, ''))) {
      throw new ArmError(400, 'BadRequest', `Restore is only possible into a region where the source account existed (${src.location}), not ${location}`);
    }
    if (src.api === 'MongoDB' && !p.apiProperties?.serverVersion) throw new ArmError(400, 'BadRequest', 'apiProperties.serverVersion is required to restore a MongoDB account');
    const wanted = (p.restoreParameters.databasesToRestore ?? p.restoreParameters.gremlinDatabasesToRestore ?? []) as { databaseName: string; collectionNames?: string[]; graphNames?: string[] }[];
    const alive = <T extends { createdAt: Date; deletedAt?: Date }>(x: T) => x.createdAt <= ts && (!x.deletedAt || x.deletedAt > ts);
    let dbs = src.databases.filter(alive).map((d) => ({ ...d, rid: rid(), createdAt: this.now(), deletedAt: undefined, collections: d.collections.filter(alive).map((c) => ({ ...c, rid: rid(), createdAt: this.now(), deletedAt: undefined })) }));
    if (wanted.length) {
      dbs = wanted.map((w) => {
        const d = dbs.find((x) => x.name === w.databaseName);
        if (!d) throw new ArmError(400, 'BadRequest', `Database ${w.databaseName} does not exist in the source account at ${ts.toISOString()}`);
        const names = w.collectionNames ?? w.graphNames ?? [];
        return names.length ? { ...d, collections: d.collections.filter((c) => names.includes(c.name)) } : d;
      });
    }
    this.ensureResourceGroup(subscriptionId, resourceGroup);
    const acc = this.addAccount({ subscriptionId, resourceGroup, name, location, api: src.api, tags: body.tags ?? {}, backup: 'Periodic', ageDays: 0, serverVersion: p.apiProperties?.serverVersion });
    const tier: Tier = p.backupPolicy?.continuousModeProperties?.tier ?? 'Continuous30Days';
    acc.backup = p.backupPolicy?.type === 'Periodic' ? { type: 'Periodic' } : { type: 'Continuous', tier };
    acc.databases = dbs;
    acc.publicNetworkAccess = p.publicNetworkAccess === 'Disabled' ? 'Disabled' : 'Enabled';
    acc.restoreParameters = { ...rp };
    acc.provisioningState = 'Initializing';
    const op = this.newOperation(acc, () => {
      acc.provisioningState = 'Succeeded';
      acc.restoreFloor = this.now();
    }, undefined, () => { acc.provisioningState = 'Failed'; });
    return { account: acc, op };
  }

  /**
   * PUT of a database or a collection (container) inside an account. With createMode Restore it
   * brings back one that was deleted, as it was at the timestamp (a database with the collections
   * it had then); its restore source must be this account's own restorable instance.
   */
  putChild(a: SimAccount, dbName: string, collName: string | null, resource: any): { op: SimOperation; get: () => unknown } {
    const live = <T extends { name: string; deletedAt?: Date }>(xs: T[], n: string) => xs.find((x) => x.name === n && !x.deletedAt);
    const r = () => randomBytes(6).toString('base64');
    const now = this.now();
    let apply: () => void;
    if (resource?.createMode === 'Restore') {
      const rp = resource.restoreParameters ?? {};
      const inst = /\/restorableDatabaseAccounts\/([^/]+)$/i.exec(String(rp.restoreSource ?? ''))?.[1];
      if (!inst || low(inst) !== low(a.instanceId)) throw new ArmError(400, 'BadRequest', 'restoreSource must be the restorable instance of this same account for an in-account restore');
      const ts = new Date(String(rp.restoreTimestampInUtc));
      const oldest = this.oldestRestorableTime(a);
      if (Number.isNaN(ts.getTime()) || !oldest || ts < oldest || ts > now) throw new ArmError(400, 'BadRequest', `restoreTimestampInUtc must be between ${oldest?.toISOString() ?? '(no continuous backup)'} and ${now.toISOString()}`);
      const at = <T extends { name: string; createdAt: Date; deletedAt?: Date }>(xs: T[], n: string) => xs.filter((x) => x.name === n && x.createdAt <= ts && (!x.deletedAt || x.deletedAt > ts)).at(-1);
      if (collName === null) {
        if (live(a.databases, dbName)) throw new ArmError(409, 'Conflict', `Database ${dbName} exists; only a deleted database can be restored in the account`);
        const old = at(a.databases, dbName);
        if (!old) throw new ArmError(400, 'BadRequest', `Database ${dbName} did not exist at ${ts.toISOString()}`);
        apply = () => { a.databases.push({ name: dbName, rid: r(), createdAt: this.now(), collections: old.collections.filter((c) => c.createdAt <= ts && (!c.deletedAt || c.deletedAt > ts)).map((c) => ({ name: c.name, rid: r(), createdAt: this.now() })) }); };
      } else {
        const d = live(a.databases, dbName);
        if (!d) throw new ArmError(400, 'BadRequest', `Database ${dbName} does not exist; restore the database before its collections`);
        if (live(d.collections, collName)) throw new ArmError(409, 'Conflict', `Collection ${collName} exists; only a deleted collection can be restored in the account`);
        const allColls = a.databases.filter((x) => x.name === dbName).flatMap((x) => x.collections);
        if (!at(allColls, collName)) throw new ArmError(400, 'BadRequest', `Collection ${collName} did not exist at ${ts.toISOString()}`);
        apply = () => { d.collections.push({ name: collName, rid: r(), createdAt: this.now() }); };
      }
    } else if (collName === null) {
      apply = () => { if (!live(a.databases, dbName)) a.databases.push({ name: dbName, rid: r(), createdAt: this.now(), collections: [] }); };
    } else {
      const d = live(a.databases, dbName);
      if (!d) throw new ArmError(404, 'NotFound', `Database ${dbName} not found`);
      apply = () => { if (!live(d.collections, collName)) d.collections.push({ name: collName, rid: r(), createdAt: this.now() }); };
    }
    const op = this.newOperation(a, apply);
    return { op, get: () => this.childJson(a, dbName, collName) };
  }

  /** A Table account's tables are top-level in ARM; here they are the collections of one live database. */
  tablesDatabase(a: SimAccount): SimDatabase {
    if (a.api !== 'Table') throw new ArmError(404, 'NotFound', `${a.name} is not a Table account`);
    let d = a.databases.find((x) => !x.deletedAt);
    if (!d) a.databases.push(d = { name: 'tables', rid: randomBytes(6).toString('base64'), createdAt: this.now(), collections: [] });
    return d;
  }

  /** `id`: the resource id it was asked by (default: a NoSQL database's or container's). */
  childJson(a: SimAccount, dbName: string, collName: string | null, id?: string): unknown {
    const d = a.databases.find((x) => x.name === dbName && !x.deletedAt);
    const c = collName === null ? undefined : d?.collections.find((x) => x.name === collName && !x.deletedAt);
    const it = collName === null ? d : c;
    if (!it) throw new ArmError(404, 'NotFound', `${collName === null ? 'Database' : 'Collection'} ${collName ?? dbName} not found`);
    return { id: id ?? `${a.id}/${collName === null ? 'sqlDatabases' : 'sqlDatabases/' + dbName + '/containers'}/${it.name}`, name: it.name, properties: { resource: { id: it.name, _rid: it.rid, _ts: Math.floor(it.createdAt.getTime() / 1000) } } };
  }

  newOperation(a: { subscriptionId: string; location: string }, complete: () => void, step?: () => boolean, undo?: () => void): SimOperation {
    const op: SimOperation = { id: randomUUID(), location: a.location, subscriptionId: a.subscriptionId, pollsLeft: this.lroPolls, status: 'InProgress', complete, step, undo };
    this.operations.set(op.id, op);
    return op;
  }

  /** One poll: the operation moves on; returns its state after the poll. */
  poll(id: string): SimOperation {
    const op = this.operations.get(id);
    if (!op) throw new ArmError(404, 'NotFound', `operation ${id} not found`);
    if (op.status !== 'InProgress') return op;
    if (op.failOnPoll) {
      this.failOperation(op, 'InternalServerError', 'The operation failed (fault injected by the simulator).');
      op.undo?.();
      return op;
    }
    const stepDone = op.step ? op.step() : true;
    op.pollsLeft--;
    if (op.pollsLeft <= 0 && stepDone) {
      op.status = 'Succeeded';
      op.complete();
    }
    return op;
  }

  failOperation(op: SimOperation, code: string, message: string): void {
    op.status = 'Failed';
    op.error = { code, message };
  }

  clusterId(subscriptionId: string, resourceGroup: string, name: string): string {
    return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.DBforPostgreSQL/serverGroupsv2/${name}`;
  }
  addCluster(seed: ClusterSeed): SimCluster {
    const rg = this.ensureResourceGroup(seed.subscriptionId, seed.resourceGroup);
    const c: SimCluster = {
      id: this.clusterId(seed.subscriptionId, rg.name, seed.name), name: seed.name, subscriptionId: seed.subscriptionId, resourceGroup: rg.name,
      location: seed.location ?? rg.location, tags: seed.tags ?? {}, workers: seed.workers ?? 2,
      coordinatorFqdn: `c-${seed.name}.${randomBytes(4).toString('hex')}.postgres.cosmos.azure.com`, postgresqlVersion: '16', administratorLogin: 'citus',
      createdAt: this.now(),
    };
    this.clusters.set(low(c.id), c);
    return c;
  }
  cluster(subscriptionId: string, resourceGroup: string, name: string): SimCluster {
    this.resourceGroup(subscriptionId, resourceGroup);
    const c = this.clusters.get(low(this.clusterId(subscriptionId, resourceGroup, name)));
    if (!c) throw new ArmError(404, 'ResourceNotFound', `The Resource 'Microsoft.DBforPostgreSQL/serverGroupsv2/${name}' under resource group '${resourceGroup}' was not found.`);
    return c;
  }
  findCluster(name: string): SimCluster {
    const c = [...this.clusters.values()].find((x) => low(x.name) === low(name));
    if (!c) throw new Error(`simulator: no cluster named ${name}`);
    return c;
  }

  addPrincipal(p: Partial<SimPrincipal> & { tenantId: string; clientId: string; secret: string }): SimPrincipal {
    const full: SimPrincipal = { subscriptions: '*', actions: ['*'], notActions: [], ...p };
    this.principals.set(low(p.clientId), full);
    return full;
  }
  canSee(p: SimPrincipal, subscriptionId: string): boolean {
    return p.subscriptions === '*' || p.subscriptions.some((s) => low(s) === low(subscriptionId));
  }
}

/** ARM's `kind` and capabilities for an API kind (how Azure tells the kinds apart). */
export function armKind(api: ApiKind): { kind: 'GlobalDocumentDB' | 'MongoDB'; capabilities: { name: string }[] } {
  switch (api) {
    case 'MongoDB': return { kind: 'MongoDB', capabilities: [{ name: 'EnableMongo' }] };
    case 'Cassandra': return { kind: 'GlobalDocumentDB', capabilities: [{ name: 'EnableCassandra' }] };
    case 'Gremlin': return { kind: 'GlobalDocumentDB', capabilities: [{ name: 'EnableGremlin' }] };
    case 'Table': return { kind: 'GlobalDocumentDB', capabilities: [{ name: 'EnableTable' }] };
    default: return { kind: 'GlobalDocumentDB', capabilities: [] };
  }
}
