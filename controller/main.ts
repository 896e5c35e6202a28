// Entry point: `node controller/main.ts` runs the controller; `token create|list|revoke` manage
// API tokens. Only this file turns errors into exit codes.
import { Command } from 'commander';
import pino from 'pino';
import { humanMessage } from '../shared/errors.ts';
import { loadConfig } from './config.ts';
import { openConfigDatabase, startController } from './start.ts';
import { createToken, listTokens, revokeToken } from './db/tokens.ts';
import { unwiredGateways } from './sessions/unwired.ts';
import { StorageRepositories } from './sessions/storage-repositories.ts';
import type { Logger } from './sessions/runner.ts';
import { AzureCloudGateway } from './azure/gateway.ts';
import { loadAzureSettings } from './azure/settings.ts';
import { loadWorkerSettings } from './workers/settings.ts';

async function serveCommand(): Promise<void> {
  const config = loadConfig();
  const log = pino({ level: config.logLevel, redact: ['*.password', '*.clientSecret', '*.token', '*.authorization'] }, pino.destination(2));
  const logger: Logger = { info: (msg, meta) => log.info(meta ?? {}, msg), error: (msg, meta) => log.error(meta ?? {}, msg) };
  const cloud = new AzureCloudGateway(loadAzureSettings());
  const gateways = { ...unwiredGateways(), repositories: new StorageRepositories(), cloud };
  const c = await startController({ config, gateways, logger, listen: true, azure: cloud, workers: { settings: loadWorkerSettings() } });
  const where = config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `${config.dataDir}/controller (embedded PGlite)`;
  console.log(`cosmos-backup controller listening on ${c.url}`);
  console.log(`configuration database: ${where}`);
  if (c.masterKeyCreated) console.log(`created master key file ${config.masterKeyFile} (0600): back it up; without it stored secrets cannot be read`);
  if (c.recovered.interrupted.length) console.log(`marked ${c.recovered.interrupted.length} interrupted session(s) failed`);
  if (c.workers?.leftoversRemoved) console.log(`removed ${c.workers.leftoversRemoved} worker(s) left by an earlier run`);
  if (c.bootstrapToken) {
    console.log('');
    console.log('First start: an API token was created. It is shown only this once; store it now:');
    console.log(`  ${c.bootstrapToken}`);
    console.log(`Use it as:  curl -H "Authorization: Bearer <token>" ${c.url}/policies`);
    console.log('More tokens:  POST /tokens, or node controller/main.ts token create --name NAME');
  } else {
    console.log(`authenticate with "Authorization: Bearer <token>"; new tokens: POST /tokens or node controller/main.ts token create --name NAME`);
  }
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'stopping');
    await c.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

async function withDb<T>(fn: (db: Awaited<ReturnType<typeof openConfigDatabase>>['db']) => Promise<T>): Promise<T> {
  const { db, release } = await openConfigDatabase(loadConfig());
  try {
    return await fn(db);
  } finally {
    await db.close();
    release();
  }
}

const program = new Command('controller').description('cosmos-backup controller').showHelpAfterError();
program.command('serve', { isDefault: true }).description('run the controller (default)').action(serveCommand);
const token = program.command('token').description('manage API tokens (stop an embedded-database controller first)');
token.command('create').description('create a token and print it once').requiredOption('--name <name>', 'a name to recognise the token by')
  .action(async (o: { name: string }) => {
    const t = await withDb((db) => createToken(db, o.name));
    console.log(t.token);
    console.error(`token "${o.name}" created; it is shown only now`);
  });
token.command('list').description('list token names (never the tokens)').action(async () => {
  for (const t of await withDb(listTokens)) console.log(`${t.name}\tcreated ${t.createdAt.toISOString()}\tlast used ${t.lastUsedAt?.toISOString() ?? 'never'}`);
});
token.command('revoke').description('revoke a token by name').requiredOption('--name <name>', 'token name').action(async (o: { name: string }) => {
  if (!(await withDb((db) => revokeToken(db, o.name)))) throw new Error(`no token named "${o.name}"`);
  console.error(`token "${o.name}" revoked`);
});

try {
  await program.parseAsync(process.argv);
} catch (e) {
  console.error(`error: ${humanMessage(e)}`);
  process.exit(1);
}
