// Key rules shared by every backend, so a key that works on one backend works on all of them
// (and cannot escape a filesystem root or collide with a backend's temp files).
import { CosmosBackupError } from '../errors.ts';

/** Prefix of in-flight temp files of FilesystemStore; no key segment may start with it. */
export const TEMP_PREFIX = '.tmp-';

function bad(what: string, value: string, why: string): CosmosBackupError {
  return new CosmosBackupError('INVALID_ARGUMENT', `invalid storage ${what} ${JSON.stringify(value)}: ${why}`);
}

function checkSegments(what: string, value: string, segments: string[]): void {
  for (const s of segments) {
    if (s === '.' || s === '..') throw bad(what, value, 'no "." or ".." segments');
    if (s.startsWith(TEMP_PREFIX)) throw bad(what, value, `segments must not start with "${TEMP_PREFIX}"`);
  }
}

/** Throws INVALID_ARGUMENT unless key is a relative '/'-separated path with non-empty segments. */
export function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw bad('key', String(key), 'empty');
  if (key.startsWith('/') || key.endsWith('/')) throw bad('key', key, 'must not start or end with "/"');
  if (/[\\\0]/.test(key)) throw bad('key', key, 'no backslash or NUL');
  const segments = key.split('/');
  if (segments.some((s) => s === '')) throw bad('key', key, 'no empty segments');
  checkSegments('key', key, segments);
}

/** A list prefix: like a key but may be empty or end with '/' (and its last segment may be partial). */
export function checkPrefix(prefix: string): void {
  if (prefix === '') return;
  if (prefix.startsWith('/')) throw bad('prefix', prefix, 'must not start with "/"');
  if (/[\\\0]/.test(prefix)) throw bad('prefix', prefix, 'no backslash or NUL');
  const segments = prefix.split('/');
  if (segments.slice(0, -1).some((s) => s === '')) throw bad('prefix', prefix, 'no empty segments');
  checkSegments('prefix', prefix, segments.slice(0, -1));
}
