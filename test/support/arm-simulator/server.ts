// THE ARM SIMULATOR — a stand-in for Azure Resource Manager and Microsoft Entra ID, for tests and
// `npm run dev:cloud` only. It speaks HTTPS on loopback (certificate from a CA made per run) to the
// real @azure/identity and @azure/arm-* clients: Entra's OpenID configuration and token endpoints,
// subscriptions, resource groups, generic resources, Cosmos DB accounts with continuous backup and
// point-in-time restore, Cosmos DB for PostgreSQL clusters and role permissions, with paging,
// long-running operations as @azure/core-lro expects them, and injectable faults; compute (VMs whose
// Run Command scripts really run), network and storage accounts live in infra.ts.
// State lives in model.ts; the control surface is the ArmSimulator methods and POST /_sim/<method>.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeTls } from './tls.ts';
import {
  ArmError, SimState, armKind, type AccountSeed, type ApiKind, type ClusterSeed, type SimAccount, type SimCluster, type SimOperation, type SimPrincipal,
} from './model.ts';
import { Infra, type AzuriteEndpoints } from './infra.ts';

export interface Faults {
  /** probability (0..1) that an ARM request gets 429 */
  throttleRate: number;
  /** the next N ARM requests get 429 */
  throttleNext: number;
  /** Retry-After sent with a 429 (seconds); retryAfterMs adds retry-after-ms for sub-second waits */
  retryAfterSeconds: number;
  retryAfterMs: number | null;
  /** the next N writes (PUT/PATCH/DELETE) get 409 Conflict */
  conflictNext: number;
  /** the next N long-running operations end Failed */
  failNextLro: number;
}

export interface LoggedRequest { method: string; path: string; query: Record<string, string>; body: any; status: number; clientId: string | null }

const NO_FAULTS: Faults = { throttleRate: 0, throttleNext: 0, retryAfterSeconds: 1, retryAfterMs: null, conflictNext: 0, failNextLro: 0 };
const low = (s: string) => s.toLowerCase();

/** Actions each route needs (for 403s and the permissions list), matched with * wildcards. */
function requiredAction(method: string, segs: string[]): string | null {
  const p = low(segs.join('/'));
  if (p.includes('microsoft.authorization/permissions')) return null;
  if (p.includes('microsoft.documentdb/databaseaccounts')) {
    if (p.endsWith('/listconnectionstrings')) return 'Microsoft.DocumentDB/databaseAccounts/listConnectionStrings/action';
    if (p.endsWith('/listkeys')) return 'Microsoft.DocumentDB/databaseAccounts/listKeys/action';
    return method === 'GET' ? 'Microsoft.DocumentDB/databaseAccounts/read' : method === 'DELETE' ? 'Microsoft.DocumentDB/databaseAccounts/delete' : 'Microsoft.DocumentDB/databaseAccounts/write';
  }
  if (p.includes('microsoft.documentdb/locations') && p.includes('restorabledatabaseaccounts')) {
    return /restorabledatabaseaccounts(\/[^/]+)?$/.test(p) ? 'Microsoft.DocumentDB/locations/restorableDatabaseAccounts/read' : 'Microsoft.DocumentDB/locations/restorableDatabaseAccounts/*/read';
  }
  if (p.includes('microsoft.documentdb/restorabledatabaseaccounts')) return 'Microsoft.DocumentDB/locations/restorableDatabaseAccounts/read';
  if (p.includes('microsoft.dbforpostgresql/servergroupsv2')) return method === 'GET' ? 'Microsoft.DBforPostgreSQL/serverGroupsv2/read' : 'Microsoft.DBforPostgreSQL/serverGroupsv2/write';
  if (/^subscriptions\/[^/]+\/resourcegroups/.test(p)) return method === 'GET' ? 'Microsoft.Resources/subscriptions/resourceGroups/read' : 'Microsoft.Resources/subscriptions/resourceGroups/write';
  return null;
}
export function actionAllowed(p: SimPrincipal, action: string): boolean {
  const m = (pattern: string) => new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join('.*')}$`, 'i').test(action);
  return p.actions.some(m) && !p.notActions.some(m);
}

export class ArmSimulator {
  readonly state = new SimState();
  faults: Faults = { ...NO_FAULTS };
  /** list responses are cut into pages of this many items, joined by absolute nextLinks */
  pageSize = 2;
  readonly requests: LoggedRequest[] = [];
  url = '';
  caCert = '';
  /** the CA written to a file, for NODE_EXTRA_CA_CERTS or a controller's CA-bundle setting */
  caFile = '';
  #server: https.Server | undefined;
  #dir = '';
  #tokens = new Map<string, string>();
  #seed = 0x2545f491;
  /** the run's Azurite: every storage account created here is that one account (devstoreaccount1) */
  azurite: AzuriteEndpoints | undefined;
  /** compute, network and storage resources; VMs run their scripts in sandboxes under the temp dir */
  readonly infra = new Infra(this.state, {
    url: () => this.url, dir: () => this.#dir, startLro: (op) => this.#startLro(op), azurite: () => this.azurite,
  });

  async start(port = 0): Promise<this> {
    const tls = await makeTls();
    this.caCert = tls.caCert;
    this.#dir = mkdtempSync(path.join(tmpdir(), 'cb-armsim-'));
    this.caFile = path.join(this.#dir, 'ca.pem');
    writeFileSync(this.caFile, tls.caCert);
    this.#server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => void this.#handle(req, res));
    await new Promise<void>((resolve, reject) => {
      this.#server!.once('error', reject);
      this.#server!.listen(port, '127.0.0.1', () => resolve());
    });
    this.url = `https://localhost:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    if (this.#server) {
      this.#server.closeAllConnections();
      await new Promise<void>((r) => this.#server!.close(() => r()));
    }
    this.infra.stopAll();
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
  }

  // ---- control surface ----
  addSubscription(id: string, displayName: string, tenantId: string): void { this.state.addSubscription(id, displayName, tenantId); }
  addPrincipal(p: Partial<SimPrincipal> & { tenantId: string; clientId: string; secret: string }): SimPrincipal { return this.state.addPrincipal(p); }
  setPermissions(clientId: string, actions: string[], notActions: string[] = []): void {
    const p = this.state.principals.get(low(clientId));
    if (!p) throw new Error(`simulator: no principal ${clientId}`);
    p.actions = actions;
    p.notActions = notActions;
  }
  addAccount(seed: AccountSeed): SimAccount { return this.state.addAccount(seed); }
  addCluster(seed: ClusterSeed): SimCluster { return this.state.addCluster(seed); }
  deleteAccount(name: string): SimAccount {
    const a = this.state.findAccount(name);
    this.state.deleteAccount(a);
    return a;
  }
  addDatabase(accountName: string, database: string, collections: string[] = []): void {
    const a = this.state.findAccount(accountName);
    const now = this.state.now();
    const r = () => randomBytes(6).toString('base64');
    let d = a.databases.find((x) => x.name === database && !x.deletedAt);
    if (!d) a.databases.push(d = { name: database, rid: r(), createdAt: now, collections: [] });
    for (const c of collections) d.collections.push({ name: c, rid: r(), createdAt: now });
  }
  dropDatabase(accountName: string, database: string): void {
    const d = this.state.findAccount(accountName).databases.find((x) => x.name === database && !x.deletedAt);
    if (!d) throw new Error(`simulator: no database ${database}`);
    d.deletedAt = this.state.now();
  }
  /** Deletes a collection, container, graph or (database omitted, Table account) table. */
  dropCollection(accountName: string, database: string | null, collection: string): void {
    const a = this.state.findAccount(accountName);
    const c = a.databases.filter((x) => !x.deletedAt && (database === null || x.name === database)).flatMap((x) => x.collections).find((x) => x.name === collection && !x.deletedAt);
    if (!c) throw new Error(`simulator: no collection ${collection}`);
    c.deletedAt = this.state.now();
  }
  /** listConnectionStrings of this MongoDB account returns this connection string. */
  setMongoConnectionString(accountName: string, connectionString: string): void { this.state.findAccount(accountName).mongoConnectionString = connectionString; }
  /** The cluster's coordinator FQDN becomes host (or host:port when the port is not 5432). */
  pointCoordinator(clusterName: string, host: string, port = 5432): void { this.state.findCluster(clusterName).coordinatorFqdn = port === 5432 ? host : `${host}:${port}`; }
  advanceTime(ms: number): void { this.state.advance(ms); }
  /** Kills every process of a VM (by id or name) without a deallocate: a crashed guest. */
  crashVm(id: string): void { this.infra.crashVm(id); }
  /** Live processes of a VM: its scripts and what they left running. */
  vmProcesses(id: string) { return this.infra.vmProcesses(id); }
  /** Every script the VM ran (action and managed), with its output tails; protected values are never kept. */
  runCommandHistory(id: string) { return this.infra.runCommandHistory(id); }
  /** The directory a VM's scripts run in. */
  vmSandbox(id: string): string { return this.infra.vmSandbox(id); }
  setFaults(f: Partial<Faults>): void { this.faults = { ...this.faults, ...f }; }
  clearFaults(): void { this.faults = { ...NO_FAULTS }; }
  setLroPolls(polls: number, migrationPolls = polls + 1): void { this.state.lroPolls = polls; this.state.migrationPolls = migrationPolls; }
  /** Requests that reached the ARM routes (not throttled), newest last. */
  armRequests(filter: { method?: string; pathIncludes?: string } = {}): LoggedRequest[] {
    return this.requests.filter((r) => r.status !== 429 && (!filter.method || r.method === filter.method) && (!filter.pathIncludes || low(r.path).includes(low(filter.pathIncludes))));
  }

  // ---- HTTP ----
  #random(): number {
    // xorshift: reproducible throttling patterns from run to run
    let x = this.#seed;
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    this.#seed = x >>> 0;
    return this.#seed / 0x1_0000_0000;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    // ARM tolerates '//subscriptions/…' (getById joins '/' and an id that starts with '/')
    const u = new URL((req.url ?? '/').replace(/^\/+/, '/'), this.url);
    const method = (req.method ?? 'GET').toUpperCase();
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      const text = body === undefined ? '' : JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-ms-request-id': randomBytes(8).toString('hex'), ...headers });
      res.end(text);
      return status;
    };
    try {
      if (u.pathname.startsWith('/_sim/')) { send(200, await this.#control(u.pathname.slice(6), raw ? JSON.parse(raw) : {})); return; }
      const segs = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
      if (segs[1] === 'v2.0' || segs[1] === 'oauth2' || segs[0] === 'common') { this.#entra(method, segs, raw, send); return; }
      const query = Object.fromEntries(u.searchParams);
      let body: any;
      try { body = raw ? JSON.parse(raw) : undefined; } catch { send(400, { error: { code: 'InvalidRequestContent', message: 'The request content was invalid and could not be deserialized.' } }); return; }
      const log: LoggedRequest = { method, path: u.pathname, query, body, status: 0, clientId: null };
      this.requests.push(log);
      const auth = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
      const clientId = auth ? this.#tokens.get(auth[1]!) : undefined;
      if (!clientId) { log.status = send(401, { error: { code: 'InvalidAuthenticationToken', message: 'The access token is invalid.' } }); return; }
      log.clientId = clientId;
      const principal = this.state.principals.get(low(clientId))!;
      if (this.faults.throttleNext > 0 || (this.faults.throttleRate > 0 && this.#random() < this.faults.throttleRate)) {
        if (this.faults.throttleNext > 0) this.faults.throttleNext--;
        const h: Record<string, string> = { 'retry-after': String(this.faults.retryAfterSeconds) };
        if (this.faults.retryAfterMs !== null) h['retry-after-ms'] = String(this.faults.retryAfterMs);
        log.status = send(429, { error: { code: 'TooManyRequests', message: 'The request is being throttled as the limit has been reached for operation type - Read_ObservationWindow_00:05:00.' } }, h);
        return;
      }
      if (method !== 'GET' && method !== 'POST' && this.faults.conflictNext > 0) {
        this.faults.conflictNext--;
        log.status = send(409, { error: { code: 'Conflict', message: 'There is already an operation in progress which requires exclusive lock on this service. Please retry the operation after sometime.' } });
        return;
      }
      const action = requiredAction(method, segs);
      if (action && !actionAllowed(principal, action)) {
        log.status = send(403, { error: { code: 'AuthorizationFailed', message: `The client '${clientId}' does not have authorization to perform action '${action}' over scope '${u.pathname}' or the scope is invalid.` } });
        return;
      }
      const r = this.#arm(method, segs, query, body, principal);
      log.status = send(r.status, r.body, r.headers);
    } catch (e) {
      const status = e instanceof ArmError ? e.status : 500;
      const code = e instanceof ArmError ? e.code : 'InternalServerError';
      const last = this.requests.at(-1);
      const s = send(status, { error: { code, message: (e as Error).message } });
      if (last && last.status === 0) last.status = s;
    }
  }

  async #control(op: string, args: any): Promise<unknown> {
    switch (op) {
      case 'addSubscription': return this.addSubscription(args.id, args.displayName, args.tenantId);
      case 'addPrincipal': return this.addPrincipal(args);
      case 'setPermissions': return this.setPermissions(args.clientId, args.actions, args.notActions);
      case 'addAccount': return this.#accountJson(this.addAccount(args));
      case 'addCluster': return this.#clusterJson(this.addCluster(args));
      case 'deleteAccount': return this.deleteAccount(args.name).instanceId;
      case 'addDatabase': return this.addDatabase(args.account, args.database, args.collections);
      case 'dropDatabase': return this.dropDatabase(args.account, args.database);
      case 'dropCollection': return this.dropCollection(args.account, args.database ?? null, args.collection);
      case 'setMongoConnectionString': return this.setMongoConnectionString(args.account, args.connectionString);
      case 'pointCoordinator': return this.pointCoordinator(args.cluster, args.host, args.port);
      case 'advanceTime': return this.advanceTime(Number(args.ms));
      case 'setFaults': return this.setFaults(args);
      case 'clearFaults': return this.clearFaults();
      case 'crashVm': return this.crashVm(args.id);
      case 'vmProcesses': return this.vmProcesses(args.id);
      case 'runCommandHistory': return this.runCommandHistory(args.id);
      default: throw new ArmError(404, 'NotFound', `simulator control: unknown operation ${op}`);
    }
  }

  #entra(method: string, segs: string[], raw: string, send: (s: number, b: unknown) => number): void {
    const tenant = segs[0]!;
    const base = `${this.url}/${tenant}`;
    if (method === 'GET' && segs[1] === 'v2.0' && segs.slice(2).join('/') === '.well-known/openid-configuration') {
      send(200, {
        token_endpoint: `${base}/oauth2/v2.0/token`, authorization_endpoint: `${base}/oauth2/v2.0/authorize`, issuer: `${base}/v2.0`,
        jwks_uri: `${base}/discovery/v2.0/keys`, end_session_endpoint: `${base}/oauth2/v2.0/logout`, response_types_supported: ['code', 'token'],
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'], tenant_region_scope: 'EU',
      });
      return;
    }
    if (method === 'POST' && segs[1] === 'oauth2' && segs.at(-1) === 'token') {
      const form = new URLSearchParams(raw);
      const p = this.state.principals.get(low(form.get('client_id') ?? ''));
      if (!p || low(p.tenantId) !== low(tenant)) {
        send(400, { error: 'unauthorized_client', error_description: `AADSTS700016: Application with identifier '${form.get('client_id')}' was not found in the directory '${tenant}'.`, error_codes: [700016] });
        return;
      }
      if (form.get('client_secret') !== p.secret) {
        send(401, { error: 'invalid_client', error_description: `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${p.clientId}'.`, error_codes: [7000215] });
        return;
      }
      const token = `sim.${randomBytes(24).toString('base64url')}`;
      this.#tokens.set(token, p.clientId);
      send(200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: token });
      return;
    }
    send(404, { error: 'not_found', error_description: `simulator: no identity endpoint ${segs.join('/')}` });
  }

  #page<T>(items: T[], query: Record<string, string>, path: string, map: (x: T) => unknown, paged = true): { status: number; body: unknown } {
    if (!paged) return { status: 200, body: { value: items.map(map) } };
    const skip = Number(query.$skiptoken ?? 0);
    const page = items.slice(skip, skip + this.pageSize);
    const body: { value: unknown[]; nextLink?: string } = { value: page.map(map) };
    if (skip + this.pageSize < items.length) {
      const next = new URL(path, this.url);
      for (const [k, v] of Object.entries(query)) if (k !== '$skiptoken') next.searchParams.set(k, v);
      next.searchParams.set('$skiptoken', String(skip + this.pageSize));
      body.nextLink = next.toString();
    }
    return { status: 200, body };
  }

  #opUrl(op: SimOperation, query: Record<string, string>): string {
    return `${this.url}/subscriptions/${op.subscriptionId}/providers/Microsoft.DocumentDB/locations/${encodeURIComponent(op.location)}/operationsStatus/${op.id}?api-version=${query['api-version'] ?? '2024-11-15'}`;
  }

  #startLro(op: SimOperation): void {
    if (this.faults.failNextLro > 0) {
      this.faults.failNextLro--;
      op.failOnPoll = true;
    }
  }

  #arm(method: string, segs: string[], query: Record<string, string>, body: any, principal: SimPrincipal): { status: number; body?: unknown; headers?: Record<string, string> } {
    const st = this.state;
    const path = '/' + segs.join('/');
    const l = segs.map(low);
    const notFound = () => { throw new ArmError(404, 'NotFound', `simulator: no ARM route ${method} ${path}`); };
    // Permissions for any scope: {scope}/providers/Microsoft.Authorization/permissions
    const pi = l.indexOf('microsoft.authorization');
    if (pi > 0 && l[pi + 1] === 'permissions' && method === 'GET') {
      return { status: 200, body: { value: [{ actions: principal.actions, notActions: principal.notActions, dataActions: [], notDataActions: [] }] } };
    }
    if (l[0] !== 'subscriptions') return notFound();
    if (segs.length === 1) {
      const subs = [...st.subscriptions.values()].filter((s) => st.canSee(principal, s.id));
      return this.#page(subs, query, path, (s) => ({ id: `/subscriptions/${s.id}`, subscriptionId: s.id, displayName: s.displayName, tenantId: s.tenantId, state: 'Enabled' }));
    }
    const sub = st.subscription(segs[1]!);
    if (!st.canSee(principal, sub.id)) throw new ArmError(403, 'AuthorizationFailed', `The client '${principal.clientId}' does not have authorization over scope '/subscriptions/${sub.id}'.`);
    if (segs.length === 2) return { status: 200, body: { id: `/subscriptions/${sub.id}`, subscriptionId: sub.id, displayName: sub.displayName, tenantId: sub.tenantId, state: 'Enabled' } };
    // generic resources
    if (l[2] === 'resources' && segs.length === 3) {
      const filter = /resourceType eq '([^']+)'/i.exec(query.$filter ?? '')?.[1]?.toLowerCase();
      const tagName = /tagName eq '([^']+)'/i.exec(query.$filter ?? '')?.[1];
      const tagValue = /tagValue eq '([^']*)'/i.exec(query.$filter ?? '')?.[1];
      const all = [
        ...[...st.accounts.values()].filter((a) => a.subscriptionId === sub.id).map((a) => ({ id: a.id, name: a.name, type: 'Microsoft.DocumentDB/databaseAccounts', location: a.location, tags: a.tags, kind: armKind(a.api).kind })),
        ...[...st.clusters.values()].filter((c) => c.subscriptionId === sub.id).map((c) => ({ id: c.id, name: c.name, type: 'Microsoft.DBforPostgreSQL/serverGroupsv2', location: c.location, tags: c.tags })),
        ...this.infra.genericList(sub.id),
      ].filter((r) => !filter || low(r.type) === filter)
        .filter((r) => !tagName || (tagName in r.tags && (tagValue === undefined || r.tags[tagName] === tagValue)));
      return this.#page(all, query, path, (r) => r);
    }
    // provider-level paths under the subscription
    if (l[2] === 'providers') {
      const ns = l[3];
      if (ns === 'microsoft.documentdb') {
        if (l[4] === 'databaseaccounts' && segs.length === 5) {
          // Cosmos DB's account lists are one page (the spec's nextLinkName is null)
          return this.#page([...st.accounts.values()].filter((a) => a.subscriptionId === sub.id), query, path, (a) => this.#accountJson(a), false);
        }
        if (l[4] === 'restorabledatabaseaccounts' && segs.length === 5) {
          return this.#page(st.restorables().filter((a) => a.subscriptionId === sub.id), query, path, (a) => this.#restorableJson(a), false);
        }
        if (l[4] === 'locations' && segs.length >= 7) {
          const loc = segs[5]!;
          if (l[6] === 'operationsstatus' && segs.length === 8 && method === 'GET') {
            const op = st.poll(segs[7]!);
            const b: Record<string, unknown> = { id: path, name: op.id, status: op.status };
            if (op.error) b.error = op.error;
            return { status: 200, body: b };
          }
          if (l[6] === 'restorabledatabaseaccounts') {
            const inLoc = st.restorables().filter((a) => a.subscriptionId === sub.id && low(a.location.replace(/\s/g, '')) === low(loc.replace(/\s/g, '')));
            if (segs.length === 7) return this.#page(inLoc, query, path, (a) => this.#restorableJson(a), false);
            const a = st.restorable(segs[7]!);
            if (segs.length === 8) return { status: 200, body: this.#restorableJson(a) };
            return { status: 200, body: { value: this.#restorableFeed(a, low(segs[8]!), query) } };
          }
        }
      }
      if (ns === 'microsoft.dbforpostgresql' && l[4] === 'servergroupsv2' && segs.length === 5) {
        return this.#page([...st.clusters.values()].filter((c) => c.subscriptionId === sub.id), query, path, (c) => this.#clusterJson(c));
      }
      const ir = this.infra.routeSubscription(method, segs, sub.id);
      if (ir) return ir;
      return notFound();
    }
    if (l[2] !== 'resourcegroups') return notFound();
    if (segs.length === 3) {
      return this.#page([...st.resourceGroups.values()].filter((g) => g.subscriptionId === sub.id), query, path,
        (g) => ({ id: `/subscriptions/${sub.id}/resourceGroups/${g.name}`, name: g.name, type: 'Microsoft.Resources/resourceGroups', location: g.location, tags: g.tags, properties: { provisioningState: 'Succeeded' } }));
    }
    const rgName = segs[3]!;
    if (segs.length === 4) {
      const rg = method === 'PUT' ? st.ensureResourceGroup(sub.id, rgName, body?.location, body?.tags) : st.resourceGroup(sub.id, rgName);
      return { status: 200, body: { id: `/subscriptions/${sub.id}/resourceGroups/${rg.name}`, name: rg.name, type: 'Microsoft.Resources/resourceGroups', location: rg.location, tags: rg.tags, properties: { provisioningState: 'Succeeded' } } };
    }
    const rg = st.resourceGroup(sub.id, rgName);
    if (l[4] !== 'providers') return notFound();
    const ir = this.infra.route(method, segs, query, body, sub.id, rg.name);
    if (ir) return ir;
    if (l[5] === 'microsoft.documentdb' && l[6] === 'databaseaccounts') {
      if (segs.length === 7) return this.#page([...st.accounts.values()].filter((a) => a.subscriptionId === sub.id && low(a.resourceGroup) === low(rg.name)), query, path, (a) => this.#accountJson(a), false);
      const name = segs[7]!;
      if (segs.length === 8) return this.#accountRoute(method, sub.id, rg.name, name, query, body);
      const a = st.account(sub.id, rg.name, name);
      // databases and collections: sqlDatabases/{db}[/containers/{c}], mongodbDatabases/{db}[/collections/{c}],
      // gremlinDatabases/{db}[/graphs/{g}]; a Table account's tables/{t} live in its one tables database
      const table = segs.length === 10 && l[8] === 'tables';
      if (table || ((l[8] === 'sqldatabases' || l[8] === 'mongodbdatabases' || l[8] === 'gremlindatabases') && (segs.length === 10 || (segs.length === 12 && (l[10] === 'containers' || l[10] === 'collections' || l[10] === 'graphs'))))) {
        const dbName = table ? st.tablesDatabase(a).name : segs[9]!;
        const coll = table ? segs[9]! : segs.length === 12 ? segs[11]! : null;
        const id = `${a.id}/${segs.slice(8).join('/')}`;
        if (method === 'GET') return { status: 200, body: st.childJson(a, dbName, coll, id) };
        if (method === 'PUT') {
          const { op } = st.putChild(a, dbName, coll, body?.properties?.resource);
          this.#startLro(op);
          return { status: 202, body: undefined, headers: { 'azure-asyncoperation': this.#opUrl(op, query), location: this.#opUrl(op, query) } };
        }
      }
      if (segs.length === 9 && method === 'POST' && l[8] === 'listconnectionstrings') return { status: 200, body: { connectionStrings: this.#connectionStrings(a) } };
      if (segs.length === 9 && method === 'POST' && l[8] === 'listkeys') return { status: 200, body: a.keys };
      if (segs.length === 9 && method === 'POST' && l[8] === 'readonlykeys') return { status: 200, body: { primaryReadonlyMasterKey: a.keys.primaryReadonlyMasterKey, secondaryReadonlyMasterKey: a.keys.secondaryReadonlyMasterKey } };
      return notFound();
    }
    if (l[5] === 'microsoft.dbforpostgresql' && l[6] === 'servergroupsv2') {
      if (segs.length === 7) return this.#page([...st.clusters.values()].filter((c) => c.subscriptionId === sub.id && low(c.resourceGroup) === low(rg.name)), query, path, (c) => this.#clusterJson(c));
      const c = st.cluster(sub.id, rg.name, segs[7]!);
      if (segs.length === 8 && method === 'GET') return { status: 200, body: this.#clusterJson(c) };
      if (segs.length === 9 && l[8] === 'servers' && method === 'GET') return { status: 200, body: { value: this.#servers(c) } };
      return notFound();
    }
    return notFound();
  }

  #accountRoute(method: string, subscriptionId: string, rg: string, name: string, query: Record<string, string>, body: any): { status: number; body?: unknown; headers?: Record<string, string> } {
    const st = this.state;
    if (method === 'GET') return { status: 200, body: this.#accountJson(st.account(subscriptionId, rg, name)) };
    if (method === 'PATCH') {
      const a = st.account(subscriptionId, rg, name);
      const op = st.patchAccount(a, body ?? {});
      if (!op) return { status: 200, body: this.#accountJson(a) };
      this.#startLro(op);
      return { status: 200, body: this.#accountJson(a), headers: { 'azure-asyncoperation': this.#opUrl(op, query) } };
    }
    if (method === 'PUT') {
      if (body?.properties?.createMode === 'Restore') {
        const { account, op } = st.restoreAccount(subscriptionId, rg, name, body);
        this.#startLro(op);
        return { status: 200, body: this.#accountJson(account), headers: { 'azure-asyncoperation': this.#opUrl(op, query) } };
      }
      // A plain create: provisioned at once, with the backup policy asked for.
      const p = body?.properties ?? {};
      const cap = (p.capabilities ?? []).map((c: { name: string }) => low(c.name));
      const api: ApiKind = body?.kind === 'MongoDB' ? 'MongoDB' : cap.includes('enablecassandra') ? 'Cassandra' : cap.includes('enablegremlin') ? 'Gremlin' : cap.includes('enabletable') ? 'Table' : 'Sql';
      const bp = p.backupPolicy;
      const a = st.addAccount({ subscriptionId, resourceGroup: rg, name, location: body?.location, api, tags: body?.tags, ageDays: 0,
        backup: bp?.type === 'Continuous' ? (bp.continuousModeProperties?.tier ?? 'Continuous30Days') : 'Periodic' });
      return { status: 200, body: this.#accountJson(a) };
    }
    if (method === 'DELETE') {
      const a = st.account(subscriptionId, rg, name);
      a.provisioningState = 'Deleting';
      const op = st.newOperation(a, () => st.deleteAccount(a), undefined, () => { a.provisioningState = 'Succeeded'; });
      this.#startLro(op);
      const url = this.#opUrl(op, query);
      return { status: 202, body: undefined, headers: { 'azure-asyncoperation': url, location: url } };
    }
    throw new ArmError(405, 'MethodNotAllowed', `${method} is not supported on database accounts`);
  }

  #connectionStrings(a: SimAccount) {
    const host = `${a.name}.documents.azure.com`;
    if (a.api === 'MongoDB') {
      const cs = a.mongoConnectionString ?? `mongodb://${a.name}:${encodeURIComponent(a.keys.primaryMasterKey)}@${a.name}.mongo.cosmos.azure.com:10255/?ssl=true&replicaSet=globaldb&retrywrites=false&maxIdleTimeMS=120000&appName=@${a.name}@`;
      return [
        { connectionString: cs, description: 'Primary MongoDB Connection String', keyKind: 'Primary', type: 'MongoDB' },
        { connectionString: cs.replace(a.keys.primaryMasterKey, a.keys.secondaryMasterKey), description: 'Secondary MongoDB Connection String', keyKind: 'Secondary', type: 'MongoDB' },
      ];
    }
    return [
      { connectionString: `AccountEndpoint=https://${host}:443/;AccountKey=${a.keys.primaryMasterKey};`, description: 'Primary SQL Connection String', keyKind: 'Primary', type: 'Sql' },
      { connectionString: `AccountEndpoint=https://${host}:443/;AccountKey=${a.keys.secondaryMasterKey};`, description: 'Secondary SQL Connection String', keyKind: 'Secondary', type: 'Sql' },
    ];
  }

  #accountJson(a: SimAccount) {
    const { kind, capabilities } = armKind(a.api);
    const backupPolicy: Record<string, unknown> = a.backup.type === 'Continuous'
      ? { type: 'Continuous', continuousModeProperties: { tier: a.backup.tier } }
      : { type: 'Periodic', periodicModeProperties: { backupIntervalInMinutes: 240, backupRetentionIntervalInHours: 8, backupStorageRedundancy: 'Geo' } };
    if (a.migration) backupPolicy.migrationState = { status: 'InProgress', targetType: 'Continuous', startTime: a.migration.startTime.toISOString() };
    return {
      id: a.id, name: a.name, type: 'Microsoft.DocumentDB/databaseAccounts', location: a.location, kind, tags: a.tags,
      systemData: { createdAt: a.createdAt.toISOString() },
      properties: {
        provisioningState: a.provisioningState, documentEndpoint: `https://${a.name}.documents.azure.com:443/`, databaseAccountOfferType: 'Standard',
        instanceId: a.instanceId, capabilities, backupPolicy, publicNetworkAccess: a.publicNetworkAccess,
        locations: [{ id: `${a.name}-${low(a.location)}`, locationName: a.location, failoverPriority: 0, isZoneRedundant: false, provisioningState: a.provisioningState }],
        writeLocations: [{ id: `${a.name}-${low(a.location)}`, locationName: a.location, failoverPriority: 0 }],
        enableMultipleWriteLocations: false,
        ...(a.serverVersion ? { apiProperties: { serverVersion: a.serverVersion } } : {}),
        ...(a.restoreParameters ? { createMode: 'Restore', restoreParameters: a.restoreParameters } : {}),
      },
    };
  }

  #restorableJson(a: SimAccount) {
    const loc = a.location;
    return {
      id: `/subscriptions/${a.subscriptionId}/providers/Microsoft.DocumentDB/locations/${loc}/restorableDatabaseAccounts/${a.instanceId}`,
      name: a.instanceId, type: 'Microsoft.DocumentDB/locations/restorableDatabaseAccounts', location: loc,
      properties: {
        accountName: a.name, creationTime: a.createdAt.toISOString(), ...(a.deletedAt ? { deletionTime: a.deletedAt.toISOString() } : {}),
        oldestRestorableTime: this.state.oldestRestorableTime(a)!.toISOString(), apiType: a.api,
        restorableLocations: [{ locationName: loc, regionalDatabaseAccountInstanceId: a.instanceId.replace(/^.{4}/, 'fdb4'), creationTime: a.createdAt.toISOString() }],
      },
    };
  }

  /** restorable{Sql,Mongodb,Gremlin,Table}{Databases,Containers/Collections/Graphs,Resources} */
  #restorableFeed(a: SimAccount, feed: string, query: Record<string, string>): unknown[] {
    const ev = (owner: string, ownerRid: string, at: Date, type: 'Create' | 'Delete') => ({
      id: randomBytes(8).toString('hex'), name: randomBytes(8).toString('hex'), type: `Microsoft.DocumentDB/${feed}`,
      properties: { resource: { _rid: randomBytes(6).toString('base64'), eventTimestamp: at.toISOString(), ownerId: owner, ownerResourceId: ownerRid, operationType: type, canUndelete: type === 'Delete' ? 'valid' : 'invalid' } },
    });
    const events = <T extends { name: string; rid: string; createdAt: Date; deletedAt?: Date }>(xs: T[]) =>
      xs.flatMap((x) => [ev(x.name, x.rid, x.createdAt, 'Create'), ...(x.deletedAt ? [ev(x.name, x.rid, x.deletedAt, 'Delete')] : [])]);
    if (/^restorable(sql|mongodb|gremlin)databases$/.test(feed) || feed === 'restorabletables') {
      return feed === 'restorabletables' ? events(a.databases.flatMap((d) => d.collections)) : events(a.databases);
    }
    if (/^restorable(sqlcontainers|mongodbcollections|gremlingraphs)$/.test(feed)) {
      const dbRid = query.restorableSqlDatabaseRid ?? query.restorableMongodbDatabaseRid ?? query.restorableGremlinDatabaseRid;
      return events(a.databases.filter((d) => !dbRid || d.rid === dbRid).flatMap((d) => d.collections));
    }
    if (/^restorable(sql|mongodb|gremlin|table)resources$/.test(feed)) {
      const ts = query.restoreTimestampInUtc ? new Date(query.restoreTimestampInUtc) : this.state.now();
      const alive = (x: { createdAt: Date; deletedAt?: Date }) => x.createdAt <= ts && (!x.deletedAt || x.deletedAt > ts);
      if (feed === 'restorabletableresources') return a.databases.filter(alive).flatMap((d) => d.collections.filter(alive)).map((c) => ({ id: c.rid, name: c.name }));
      const inner = feed === 'restorablegremlinresources' ? 'graphNames' : 'collectionNames';
      return a.databases.filter(alive).map((d) => ({ id: d.rid, name: d.name, databaseName: d.name, [inner]: d.collections.filter(alive).map((c) => c.name) }));
    }
    throw new ArmError(404, 'NotFound', `simulator: no restorable feed ${feed}`);
  }

  #clusterJson(c: SimCluster) {
    return {
      id: c.id, name: c.name, type: 'Microsoft.DBforPostgreSQL/serverGroupsv2', location: c.location, tags: c.tags,
      systemData: { createdAt: c.createdAt.toISOString() },
      properties: {
        provisioningState: 'Succeeded', state: 'Ready', administratorLogin: c.administratorLogin, postgresqlVersion: c.postgresqlVersion, citusVersion: '12.1',
        nodeCount: c.workers, coordinatorVCores: 4, nodeVCores: 4, coordinatorStorageQuotaInMb: 524288,
        serverNames: this.#servers(c).map((s) => ({ name: s.name, fullyQualifiedDomainName: s.properties.fullyQualifiedDomainName })),
      },
    };
  }

  #servers(c: SimCluster) {
    const server = (suffix: string, role: 'Coordinator' | 'Worker', fqdn: string) => ({
      id: `${c.id}/servers/${c.name}-${suffix}`, name: `${c.name}-${suffix}`, type: 'Microsoft.DBforPostgreSQL/serverGroupsv2/servers',
      properties: { role, fullyQualifiedDomainName: fqdn, state: 'Ready', postgresqlVersion: c.postgresqlVersion, administratorLogin: c.administratorLogin },
    });
    return [
      server('c', 'Coordinator', c.coordinatorFqdn),
      ...Array.from({ length: c.workers }, (_, i) => server(`w${i}`, 'Worker', `w${i}-${c.name}.postgres.cosmos.azure.com`)),
    ];
  }
}

/** Starts a simulator on a free loopback port (or `port`). */
export async function startArmSimulator(opts: { port?: number; azurite?: AzuriteEndpoints } = {}): Promise<ArmSimulator> {
  const sim = new ArmSimulator();
  sim.azurite = opts.azurite;
  return sim.start(opts.port);
}
