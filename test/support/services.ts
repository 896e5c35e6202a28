// Starts the run's shared services (PostgreSQL, Azurite) and describes them as environment
// variables that test files pick up through usePostgres()/useAzurite().
import { startPostgres, type PostgresServer } from './postgres.ts';
import { startAzurite, type AzuriteServer } from './azurite.ts';

export interface RunServices {
  pg: PostgresServer;
  azurite: AzuriteServer;
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startServices(opts: { log?: boolean } = {}): Promise<RunServices> {
  const [pg, azurite] = await Promise.all([startPostgres(opts), startAzurite()]);
  const env = {
    COSMOS_TEST_PG: JSON.stringify({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, binDir: pg.binDir }),
    COSMOS_TEST_AZURITE: JSON.stringify({ blobPort: azurite.blobPort, queuePort: azurite.queuePort }),
  };
  return { pg, azurite, env, stop: async () => { await Promise.allSettled([pg.stop(), azurite.stop()]); } };
}
