// Placeholders for the gateways a caller does not supply (main.ts supplies the real cloud and
// repositories, and startController's `workers` option the worker layer): configuration and the
// API work; a session that needs a missing layer fails with this one clear line.
import { CosmosBackupError } from '../../shared/errors.ts';
import type { Gateways } from './gateways.ts';

const missing = (what: string) => async (): Promise<never> => {
  throw new CosmosBackupError('INTERNAL', `${what} is not available in this build of the controller yet`);
};

export function unwiredGateways(): Gateways {
  return {
    cloud: { listAccounts: missing('the Azure layer'), ensureContinuousBackup: missing('the Azure layer') },
    workers: {
      runBackup: missing('the worker layer'), runArchive: missing('the worker layer'), runRestore: missing('the worker layer'),
      runExport: missing('the worker layer'), exportLink: missing('the worker layer'),
    },
    repositories: {
      init: missing('the repository library'), attach: missing('the repository library'), forget: missing('the repository library'),
      retrieval: missing('the repository library'), rearchive: missing('the repository library'),
    },
  };
}
