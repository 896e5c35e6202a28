// Command errors of the stand-in, with MongoDB's numeric codes and code names, and the error
// documents Cosmos DB for MongoDB sends where the stand-in imitates it.
import { randomUUID } from 'node:crypto';
import type { Document } from 'bson';

export class CommandError extends Error {
  readonly code: number;
  readonly codeName: string;
  readonly extra: Document;
  constructor(code: number, codeName: string, message: string, extra: Document = {}) {
    super(message);
    this.code = code;
    this.codeName = codeName;
    this.extra = extra;
  }

  toDocument(): Document {
    return { ok: 0, errmsg: this.message, code: this.code, codeName: this.codeName, ...this.extra };
  }
}

export const notFound = (ns: string) => new CommandError(26, 'NamespaceNotFound', `ns does not exist: ${ns}`);
export const badValue = (msg: string) => new CommandError(2, 'BadValue', msg);

/** The errmsg Cosmos DB for MongoDB puts in a 16500 answer (server-side retry disabled). */
export function cosmosThrottleMessage(retryAfterMs: number): string {
  return `Error=16500, RetryAfterMs=${retryAfterMs}, Details='Response status code does not indicate success: `
    + `TooManyRequests (429); Substatus: 3200; ActivityId: ${randomUUID()}; Reason: (\r\nErrors : [\r\n  `
    + `"Request rate is large. More Request Units may be needed, so no changes were made. Please retry this request later. `
    + `Learn more: http://aka.ms/cosmosdb-error-429"\r\n]\r\n);`;
}

export function cosmosThrottleError(retryAfterMs: number): CommandError {
  return new CommandError(16500, 'RequestRateTooLarge', cosmosThrottleMessage(retryAfterMs));
}

/** What Cosmos DB answers for a document above its size limit (2 MB on older server versions). */
export function cosmosTooLargeMessage(): string {
  return `Error=16, Details='Response status code does not indicate success: RequestEntityTooLarge (413); `
    + `Substatus: 0; ActivityId: ${randomUUID()}; Reason: (Message: {"Errors":["Request size is too large"]});`;
}
export const COSMOS_TOO_LARGE_CODE = 16;
