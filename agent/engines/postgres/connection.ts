// Connecting to PostgreSQL the way libpq users expect: a URL or libpq keywords, the password
// from the URL, --password-env, PGPASSWORD or a .pgpass file, TLS from sslmode. Errors become one
// clear line: unreachable, wrong password, missing database, missing permission.
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { parse as parseUrl } from 'pg-connection-string';
import { CosmosBackupError } from '../../../shared/errors.ts';
import { slabSocket } from './slab-socket.ts';

export interface PgTarget {
  host: string;
  port: number;
  user: string;
  database: string;
  password?: string;
  ssl?: pg.ClientConfig['ssl'];
  /** "host:port" for messages and manifests: never credentials */
  label: string;
}

/** Parses libpq keyword=value pairs (values may be single-quoted with \' and \\ escapes). */
export function parseKeywords(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /\s*([a-zA-Z_]+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S+))/gy;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = re.exec(s))) {
    out[m[1]!] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!;
    last = re.lastIndex;
  }
  if (s.slice(last).trim()) throw new CosmosBackupError('INVALID_ARGUMENT', `cannot read the connection keywords near "${s.slice(last).trim().slice(0, 20)}"`);
  return out;
}

function sslFromMode(mode: string | undefined): pg.ClientConfig['ssl'] {
  switch (mode) {
    case undefined: case 'disable': case 'allow': case 'prefer': return undefined;
    case 'require': return { rejectUnauthorized: false };
    case 'verify-ca': case 'verify-full': return { rejectUnauthorized: true };
    default: throw new CosmosBackupError('INVALID_ARGUMENT', `unknown sslmode "${mode}" (use disable, require, verify-ca or verify-full)`);
  }
}

/** .pgpass lookup (PGPASSFILE or ~/.pgpass), as libpq does; ignored if group/world readable. */
export function pgpassLookup(t: { host: string; port: number; database: string; user: string }, file = process.env.PGPASSFILE ?? path.join(homedir(), '.pgpass')): string | undefined {
  let text: string;
  try {
    const st = statSync(file);
    if ((st.mode & 0o077) !== 0) return undefined;
    text = readFileSync(file, 'utf8');
  } catch { return undefined; }
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const fields: string[] = [];
    let cur = '';
    for (let i = 0; i < line.length; i++) {
      const c = line[i]!;
      if (c === '\\' && i + 1 < line.length) { cur += line[++i]; continue; }
      if (c === ':' && fields.length < 4) { fields.push(cur); cur = ''; continue; }
      cur += c;
    }
    fields.push(cur);
    if (fields.length !== 5) continue;
    const [h, p, d, u, pw] = fields as [string, string, string, string, string];
    const ok = (pat: string, v: string) => pat === '*' || pat === v;
    if (ok(h, t.host) && ok(p, String(t.port)) && ok(d, t.database) && ok(u, t.user)) return pw;
  }
  return undefined;
}

/** Resolves a --source/--target string and password sources into connection settings. */
export function resolveTarget(source: string, opts: { passwordEnv?: string; database?: string } = {}): PgTarget {
  let host: string | undefined; let port: number | undefined; let user: string | undefined; let database: string | undefined;
  let password: string | undefined; let ssl: pg.ClientConfig['ssl'];
  if (/^postgres(ql)?:\/\//i.test(source)) {
    const u = parseUrl(source, { useLibpqCompat: true });
    host = u.host ?? undefined; port = u.port ? Number(u.port) : undefined; user = u.user; database = u.database ?? undefined;
    password = u.password || undefined;
    const mode = new URL(source).searchParams.get('sslmode') ?? undefined;
    ssl = sslFromMode(mode);
  } else {
    const k = parseKeywords(source);
    host = k.host ?? k.hostaddr; port = k.port ? Number(k.port) : undefined; user = k.user; database = k.dbname;
    password = k.password; ssl = sslFromMode(k.sslmode);
  }
  host ??= process.env.PGHOST ?? 'localhost';
  port ??= Number(process.env.PGPORT ?? 5432);
  user ??= process.env.PGUSER ?? process.env.USER ?? 'postgres';
  database = opts.database ?? database ?? process.env.PGDATABASE ?? user;
  if (!password && opts.passwordEnv) {
    password = process.env[opts.passwordEnv];
    if (!password) throw new CosmosBackupError('INVALID_ARGUMENT', `environment variable ${opts.passwordEnv} (named by --password-env) is not set or empty`);
  }
  password ??= process.env.PGPASSWORD || pgpassLookup({ host, port, database, user });
  return { host, port, user, database, password, ssl, label: `${host}:${port}` };
}

export function withDatabase(t: PgTarget, database: string): PgTarget {
  const password = t.password ?? pgpassLookup({ host: t.host, port: t.port, database, user: t.user });
  return { ...t, database, password };
}

/** Turns a connection-time error into one clear line with what to do. */
export function connectError(t: PgTarget, e: unknown): CosmosBackupError {
  const err = e as { code?: string; message?: string };
  const where = `${t.label} as ${t.user}`;
  switch (err.code) {
    case 'ECONNREFUSED': case 'ENOTFOUND': case 'EHOSTUNREACH': case 'ETIMEDOUT': case 'EAI_AGAIN': case 'ECONNRESET':
      return new CosmosBackupError('DATABASE_UNREACHABLE', `cannot reach PostgreSQL at ${t.label} (${err.code}): check the host, port, firewall and that the server is running`, { cause: e });
    case '28P01': case '28000':
      return new CosmosBackupError('DATABASE_AUTH', `PostgreSQL at ${where} refused the password (or the login): check the user and password`, { cause: e });
    case '3D000':
      return new CosmosBackupError('DATABASE_ERROR', `database "${t.database}" does not exist on ${t.label}`, { cause: e });
    case '42501':
      return new CosmosBackupError('DATABASE_PERMISSION', `${where} lacks a permission: ${err.message}`, { cause: e });
    default:
      if (/password must be a string|SASL/.test(err.message ?? '')) {
        return new CosmosBackupError('DATABASE_AUTH', `PostgreSQL at ${where} needs a password: put it in the URL, PGPASSWORD, ~/.pgpass, or name a variable with --password-env`, { cause: e });
      }
      if (/self.signed|certificate|SSL/i.test(err.message ?? '')) {
        return new CosmosBackupError('DATABASE_UNREACHABLE', `TLS to ${t.label} failed: ${err.message}`, { cause: e });
      }
      return new CosmosBackupError('DATABASE_ERROR', `PostgreSQL at ${t.label}: ${err.message ?? String(e)}`, { cause: e });
  }
}

export async function connect(t: PgTarget, applicationName = 'cosmos-backup'): Promise<pg.Client> {
  const client = new pg.Client({
    host: t.host, port: t.port, user: t.user, database: t.database, password: t.password ?? '', ssl: t.ssl,
    application_name: applicationName, connectionTimeoutMillis: 30_000, keepAlive: true,
    // Without TLS, reads go into reused slabs (slab-socket.ts); pg makes TLS sockets itself.
    ...(t.ssl ? {} : { stream: slabSocket }),
  });
  client.on('error', () => { /* surfaced by the failing query; keep the process alive */ });
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => undefined);
    throw connectError(t, e);
  }
  return client;
}

export function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}
