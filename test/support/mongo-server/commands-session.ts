// Handshake (hello/isMaster), SCRAM-SHA-256 conversations and server information commands.
import { Binary, type Document } from 'bson';
import { CommandError, badValue } from './errors.ts';
import { scramFinish, scramStart, ScramFailure, type ScramConversation } from './scram.ts';
import { MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE, MAX_WIRE_VERSION, MAX_WRITE_BATCH, num, type CommandContext, type Reply } from './command-context.ts';

// ---------------------------------------------------------------- handshake and auth

export function hello(ctx: CommandContext): Reply {
  const legacy = ctx.name.toLowerCase() === 'ismaster';
  const out: Document = {};
  if (legacy) out.ismaster = true;
  else out.isWritablePrimary = true;
  if (ctx.cmd.helloOk) out.helloOk = true;
  Object.assign(out, {
    maxBsonObjectSize: MAX_BSON_OBJECT_SIZE,
    maxMessageSizeBytes: MAX_MESSAGE_SIZE,
    maxWriteBatchSize: MAX_WRITE_BATCH,
    localTime: new Date(),
    logicalSessionTimeoutMinutes: 30,
    connectionId: ctx.conn.id,
    minWireVersion: 0,
    maxWireVersion: MAX_WIRE_VERSION,
    readOnly: false,
  });
  const mechs = ctx.cmd.saslSupportedMechs;
  if (typeof mechs === 'string') {
    const dot = mechs.indexOf('.');
    if (dot > 0 && ctx.server.lookupUser(mechs.slice(0, dot), mechs.slice(dot + 1))) out.saslSupportedMechs = ['SCRAM-SHA-256'];
  }
  const spec = ctx.cmd.speculativeAuthenticate as Document | undefined;
  if (spec && spec.saslStart && spec.mechanism === 'SCRAM-SHA-256') {
    try {
      out.speculativeAuthenticate = startConversation(ctx, String(spec.db ?? ctx.db), spec);
    } catch {
      // MongoDB leaves a failed speculative attempt out; the driver then runs saslStart itself.
    }
  }
  out.ok = 1;
  return out;
}

function authFailed(): CommandError {
  return new CommandError(18, 'AuthenticationFailed', 'Authentication failed.');
}

function payloadBytes(v: unknown): Buffer {
  if (v && typeof v === 'object' && (v as { _bsontype?: string })._bsontype === 'Binary') return Buffer.from((v as Binary).value());
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  throw badValue('SASL payload must be binary');
}

function startConversation(ctx: CommandContext, db: string, cmd: Document): Document {
  if (cmd.mechanism !== 'SCRAM-SHA-256') {
    throw new CommandError(334, 'MechanismUnavailable', `Received authentication for mechanism ${String(cmd.mechanism)} which is not enabled`);
  }
  let conv: ScramConversation;
  try {
    conv = scramStart(payloadBytes(cmd.payload), (user) => ctx.server.lookupUser(db, user));
  } catch (e) {
    if (e instanceof ScramFailure) throw authFailed();
    throw e;
  }
  const id = ++ctx.conn.nextConversation;
  ctx.conn.conversations.set(id, conv);
  return { conversationId: id, done: false, payload: new Binary(Buffer.from(conv.serverFirst, 'utf8')), ok: 1 };
}

export function saslStart(ctx: CommandContext): Reply {
  return startConversation(ctx, ctx.db, ctx.cmd);
}

export function saslContinue(ctx: CommandContext): Reply {
  const id = num(ctx.cmd.conversationId) ?? 0;
  const conv = ctx.conn.conversations.get(id);
  if (!conv) throw new CommandError(17, 'ProtocolError', 'No SASL session state found');
  ctx.conn.conversations.delete(id);
  let final: string;
  try {
    final = scramFinish(conv, payloadBytes(ctx.cmd.payload));
  } catch (e) {
    if (e instanceof ScramFailure) throw authFailed();
    throw e;
  }
  ctx.conn.user = conv.user;
  return { conversationId: id, done: true, payload: new Binary(Buffer.from(final, 'utf8')), ok: 1 };
}

// ---------------------------------------------------------------- server info

export function buildInfo(): Reply {
  return {
    version: '7.0.0', gitVersion: 'cosmos-backup-stand-in', versionArray: [7, 0, 0, 0], bits: 64,
    debug: false, maxBsonObjectSize: MAX_BSON_OBJECT_SIZE, storageEngines: ['stand-in'], ok: 1,
  };
}

export function serverStatus(ctx: CommandContext): Reply {
  return {
    host: '127.0.0.1', version: '7.0.0', process: 'mongod', pid: process.pid,
    uptime: (Date.now() - ctx.server.startedAt) / 1000, localTime: new Date(),
    connections: { current: ctx.server.connections(), available: 1000 }, ok: 1,
  };
}

export function connectionStatus(ctx: CommandContext): Reply {
  const u = ctx.conn.user;
  return {
    authInfo: {
      authenticatedUsers: u ? [{ user: u.user, db: u.db }] : [],
      authenticatedUserRoles: u ? [{ role: 'root', db: 'admin' }] : [],
    },
    ok: 1,
  };
}
