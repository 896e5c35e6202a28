// The controller's composition root: opens the configuration database, checks the master key,
// wires the session runner, the scheduler and the API, and (optionally) listens.
import { existsSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { CosmosBackupError } from '../shared/errors.ts';
import type { ControllerConfig } from './config.ts';
import { openPglite, openPostgres, type Db } from './db/db.ts';
import { migrate } from './db/migrate.ts';
import { SecretBox, loadMasterKey } from './db/secrets.ts';
import { verifyMasterKey } from './db/config-store.ts';
import { createToken, tokenCount } from './db/tokens.ts';
import { SessionRunner, silentLogger, type Logger } from './sessions/runner.ts';
import { Scheduler } from './sessions/scheduler.ts';
import type { Gateways } from './sessions/gateways.ts';
import { createApi } from './api/app.ts';
import { AzureControlPlane } from './azure/plane.ts';
import type { AzureCloudGateway } from './azure/gateway.ts';
import { accountRoutes } from './api/routes/accounts.ts';
import { startWorkerLayer, type WorkerLayer } from './workers/layer.ts';
import type { WorkerSettings } from './workers/settings.ts';

export const VERSION = '0.1.0';

export interface StartOptions {
  config: ControllerConfig;
  gateways: Gateways;
  logger?: Logger;
  /** listen on config.host:config.port (port 0 = any free port) */
  listen?: boolean;
  /** the Azure control plane (discovery, restore windows, PITR): its API routes and 8-hourly rescans */
  azure?: AzureCloudGateway;
  /** worker VMs for backups, archives and restores (replaces gateways.workers); needs `azure` */
  workers?: { settings: WorkerSettings; keepQueueTexts?: boolean };
}

export interface Controller {
  app: ReturnType<typeof createApi>;
  db: Db;
  runner: SessionRunner;
  scheduler: Scheduler;
  /** the first token, in clear, only on the start that created it */
  bootstrapToken: string | null;
  /** sessions found running from a previous process and marked failed, and missed runs started */
  recovered: { interrupted: string[]; missed: string[] };
  masterKeyCreated: boolean;
  url: string | null;
  azure: AzureControlPlane | null;
  workers: WorkerLayer | null;
  close(): Promise<void>;
}

/** Opens (and migrates) the configuration database the config points at, with its master key. */
export async function openConfigDatabase(config: ControllerConfig): Promise<{ db: Db; box: SecretBox; masterKeyCreated: boolean; release(): void }> {
  const key = loadMasterKey({ envValue: config.masterKey ?? undefined, keyFile: config.masterKeyFile });
  const box = new SecretBox(key.key);
  let release = () => {};
  let db: Db;
  if (config.databaseUrl) {
    db = await openPostgres(config.databaseUrl);
  } else {
    const dir = path.join(config.dataDir, 'controller');
    release = lockDataDir(dir);
    try {
      db = await openPglite(dir);
    } catch (e) {
      release();
      throw e;
    }
  }
  try {
    await migrate(db);
    await verifyMasterKey(db, box);
  } catch (e) {
    await db.close();
    release();
    throw e;
  }
  return { db, box, masterKeyCreated: key.created, release };
}

/** PGlite is single-process: a pid file keeps a second controller (or CLI) off a data directory in use. */
function lockDataDir(dir: string): () => void {
  mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
  const file = `${dir}.pid`;
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (pid && pid !== process.pid && isAlive(pid)) {
      throw new CosmosBackupError('REPO_LOCKED', `the embedded database ${dir} is in use by process ${pid}; stop that controller first (or use the API while it runs)`);
    }
  }
  writeFileSync(file, String(process.pid));
  return () => { try { rmSync(file, { force: true }); } catch { /* already gone */ } };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

export async function startController(opts: StartOptions): Promise<Controller> {
  const logger = opts.logger ?? silentLogger;
  const { db, box, masterKeyCreated, release } = await openConfigDatabase(opts.config);
  let bootstrapToken: string | null = null;
  if ((await tokenCount(db)) === 0) bootstrapToken = (await createToken(db, 'bootstrap')).token;

  let workers: WorkerLayer | null = null;
  if (opts.workers && opts.azure) {
    try {
      workers = await startWorkerLayer({ db, box, cloud: opts.azure, settings: opts.workers.settings, keepQueueTexts: opts.workers.keepQueueTexts, log: (line) => logger.info(line) });
    } catch (e) {
      await db.close();
      release();
      throw e;
    }
  }
  const gateways = workers ? { ...opts.gateways, workers: workers.gateway } : opts.gateways;
  const runner = new SessionRunner({ db, box, gateways, logger, retrievalPollMs: opts.config.retrievalPollSeconds * 1000 });
  const scheduler = new Scheduler({ db, runner, logger, missedRunWindowMinutes: opts.config.missedRunWindowMinutes });
  const recovered = await scheduler.start();
  const app = createApi({
    db, box, runner, repositories: gateways.repositories, workers: gateways.workers, logger, version: VERSION,
    onPoliciesChanged: () => scheduler.reload(),
    onSettingsChanged: () => scheduler.reloadReport(),
  });
  const azure = opts.azure ? new AzureControlPlane({ db, box, gateway: opts.azure, logger }) : null;
  if (azure) {
    app.route('/', accountRoutes({ plane: azure, db, box }));
    azure.startSchedule();
  }

  let server: ServerType | undefined;
  let url: string | null = null;
  if (opts.listen) {
    server = await new Promise<ServerType>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, port: opts.config.port, hostname: opts.config.host }, () => resolve(s));
      s.once('error', reject);
    });
    const port = (server.address() as AddressInfo).port;
    url = `http://${opts.config.host.includes(':') ? `[${opts.config.host}]` : opts.config.host}:${port}`;
  }

  let closed = false;
  return {
    app, db, runner, scheduler, bootstrapToken, recovered, masterKeyCreated, url, azure, workers,
    async close() {
      if (closed) return;
      closed = true;
      scheduler.stop();
      if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
      await runner.stop();
      await workers?.close();
      await azure?.stop();
      await db.close();
      release();
    },
  };
}
