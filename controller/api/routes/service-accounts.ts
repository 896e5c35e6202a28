import { createRoute, z } from '@hono/zod-openapi';
import * as store from '../../db/config-store.ts';
import type { ApiDeps } from '../deps.ts';
import { router } from '../errors.ts';
import { IdParam, ServiceAccount, ServiceAccountCreate, ServiceAccountPatch } from '../schemas.ts';
import { body, errors, json, noContent, security } from './common.ts';

const tags = ['service accounts'];

export function serviceAccountRoutes({ db, box }: ApiDeps) {
  const app = router();
  app.openapi(createRoute({ method: 'get', path: '/', tags, security, responses: { 200: json(z.array(ServiceAccount)), 401: errors[401] } }),
    async (c) => c.json(await store.listServiceAccounts(db), 200));
  app.openapi(createRoute({ method: 'post', path: '/', tags, security, request: body(ServiceAccountCreate), responses: { 201: json(ServiceAccount, 'created'), 400: errors[400], 401: errors[401], 409: errors[409] } }),
    async (c) => c.json(await store.createServiceAccount(db, box, c.req.valid('json')), 201));
  app.openapi(createRoute({ method: 'get', path: '/{id}', tags, security, request: { params: IdParam }, responses: { 200: json(ServiceAccount), 401: errors[401], 404: errors[404] } }),
    async (c) => c.json(await store.getServiceAccount(db, c.req.valid('param').id), 200));
  app.openapi(createRoute({ method: 'patch', path: '/{id}', tags, security, request: { params: IdParam, ...body(ServiceAccountPatch) }, responses: { 200: json(ServiceAccount), 400: errors[400], 401: errors[401], 404: errors[404], 409: errors[409] } }),
    async (c) => c.json(await store.updateServiceAccount(db, box, c.req.valid('param').id, c.req.valid('json')), 200));
  app.openapi(createRoute({ method: 'delete', path: '/{id}', tags, security, request: { params: IdParam }, responses: { 204: noContent, 401: errors[401], 404: errors[404], 409: errors[409] } }),
    async (c) => { await store.deleteServiceAccount(db, c.req.valid('param').id); return c.body(null, 204); });
  return app;
}
