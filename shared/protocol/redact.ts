// Redaction for logs, used by both the controller's and the agent's loggers: secret-named fields
// become "[redacted]", sealed secrets "[sealed]", and secrets embedded in strings (SAS `sig=`,
// URL passwords, connection-string keys, bearer tokens) are cut out. Pure: returns a copy.
//
// With pino: `pino({ formatters: { log: (o) => redact(o) as Record<string, unknown> } })`, and pass
// message strings through redactString().

export const REDACTED = '[redacted]';
export const SEALED = '[sealed]';

// Field names are compared after lowercasing and dropping everything but letters and digits,
// so `pg_password`, `PGPASSWORD`, `connection-string` and `AccountKey` all match.
const SECRET_NAMES = new Set([
  'password', 'passwd', 'pwd', 'passphrase', 'secret', 'sas', 'sig', 'signature', 'key', 'token', 'mac', 'hmac',
  'connectionstring', 'connstr', 'authorization', 'cookie', 'setcookie', 'credential', 'credentials',
  'protectedparameters', 'privatekey', 'sasurl', 'sasuri', 'saskey',
]);
const SECRET_SUFFIXES = ['password', 'passwd', 'secret', 'token', 'key', 'sas', 'connectionstring', 'credential', 'credentials', 'sasurl', 'sasuri'];
// Names that end like a secret but are not one (they identify, they do not authenticate).
const NOT_SECRET = new Set(['publickey', 'partitionkey', 'shardkey', 'keyid', 'kid', 'primarykeycolumns', 'foreignkey', 'sortkey']);

/** True when a field of this name must never be logged or sent in plaintext. */
export function isSecretKey(name: string): boolean {
  const n = name.toLowerCase().replace(/[^a-z0-9]/g, '');
  if (n === '' || NOT_SECRET.has(n)) return false;
  if (SECRET_NAMES.has(n)) return true;
  return SECRET_SUFFIXES.some((s) => n.endsWith(s));
}

// Each rule keeps the label and replaces the secret; each is idempotent ("[redacted]" never matches again).
const STRING_RULES: Array<[RegExp, string]> = [
  // SAS signature in any URL or query string: ...&sig=abc%2F...
  [/([?&;]sig=)[^&#\s"'<>;]+/gi, `$1${REDACTED}`],
  // connection strings: AccountKey=...; SharedAccessSignature=...; Password=...;
  [/\b(AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd)=(?!\[redacted\])[^;&\s"']+/gi, `$1=${REDACTED}`],
  // URL user info: scheme://user:password@host (greedy to the last '@', for unencoded passwords)
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@?#]*:)[^\s/?#]+@/gi, `$1${REDACTED}@`],
  // HTTP bearer tokens (long enough to be a token, not the word "Bearer token")
  [/\b(Bearer\s+)[A-Za-z0-9\-._~+/]{20,}=*/g, `$1${REDACTED}`],
];

/** Cuts secrets out of free text (error messages, URLs, command lines). */
export function redactString(s: string): string {
  let out = s;
  for (const [re, to] of STRING_RULES) out = out.replace(re, to);
  return out;
}

/** True when the text holds something redactString would remove. */
export function containsSecretText(s: string): boolean {
  return redactString(s) !== s;
}

function isSealedSecret(v: object): boolean {
  return (v as { alg?: unknown }).alg === 'x25519-hkdf-aes256gcm' && 'ct' in v;
}

const MAX_DEPTH = 32;

/** A log-safe deep copy of any value. */
export function redact(value: unknown): unknown {
  return walk(value, 0, new WeakSet());
}

function walk(v: unknown, depth: number, seen: WeakSet<object>): unknown {
  switch (typeof v) {
    case 'string': return redactString(v);
    case 'number': case 'boolean': case 'undefined': return v;
    case 'bigint': return v.toString();
    case 'function': return '[function]';
    case 'symbol': return v.toString();
  }
  if (v === null) return null;
  const o = v as object;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (seen.has(o)) return '[circular]';
  // Raw bytes may be key material: show only the size.
  if (o instanceof Uint8Array || o instanceof ArrayBuffer) return `[${o.byteLength} bytes]`;
  if (o instanceof Date) return Number.isNaN(o.getTime()) ? 'Invalid Date' : o.toISOString();
  if (o.constructor?.name === 'KeyObject') return '[key]';
  seen.add(o);
  try {
    if (o instanceof Error) {
      const e = o as Error & { code?: unknown; details?: unknown };
      const out: Record<string, unknown> = { name: e.name, message: redactString(e.message) };
      if (e.code !== undefined) out.code = walk(e.code, depth + 1, seen);
      if (e.details !== undefined) out.details = walk(e.details, depth + 1, seen);
      if (e.stack !== undefined) out.stack = redactString(e.stack);
      if (e.cause !== undefined) out.cause = walk(e.cause, depth + 1, seen);
      return out;
    }
    if (Array.isArray(o)) return o.map((x) => walk(x, depth + 1, seen));
    if (o instanceof Set) return [...o].map((x) => walk(x, depth + 1, seen));
    if (o instanceof Map) return walkEntries([...o.entries()].map(([k, x]) => [String(k), x]), depth, seen);
    if (isSealedSecret(o)) return SEALED;
    return walkEntries(Object.entries(o), depth, seen);
  } finally {
    seen.delete(o);
  }
}

function walkEntries(entries: Array<[string, unknown]>, depth: number, seen: WeakSet<object>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, x] of entries) {
    // Booleans and absent values say nothing secret ("hasPassword: true"); anything else under a secret name goes.
    if (isSecretKey(k) && x !== null && x !== undefined && typeof x !== 'boolean') {
      out[k] = typeof x === 'object' && isSealedSecret(x) ? SEALED : REDACTED;
    } else {
      out[k] = walk(x, depth + 1, seen);
    }
  }
  return out;
}
