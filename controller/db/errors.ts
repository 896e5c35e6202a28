// Store-level errors the API maps to HTTP statuses (404, 409); everything else is a CosmosBackupError.
import { CosmosBackupError, NotFoundError } from '../../shared/errors.ts';

export class ConflictError extends CosmosBackupError {
  constructor(message: string) {
    super('ALREADY_EXISTS', message);
    this.name = 'ConflictError';
  }
}

export function notFound(kind: string, id: string): NotFoundError {
  return new NotFoundError(`${kind}/${id}`, `${kind} ${id} not found`);
}

/** Turns a unique-violation from either driver into a ConflictError with a human message. */
export function uniqueViolation(e: unknown, what: string): unknown {
  return (e as { code?: string }).code === '23505' ? new ConflictError(`${what} already exists`) : e;
}
