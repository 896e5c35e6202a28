import { createRoute, z } from '@hono/zod-openapi';
import * as store from '../../db/config-store.ts';
import { flagStates, listRestorePoints, reexpirePoints } from '../../db/session-store.ts';
import { applyRetention, reexpire } from '../../policies/retention.ts';
import { retentionPreview } from '../../policies/preview.ts';
import { localDate, nextLocalDate, startOfLocalDay } from '../../policies/zoned.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError, router } from '../errors.ts';
import { IdParam, Policy, PolicyCreate, PolicyPatch, Preview, PreviewQuery, RunRequest, Session } from '../schemas.ts';
import { body, errors, json, noContent, security } from './common.ts';

const tags = ['policies'];
const MAX_PREVIEW_DAYS = 731;

export function policyRoutes({ db, box, runner, onPoliciesChanged }: ApiDeps) {
  const app = router();
  app.openapi(createRoute({ method: 'get', path: '/', tags, security, description: 'Policies in priority order (first = highest).', responses: { 200: json(z.array(Policy)), 401: errors[401] } }),
    async (c) => c.json(await store.listPolicies(db), 200));
  app.openapi(createRoute({ method: 'post', path: '/', tags, security, request: body(PolicyCreate), responses: { 201: json(Policy, 'created'), 400: errors[400], 401: errors[401], 404: errors[404], 409: errors[409] } }),
    async (c) => {
      const input = c.req.valid('json');
      for (const cred of input.backup?.credentials ?? []) {
        if (cred.password === undefined) throw new ApiError(400, 'VALIDATION_FAILED', `backup.credentials: a password is required for ${cred.accountId}`);
      }
      const p = await db.transaction((tx) => store.createPolicy(tx, box, input));
      await onPoliciesChanged();
      return c.json(p, 201);
    });
  app.openapi(createRoute({ method: 'get', path: '/{id}', tags, security, request: { params: IdParam }, responses: { 200: json(Policy), 401: errors[401], 404: errors[404] } }),
    async (c) => c.json(await store.getPolicy(db, c.req.valid('param').id), 200));
  app.openapi(createRoute({ method: 'patch', path: '/{id}', tags, security, request: { params: IdParam, ...body(PolicyPatch) }, responses: { 200: json(Policy), 400: errors[400], 401: errors[401], 404: errors[404], 409: errors[409] } }),
    async (c) => {
      const id = c.req.valid('param').id;
      const patch = c.req.valid('json');
      const p = await db.transaction(async (tx) => {
        const next = await store.updatePolicy(tx, box, id, patch);
        if (next.archive && !next.backup) throw new ApiError(400, 'VALIDATION_FAILED', 'archive: archive copies restore points of the backup to repository: configure backup too');
        // Edited retention applies to the points already taken, not only to new ones.
        if (patch.backup && next.backup) {
          const schedules = next.backup.schedules;
          await reexpirePoints(tx, id, (p) => reexpire(p, schedules));
        }
        return next;
      });
      await onPoliciesChanged();
      return c.json(p, 200);
    });
  app.openapi(createRoute({ method: 'delete', path: '/{id}', tags, security, request: { params: IdParam }, description: 'Deletes the policy; its restore points stay listed and restorable.', responses: { 204: noContent, 401: errors[401], 404: errors[404] } }),
    async (c) => {
      await store.deletePolicy(db, c.req.valid('param').id);
      await onPoliciesChanged();
      return c.body(null, 204);
    });
  app.openapi(createRoute({
    method: 'post', path: '/{id}/run', tags, security, description: 'Starts a session now; follow it with GET /sessions/{id}.',
    request: { params: IdParam, body: { required: false, content: { 'application/json': { schema: RunRequest } } } },
    responses: { 202: json(Session, 'session started'), 400: errors[400], 401: errors[401], 404: errors[404], 409: errors[409] },
  }), async (c) => {
    const policy = await store.getPolicy(db, c.req.valid('param').id);
    const type = (c.req.valid('json') as z.infer<typeof RunRequest> | undefined)?.type ?? 'backup';
    if (!policy.enabled) throw new ApiError(409, 'POLICY_DISABLED', `policy "${policy.name}" is disabled; enable it first`);
    if (type === 'backup' && !policy.backup) throw new ApiError(409, 'NO_BACKUP', `policy "${policy.name}" has no backup to repository; run type "configuration" to check continuous backup`);
    if (type === 'archive' && !policy.archive) throw new ApiError(409, 'NO_ARCHIVE', `policy "${policy.name}" has no archive settings`);
    const session = await runner.start({ type, policyId: policy.id, trigger: 'manual' });
    return c.json(session!, 202);
  });
  app.openapi(createRoute({
    method: 'get', path: '/{id}/retention-preview', tags, security,
    description: 'Simulates the policy day by day between two local dates (policy time zone): backups at their times, retention after each; lists which restore points exist each day and with which flags. Restore points the policy already has (created before from) take part and are marked existing.',
    request: { params: IdParam, query: PreviewQuery },
    responses: { 200: json(Preview), 400: errors[400], 401: errors[401], 404: errors[404], 409: errors[409] },
  }), async (c) => {
    const policy = await store.getPolicy(db, c.req.valid('param').id);
    if (!policy.backup) throw new ApiError(409, 'NO_BACKUP', `policy "${policy.name}" has no backup schedules to preview`);
    const s = policy.backup.schedules;
    const q = c.req.valid('query');
    const from = q.from ?? localDate(new Date(), s.timeZone);
    let to = q.to;
    if (!to) { to = from; for (let i = 0; i < 30; i++) to = nextLocalDate(to); }
    if (to < from) throw new ApiError(400, 'VALIDATION_FAILED', 'to: must not be before from');
    if ((Date.parse(to) - Date.parse(from)) / 86_400_000 >= MAX_PREVIEW_DAYS) throw new ApiError(400, 'VALIDATION_FAILED', `to: at most ${MAX_PREVIEW_DAYS} days after from`);
    // Restore points taken before the first day take part, with the flags they carry then.
    const start = startOfLocalDay(from, s.timeZone);
    const stored = (await listRestorePoints(db, { policyId: policy.id, kind: 'repository', limit: 100_000 }))
      .filter((p) => new Date(p.createdAt) < start)
      .map((p) => ({ id: p.id, createdAt: new Date(p.createdAt), flags: flagStates(p) }));
    const existing = applyRetention(stored, start).kept;
    return c.json({ policyId: policy.id, timeZone: s.timeZone, from, to, existing: existing.length, days: retentionPreview(s, from, to, existing) }, 200);
  });
  return app;
}
