// Shared parts of the stand-in's commands: the context a command runs in, argument helpers and
// cursors (batches are assembled around stored document bytes, never re-encoded).
import { BSON, Long, type Document } from 'bson';
import { CommandError } from './errors.ts';
import { buildArray, buildDocument, elements, rawArrayItems, type RawValue } from './raw-bson.ts';
import type { ScramConversation, ScramUser } from './scram.ts';
import type { Collection, Store } from './store.ts';

export const MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024;
export const MAX_MESSAGE_SIZE = 48_000_000;
export const MAX_WRITE_BATCH = 100_000;
export const MAX_WIRE_VERSION = 21; // MongoDB 7.0
export const DEFAULT_FIRST_BATCH = 101;

export interface ServerCursor {
  id: Long;
  ns: string;
  docs: Buffer[];
  pos: number;
}

export interface ConnectionState {
  id: number;
  user?: ScramUser;
  conversations: Map<number, ScramConversation>;
  nextConversation: number;
}

/** What a command sees of the server. */
export interface ServerContext {
  store: Store;
  cursors: Map<string, ServerCursor>;
  nextCursorId(): Long;
  lookupUser(db: string, user: string): ScramUser | undefined;
  authRequired: boolean;
  /** Cosmos DB's document size limit when set (bytes). */
  maxDocumentSize?: number;
  /** Decides whether one insert batch is partly throttled; returns how many documents get through. */
  partialThrottle(command: string, count: number): { allowed: number; retryAfterMs: number } | undefined;
  connections(): number;
  startedAt: number;
  stats: { rejectedTooLarge: number };
}

export interface CommandContext {
  server: ServerContext;
  conn: ConnectionState;
  name: string;
  db: string;
  /** Decoded with COMPARE_DECODE: ints and doubles as numbers, Longs as Long, regexes as BSONRegExp. */
  cmd: Document;
  body: Buffer;
  sequences: Map<string, Buffer[]>;
  /** OP_QUERY (legacy) request. */
  legacy: boolean;
}

export type Reply = Document | RawValue;
export type Handler = (ctx: CommandContext) => Reply;

export const EXACT: BSON.DeserializeOptions = { promoteValues: false, bsonRegExp: true };

export function num(v: unknown, fallback?: number): number | undefined {
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'object' && (v as { _bsontype?: string })._bsontype === 'Long') return (v as Long).toNumber();
  if (typeof v === 'boolean') return v ? 1 : 0;
  return Number(v);
}

/** The body's fields decoded keeping their BSON types, for metadata that must round-trip. */
export function exact(ctx: CommandContext): Document {
  return BSON.deserialize(ctx.body, EXACT);
}

export function plainField(ctx: CommandContext, name: string): Document | undefined {
  const el = elements(ctx.body).find((e) => e.name === name);
  if (!el || el.type !== 0x03) return undefined;
  return BSON.deserialize(ctx.body.subarray(el.valueStart, el.end));
}

/** Raw documents of a field sent either as an OP_MSG document sequence or inside the body. */
export function rawDocs(ctx: CommandContext, field: string): Buffer[] {
  const seq = ctx.sequences.get(field);
  if (seq) return seq;
  const items = rawArrayItems(ctx.body, field);
  if (!items) throw new CommandError(40414, 'Location40414', `BSON field '${ctx.name}.${field}' is missing but a required field`);
  return items.map((b) => Buffer.from(b));
}

export function collName(ctx: CommandContext): string {
  const v = ctx.cmd[ctx.name];
  if (typeof v !== 'string' || v.length === 0 || v.includes('\0') || v.includes('$')) {
    throw new CommandError(73, 'InvalidNamespace', `Invalid namespace specified '${ctx.db}.${String(v)}'`);
  }
  return v;
}

export function checkDbName(db: string): void {
  if (!db || /[/\\. "$\0]/.test(db) || db.length > 63) throw new CommandError(73, 'InvalidNamespace', `Invalid database name: '${db}'`);
}

export function notOnView(ctx: CommandContext, coll: Collection | undefined): void {
  if (coll?.kind === 'view') {
    throw new CommandError(166, 'CommandNotSupportedOnView', `Namespace ${ctx.db}.${coll.name} is a view, not a collection`);
  }
}

/** Same BSON bytes (so the same types, values and field order). */
export function sameBson(a: unknown, b: unknown): boolean {
  return Buffer.from(BSON.serialize({ v: a })).equals(Buffer.from(BSON.serialize({ v: b })));
}

// ---------------------------------------------------------------- cursors

export function takeBatch(c: ServerCursor, maxDocs: number): Buffer[] {
  const out: Buffer[] = [];
  let bytes = 0;
  while (c.pos < c.docs.length && out.length < maxDocs) {
    const d = c.docs[c.pos]!;
    if (out.length > 0 && bytes + d.length > MAX_BSON_OBJECT_SIZE) break;
    out.push(d);
    bytes += d.length;
    c.pos++;
  }
  return out;
}

export function cursorReply(field: 'firstBatch' | 'nextBatch', batch: Buffer[], id: Long, ns: string): RawValue {
  return buildDocument([
    ['cursor', buildDocument([[field, buildArray(batch)], ['id', id], ['ns', ns]])],
    ['ok', 1],
  ]);
}

/** Opens a cursor over `docs` and answers with its first batch. */
export function openCursor(ctx: CommandContext, ns: string, docs: Buffer[], batchSize: number | undefined, singleBatch = false): RawValue {
  const c: ServerCursor = { id: Long.ZERO, ns, docs, pos: 0 };
  const batch = takeBatch(c, batchSize ?? DEFAULT_FIRST_BATCH);
  if (c.pos < docs.length && !singleBatch) {
    c.id = ctx.server.nextCursorId();
    ctx.server.cursors.set(c.id.toString(), c);
  }
  return cursorReply('firstBatch', batch, c.id, ns);
}

export function getMore(ctx: CommandContext): Reply {
  const id = ctx.cmd.getMore;
  const key = typeof id === 'object' && id !== null ? String(id) : String(num(id));
  const c = ctx.server.cursors.get(key);
  if (!c) throw new CommandError(43, 'CursorNotFound', `cursor id ${key} not found`);
  const coll = ctx.cmd.collection;
  if (typeof coll !== 'string' || `${ctx.db}.${coll}` !== c.ns && !c.ns.startsWith(`${ctx.db}.$cmd`)) {
    throw new CommandError(13, 'Unauthorized', `Requested getMore on namespace '${ctx.db}.${String(coll)}', but cursor belongs to a different namespace ${c.ns}`);
  }
  const batch = takeBatch(c, num(ctx.cmd.batchSize) || Infinity);
  let outId = c.id;
  if (c.pos >= c.docs.length) {
    ctx.server.cursors.delete(key);
    outId = Long.ZERO;
  }
  return cursorReply('nextBatch', batch, outId, c.ns);
}

export function killCursors(ctx: CommandContext): Reply {
  const killed: Long[] = [];
  const notFoundIds: Long[] = [];
  for (const id of (ctx.cmd.cursors as unknown[]) ?? []) {
    const long = typeof id === 'object' ? (id as Long) : Long.fromNumber(Number(id));
    if (ctx.server.cursors.delete(long.toString())) killed.push(long);
    else notFoundIds.push(long);
  }
  return { cursorsKilled: killed, cursorsNotFound: notFoundIds, cursorsAlive: [], cursorsUnknown: [], ok: 1 };
}
