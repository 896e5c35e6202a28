// The controller's HTTP API, assembled from one sub-app per resource. Tests call app.request().
import { createRoute, z } from '@hono/zod-openapi';
import type { ApiDeps } from './deps.ts';
import { bearerAuth } from './auth.ts';
import { errorBody, onError, router } from './errors.ts';
import { json } from './routes/common.ts';
import { serviceAccountRoutes } from './routes/service-accounts.ts';
import { repositoryRoutes } from './routes/repositories.ts';
import { workerConfigurationRoutes } from './routes/worker-configurations.ts';
import { policyRoutes } from './routes/policies.ts';
import { restorePointRoutes, sessionRoutes } from './routes/sessions.ts';
import { settingsRoutes } from './routes/settings.ts';
import { tokenRoutes } from './routes/tokens.ts';

export type { ApiDeps } from './deps.ts';

export function createApi(deps: ApiDeps) {
  const app = router();
  app.use('*', bearerAuth({ db: deps.db }));
  app.onError(onError(deps.logger));
  app.notFound((c) => c.json(errorBody('NOT_FOUND', `no route ${c.req.method} ${c.req.path}`), 404));
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', description: 'token from the first start, POST /tokens, or `node controller/main.ts token create --name NAME`' });

  app.openapi(createRoute({ method: 'get', path: '/health', tags: ['health'], description: 'Liveness and database check; the only route without authentication.', responses: { 200: json(z.object({ status: z.literal('ok'), database: z.enum(['pglite', 'postgres']), version: z.string() })) } }),
    async (c) => {
      await deps.db.query('SELECT 1');
      return c.json({ status: 'ok' as const, database: deps.db.kind, version: deps.version }, 200);
    });

  app.route('/service-accounts', serviceAccountRoutes(deps));
  app.route('/repositories', repositoryRoutes(deps));
  app.route('/worker-configurations', workerConfigurationRoutes(deps));
  app.route('/policies', policyRoutes(deps));
  app.route('/sessions', sessionRoutes(deps));
  app.route('/restore-points', restorePointRoutes(deps));
  app.route('/settings', settingsRoutes(deps));
  app.route('/tokens', tokenRoutes(deps));

  app.doc31('/openapi.json', { openapi: '3.1.0', info: { title: 'cosmos-backup controller', version: deps.version }, security: [{ bearer: [] }] });
  return app;
}
