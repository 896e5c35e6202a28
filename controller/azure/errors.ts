// Azure failures as one clear line: sign-in problems, missing permissions (named), refusals.
import { CosmosBackupError } from '../../shared/errors.ts';

export class AzureError extends CosmosBackupError {
  /** HTTP status from ARM or Entra (0 when none), and ARM's own error code */
  readonly status: number;
  readonly azureCode: string;
  constructor(code: CosmosBackupError['code'], message: string, status: number, azureCode: string, cause?: unknown) {
    super(code, message, { cause, details: { status, azureCode } });
    this.name = 'AzureError';
    this.status = status;
    this.azureCode = azureCode;
  }
}

/** Turns what the Azure SDK throws into an AzureError saying what was being done. */
export function azureError(e: unknown, doing: string): AzureError {
  if (e instanceof AzureError) return e;
  const err = e as { name?: string; message?: string; statusCode?: number; code?: string };
  const msg = (err.message ?? String(e)).split('\n')[0]!;
  if (err.name === 'AuthenticationRequiredError' || err.name === 'AuthenticationError' || err.name === 'CredentialUnavailableError') {
    // MSAL's text carries the Entra reason (e.g. "AADSTS7000215: Invalid client secret provided")
    const aadsts = /AADSTS\d+: [^.]+\./.exec(msg)?.[0];
    return new AzureError('UNAUTHENTICATED', `${doing}: sign-in failed: ${aadsts ?? msg}`, 401, 'AuthenticationFailed', e);
  }
  const status = err.statusCode ?? 0;
  const code = err.code ?? 'Unknown';
  if (status === 403) return new AzureError('UNAUTHENTICATED', `${doing}: permission missing: ${msg}`, 403, code, e);
  if (status === 404) return new AzureError('NOT_FOUND', `${doing}: not found in Azure: ${msg}`, 404, code, e);
  if (status === 400 || status === 409) return new AzureError('INVALID_ARGUMENT', `${doing}: Azure refused: ${msg}`, status, code, e);
  if (/long-running operation has failed/i.test(msg)) return new AzureError('INTERNAL', `${doing}: ${msg}`, 0, 'OperationFailed', e);
  return new AzureError('INTERNAL', `${doing}: ${msg}`, status, code, e);
}
