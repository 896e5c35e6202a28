// STAND-IN, NOT A DATABASE. A MongoDB wire-protocol server used only by the tests and by
// `npm run dev:mongo`, because no MongoDB server can be installed here. It speaks OP_MSG (and
// OP_QUERY for the legacy handshake) with SCRAM-SHA-256 so the official `mongodb` driver talks
// to it as to a standalone mongod 7.0, keeps every document as the exact BSON bytes it received,
// and injects Cosmos DB's faults on demand (16500 throttling with RetryAfterMs, dropped
// connections, slow answers, the 2 MB document limit). Data lives in memory and dies with it.
import net from 'node:net';
import { seededRandom } from '../seeded-random.ts';
import { randomBytes } from 'node:crypto';
import { BSON, Long } from 'bson';
import { COMPARE_DECODE } from './compare.ts';
import {
  MAX_MESSAGE_SIZE, OPEN_COMMANDS, runCommand,
  type CommandContext, type ConnectionState, type Reply, type ServerContext, type ServerCursor,
} from './commands.ts';
import { CommandError, cosmosThrottleError } from './errors.ts';
import { elements, isRaw, rawDoc, type RawValue } from './raw-bson.ts';
import { makeScramUser, type ScramUser } from './scram.ts';
import { Store } from './store.ts';
import { frameOpMsg, frameOpReply, MessageSplitter, MSG_MORE_TO_COME, OP_QUERY, parseRequest } from './wire.ts';

export interface MongoUser {
  user: string;
  password: string;
  /** The user's authentication database (authSource); default 'admin'. */
  db?: string;
}

export interface MongoServerOptions {
  /** Users allowed to authenticate; default one `admin` user with a random password. */
  users?: MongoUser[];
  /** false: no authentication at all (every command allowed, credentials refused). Default true. */
  auth?: boolean;
  /** TCP port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Reject documents larger than this many bytes with Cosmos DB's error (e.g. 2 MB). */
  maxDocumentSize?: number;
}

export interface ThrottleOptions {
  /** Chance (0..1) that a matching command is answered with 16500 instead of being run. */
  probability: number;
  /** The RetryAfterMs hint in the error message; default 10. */
  retryAfterMs?: number;
  /** Commands that may be throttled; default every command except handshake, auth and killCursors. */
  commands?: string[];
  /** Seed of the random sequence, for repeatable runs; default 1. */
  seed?: number;
  /** Stop after this many throttled answers; default unlimited. */
  count?: number;
  /**
   * Throttle inside insert batches as Cosmos DB does: a throttled insert stores a random prefix of
   * its documents and reports 16500 write errors for the rest, instead of failing as a whole.
   */
  partialWrites?: boolean;
}

export interface DropConnectionOptions {
  /** Command name, e.g. 'getMore'. */
  command: string;
  /** How many of these commands are answered before the next one closes the socket instead. */
  count: number;
  /** How many times to do it (each after another `count` answers); default 1. */
  times?: number;
}

export interface SlowOptions {
  /** Delay before each matching command is run. */
  ms: number;
  /** Commands to slow down; default all. */
  commands?: string[];
}

export interface MongoServerStats {
  /** Open connections now. */
  connections: number;
  totalConnections: number;
  /** Commands received, by name (faulted ones included). */
  commands: Record<string, number>;
  throttled: number;
  droppedConnections: number;
  slowed: number;
  rejectedTooLarge: number;
  bytesIn: number;
  bytesOut: number;
}

export interface MongoStandIn {
  host: string;
  port: number;
  /** The first configured user, when authentication is on. */
  user?: string;
  password?: string;
  /**
   * mongodb:// URL for `db`; credentials default to the first user (authSource its database),
   * `null` for none.
   */
  url(db?: string, creds?: { user: string; pass: string; authSource?: string } | null): string;
  throttle(opts: ThrottleOptions): void;
  dropConnectionAfter(opts: DropConnectionOptions): void;
  slow(opts: SlowOptions): void;
  clearFaults(): void;
  /** Cosmos DB document size limit in bytes, undefined for MongoDB's 16 MiB only. Settable. */
  maxDocumentSize: number | undefined;
  readonly stats: MongoServerStats;
  resetStats(): void;
  /** The stored bytes of a collection's documents in _id order (for assertions). */
  documents(db: string, collection: string): Buffer[];
  stop(): Promise<void>;
}

const NEVER_FAULTED = new Set([...OPEN_COMMANDS, 'killCursors']);


interface Faults {
  throttle?: { probability: number; retryAfterMs: number; commands?: Set<string>; random: () => number; remaining: number; partialWrites: boolean };
  drop?: { command: string; count: number; seen: number; times: number };
  slow?: { ms: number; commands?: Set<string> };
}

function emptyStats(connections: number): MongoServerStats {
  return { connections, totalConnections: 0, commands: {}, throttled: 0, droppedConnections: 0, slowed: 0, rejectedTooLarge: 0, bytesIn: 0, bytesOut: 0 };
}

function firstKey(body: Buffer): string {
  const first = elements(body)[0];
  if (!first) throw new CommandError(9, 'FailedToParse', 'empty command document');
  return first.name;
}

export async function startMongoServer(opts: MongoServerOptions = {}): Promise<MongoStandIn> {
  const authRequired = opts.auth !== false;
  const users: MongoUser[] = authRequired ? (opts.users ?? [{ user: 'admin', password: randomBytes(12).toString('hex') }]) : [];
  const scramUsers = new Map<string, ScramUser>();
  for (const u of users) {
    const db = u.db ?? 'admin';
    scramUsers.set(`${db}\0${u.user}`, makeScramUser(db, u.user, u.password));
  }
  const store = new Store();
  const cursors = new Map<string, ServerCursor>();
  const sockets = new Set<net.Socket>();
  const stats = emptyStats(0);
  let faults: Faults = {};
  let nextConnId = 0;
  let nextRequestId = 1;
  let cursorSeq = BigInt(Date.now()) * 1000n;
  let pendingPartial: { allowed: number; retryAfterMs: number } | undefined;

  const ctxServer: ServerContext = {
    store, cursors, authRequired,
    maxDocumentSize: opts.maxDocumentSize,
    startedAt: Date.now(),
    stats,
    nextCursorId: () => Long.fromBigInt(++cursorSeq),
    lookupUser: (db, user) => scramUsers.get(`${db}\0${user}`),
    connections: () => sockets.size,
    partialThrottle: (command, count) => {
      if (command !== 'insert' || !pendingPartial) return undefined;
      return { allowed: Math.min(pendingPartial.allowed, count), retryAfterMs: pendingPartial.retryAfterMs };
    },
  };

  /** Whether this command gets throttled now; consumes randomness only for matching commands. */
  function throttleNow(name: string): boolean {
    const t = faults.throttle;
    if (!t || t.remaining <= 0 || NEVER_FAULTED.has(name)) return false;
    if (t.commands && !t.commands.has(name)) return false;
    if (t.random() >= t.probability) return false;
    t.remaining--;
    stats.throttled++;
    return true;
  }

  function dropNow(name: string): boolean {
    const d = faults.drop;
    if (!d || d.times <= 0 || d.command !== name) return false;
    if (d.seen < d.count) {
      d.seen++;
      return false;
    }
    d.seen = 0;
    d.times--;
    return true;
  }

  async function execute(conn: ConnectionState, name: string, ctx: CommandContext): Promise<Reply | 'drop'> {
    if (ctx.legacy && !['hello', 'isMaster', 'ismaster'].includes(name)) {
      throw new CommandError(352, 'UnsupportedOpQueryCommand', `Unsupported OP_QUERY command: ${name}. The client driver may require an upgrade.`);
    }
    if (authRequired && !conn.user && !OPEN_COMMANDS.has(name)) {
      throw new CommandError(13, 'Unauthorized', `Command ${name} requires authentication`);
    }
    if (dropNow(name)) return 'drop';
    if (throttleNow(name)) {
      const t = faults.throttle!;
      if (name === 'insert' && t.partialWrites) {
        const n = rawCount(ctx);
        pendingPartial = { allowed: Math.floor(t.random() * n), retryAfterMs: t.retryAfterMs };
      } else {
        throw cosmosThrottleError(t.retryAfterMs);
      }
    }
    const s = faults.slow;
    if (s && !NEVER_FAULTED.has(name) && (!s.commands || s.commands.has(name))) {
      stats.slowed++;
      await new Promise((r) => setTimeout(r, s.ms));
    }
    try {
      return runCommand(ctx);
    } finally {
      pendingPartial = undefined;
    }
  }

  function rawCount(ctx: CommandContext): number {
    const seq = ctx.sequences.get('documents');
    if (seq) return seq.length;
    return Array.isArray(ctx.cmd.documents) ? ctx.cmd.documents.length : 0;
  }

  async function handle(socket: net.Socket, conn: ConnectionState, msg: Buffer): Promise<void> {
    stats.bytesIn += msg.length;
    const req = parseRequest(msg);
    let reply: Reply;
    let name = '?';
    try {
      name = firstKey(req.body);
      stats.commands[name] = (stats.commands[name] ?? 0) + 1;
      const cmd = BSON.deserialize(req.body, COMPARE_DECODE);
      const legacy = req.opCode === OP_QUERY;
      const db = legacy ? (req.fullCollectionName ?? '').split('.')[0]! : String(cmd.$db ?? 'admin');
      const ctx: CommandContext = { server: ctxServer, conn, name, db, cmd, body: req.body, sequences: req.sequences, legacy };
      const out = await execute(conn, name, ctx);
      if (out === 'drop') {
        stats.droppedConnections++;
        socket.destroy();
        return;
      }
      reply = out;
    } catch (e) {
      reply = e instanceof CommandError
        ? e.toDocument()
        : { ok: 0, errmsg: `stand-in failed on ${name}: ${(e as Error).message}`, code: 1, codeName: 'InternalError' };
    }
    if (req.opCode !== OP_QUERY && (req.flags & MSG_MORE_TO_COME) !== 0) return; // w:0, no answer wanted
    const body: RawValue = isRaw(reply) ? reply : rawDoc(Buffer.from(BSON.serialize(reply)));
    const frames = req.opCode === OP_QUERY
      ? frameOpReply(nextRequestId++, req.requestId, body)
      : frameOpMsg(nextRequestId++, req.requestId, body);
    let ok = true;
    socket.cork();
    for (const f of frames) {
      stats.bytesOut += f.length;
      ok = socket.write(f) && ok;
    }
    socket.uncork();
    // Bound memory: do not run the next request until a large answer has drained.
    if (!ok && !socket.destroyed) {
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
      });
    }
  }

  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.unref(); // a stand-in must never keep a test process alive
    sockets.add(socket);
    stats.totalConnections++;
    stats.connections = sockets.size;
    const conn: ConnectionState = { id: ++nextConnId, conversations: new Map(), nextConversation: 0 };
    const splitter = new MessageSplitter(MAX_MESSAGE_SIZE + 16 * 1024);
    let chain = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      let msgs: Buffer[];
      try {
        msgs = splitter.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const m of msgs) chain = chain.then(() => (socket.destroyed ? undefined : handle(socket, conn, m))).catch(() => { socket.destroy(); });
    });
    socket.on('error', () => { /* the peer went away; close follows */ });
    socket.on('close', () => {
      sockets.delete(socket);
      stats.connections = sockets.size;
    });
  });
  server.unref();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const first = users[0];

  const standIn: MongoStandIn = {
    host: '127.0.0.1',
    port,
    user: first?.user,
    password: first?.password,
    url(db = '', creds) {
      const c = creds === undefined ? (first ? { user: first.user, pass: first.password, authSource: first.db ?? 'admin' } : null) : creds;
      const auth = c ? `${encodeURIComponent(c.user)}:${encodeURIComponent(c.pass)}@` : '';
      const query = c ? `?authSource=${encodeURIComponent(c.authSource ?? 'admin')}` : '';
      return `mongodb://${auth}127.0.0.1:${port}/${encodeURIComponent(db)}${query}`;
    },
    throttle(o) {
      if (!(o.probability >= 0 && o.probability <= 1)) throw new Error('throttle: probability must be between 0 and 1');
      faults.throttle = {
        probability: o.probability, retryAfterMs: o.retryAfterMs ?? 10,
        commands: o.commands ? new Set(o.commands) : undefined, random: seededRandom(o.seed ?? 1),
        remaining: o.count ?? Infinity, partialWrites: o.partialWrites ?? false,
      };
    },
    dropConnectionAfter(o) {
      faults.drop = { command: o.command, count: o.count, seen: 0, times: o.times ?? 1 };
    },
    slow(o) {
      faults.slow = { ms: o.ms, commands: o.commands ? new Set(o.commands) : undefined };
    },
    clearFaults() {
      faults = {};
    },
    get maxDocumentSize() {
      return ctxServer.maxDocumentSize;
    },
    set maxDocumentSize(v: number | undefined) {
      ctxServer.maxDocumentSize = v;
    },
    get stats() {
      return stats;
    },
    resetStats() {
      Object.assign(stats, emptyStats(sockets.size));
    },
    documents(db, collection) {
      return (store.collection(db, collection)?.docs ?? []).map((e) => e.raw);
    },
    async stop() {
      for (const s of sockets) s.destroy();
      cursors.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return standIn;
}

let shared: Promise<MongoStandIn> | undefined;

/**
 * The process's shared stand-in (authentication on, one `admin` user). Tests that inject faults
 * or change settings should start their own with startMongoServer() and stop it.
 */
export function useMongoServer(): Promise<MongoStandIn> {
  shared ??= startMongoServer();
  return shared;
}

/** A fresh database name, unique within the run. */
export function uniqueDbName(prefix = 'test'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}
