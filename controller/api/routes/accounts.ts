// Azure accounts (discovery, filters, rescans), service-account checks, restore windows and
// point-in-time restore. Mounted only when the controller runs with the Azure control plane.
import { createRoute, z } from '@hono/zod-openapi';
import { AzureError } from '../../azure/errors.ts';
import { DISCOVERED_KINDS } from '../../azure/model.ts';
import type { AzureControlPlane } from '../../azure/plane.ts';
import { getCheck, getCloud, setCloud } from '../../azure/store.ts';
import * as cfg from '../../db/config-store.ts';
import type { Db } from '../../db/db.ts';
import type { SecretBox } from '../../db/secrets.ts';
import { ApiError, router } from '../errors.ts';
import { AllowMigrationText, CloudEndpointFields, IdParam, Session } from '../schemas.ts';
import { body, errors, json, security } from './common.ts';

const Timestamp = z.string().openapi({ format: 'date-time' });
const Kind = z.enum(DISCOVERED_KINDS);
const Protection = z.enum(['Protected', 'Unprotected', 'Unsupported']);
const list = <T extends z.ZodType<string, string>>(s: T) => z.string().optional().transform((v) => (v ? v.split(',').map((x) => x.trim()).filter(Boolean) : undefined)).pipe(z.array(s).optional());

export const Account = z.object({
  id: z.string(), serviceAccountId: z.string(), armId: z.string(), instanceId: z.string().nullable(), name: z.string(), subscriptionId: z.string(),
  resourceGroup: z.string(), region: z.string(), kind: Kind, tags: z.record(z.string(), z.string()), backupType: z.enum(['Periodic', 'Continuous']).nullable(),
  continuousTier: z.number().nullable(), migrating: z.boolean(), oldestRestorableTime: z.string().nullable(), serverVersion: z.string().nullable(),
  coordinatorFqdn: z.string().nullable(), discoveredAt: Timestamp, lastSeenAt: Timestamp, deletedAt: z.string().nullable(),
  protectionStatus: Protection, policyId: z.string().nullable(), note: z.string().nullable(),
}).openapi('Account');
const AccountQuery = z.object({
  subscriptionId: z.string().optional(), serviceAccountId: z.string().optional(),
  search: z.string().max(200).optional().openapi({ description: 'substring of the name, or a pattern with * wildcards' }),
  regions: list(z.string()).openapi({ type: 'string', description: 'comma-separated, e.g. westeurope,northeurope' }),
  accountTypes: list(Kind).openapi({ type: 'string', description: `comma-separated: ${DISCOVERED_KINDS.join(', ')}` }),
  softDeleted: z.enum(['true', 'false']).optional().transform((v) => (v === undefined ? undefined : v === 'true')),
  protectionStatus: Protection.optional(),
});
const RescanRequest = z.object({ serviceAccountId: z.string().optional() }).openapi('RescanRequest');
const RescanResult = z.array(z.object({
  serviceAccountId: z.string(), added: z.number(), updated: z.number(), deleted: z.number(), warnings: z.array(z.string()), error: z.string().nullable(),
})).openapi('RescanResult');
const Check = z.object({
  serviceAccountId: z.string(), checkedAt: Timestamp, subscriptions: z.array(z.object({ id: z.string(), name: z.string() })),
  missingActions: z.record(z.string(), z.array(z.string())).openapi({ description: 'per subscription: required actions the service account lacks, by name' }),
  error: z.string().nullable(), lastRescanAt: z.string().nullable(),
}).openapi('ServiceAccountCheck');
const Window = z.object({ start: Timestamp, end: Timestamp, tierDays: z.number().nullable(), records: z.number(), oldestRestorableTime: z.string().nullable() }).openapi('RestoreWindow');
const PointQuery = z.object({ pointInTime: z.iso.datetime({ offset: true }).optional().openapi({ description: 'default: now' }) });
const RestoreRequest = z.object({
  pointInTime: z.iso.datetime({ offset: true }),
  targetName: z.string().min(3).max(44),
  targetResourceGroup: z.string().min(1).max(90),
  targetRegion: z.string().min(1).optional().openapi({ description: 'default: the source account\'s region' }),
  databases: z.array(z.object({ name: z.string().min(1), collections: z.array(z.string().min(1)).optional() })).optional()
    .openapi({ description: 'subset to restore (collections, containers or graphs per database); empty or absent = whole account' }),
  tables: z.array(z.string().min(1)).optional(),
}).openapi('PointInTimeRestoreRequest');

const Cloud = z.object(CloudEndpointFields).openapi('ServiceAccountCloud');

const ContinuousSettings = z.object({ allowMigration: z.boolean().openapi({ description: AllowMigrationText }) }).strict().openapi('PolicyContinuousBackup');

const RestoreDeletedRequest = z.object({
  pointInTime: z.iso.datetime({ offset: true }),
  database: z.string().min(1).openapi({ description: 'the database (Gremlin: graph database); for a Table account, the table' }),
  collection: z.string().min(1).optional().openapi({ description: 'the collection, container or graph; absent: the database (with the collections it had then). For a Table account, a table under database "(tables)"' }),
}).openapi('RestoreDeletedRequest');

/** Azure's refusals as HTTP: bad requests stay 400, sign-in and permission problems 403. */
async function azure<T>(fn: () => Promise<T>): Promise<T> {
  try { return await fn(); } catch (e) {
    if (!(e instanceof AzureError)) throw e;
    if (e.status === 401 || e.status === 403) throw new ApiError(403, 'AZURE_ACCESS', e.message);
    if (e.status === 404) throw new ApiError(404, 'NOT_FOUND', e.message);
    if (e.status === 400) throw new ApiError(400, e.azureCode === 'OutsideRestoreWindow' ? 'OUTSIDE_RESTORE_WINDOW' : 'VALIDATION_FAILED', e.message);
    if (e.code === 'INVALID_ARGUMENT') throw new ApiError(409, e.azureCode.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase(), e.message);
    throw e;
  }
}

export function accountRoutes({ plane, db, box }: { plane: AzureControlPlane; db: Db; box: SecretBox }) {
  const app = router();
  const tags = ['accounts'];
  app.openapi(createRoute({ method: 'get', path: '/accounts', tags, security, request: { query: AccountQuery }, description: 'Discovered Cosmos DB accounts (every API kind) and PostgreSQL clusters, with the product\'s filters.', responses: { 200: json(z.array(Account)), 400: errors[400], 401: errors[401] } }),
    async (c) => {
      const q = c.req.valid('query');
      return c.json(await plane.listAccounts({ ...q, kinds: q.accountTypes }), 200);
    });
  app.openapi(createRoute({ method: 'get', path: '/accounts/{id}', tags, security, request: { params: IdParam }, responses: { 200: json(Account), 401: errors[401], 404: errors[404] } }),
    async (c) => {
      const a = (await plane.listAccounts()).find((x) => x.id === c.req.valid('param').id);
      if (!a) throw new ApiError(404, 'NOT_FOUND', `account ${c.req.valid('param').id} not found`);
      return c.json(a, 200);
    });
  app.openapi(createRoute({ method: 'post', path: '/accounts/rescan', tags, security, description: 'Discovers accounts now (also runs every 8 hours). Vanished accounts are marked deleted, never dropped.', request: { body: { required: false, content: { 'application/json': { schema: RescanRequest } } } }, responses: { 200: json(RescanResult), 401: errors[401], 404: errors[404] } }),
    async (c) => {
      const only = (c.req.valid('json') as z.infer<typeof RescanRequest> | undefined)?.serviceAccountId;
      const sas = only ? [await cfg.getServiceAccount(db, only)] : await cfg.listServiceAccounts(db);
      const out: z.infer<typeof RescanResult> = [];
      for (const sa of sas) {
        try { out.push({ serviceAccountId: sa.id, ...(await plane.rescan(sa.id)), error: null }); } catch (e) {
          out.push({ serviceAccountId: sa.id, added: 0, updated: 0, deleted: 0, warnings: [], error: (e as Error).message });
        }
      }
      return c.json(out, 200);
    });
  app.openapi(createRoute({ method: 'post', path: '/service-accounts/{id}/check', tags: ['service accounts'], security, description: 'Signs in, lists the subscriptions the service account sees and names the required Azure actions it lacks (docs/AZURE-PERMISSIONS.md).', request: { params: IdParam }, responses: { 200: json(Check), 401: errors[401], 404: errors[404] } }),
    async (c) => c.json(await plane.check(c.req.valid('param').id), 200));
  app.openapi(createRoute({ method: 'get', path: '/policies/{id}/continuous-backup', tags: ['policies'], security, request: { params: IdParam }, responses: { 200: json(ContinuousSettings), 401: errors[401], 404: errors[404] } }),
    async (c) => {
      const p = await cfg.getPolicy(db, c.req.valid('param').id);
      return c.json({ allowMigration: p.allowMigration }, 200);
    });
  app.openapi(createRoute({ method: 'put', path: '/policies/{id}/continuous-backup', tags: ['policies'], security, description: 'Sets the policy\'s allowMigration field (same as PATCH /policies/{id} {"allowMigration": ...}): whether configuration sessions of this policy migrate periodic-backup accounts to continuous backup. The migration is one-way (Azure cannot go back to periodic backup); off by default.', request: { params: IdParam, ...body(ContinuousSettings) }, responses: { 200: json(ContinuousSettings), 400: errors[400], 401: errors[401], 404: errors[404] } }),
    async (c) => {
      const p = await cfg.updatePolicy(db, box, c.req.valid('param').id, { allowMigration: c.req.valid('json').allowMigration });
      return c.json({ allowMigration: p.allowMigration }, 200);
    });
  app.openapi(createRoute({ method: 'get', path: '/service-accounts/{id}/cloud', tags: ['service accounts'], security, request: { params: IdParam }, responses: { 200: json(Cloud), 401: errors[401], 404: errors[404] } }),
    async (c) => c.json(await getCloud(db, c.req.valid('param').id), 200));
  app.openapi(createRoute({ method: 'put', path: '/service-accounts/{id}/cloud', tags: ['service accounts'], security, description: 'The Azure cloud this service account signs in to (sovereign clouds); it is checked again within seconds.', request: { params: IdParam, ...body(Cloud) }, responses: { 200: json(Cloud), 400: errors[400], 401: errors[401], 404: errors[404] } }),
    async (c) => c.json(await setCloud(db, c.req.valid('param').id, c.req.valid('json')), 200));
  app.openapi(createRoute({ method: 'get', path: '/service-accounts/{id}/check', tags: ['service accounts'], security, description: 'The last check (done within seconds of creating or editing the service account, and on demand).', request: { params: IdParam }, responses: { 200: json(Check), 401: errors[401], 404: errors[404] } }),
    async (c) => {
      const id = c.req.valid('param').id;
      await cfg.getServiceAccount(db, id);
      const r = await getCheck(db, id);
      if (!r) throw new ApiError(404, 'NOT_CHECKED', `service account ${id} has not been checked yet; POST to this path checks it now`);
      return c.json(r, 200);
    });
  app.openapi(createRoute({ method: 'get', path: '/accounts/{id}/restore-window', tags, security, request: { params: IdParam }, description: 'The span a point-in-time restore can target, from the configuration sessions\' records and Azure\'s oldest restorable time.', responses: { 200: json(Window), 401: errors[401], 404: errors[404], 409: errors[409] } }),
    async (c) => azure(async () => {
      const w = await plane.restoreWindow(c.req.valid('param').id);
      if (!w) throw new ApiError(409, 'NO_RESTORE_WINDOW', 'no restore window: no configuration session has recorded this account, or Azure can no longer restore it');
      return c.json({ start: w.start.toISOString(), end: w.end.toISOString(), tierDays: w.tierDays, records: w.records, oldestRestorableTime: w.oldestRestorableTime?.toISOString() ?? null }, 200);
    }));
  app.openapi(createRoute({ method: 'get', path: '/accounts/{id}/restore-regions', tags, security, request: { params: IdParam }, responses: { 200: json(z.array(z.string())), 401: errors[401], 404: errors[404], 409: errors[409] } }),
    async (c) => azure(async () => c.json(await plane.restoreRegions(c.req.valid('param').id), 200)));
  app.openapi(createRoute({ method: 'get', path: '/accounts/{id}/restorable-databases', tags, security, request: { params: IdParam, query: PointQuery }, description: 'Databases and their collections/containers/graphs (or tables) that existed at the point in time.', responses: { 200: json(z.array(z.object({ name: z.string(), collections: z.array(z.string()) }))), 401: errors[401], 404: errors[404], 409: errors[409] } }),
    async (c) => azure(async () => c.json(await plane.restorableDatabases(c.req.valid('param').id, new Date(c.req.valid('query').pointInTime ?? Date.now())), 200)));
  app.openapi(createRoute({ method: 'post', path: '/accounts/{id}/restore', tags, security, description: 'Point-in-time restore to a new account (source chosen by instance id; TTL disabled during the restore; public network access off). Follow the returned restore session.', request: { params: IdParam, ...body(RestoreRequest) }, responses: { 202: json(Session, 'restore session started'), 400: errors[400], 401: errors[401], 404: errors[404], 409: errors[409] } }),
    async (c) => azure(async () => {
      const b = c.req.valid('json');
      const s = await plane.startRestore(c.req.valid('param').id, { ...b, pointInTime: new Date(b.pointInTime) });
      return c.json(s, 202);
    }));
  app.openapi(createRoute({ method: 'post', path: '/accounts/{id}/restore-deleted', tags, security, description: 'Restores a deleted database, or a deleted collection/container/graph of a live database, or a deleted table, into the same account as it was at the point in time (NoSQL, MongoDB RU, Gremlin, Table). Follow the returned restore session.', request: { params: IdParam, ...body(RestoreDeletedRequest) }, responses: { 202: json(Session, 'restore session started'), 400: errors[400], 401: errors[401], 404: errors[404], 409: errors[409] } }),
    async (c) => azure(async () => {
      const b = c.req.valid('json');
      return c.json(await plane.startRestoreDeleted(c.req.valid('param').id, { ...b, pointInTime: new Date(b.pointInTime) }), 202);
    }));
  return app;
}
