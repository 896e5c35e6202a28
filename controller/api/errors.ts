// One place turns errors into HTTP: JSON `{ error: { code, message } }` with a status from the code.
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { OpenAPIHono } from '@hono/zod-openapi';
import type { ZodError } from 'zod';
import { CosmosBackupError, NotFoundError } from '../../shared/errors.ts';
import type { Logger } from '../sessions/runner.ts';

export class ApiError extends Error {
  readonly status: 400 | 401 | 403 | 404 | 409 | 500;
  readonly code: string;
  constructor(status: ApiError['status'], code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

const STATUS: Partial<Record<string, number>> = {
  NOT_FOUND: 404, REPO_NOT_FOUND: 404,
  ALREADY_EXISTS: 409, REPO_EXISTS: 409, REPO_LOCKED: 409,
  INVALID_ARGUMENT: 400, WRONG_PASSWORD: 400, PASSWORD_REQUIRED: 400, UNSUPPORTED_FORMAT: 400,
  STORAGE_UNAVAILABLE: 502, STORAGE_AUTH: 502, STORAGE_FULL: 507, ABORTED: 503,
};

export function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

/** `path: message` per problem, joined: one readable line for the client. */
export function describeZodError(err: ZodError, target?: string): string {
  return err.issues.map((i) => `${[target, ...i.path.map(String)].filter(Boolean).join('.') || 'request'}: ${i.message}`).join('; ');
}

export function onError(logger: Logger) {
  return (err: Error, c: Context) => {
    if (err instanceof ApiError) return c.json(errorBody(err.code, err.message), err.status);
    if (err instanceof NotFoundError) return c.json(errorBody('NOT_FOUND', err.message), 404);
    if (err instanceof CosmosBackupError) {
      const status = STATUS[err.code] ?? 500;
      if (status >= 500) logger.error('request failed', { code: err.code, error: err.message, path: c.req.path });
      return c.json(errorBody(err.code, err.message), status as 500);
    }
    if (err instanceof HTTPException) return c.json(errorBody('BAD_REQUEST', err.message), err.status);
    logger.error('unexpected error', { error: err.message, stack: err.stack, path: c.req.path });
    return c.json(errorBody('INTERNAL', 'internal error; see the controller log'), 500);
  };
}

/** A router whose validation failures become 400 VALIDATION_FAILED with every problem listed. */
export function router(): OpenAPIHono {
  return new OpenAPIHono({
    defaultHook: (result, c) => {
      if (!result.success) {
        const target = (result as { target?: string }).target;
        return c.json(errorBody('VALIDATION_FAILED', describeZodError(result.error as ZodError, target === 'json' ? '' : target)), 400);
      }
    },
  });
}
