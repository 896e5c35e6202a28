// Test harness: a real PostgreSQL server per test run (initdb into a temp dir, own port).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort, waitForPort } from './ports.ts';
import { reapOnDeath } from './reaper.ts';

export interface PostgresServer {
  host: string;
  port: number;
  user: string;
  password: string;
  binDir: string;
  /** postgres://user:password@host:port/<db> */
  url(database?: string): string;
  stop(): Promise<void>;
}

/** Directory with initdb/postgres/pg_dump: PG_BINDIR, `pg_config --bindir`, or the newest /usr/lib/postgresql/N/bin. */
export function findPostgresBinDir(): string {
  const candidates: string[] = [];
  if (process.env.PG_BINDIR) candidates.push(process.env.PG_BINDIR);
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim());
  } catch { /* pg_config absent */ }
  if (existsSync('/usr/lib/postgresql')) {
    const versions = readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin`);
  }
  for (const dir of candidates) {
    if (existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'postgres'))) return dir;
  }
  throw new Error('PostgreSQL server binaries (initdb, postgres) not found: install Debian\'s postgresql package (apt-get install -y postgresql) or set PG_BINDIR');
}

function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** Starts a fresh PostgreSQL cluster with password (scram) authentication on 127.0.0.1. */
export async function startPostgres(opts: { log?: boolean; ssl?: boolean } = {}): Promise<PostgresServer> {
  const binDir = findPostgresBinDir();
  const base = mkdtempSync(path.join(tmpdir(), 'cosmos-backup-pg-'));
  const dataDir = path.join(base, 'data');
  const sockDir = path.join(base, 'sock');
  const password = randomBytes(12).toString('hex');
  const pwFile = path.join(base, 'pw');
  writeFileSync(pwFile, password + '\n', { mode: 0o600 });
  const owner = postgresUser();
  if (owner) {
    // Running as root: PostgreSQL refuses to run as root, so the server runs as `postgres`.
    chownSync(base, owner.uid, owner.gid);
    chownSync(pwFile, owner.uid, owner.gid);
  }
  const asOwner = owner ? { uid: owner.uid, gid: owner.gid } : {};
  execFileSync(path.join(binDir, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--pwfile', pwFile, '-A', 'scram-sha-256', '-E', 'UTF8', '--locale', 'C.UTF-8', '--no-sync'], { stdio: 'pipe', ...asOwner, cwd: base });
  execFileSync('mkdir', ['-p', sockDir], { ...asOwner });
  const sslArgs: string[] = [];
  if (opts.ssl) {
    // A self-signed certificate, as a managed server without a trusted CA would present.
    const key = path.join(dataDir, 'server.key');
    const crt = path.join(dataDir, 'server.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', crt], { stdio: 'ignore', ...asOwner });
    sslArgs.push('-c', 'ssl=on', '-c', `ssl_cert_file=${crt}`, '-c', `ssl_key_file=${key}`);
  }
  const port = await freePort();
  const child: ChildProcess = spawn(path.join(binDir, 'postgres'), [
    '-D', dataDir, '-p', String(port), '-k', sockDir, '-c', 'listen_addresses=127.0.0.1',
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
    '-c', 'max_connections=200', '-c', 'shared_buffers=256MB', '-c', 'max_wal_size=4GB',
    '-c', 'max_locks_per_transaction=256', ...sslArgs,
  ], { stdio: ['ignore', opts.log ? 'inherit' : 'ignore', opts.log ? 'inherit' : 'pipe'], ...asOwner, cwd: base });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  reapOnDeath(child.pid!, base);
  let stopped = false;
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    try { child.kill('SIGQUIT'); } catch { /* gone */ }
  };
  process.once('exit', () => { stopSync(); try { rmSync(base, { recursive: true, force: true }); } catch { /* reaper finishes */ } });
  try {
    await Promise.race([waitForPort(port), exited.then(() => { throw new Error(`postgres exited at start: ${stderr}`); })]);
    // The port opens before the server accepts logins ("the database system is starting up").
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        execFileSync(path.join(binDir, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port), '-t', '5']);
        break;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`postgres did not become ready: ${stderr}`, { cause: e });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (e) {
    stopSync();
    throw e;
  }
  const server: PostgresServer = {
    host: '127.0.0.1', port, user: 'postgres', password, binDir,
    url: (database = 'postgres') => `postgres://postgres:${password}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      child.kill('SIGINT'); // fast shutdown
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(base, { recursive: true, force: true });
    },
  };
  return server;
}

let shared: Promise<PostgresServer> | undefined;

/**
 * The run's PostgreSQL server. Under `npm test` one server is started for the whole run and
 * handed to test files through COSMOS_TEST_PG (JSON); a test file run alone starts its own.
 */
export function usePostgres(): Promise<PostgresServer> {
  if (!shared) {
    const env = process.env.COSMOS_TEST_PG;
    if (env) {
      const info = JSON.parse(env) as { host: string; port: number; user: string; password: string; binDir: string };
      shared = Promise.resolve({
        ...info,
        url: (database = 'postgres') => `postgres://${info.user}:${info.password}@${info.host}:${info.port}/${encodeURIComponent(database)}`,
        stop: async () => { /* owned by the test runner */ },
      });
    } else {
      shared = startPostgres();
    }
  }
  return shared;
}

/** Creates a fresh, uniquely named database on the run's server and returns its name. */
export async function createTestDatabase(pg: PostgresServer, prefix = 'test'): Promise<string> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const { default: pgLib } = await import('pg');
  const client = new pgLib.Client({ connectionString: pg.url('postgres') });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  return name;
}
