// A controller process for the restart test: in-memory gateways whose worker never finishes,
// listening on a free port. Prints one JSON line {url, token} and runs until killed.
import { startController } from '../../../controller/start.ts';
import { fakeGateways } from './fakes.ts';
import { testConfig } from './controller.ts';

const dataDir = process.argv[2]!;
const gateways = fakeGateways();
gateways.workers.mode = 'hang';
gateways.cloud.addAccount({ name: 'orders-pg', kind: 'PostgreSQL' });
const c = await startController({ config: testConfig(dataDir), gateways, listen: true });
process.stdout.write(JSON.stringify({ url: c.url, token: c.bootstrapToken }) + '\n');
