import { createRoute } from '@hono/zod-openapi';
import * as store from '../../db/config-store.ts';
import type { ApiDeps } from '../deps.ts';
import { router } from '../errors.ts';
import { Settings, SettingsInput } from '../schemas.ts';
import { body, errors, json, security } from './common.ts';

export function settingsRoutes({ db, box, onSettingsChanged }: ApiDeps) {
  const app = router();
  const tags = ['settings'];
  app.openapi(createRoute({ method: 'get', path: '/', tags, security, responses: { 200: json(Settings), 401: errors[401] } }),
    async (c) => c.json(await store.getSettings(db), 200));
  app.openapi(createRoute({ method: 'put', path: '/', tags, security, request: body(SettingsInput), description: 'Replaces the global settings. An SMTP password left out keeps the stored one.', responses: { 200: json(Settings), 400: errors[400], 401: errors[401] } }),
    async (c) => {
      const saved = await store.putSettings(db, box, c.req.valid('json'));
      await onSettingsChanged?.();
      return c.json(saved, 200);
    });
  return app;
}
