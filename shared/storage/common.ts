// Small helpers every backend shares: the errors they must agree on.
import { CorruptObjectError, CosmosBackupError, RepoLockedError } from '../errors.ts';
import type { LeaseInfo } from './types.ts';

/** A range read that ends past the object: the caller's index says the bytes exist, so the object is truncated. */
export function shortRead(key: string, offset: number, length: number, size: number): CorruptObjectError {
  return new CorruptObjectError(key, `range ${offset}+${length} ends past the object's end (${size} bytes); it is truncated`);
}

export function lockedError(key: string, info: LeaseInfo): RepoLockedError {
  return new RepoLockedError(`lease ${key}${info.stale ? ', stale' : ''}`, [{ holder: info.holder, since: info.since, expires: info.expires }]);
}

export function checkRange(key: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new CosmosBackupError('INVALID_ARGUMENT', `invalid range ${offset}+${length} for ${key}: offset and length must be non-negative integers`);
  }
}
