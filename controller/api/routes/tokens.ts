// API tokens over the API (the CLI `token create|list|revoke` does the same on the database).
// Every token is an administrator token; only its SHA-256 is stored.
import { createRoute, z } from '@hono/zod-openapi';
import { createToken, listTokens, revokeTokenById, type TokenInfo } from '../../db/tokens.ts';
import { notFound } from '../../db/errors.ts';
import type { ApiDeps } from '../deps.ts';
import { router } from '../errors.ts';
import { IdParam, Token, TokenCreate, TokenCreated } from '../schemas.ts';
import { body, errors, json, noContent, security } from './common.ts';

const tags = ['tokens'];
const view = (t: TokenInfo) => ({ id: t.id, name: t.name, createdAt: t.createdAt.toISOString(), lastUsedAt: t.lastUsedAt?.toISOString() ?? null });

export function tokenRoutes({ db, logger }: ApiDeps) {
  const app = router();
  app.openapi(createRoute({ method: 'get', path: '/', tags, security, description: 'Token names and use; never the tokens.', responses: { 200: json(z.array(Token)), 401: errors[401] } }),
    async (c) => c.json((await listTokens(db)).map(view), 200));
  app.openapi(createRoute({
    method: 'post', path: '/', tags, security, request: body(TokenCreate), description: 'Creates a token; the response is the only place it is ever shown.',
    responses: { 201: json(TokenCreated, 'created'), 400: errors[400], 401: errors[401], 409: errors[409] },
  }), async (c) => {
    const t = await createToken(db, c.req.valid('json').name);
    logger.info('API token created', { name: t.info.name });
    return c.json({ ...view(t.info), token: t.token }, 201);
  });
  app.openapi(createRoute({
    method: 'delete', path: '/{id}', tags, security, request: { params: IdParam }, description: 'Revokes a token at once. The last token cannot be revoked.',
    responses: { 204: noContent, 401: errors[401], 404: errors[404], 409: errors[409] },
  }), async (c) => {
    const id = c.req.valid('param').id;
    const gone = await revokeTokenById(db, id);
    if (!gone) throw notFound('token', id);
    logger.info('API token revoked', { name: gone.name });
    return c.body(null, 204);
  });
  return app;
}
