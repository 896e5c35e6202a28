// `npm run dev:services`: starts PostgreSQL and Azurite as the tests use them, prints how to
// reach them, and waits until Ctrl-C.
import { startServices } from '../test/support/services.ts';

const s = await startServices();
process.stdout.write([
  'Development services are running (Ctrl-C stops and deletes them):',
  `  PostgreSQL   ${s.pg.url('postgres')}`,
  `  Azurite      ${s.azurite.connectionString}`,
  '',
  'For the test runner, export:',
  ...Object.entries(s.env).map(([k, v]) => `  export ${k}='${v}'`),
  '',
].join('\n'));
const stop = async () => { await s.stop(); process.exit(0); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
setInterval(() => { /* keep alive */ }, 1 << 30);
