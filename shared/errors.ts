// Typed errors with stable codes. Only program entry points turn them into exit codes and
// one human line; everything else throws these and lets callers match on `code`.

export type ErrorCode =
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'REPO_NOT_FOUND'
  | 'REPO_EXISTS'
  | 'WRONG_PASSWORD'
  | 'PASSWORD_REQUIRED'
  | 'REPO_LOCKED'
  | 'CORRUPT_OBJECT'
  | 'UNSUPPORTED_FORMAT'
  | 'STORAGE_UNAVAILABLE'
  | 'STORAGE_AUTH'
  | 'STORAGE_FULL'
  | 'INVALID_ARGUMENT'
  | 'DATABASE_UNREACHABLE'
  | 'DATABASE_AUTH'
  | 'DATABASE_PERMISSION'
  | 'DATABASE_ERROR'
  | 'TARGET_NOT_EMPTY'
  /** the object sits in the Archive access tier and must be rehydrated before it can be read */
  | 'DATA_ARCHIVED'
  | 'ABORTED'
  | 'UNAUTHENTICATED'
  | 'INTERNAL';

export class CosmosBackupError extends Error {
  readonly code: ErrorCode;
  /** Extra structured context for --verbose output and logs; never secrets. */
  readonly details: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CosmosBackupError';
    this.code = code;
    this.details = opts.details ?? {};
  }
}

export class NotFoundError extends CosmosBackupError {
  readonly key: string;
  constructor(key: string, message = `object not found: ${key}`) {
    super('NOT_FOUND', message, { details: { key } });
    this.name = 'NotFoundError';
    this.key = key;
  }
}

export class CorruptObjectError extends CosmosBackupError {
  readonly object: string;
  constructor(object: string, why: string, cause?: unknown) {
    super('CORRUPT_OBJECT', `corrupt object ${object}: ${why}`, { cause, details: { object } });
    this.name = 'CorruptObjectError';
    this.object = object;
  }
}

export interface LockHolder {
  /** who holds it: "backup by user@host pid 123" */
  holder: string;
  /** ISO time the lock was taken */
  since: string;
  /** ISO time after which the lock counts as stale unless refreshed */
  expires: string;
}

export class RepoLockedError extends CosmosBackupError {
  readonly holders: LockHolder[];
  constructor(what: string, holders: LockHolder[]) {
    const h = holders[0];
    super('REPO_LOCKED', `repository is locked (${what}) by ${h ? `${h.holder} since ${h.since}` : 'another process'}${holders.length > 1 ? ` and ${holders.length - 1} more` : ''}; wait for it to finish, or run \`repo unlock\` if that process is gone`, { details: { holders } });
    this.name = 'RepoLockedError';
    this.holders = holders;
  }
}

export function isCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof CosmosBackupError && err.code === code;
}

/** One human line for any error (the CLI prints this; --verbose adds the stack and details). */
export function humanMessage(err: unknown): string {
  if (err instanceof CosmosBackupError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
