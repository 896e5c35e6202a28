// Azure Queue Storage failures as typed errors, the same on both ends of the protocol. No URL is
// ever echoed: a SAS could ride in its query string.
import { CosmosBackupError, humanMessage } from '../errors.ts';
import { redactString } from './redact.ts';

export function statusOf(e: unknown): number | undefined {
  return (e as { statusCode?: number }).statusCode;
}

/** `what` says what was being done; `hints` says what the reader can check on this side. */
export function queueError(what: string, e: unknown, hints: { auth: string; notFound?: string }): CosmosBackupError {
  const status = statusOf(e);
  const code = (e as { code?: string }).code ?? '';
  const text = redactString(`${status ?? ''} ${code || humanMessage(e)}`.replace(/\?\S*/g, '').trim());
  if (status === 401 || status === 403) return new CosmosBackupError('STORAGE_AUTH', `queue service refused ${what} (${text}): ${hints.auth}`, { cause: e });
  if (status === 404) return new CosmosBackupError('NOT_FOUND', `queue not found when ${what} (${text})${hints.notFound ? `: ${hints.notFound}` : ''}`, { cause: e });
  return new CosmosBackupError('STORAGE_UNAVAILABLE', `queue service failed ${what}: ${text}`, { cause: e, details: { transient: true } });
}
