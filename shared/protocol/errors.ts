// The one error type of the queue protocol. `code` is the stable ErrorCode callers match on;
// `fault` says precisely what was wrong so the worker can report it in a `rejected` reply.
import { CosmosBackupError, type ErrorCode } from '../errors.ts';

export const PROTOCOL_FAULTS = [
  'malformed', // not base64, not JSON, not an object
  'schema', // JSON that does not match the schema of its kind (or an unknown kind)
  'version', // an envelope version this build does not speak
  'too-large', // over the queue size budget
  'secret-in-message', // a plaintext secret (SAS signature, URL password) in an outgoing message
  'missing-mac',
  'bad-mac',
  'wrong-worker', // signed for another worker
  'expired', // older than the replay window
  'from-future', // sentAt ahead of our clock by more than the allowed skew
  'bad-secret', // a sealed secret that does not open with our key and its AAD
  'bad-key', // a malformed MAC key or public/private key
] as const;
export type ProtocolFault = (typeof PROTOCOL_FAULTS)[number];

const CODE_OF: Record<ProtocolFault, ErrorCode> = {
  malformed: 'INVALID_ARGUMENT',
  schema: 'INVALID_ARGUMENT',
  version: 'UNSUPPORTED_FORMAT',
  'too-large': 'INVALID_ARGUMENT',
  'secret-in-message': 'INVALID_ARGUMENT',
  'missing-mac': 'UNAUTHENTICATED',
  'bad-mac': 'UNAUTHENTICATED',
  'wrong-worker': 'UNAUTHENTICATED',
  expired: 'UNAUTHENTICATED',
  'from-future': 'UNAUTHENTICATED',
  'bad-secret': 'UNAUTHENTICATED',
  'bad-key': 'INVALID_ARGUMENT',
};

export class ProtocolError extends CosmosBackupError {
  readonly fault: ProtocolFault;
  /** Never contains secrets or message text; at most ids, kinds, sizes and schema paths. */
  constructor(fault: ProtocolFault, message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(CODE_OF[fault], message, { details: { fault, ...details }, cause });
    this.name = 'ProtocolError';
    this.fault = fault;
  }
}

export function isProtocolError(err: unknown, fault?: ProtocolFault): err is ProtocolError {
  return err instanceof ProtocolError && (fault === undefined || err.fault === fault);
}
