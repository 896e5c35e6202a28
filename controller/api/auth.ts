// Bearer-token authentication for every route but the health check.
import type { MiddlewareHandler } from 'hono';
import type { Queryable } from '../db/db.ts';
import { findToken } from '../db/tokens.ts';
import { errorBody } from './errors.ts';

export interface BearerAuthOptions {
  db: Queryable;
  /** paths served without a token */
  publicPaths?: string[];
}

export function bearerAuth({ db, publicPaths = ['/health'] }: BearerAuthOptions): MiddlewareHandler {
  return async function bearerAuthMiddleware(c, next) {
    if (publicPaths.includes(c.req.path)) return next();
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    const info = m ? await findToken(db, m[1]!) : undefined;
    if (!info) {
      c.header('WWW-Authenticate', 'Bearer realm="cosmos-backup"');
      return c.json(errorBody('UNAUTHORIZED', m ? 'unknown or revoked token' : 'authentication required: send "Authorization: Bearer <token>" (create one with `node controller/main.ts token create --name NAME`)'), 401);
    }
    return next();
  };
}
