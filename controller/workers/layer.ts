// The worker layer as the controller starts it: this controller's id, the pool (after removing
// what a crashed run left behind) and the WorkerGateway sessions use.
import type { Db } from '../db/db.ts';
import type { SecretBox } from '../db/secrets.ts';
import * as cfg from '../db/config-store.ts';
import type { AzureCloudGateway } from '../azure/gateway.ts';
import type { WorkerGateway } from '../sessions/gateways.ts';
import { AzureWorkers } from './gateway.ts';
import { WorkerPool } from './pool.ts';
import type { WorkerSettings } from './settings.ts';

export interface WorkerLayer {
  gateway: WorkerGateway;
  pool: WorkerPool;
  controllerId: string;
  leftoversRemoved: number;
  close(): Promise<void>;
}

export async function startWorkerLayer(o: {
  db: Db; box: SecretBox; cloud: AzureCloudGateway; settings: WorkerSettings; log?: (line: string) => void; keepQueueTexts?: boolean;
}): Promise<WorkerLayer> {
  const controllerId = await cfg.controllerId(o.db);
  const pool = new WorkerPool({ db: o.db, controllerId, settings: o.settings, azure: o.cloud.settings, log: o.log, keepQueueTexts: o.keepQueueTexts });
  const leftoversRemoved = await pool.cleanupLeftovers(async (id) => (await o.cloud.clients(await cfg.serviceAccountCredentials(o.db, o.box, id))).credential);
  return {
    gateway: new AzureWorkers({ pool, cloud: o.cloud, db: o.db, settings: o.settings }), pool, controllerId, leftoversRemoved,
    close: () => pool.close(),
  };
}
