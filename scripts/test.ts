// Runs the whole test suite: starts one PostgreSQL server and one Azurite for the run, then
// node's built-in test runner over test/**/*.test.ts, and stops the services whatever happens.
import { spawn } from 'node:child_process';
import { startServices } from '../test/support/services.ts';
import { ensurePostgres } from './ensure-postgres.ts';
import { buildAgent } from './build-agent.ts';

const args = process.argv.slice(2);
const files = args.filter((a) => !a.startsWith('--'));
const flags = args.filter((a) => a.startsWith('--'));
ensurePostgres();
// The worker tests deploy the built agent; building it once here keeps parallel test files from
// building it at the same time (it is skipped when up to date).
await buildAgent();
const services = await startServices();
let code: number;
try {
  code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, [
      '--test', '--test-reporter=spec', '--test-concurrency=3', '--test-timeout=600000', ...flags,
      ...(files.length ? files : ['test/**/*.test.ts']),
    ], { stdio: 'inherit', env: { ...process.env, ...services.env } });
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0)));
  });
} finally {
  await services.stop();
}
process.exit(code);
