import { createRoute, z } from '@hono/zod-openapi';
import * as st from '../../db/session-store.ts';
import type { ApiDeps } from '../deps.ts';
import { router } from '../errors.ts';
import { IdParam, RestorePoint, RestorePointQuery, Session, SessionQuery, SessionWithLog } from '../schemas.ts';
import { errors, json, security } from './common.ts';

export function sessionRoutes({ db }: ApiDeps) {
  const app = router();
  const tags = ['sessions'];
  app.openapi(createRoute({ method: 'get', path: '/', tags, security, request: { query: SessionQuery }, description: 'Newest first.', responses: { 200: json(z.array(Session)), 400: errors[400], 401: errors[401] } }),
    async (c) => c.json(await st.listSessions(db, c.req.valid('query')), 200));
  app.openapi(createRoute({ method: 'get', path: '/{id}', tags, security, request: { params: IdParam }, responses: { 200: json(SessionWithLog), 401: errors[401], 404: errors[404] } }),
    async (c) => c.json(await st.getSession(db, c.req.valid('param').id), 200));
  return app;
}

export function restorePointRoutes({ db }: ApiDeps) {
  const app = router();
  const tags = ['restore points'];
  app.openapi(createRoute({ method: 'get', path: '/', tags, security, request: { query: RestorePointQuery }, description: 'Newest first.', responses: { 200: json(z.array(RestorePoint)), 400: errors[400], 401: errors[401] } }),
    async (c) => c.json(await st.listRestorePoints(db, c.req.valid('query')), 200));
  app.openapi(createRoute({ method: 'get', path: '/{id}', tags, security, request: { params: IdParam }, responses: { 200: json(RestorePoint), 401: errors[401], 404: errors[404] } }),
    async (c) => c.json(await st.getRestorePoint(db, c.req.valid('param').id), 200));
  return app;
}
