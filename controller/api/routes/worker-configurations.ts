import { createRoute, z } from '@hono/zod-openapi';
import * as store from '../../db/config-store.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError, router } from '../errors.ts';
import { IdParam, WorkerConfiguration, WorkerConfigurationCreate, WorkerConfigurationPatch } from '../schemas.ts';
import { body, errors, json, noContent, security } from './common.ts';

const tags = ['worker configurations'];

export function workerConfigurationRoutes({ db }: ApiDeps) {
  const app = router();
  app.openapi(createRoute({ method: 'get', path: '/', tags, security, responses: { 200: json(z.array(WorkerConfiguration)), 401: errors[401] } }),
    async (c) => c.json(await store.listWorkerConfigurations(db), 200));
  app.openapi(createRoute({ method: 'post', path: '/', tags, security, request: body(WorkerConfigurationCreate), responses: { 201: json(WorkerConfiguration, 'created'), 400: errors[400], 401: errors[401], 409: errors[409] } }),
    async (c) => c.json(await store.createWorkerConfiguration(db, c.req.valid('json')), 201));
  app.openapi(createRoute({ method: 'get', path: '/{id}', tags, security, request: { params: IdParam }, responses: { 200: json(WorkerConfiguration), 401: errors[401], 404: errors[404] } }),
    async (c) => c.json(await store.getWorkerConfiguration(db, c.req.valid('param').id), 200));
  app.openapi(createRoute({ method: 'patch', path: '/{id}', tags, security, request: { params: IdParam, ...body(WorkerConfigurationPatch) }, responses: { 200: json(WorkerConfiguration), 400: errors[400], 401: errors[401], 404: errors[404], 409: errors[409] } }),
    async (c) => {
      const id = c.req.valid('param').id;
      const next = { ...(await store.getWorkerConfiguration(db, id)), ...c.req.valid('json') };
      if (Boolean(next.virtualNetwork) !== Boolean(next.subnet)) throw new ApiError(400, 'VALIDATION_FAILED', 'subnet: give both virtualNetwork and subnet, or neither');
      return c.json(await store.updateWorkerConfiguration(db, id, c.req.valid('json')), 200);
    });
  app.openapi(createRoute({ method: 'delete', path: '/{id}', tags, security, request: { params: IdParam }, responses: { 204: noContent, 401: errors[401], 404: errors[404] } }),
    async (c) => { await store.deleteWorkerConfiguration(db, c.req.valid('param').id); return c.body(null, 204); });
  return app;
}
