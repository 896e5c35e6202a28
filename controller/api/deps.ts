import type { Db } from '../db/db.ts';
import type { SecretBox } from '../db/secrets.ts';
import type { SessionRunner, Logger } from '../sessions/runner.ts';
import type { RepositoryGateway, WorkerGateway } from '../sessions/gateways.ts';

/** What the API needs, handed in by the controller's start-up. */
export interface ApiDeps {
  db: Db;
  box: SecretBox;
  runner: SessionRunner;
  repositories: RepositoryGateway;
  /** export download links */
  workers: WorkerGateway;
  /** re-arm schedules after a policy changed */
  onPoliciesChanged(): Promise<void>;
  /** re-arm the daily report after the global settings changed */
  onSettingsChanged?(): Promise<void>;
  logger: Logger;
  version: string;
}
