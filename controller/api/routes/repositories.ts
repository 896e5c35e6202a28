import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { createRoute, z } from '@hono/zod-openapi';
import { isCode } from '../../../shared/errors.ts';
import * as store from '../../db/config-store.ts';
import { repositoryLocation } from '../../db/config-store.ts';
import type { ApiDeps } from '../deps.ts';
import { router } from '../errors.ts';
import { IdParam, Repository, RepositoryCreate, RepositoryCreated, RepositoryPatch } from '../schemas.ts';
import { body, errors, json, noContent, security } from './common.ts';

const tags = ['repositories'];

export function repositoryRoutes({ db, box, repositories, logger }: ApiDeps) {
  const app = router();
  app.openapi(createRoute({ method: 'get', path: '/', tags, security, responses: { 200: json(z.array(Repository)), 401: errors[401] } }),
    async (c) => c.json(await store.listRepositories(db), 200));
  app.openapi(createRoute({
    method: 'post', path: '/', tags, security, request: body(RepositoryCreate),
    description: 'Registers a repository and initialises the repository format there, or attaches the one already there (mode).',
    responses: { 201: json(RepositoryCreated, 'created'), 400: errors[400], 401: errors[401], 404: errors[404], 409: errors[409] },
  }), async (c) => {
    const { mode, ...body } = c.req.valid('json');
    const input = { ...body, storageAccount: body.storageAccount ?? '', container: body.container ?? '', path: body.path ? path.resolve(body.path) : null };
    const access = {
      location: repositoryLocation({ ...input, folder: input.kind === 'file' ? '' : input.folder }),
      serviceAccount: input.serviceAccountId ? await store.serviceAccountCredentials(db, box, input.serviceAccountId) : null,
      password: input.password ?? null,
      storageCredential: input.storageCredential ?? null,
    };
    let formatId: string;
    let initialised = false;
    if (mode === 'init') {
      formatId = (await repositories.init(access)).formatId;
      initialised = true;
    } else {
      try {
        formatId = (await repositories.attach(access)).formatId;
      } catch (e) {
        if (mode === 'attach' || !isCode(e, 'REPO_NOT_FOUND')) throw e;
        formatId = (await repositories.init(access)).formatId;
        initialised = true;
      }
    }
    const repo = await store.insertRepository(db, box, randomUUID(), input, formatId);
    logger.info(initialised ? 'repository initialised' : 'repository attached', { repositoryId: repo.id, name: repo.name });
    return c.json({ ...repo, initialised }, 201);
  });
  app.openapi(createRoute({ method: 'get', path: '/{id}', tags, security, request: { params: IdParam }, responses: { 200: json(Repository), 401: errors[401], 404: errors[404] } }),
    async (c) => c.json(await store.getRepository(db, c.req.valid('param').id), 200));
  app.openapi(createRoute({
    method: 'patch', path: '/{id}', tags, security, request: { params: IdParam, ...body(RepositoryPatch) },
    description: 'Name, access tier and immutability can change; location and password belong to the repository format.',
    responses: { 200: json(Repository), 400: errors[400], 401: errors[401], 404: errors[404], 409: errors[409] },
  }), async (c) => c.json(await store.updateRepository(db, c.req.valid('param').id, c.req.valid('json')), 200));
  app.openapi(createRoute({ method: 'delete', path: '/{id}', tags, security, request: { params: IdParam }, description: 'Unregisters the repository (its data stays in storage).', responses: { 204: noContent, 401: errors[401], 404: errors[404], 409: errors[409] } }),
    async (c) => { await store.deleteRepository(db, c.req.valid('param').id); return c.body(null, 204); });
  return app;
}
