// `npm run dev:mongo`: starts the MongoDB wire-protocol stand-in the tests use (not a database:
// in memory, gone on exit), prints how to connect, and waits until Ctrl-C.
//   --port N         listen on N (default: a free port)
//   --no-auth        accept connections without credentials
//   --max-doc-bytes  reject larger documents as Cosmos DB does (e.g. 2097152)
import { parseArgs } from 'node:util';
import { startMongoServer } from '../test/support/mongo-server/index.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    'no-auth': { type: 'boolean', default: false },
    'max-doc-bytes': { type: 'string' },
  },
});
const port = values.port === undefined ? 0 : Number(values.port);
const maxDocumentSize = values['max-doc-bytes'] === undefined ? undefined : Number(values['max-doc-bytes']);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`dev:mongo: --port must be a TCP port number, got ${values.port}\n`);
  process.exit(2);
}
if (maxDocumentSize !== undefined && !(Number.isInteger(maxDocumentSize) && maxDocumentSize > 0)) {
  process.stderr.write(`dev:mongo: --max-doc-bytes must be a positive integer, got ${values['max-doc-bytes']}\n`);
  process.exit(2);
}

const server = await startMongoServer({ port, auth: !values['no-auth'], maxDocumentSize });
process.stdout.write([
  'MongoDB stand-in (test server, in memory; Ctrl-C stops it and forgets everything):',
  `  ${server.url('test')}`,
  '',
].join('\n'));
const stop = async () => { await server.stop(); process.exit(0); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
setInterval(() => { /* keep alive: the stand-in's sockets do not hold the process open */ }, 1 << 30);
