import { createRoute, z } from '@hono/zod-openapi';
import * as st from '../../db/session-store.ts';
import * as cfg from '../../db/config-store.ts';
import type { RestoreParams } from '../../sessions/runner.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError, router } from '../errors.ts';
import { IdParam, RestorePoint, RestorePointQuery, RestoreRequest, Session, SessionQuery, SessionWithLog } from '../schemas.ts';
import { body, errors, json, security } from './common.ts';

export function sessionRoutes({ db }: ApiDeps) {
  const app = router();
  const tags = ['sessions'];
  app.openapi(createRoute({ method: 'get', path: '/', tags, security, request: { query: SessionQuery }, description: 'Newest first.', responses: { 200: json(z.array(Session)), 400: errors[400], 401: errors[401] } }),
    async (c) => c.json(await st.listSessions(db, c.req.valid('query')), 200));
  app.openapi(createRoute({ method: 'get', path: '/{id}', tags, security, request: { params: IdParam }, responses: { 200: json(SessionWithLog), 401: errors[401], 404: errors[404] } }),
    async (c) => c.json(await st.getSession(db, c.req.valid('param').id), 200));
  return app;
}

export function restorePointRoutes({ db, runner }: ApiDeps) {
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
    const point = await st.getRestorePoint(db, c.req.valid('param').id);
    const req = c.req.valid('json');
    if (point.kind === 'continuous' || !point.formatPointId || !point.repositoryId) {
      throw new ApiError(409, 'CONTINUOUS_POINT', `restore point ${point.id} is a continuous backup window; restore it with point-in-time restore`);
    }
    const policy = point.policyId ? await cfg.getPolicy(db, point.policyId).catch(() => null) : null;
    const serviceAccountId = req.serviceAccountId ?? policy?.serviceAccountId;
    if (!serviceAccountId) throw new ApiError(400, 'VALIDATION_FAILED', 'serviceAccountId: required, the restore point\'s policy no longer exists');
    await cfg.getServiceAccount(db, serviceAccountId);
    const params: RestoreParams = { restorePointId: point.id, serviceAccountId, targetAccountId: req.targetAccountId ?? point.accountId, databaseName: req.databaseName, subset: req.subset };
    const session = await runner.start({
      type: 'restore', policyId: point.policyId, trigger: 'manual', params: { ...params },
      secrets: req.credentials ? { credentials: req.credentials } : undefined,
    });
    return c.json(session!, 202);
  });
  return app;
}
