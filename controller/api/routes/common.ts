import type { z } from '@hono/zod-openapi';
import { ErrorBody } from '../schemas.ts';

export const security = [{ bearer: [] }];
const err = (description: string) => ({ description, content: { 'application/json': { schema: ErrorBody } } });
export const errors = {
  400: err('invalid request: every problem as "path: message"'),
  401: err('missing or unknown bearer token'),
  404: err('not found'),
  409: err('conflicts with the current state'),
};
export const json = <T extends z.ZodType>(schema: T, description = 'OK') => ({ description, content: { 'application/json': { schema } } });
export const body = <T extends z.ZodType>(schema: T) => ({ body: { required: true, content: { 'application/json': { schema } } } });
export const noContent = { description: 'deleted' };
