// `npm run dev:cloud`: a small pretend Azure tenant on this machine, for trying the controller.
// Starts the ARM simulator (a test stand-in for Azure Resource Manager and Entra ID, HTTPS with a
// CA made for this run), PostgreSQL and Azurite as the tests use them, and the MongoDB stand-in;
// seeds two subscriptions with accounts of every kind, tags and resource groups; points the
// PostgreSQL cluster's coordinator at the local PostgreSQL and a MongoDB account at the stand-in;
// prints the settings `npm start` needs, and waits until Ctrl-C (which deletes everything).
//   --port N   serve the simulator on N (default: a free port)
import { parseArgs } from 'node:util';
import { randomBytes, randomUUID } from 'node:crypto';
import { startServices } from '../test/support/services.ts';
import { startMongoServer } from '../test/support/mongo-server/index.ts';
import { startArmSimulator } from '../test/support/arm-simulator/index.ts';
import { ensurePostgres } from './ensure-postgres.ts';

const { values } = parseArgs({ options: { port: { type: 'string' } } });
const port = values.port === undefined ? 0 : Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`dev:cloud: --port must be a TCP port number, got ${values.port}\n`);
  process.exit(2);
}

ensurePostgres();
const [services, mongo, sim] = await Promise.all([startServices(), startMongoServer({ auth: true }), startArmSimulator({ port })]);

const tenant = randomUUID();
const prod = randomUUID();
const dev = randomUUID();
const clientId = randomUUID();
const secret = randomBytes(18).toString('base64url');
sim.addSubscription(prod, 'Contoso Production', tenant);
sim.addSubscription(dev, 'Contoso Development', tenant);
sim.addPrincipal({ tenantId: tenant, clientId, secret });
const db = (name: string, ...collections: string[]) => ({ name, collections });
const seed: Parameters<typeof sim.addAccount>[0][] = [
  { subscriptionId: prod, resourceGroup: 'rg-shop', name: 'shop-orders', api: 'Sql', location: 'westeurope', tags: { app: 'shop', backup: 'gold' }, databases: [db('orders', 'items', 'payments')] },
  { subscriptionId: prod, resourceGroup: 'rg-shop', name: 'shop-catalog', api: 'MongoDB', location: 'westeurope', tags: { app: 'shop', backup: 'gold' }, backup: 'Continuous7Days', databases: [db('catalog', 'products')] },
  { subscriptionId: prod, resourceGroup: 'rg-shop', name: 'shop-sessions', api: 'Table', location: 'westeurope', tags: { app: 'shop' }, databases: [db('tables', 'sessions')] },
  { subscriptionId: prod, resourceGroup: 'rg-social', name: 'social-graph', api: 'Gremlin', location: 'northeurope', tags: { app: 'social', backup: 'gold' }, databases: [db('graph', 'follows')] },
  { subscriptionId: prod, resourceGroup: 'rg-social', name: 'social-legacy', api: 'Cassandra', location: 'northeurope', tags: { app: 'social' }, backup: 'Periodic' },
  { subscriptionId: prod, resourceGroup: 'rg-reports', name: 'reports-periodic', api: 'Sql', location: 'westeurope', tags: { app: 'reports' }, backup: 'Periodic', databases: [db('reports', 'daily')] },
  { subscriptionId: dev, resourceGroup: 'rg-dev', name: 'dev-orders', api: 'Sql', location: 'westeurope', tags: { env: 'dev' }, databases: [db('orders', 'items')] },
  { subscriptionId: dev, resourceGroup: 'rg-dev', name: 'dev-catalog', api: 'MongoDB', location: 'westeurope', tags: { env: 'dev' }, databases: [db('catalog', 'products')] },
];
for (const s of seed) sim.addAccount(s);
// A deleted account stays restorable for its tier.
sim.addAccount({ subscriptionId: dev, resourceGroup: 'rg-dev', name: 'dev-old', location: 'westeurope', ageDays: 12, databases: [db('old', 'things')] });
sim.deleteAccount('dev-old');
sim.addCluster({ subscriptionId: prod, resourceGroup: 'rg-shop', name: 'shop-analytics', location: 'westeurope', tags: { app: 'shop', backup: 'gold' } });
sim.addCluster({ subscriptionId: dev, resourceGroup: 'rg-dev', name: 'dev-analytics', location: 'westeurope', tags: { env: 'dev' } });
sim.pointCoordinator('shop-analytics', services.pg.host, services.pg.port);
sim.setMongoConnectionString('shop-catalog', mongo.url('catalog'));
sim.setLroPolls(2, 4);

const sa = JSON.stringify({ name: 'contoso', tenantId: tenant, auth: 'secret', clientId, clientSecret: secret });
process.stdout.write([
  'A pretend Azure tenant is running (ARM simulator: a test stand-in, not Azure). Ctrl-C stops and deletes it.',
  '',
  `  ARM + Entra ID   ${sim.url}   (CA for this run: ${sim.caFile})`,
  `  tenant           ${tenant}`,
  `  subscriptions    ${prod} (Contoso Production), ${dev} (Contoso Development)`,
  `  service principal client id ${clientId}, secret ${secret}`,
  `  PostgreSQL       ${services.pg.url('postgres')}   (coordinator of cluster shop-analytics)`,
  `  MongoDB stand-in ${mongo.url('catalog')}   (connection string of account shop-catalog)`,
  `  Azurite          ${services.azurite.connectionString}`,
  '',
  'Start the controller against it (another terminal):',
  `  COSMOS_BACKUP_AZURE_ARM_ENDPOINT=${sim.url} COSMOS_BACKUP_AZURE_AUTHORITY_HOST=${sim.url} \\`,
  `  COSMOS_BACKUP_AZURE_CA_FILE=${sim.caFile} COSMOS_BACKUP_AZURE_POLL_INTERVAL_MS=200 npm start`,
  '',
  'Then, with the token the controller prints on its first start:',
  `  curl -sH "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '${sa}' http://127.0.0.1:8440/service-accounts`,
  '  curl -sH "Authorization: Bearer $TOKEN" -X POST http://127.0.0.1:8440/service-accounts/<id>/check',
  '  curl -sH "Authorization: Bearer $TOKEN" -X POST http://127.0.0.1:8440/accounts/rescan',
  '  curl -sH "Authorization: Bearer $TOKEN" "http://127.0.0.1:8440/accounts?accountTypes=MongoRU,NoSql&regions=westeurope"',
  '',
  `Simulator control (outside ARM): curl -s --cacert ${sim.caFile} -d '{"ms":3600000}' ${sim.url}/_sim/advanceTime`,
  '',
].join('\n'));

const stop = async () => {
  await Promise.allSettled([sim.stop(), mongo.stop(), services.stop()]);
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
setInterval(() => { /* keep alive */ }, 1 << 30);
