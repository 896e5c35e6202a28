// The commands the stand-in answers, by name, with MongoDB's reply shapes and error codes.
import { CommandError } from './errors.ts';
import { QueryError } from './query.ts';
import { getMore, killCursors, type CommandContext, type Handler, type Reply } from './command-context.ts';
import { buildInfo, connectionStatus, hello, saslContinue, saslStart, serverStatus } from './commands-session.ts';
import { collStats, create, createIndexes, dbStats, drop, dropDatabase, dropIndexes, listCollections, listDatabases, listIndexes } from './commands-catalog.ts';
import { aggregate, count, del, find, insert, update } from './commands-data.ts';

export { MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE, MAX_WIRE_VERSION, MAX_WRITE_BATCH } from './command-context.ts';
export type { CommandContext, ConnectionState, Reply, ServerContext, ServerCursor } from './command-context.ts';

const HANDLERS: Record<string, Handler> = {
  hello, isMaster: hello, ismaster: hello,
  saslStart, saslContinue,
  buildInfo, buildinfo: buildInfo,
  ping: () => ({ ok: 1 }),
  endSessions: () => ({ ok: 1 }),
  getParameter: (ctx) => (ctx.cmd.featureCompatibilityVersion ? { featureCompatibilityVersion: { version: '7.0' }, ok: 1 } : { ok: 1 }),
  serverStatus, connectionStatus,
  listDatabases, listCollections, listIndexes,
  create, drop, dropDatabase, dbStats, collStats,
  createIndexes, dropIndexes,
  insert, find, getMore, killCursors, count, aggregate, update, delete: del,
};

/** Commands a connection may run before authenticating. */
export const OPEN_COMMANDS = new Set(['hello', 'isMaster', 'ismaster', 'saslStart', 'saslContinue', 'buildInfo', 'buildinfo', 'ping', 'endSessions']);

export function runCommand(ctx: CommandContext): Reply {
  const handler = Object.hasOwn(HANDLERS, ctx.name) ? HANDLERS[ctx.name] : undefined;
  if (!handler) throw new CommandError(59, 'CommandNotFound', `no such command: '${ctx.name}'`);
  try {
    return handler(ctx);
  } catch (e) {
    if (e instanceof QueryError) throw new CommandError(e.code, e.codeName, e.message);
    throw e;
  }
}
