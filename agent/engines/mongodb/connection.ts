// Connecting to MongoDB / Cosmos DB for MongoDB: a mongodb:// or mongodb+srv:// URL, the password
// from the URL or from --password-env (never from the command line), a host:port label for
// messages and manifests, and connection failures turned into one clear line.
import { MongoClient, type MongoClientOptions } from 'mongodb';
import { CosmosBackupError } from '../../../shared/errors.ts';

export interface MongoTarget {
  /** Full URL with credentials: never print, log or store it. */
  url: string;
  /** "host:port[,host:port]" for messages and manifests: never credentials */
  label: string;
  /** database named in the URL path, if any */
  database?: string;
  user?: string;
}

interface ParsedUrl { scheme: string; user?: string; password?: string; hosts: string; path: string; query: string }

function parseUrl(url: string): ParsedUrl {
  const m = /^(mongodb(?:\+srv)?):\/\/(.*)$/i.exec(url.trim());
  if (!m) throw new CosmosBackupError('INVALID_ARGUMENT', 'the MongoDB connection must be a mongodb:// or mongodb+srv:// URL');
  const scheme = m[1]!.toLowerCase();
  let rest = m[2]!;
  const q = rest.indexOf('?');
  const query = q >= 0 ? rest.slice(q) : '';
  if (q >= 0) rest = rest.slice(0, q);
  // The last '@' ends the credentials (an unencoded '@' in a password is a common mistake).
  const at = rest.lastIndexOf('@');
  let user: string | undefined;
  let password: string | undefined;
  if (at >= 0) {
    const info = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = info.indexOf(':');
    try {
      user = decodeURIComponent(colon >= 0 ? info.slice(0, colon) : info) || undefined;
      password = colon >= 0 ? decodeURIComponent(info.slice(colon + 1)) : undefined;
    } catch {
      throw new CosmosBackupError('INVALID_ARGUMENT', 'the user name or password in the MongoDB URL is not valid percent-encoding');
    }
  }
  const slash = rest.indexOf('/');
  const hosts = slash >= 0 ? rest.slice(0, slash) : rest;
  const path = slash >= 0 ? rest.slice(slash) : '';
  if (!hosts) throw new CosmosBackupError('INVALID_ARGUMENT', 'the MongoDB URL names no host');
  return { scheme, user, password, hosts, path, query };
}

/** Resolves a --source/--target URL and --password-env into connection settings. */
export function resolveMongoTarget(source: string, opts: { passwordEnv?: string } = {}): MongoTarget {
  const p = parseUrl(source);
  let password = p.password;
  if (opts.passwordEnv) {
    const pw = process.env[opts.passwordEnv];
    if (!pw) throw new CosmosBackupError('INVALID_ARGUMENT', `environment variable ${opts.passwordEnv} (named by --password-env) is not set or empty`);
    if (!p.user) throw new CosmosBackupError('INVALID_ARGUMENT', '--password-env needs a user name in the MongoDB URL (mongodb://USER@host/...)');
    password = pw;
  }
  const creds = p.user ? `${encodeURIComponent(p.user)}${password !== undefined ? `:${encodeURIComponent(password)}` : ''}@` : '';
  const url = `${p.scheme}://${creds}${p.hosts}${p.path}${p.query}`;
  const label = p.scheme === 'mongodb+srv' ? p.hosts : p.hosts.split(',').map((h) => (/:\d+$/.test(h) ? h : `${h}:27017`)).join(',');
  let database: string | undefined;
  if (p.path.length > 1) {
    try { database = decodeURIComponent(p.path.slice(1)); } catch { database = p.path.slice(1); }
  }
  return { url, label, database, user: p.user };
}

const AUTH_CODES = new Set([18, 11]);

/** Turns a connection-time error into one clear line with what to do. */
export function mongoConnectError(t: MongoTarget, e: unknown): CosmosBackupError {
  if (e instanceof CosmosBackupError) return e;
  const err = e as { name?: string; code?: number; message?: string; cause?: unknown };
  const msg = err.message ?? String(e);
  const codes = [err.code, (err.cause as { code?: number } | undefined)?.code];
  if (codes.some((c) => typeof c === 'number' && AUTH_CODES.has(c)) || /Authentication failed|auth(entication)? error|Invalid key/i.test(msg)) {
    return new CosmosBackupError('DATABASE_AUTH', `MongoDB at ${t.label} refused the login${t.user ? ` of ${t.user}` : ''}: check the user name, the password and authSource`, { cause: e });
  }
  if (err.code === 13 || /not authorized|Unauthorized/i.test(msg)) {
    return new CosmosBackupError('DATABASE_PERMISSION', `${t.user ?? 'the user'} lacks a permission on MongoDB at ${t.label}: ${msg}`, { cause: e });
  }
  if (err.name === 'MongoServerSelectionError' || err.name === 'MongoNetworkError' || err.name === 'MongoNetworkTimeoutError' || /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|EAI_AGAIN|querySrv/.test(msg)) {
    const why = /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|EAI_AGAIN|querySrv ?\w*/.exec(msg)?.[0];
    return new CosmosBackupError('DATABASE_UNREACHABLE', `cannot reach MongoDB at ${t.label}${why ? ` (${why})` : ''}: check the host, port, firewall, TLS settings and that the server is running`, { cause: e });
  }
  return new CosmosBackupError('DATABASE_ERROR', `MongoDB at ${t.label}: ${msg}`, { cause: e });
}

/** Opens a client and proves it can run a command (the handshake authenticates). */
export async function connectMongo(t: MongoTarget, extra: MongoClientOptions = {}): Promise<MongoClient> {
  const opts: MongoClientOptions = { appName: 'cosmos-backup', ...extra };
  // URL options win; otherwise fail within 30 s instead of hanging on an unreachable host.
  if (!/[?&]serverSelectionTimeoutMS=/i.test(t.url)) opts.serverSelectionTimeoutMS ??= 30_000;
  let client: MongoClient;
  try {
    client = new MongoClient(t.url, opts);
  } catch (e) {
    throw new CosmosBackupError('INVALID_ARGUMENT', `the MongoDB URL for ${t.label} is not valid: ${(e as Error).message}`, { cause: e });
  }
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
  } catch (e) {
    await client.close().catch(() => undefined);
    throw mongoConnectError(t, e);
  }
  return client;
}
