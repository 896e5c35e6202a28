// How the controller runs workers: where it puts them, how long an idle one is kept, how quickly
// a silent one counts as lost. From the environment (docs/CONTROLLER.md lists the variables).
import path from 'node:path';
import { CosmosBackupError } from '../../shared/errors.ts';
import { HEARTBEAT_INTERVAL_SECONDS, WORKER_LOST_AFTER_SECONDS } from '../../shared/protocol/constants.ts';

export interface WorkerSettings {
  /** resource group for workers, their network and the regional storage accounts, in each subscription */
  resourceGroup: string;
  /** region of the controller's queues; null = each worker's own region */
  controllerRegion: string | null;
  /** where the built agent binary and its manifest are */
  agentDir: string;
  /** an idle worker waits this long for the next task in its region, then is deleted */
  idleMs: number;
  /** concurrent workers per region when no worker configuration says otherwise */
  defaultMaxWorkers: number;
  helloTimeoutMs: number;
  lostAfterMs: number;
  heartbeatSeconds: number;
  /** a worker is retired after this long; its queue SAS expires then */
  maxLifetimeMs: number;
  /** user-assigned managed identity (ARM id) for worker VMs, or null */
  userAssignedIdentityId: string | null;
  /** exports stay downloadable this long, then are deleted */
  exportKeepMs: number;
}

function num(env: NodeJS.ProcessEnv, name: string, def: number, min = 1): number {
  const v = env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new CosmosBackupError('INVALID_ARGUMENT', `${name}: expected a number of at least ${min}, got "${v}"`);
  return n;
}

export function loadWorkerSettings(env: NodeJS.ProcessEnv = process.env): WorkerSettings {
  const lost = num(env, 'COSMOS_BACKUP_WORKER_LOST_SECONDS', WORKER_LOST_AFTER_SECONDS);
  const heartbeat = num(env, 'COSMOS_BACKUP_WORKER_HEARTBEAT_SECONDS', HEARTBEAT_INTERVAL_SECONDS);
  if (heartbeat * 2 > lost) throw new CosmosBackupError('INVALID_ARGUMENT', 'COSMOS_BACKUP_WORKER_HEARTBEAT_SECONDS must be at most half of COSMOS_BACKUP_WORKER_LOST_SECONDS');
  return {
    resourceGroup: env.COSMOS_BACKUP_WORKER_RESOURCE_GROUP || 'cosmos-backup-workers',
    controllerRegion: env.COSMOS_BACKUP_CONTROLLER_REGION || null,
    agentDir: path.resolve(env.COSMOS_BACKUP_AGENT_DIR || path.join(import.meta.dirname, '..', '..', 'dist')),
    idleMs: num(env, 'COSMOS_BACKUP_WORKER_IDLE_SECONDS', 600, 0) * 1000,
    defaultMaxWorkers: num(env, 'COSMOS_BACKUP_MAX_WORKERS', 4),
    helloTimeoutMs: num(env, 'COSMOS_BACKUP_WORKER_HELLO_SECONDS', 300) * 1000,
    lostAfterMs: lost * 1000,
    heartbeatSeconds: heartbeat,
    maxLifetimeMs: num(env, 'COSMOS_BACKUP_WORKER_MAX_HOURS', 12) * 3_600_000,
    userAssignedIdentityId: env.COSMOS_BACKUP_WORKER_IDENTITY || null,
    exportKeepMs: num(env, 'COSMOS_BACKUP_EXPORT_KEEP_HOURS', 24) * 3_600_000,
  };
}
