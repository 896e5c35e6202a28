import { createRoute, z } from '@hono/zod-openapi';
import * as st from '../../db/session-store.ts';
import * as cfg from '../../db/config-store.ts';
import type { ExportParams, RestoreParams } from '../../sessions/runner.ts';
import { inArchiveTier, repositoryAccess } from '../../sessions/repository-access.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError, router } from '../errors.ts';
import {
  DownloadLink, DownloadLinkRequest, ExportRequest, IdParam, RestorePoint, RestorePointQuery, RestoreRequest, Retrieval, Session, SessionQuery, SessionWithLog,
} from '../schemas.ts';
import { body, errors, json, security } from './common.ts';

export function sessionRoutes({ db, box, workers }: ApiDeps) {
  const app = router();
  const tags = ['sessions'];
  app.openapi(createRoute({ method: 'get', path: '/', tags, security, request: { query: SessionQuery }, description: 'Newest first.', responses: { 200: json(z.array(Session)), 400: errors[400], 401: errors[401] } }),
    async (c) => c.json(await st.listSessions(db, c.req.valid('query')), 200));
  app.openapi(createRoute({ method: 'get', path: '/{id}', tags, security, request: { params: IdParam }, responses: { 200: json(SessionWithLog), 401: errors[401], 404: errors[404] } }),
    async (c) => c.json(await st.getSession(db, c.req.valid('param').id), 200));
  app.openapi(createRoute({
    method: 'post', path: '/{id}/download-link', tags, security, request: { params: IdParam, ...body(DownloadLinkRequest) },
    description: 'A read-only link to the file a successful export session wrote, valid for `minutes` (at most an hour). Links are made on request and never stored; ask again for a fresh one.',
    responses: { 200: json(DownloadLink), 400: errors[400], 401: errors[401], 404: errors[404], 409: errors[409] },
  }), async (c) => {
    const session = await st.getSession(db, c.req.valid('param').id);
    const file = session.accounts.find((a) => a.export)?.export;
    if (session.type !== 'export' || session.state !== 'success' || !file) {
      throw new ApiError(409, 'NO_EXPORT', `session ${session.id} is not a successful export session${session.state === 'running' ? ' yet' : ''}`);
    }
    if (Date.parse(file.expiresAt) <= Date.now()) throw new ApiError(404, 'EXPORT_EXPIRED', `the export ${file.fileName} expired at ${file.expiresAt} and was deleted: export the restore point again`);
    const params = session.params as ExportParams | null;
    if (!params?.serviceAccountId) throw new ApiError(409, 'NO_EXPORT', `session ${session.id} records no service account`);
    const sa = await cfg.serviceAccountCredentials(db, box, params.serviceAccountId);
    const link = await workers.exportLink(sa, file, c.req.valid('json').minutes);
    return c.json({ url: link.url, expiresAt: link.expiresAt.toISOString(), fileName: file.fileName, size: file.size, sha256: file.sha256 }, 200);
  });
  return app;
}

export function restorePointRoutes({ db, box, runner, repositories }: ApiDeps) {
  const app = router();
  const tags = ['restore points'];
  app.openapi(createRoute({ method: 'get', path: '/', tags, security, request: { query: RestorePointQuery }, description: 'Newest first.', responses: { 200: json(z.array(RestorePoint)), 400: errors[400], 401: errors[401] } }),
    async (c) => c.json(await st.listRestorePoints(db, c.req.valid('query')), 200));
  app.openapi(createRoute({ method: 'get', path: '/{id}', tags, security, request: { params: IdParam }, responses: { 200: json(RestorePoint), 401: errors[401], 404: errors[404] } }),
    async (c) => c.json(await st.getRestorePoint(db, c.req.valid('param').id), 200));
  app.openapi(createRoute({
    method: 'post', path: '/{id}/restore', tags, security, request: { params: IdParam, ...body(RestoreRequest) },
    description: 'Starts a restore session: a worker restores the repository restore point into a new database on the target account (the same account by default). Follow it with GET /sessions/{id}. Continuous backup windows are restored with point-in-time restore instead.',
    responses: { 202: json(Session, 'restore session started'), 400: errors[400], 401: errors[401], 404: errors[404], 409: errors[409] },
  }), async (c) => {
    const point = await repositoryPoint(c.req.valid('param').id, 'restore it with point-in-time restore');
    const req = c.req.valid('json');
    const serviceAccountId = await serviceAccountFor(point.policyId, req.serviceAccountId);
    const params: RestoreParams = {
      restorePointId: point.id, serviceAccountId, targetAccountId: req.targetAccountId ?? point.accountId, databaseName: req.databaseName, subset: req.subset,
      rehydratePriority: req.rehydratePriority,
    };
    const session = await runner.start({
      type: 'restore', policyId: point.policyId, trigger: 'manual', params: { ...params },
      secrets: req.credentials ? { credentials: req.credentials } : undefined,
    });
    return c.json(session!, 202);
  });
  app.openapi(createRoute({
    method: 'post', path: '/{id}/export', tags, security, request: { params: IdParam, ...body(ExportRequest) },
    description: 'Starts an export session: a worker writes the restore point as a plain SQL script (PostgreSQL) or a mongodump archive (MongoDB) into a blob of the controller\'s storage account in the account\'s region. When it succeeds, POST /sessions/{id}/download-link gives a short-lived link to the file.',
    responses: { 202: json(Session, 'export session started'), 400: errors[400], 401: errors[401], 404: errors[404], 409: errors[409] },
  }), async (c) => {
    const point = await repositoryPoint(c.req.valid('param').id, 'it has no data in a repository to export');
    const req = c.req.valid('json');
    const serviceAccountId = await serviceAccountFor(point.policyId, req.serviceAccountId);
    const params: ExportParams = { restorePointId: point.id, serviceAccountId, ...(req.format ? { format: req.format } : {}) };
    const session = await runner.start({ type: 'export', policyId: point.policyId, trigger: 'manual', params: { ...params } });
    return c.json(session!, 202);
  });
  app.openapi(createRoute({
    method: 'get', path: '/{id}/retrieval', tags, security, request: { params: IdParam },
    description: 'Data retrieval status of a repository or archive restore point: whether its packs sit in the Archive tier and how many are rehydrating. A restore or export of the point starts the rehydration itself.',
    responses: { 200: json(Retrieval), 401: errors[401], 404: errors[404], 409: errors[409] },
  }), async (c) => {
    const point = await repositoryPoint(c.req.valid('param').id, 'Azure keeps its data');
    const access = await repositoryAccess(db, box, point.repositoryId);
    if (!inArchiveTier(point, access)) return c.json({ state: 'online' as const, packs: 0, archived: 0, rehydrating: 0 }, 200);
    return c.json(await repositories.retrieval(access, [point.formatPointId], { start: false }), 200);
  });

  /** A restore point with data in a repository; a continuous backup window is refused with why. */
  async function repositoryPoint(id: string, why: string) {
    const point = await st.getRestorePoint(db, id);
    if (point.kind === 'continuous' || !point.formatPointId || !point.repositoryId) {
      throw new ApiError(409, 'CONTINUOUS_POINT', `restore point ${point.id} is a continuous backup window: ${why}`);
    }
    return { ...point, formatPointId: point.formatPointId, repositoryId: point.repositoryId };
  }

  /** The service account a request names, else the point's policy's. */
  async function serviceAccountFor(policyId: string | null, given: string | undefined): Promise<string> {
    const policy = policyId ? await cfg.getPolicy(db, policyId).catch(() => null) : null;
    const id = given ?? policy?.serviceAccountId;
    if (!id) throw new ApiError(400, 'VALIDATION_FAILED', 'serviceAccountId: required, the restore point\'s policy no longer exists');
    await cfg.getServiceAccount(db, id);
    return id;
  }
  return app;
}
