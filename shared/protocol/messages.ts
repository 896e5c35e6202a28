// Controller ⇄ worker queue messages: one zod schema per kind, the envelope they share, and the
// pure encode/parse functions both sides use. No I/O here. The contract is docs/PROTOCOL.md.
//
// Schemas are strict (unknown fields are rejected) and have no defaults or transforms, so a
// parsed message is exactly the JSON that was MACed. That is what lets auth.ts verify a parsed
// value, and why a shape change means a new envelope version rather than a silent extra field.
import * as z from 'zod';
import type { ErrorCode } from '../errors.ts';
import { ProtocolError } from './errors.ts';
import { PROTOCOL_FAULTS } from './errors.ts';
import { MAX_MESSAGE_TEXT_BYTES, PROTOCOL_VERSION } from './constants.ts';
import { containsSecretText, isSecretKey, redactString } from './redact.ts';

// ---------------------------------------------------------------- building blocks

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard base64 of exactly n bytes (canonical: the padding bits are zero). */
function base64Of(n: number, what: string) {
  return z.string().refine((s) => BASE64.test(s) && Buffer.from(s, 'base64').length === n && Buffer.from(s, 'base64').toString('base64') === s, {
    message: `${what} must be ${n} bytes in standard base64`,
  });
}

const HEX64 = /^[0-9a-f]{64}$/;
export const Sha256HexSchema = z.string().regex(HEX64, 'must be 64 lowercase hex digits');
/** A restore point id: SHA-256 of its manifest, hex. */
export const RestorePointIdSchema = Sha256HexSchema;

/** Worker ids become queue names (`cb-<id>-reply-poison` must fit Azure's 63 characters). */
export const WorkerIdSchema = z.string().min(1).max(40).regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'must be lowercase letters, digits and single hyphens');

/** `sig=`, passwords in URLs and the like must never sit in a plain field. */
function noSecretText(s: string): boolean {
  return !containsSecretText(s);
}

const Text = (max: number, min = 0) => z.string().min(min).max(max).refine(noSecretText, { message: 'must not contain a secret (sealed secrets go in their own fields)' });
const Name = z.string().min(1).max(256);
const DatabaseName = z.string().min(1).max(128);
const Count = z.int().min(0);
const ShortId = z.string().min(1).max(128).regex(/^[A-Za-z0-9][A-Za-z0-9._:\-/]*$/, 'must be letters, digits and . _ : - /');

/** A URL that can travel in plaintext: http(s), no user info, no query string (a SAS lives in a sealed field). */
const PlainUrl = z.string().max(2048).refine((s) => {
  if (!URL.canParse(s)) return false;
  const u = new URL(s);
  return (u.protocol === 'https:' || u.protocol === 'http:') && u.username === '' && u.password === '' && u.search === '' && u.hash === '';
}, { message: 'must be an http(s) URL without user info, query string or fragment' });

/** Where a repository lives, without credentials: `azblob://acct/container/prefix`, an https URL, or `file:///path`. */
const RepositoryLocation = z.string().min(1).max(2048).regex(/^[^\s?#@]+$/, 'must not contain spaces, a query string, a fragment or user info');

/** String maps whose keys are not allowed to name a secret (they travel and get logged in plaintext). */
function PlainMap(key: z.ZodString, value: z.ZodType<string>, maxEntries: number) {
  return z.record(key, value)
    .refine((m) => Object.keys(m).length <= maxEntries, { message: `at most ${maxEntries} entries` })
    .refine((m) => !Object.keys(m).some(isSecretKey), { message: 'keys must not name a secret (use a sealed field)' });
}

// ---------------------------------------------------------------- secrets and blobs

export const SEALED_ALG = 'x25519-hkdf-aes256gcm';

/** A secret encrypted to the worker's X25519 key (auth.ts sealSecret/openSecret). */
export const SealedSecretSchema = z.strictObject({
  alg: z.literal(SEALED_ALG),
  /** base64url of the first 12 bytes of SHA-256(recipient public key): which worker key it was sealed to */
  kid: z.string().regex(/^[A-Za-z0-9_-]{16}$/, 'must be 16 base64url characters'),
  /** sender's ephemeral X25519 public key, raw 32 bytes */
  epk: base64Of(32, 'epk'),
  nonce: base64Of(12, 'nonce'),
  /** AES-256-GCM ciphertext followed by its 16-byte tag */
  ct: z.string().max(16384).refine((s) => BASE64.test(s) && Buffer.from(s, 'base64').length >= 16, { message: 'ct must be base64 of at least 16 bytes' }),
});
export type SealedSecret = z.infer<typeof SealedSecretSchema>;

/** Azure credentials for a blob location: a sealed SAS token, or the VM's managed identity. */
const SasAccess = { access: z.literal('sas'), /** SAS token (the query string, without '?'), sealed */ sas: SealedSecretSchema };
const IdentityAccess = { access: z.literal('managed-identity'), /** user-assigned identity; absent = system-assigned */ clientId: z.guid().optional() };

/** A large payload stored as a blob; `sha256` (covered by the message MAC) makes its content authentic. */
export const PayloadRefSchema = z.strictObject({
  url: PlainUrl,
  sha256: Sha256HexSchema,
  size: Count,
  /** read SAS for the worker when the blob is not public to its identity */
  sas: SealedSecretSchema.optional(),
});
export type PayloadRef = z.infer<typeof PayloadRefSchema>;

const repositoryShape = {
  location: RepositoryLocation,
  /** blob service endpoint when not derivable from the location (private endpoints, Azurite) */
  endpoint: PlainUrl.optional(),
  /** repository encryption password, sealed; absent for an unencrypted repository */
  password: SealedSecretSchema.optional(),
  /** access tier for the data packs this command writes (archive repositories); indexes and manifests stay in the account's default tier so dedup and listing never need a rehydration */
  accessTier: z.enum(['Hot', 'Cool', 'Cold', 'Archive']).optional(),
};
export const RepositorySchema = z.discriminatedUnion('access', [
  z.strictObject({ ...repositoryShape, ...SasAccess }),
  z.strictObject({ ...repositoryShape, ...IdentityAccess }),
]);
export type Repository = z.infer<typeof RepositorySchema>;

/** One blob to write (export destination). */
export const BlobTargetSchema = z.discriminatedUnion('access', [
  z.strictObject({ url: PlainUrl, ...SasAccess }),
  z.strictObject({ url: PlainUrl, ...IdentityAccess }),
]);
export type BlobTarget = z.infer<typeof BlobTargetSchema>;

// ---------------------------------------------------------------- databases

export const ENGINES = ['postgres', 'mongodb'] as const;
export const EngineSchema = z.enum(ENGINES);
export type Engine = z.infer<typeof EngineSchema>;

export const TlsSchema = z.strictObject({
  /** libpq sslmode names; for MongoDB, anything but 'disable' means tls=true and 'verify-*' checks the certificate */
  mode: z.enum(['disable', 'require', 'verify-ca', 'verify-full']),
  /** PEM of the CA to trust (public data) */
  ca: z.string().max(32768).optional(),
  servername: z.string().min(1).max(255).optional(),
});
export type Tls = z.infer<typeof TlsSchema>;

const databaseEndpointShape = {
  host: z.string().min(1).max(255).regex(/^[A-Za-z0-9._:[\]-]+$/, 'must be a host name or IP address'),
  port: z.int().min(1).max(65535),
  user: z.string().min(1).max(128),
  /** the database password (or MongoDB account key), sealed */
  password: SealedSecretSchema.optional(),
  tls: TlsSchema,
  /** MongoDB: a mongodb+srv:// seed list (vCore clusters) */
  srv: z.boolean().optional(),
  /** driver / URI options that are not secret, e.g. replicaSet, retrywrites, application_name */
  options: PlainMap(z.string().min(1).max(64).regex(/^[A-Za-z][A-Za-z0-9_.]*$/), Text(512), 32).optional(),
};

export const BackupSourceSchema = z.strictObject({
  ...databaseEndpointShape,
  /** databases to back up, one restore point each; empty = every user database */
  databases: z.array(DatabaseName).max(256),
  /** MongoDB: only these `db.collection`s */
  collections: z.array(Name).max(1000).optional(),
});
export type BackupSource = z.infer<typeof BackupSourceSchema>;

export const DatabaseTargetSchema = z.strictObject(databaseEndpointShape);
export type DatabaseTarget = z.infer<typeof DatabaseTargetSchema>;

export const RestoreOptionsSchema = z.strictObject({
  /** source database name → target database name; unmapped databases keep their name */
  databaseMap: PlainMap(DatabaseName, DatabaseName, 256).optional(),
  /** replace what exists: PostgreSQL --clean, MongoDB --drop; without it a non-empty target is refused */
  clean: z.boolean().optional(),
  parallel: z.int().min(1).max(64).optional(),
  /** PostgreSQL: skip owners / grants */
  noOwner: z.boolean().optional(),
  noPrivileges: z.boolean().optional(),
  /** restore only these; lists too long for a message go in `ref` (a JSON blob of the same shape) */
  subset: z.strictObject({
    databases: z.array(DatabaseName).max(256).optional(),
    schemas: z.array(Name).max(256).optional(),
    tables: z.array(Name).max(1000).optional(),
    collections: z.array(Name).max(1000).optional(),
    ref: PayloadRefSchema.optional(),
  }).optional(),
});
export type RestoreOptions = z.infer<typeof RestoreOptionsSchema>;

// ---------------------------------------------------------------- envelope

const envelopeShape = {
  v: z.literal(PROTOCOL_VERSION),
  /** unique per command or reply; commands are idempotent by it */
  id: z.uuid(),
  workerId: WorkerIdSchema,
  /** ISO 8601 UTC, the sender's clock; checked against the replay window */
  sentAt: z.iso.datetime(),
  /** HMAC-SHA-256 (base64) over the canonical JSON of the message without `mac` (auth.ts) */
  mac: base64Of(32, 'mac').optional(),
};
const JobId = ShortId;

// ---------------------------------------------------------------- commands (controller → worker)

export const BackupCommandSchema = z.strictObject({
  ...envelopeShape,
  kind: z.literal('backup'),
  /** the controller's task id, echoed in logs */
  jobId: JobId,
  engine: EngineSchema,
  source: BackupSourceSchema,
  repository: RepositorySchema,
  labels: PlainMap(z.string().min(1).max(63).regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/), Text(256), 64),
  tags: z.array(Text(128, 1)).max(64),
  parallel: z.int().min(1).max(64),
});

export const RestoreCommandSchema = z.strictObject({
  ...envelopeShape,
  kind: z.literal('restore'),
  jobId: JobId,
  engine: EngineSchema,
  restorePointId: RestorePointIdSchema,
  repository: RepositorySchema,
  target: DatabaseTargetSchema,
  options: RestoreOptionsSchema,
});

export const CopyCommandSchema = z.strictObject({
  ...envelopeShape,
  kind: z.literal('copy'),
  jobId: JobId,
  restorePointIds: z.array(RestorePointIdSchema).min(1).max(500),
  from: RepositorySchema,
  /** the archive; its `accessTier` applies to the packs the copy writes */
  to: RepositorySchema,
});

export const VerifyCommandSchema = z.strictObject({
  ...envelopeShape,
  kind: z.literal('verify'),
  jobId: JobId,
  repository: RepositorySchema,
  /** re-read, decrypt and re-hash every chunk, not only the structure */
  readData: z.boolean(),
  /** only these restore points; absent = the whole repository */
  restorePointIds: z.array(RestorePointIdSchema).max(500).optional(),
});

export const ExportCommandSchema = z.strictObject({
  ...envelopeShape,
  kind: z.literal('export'),
  jobId: JobId,
  restorePointId: RestorePointIdSchema,
  repository: RepositorySchema,
  /** 'sql': a plain SQL script psql loads; 'mongodump': a .tar.gz of the layout mongorestore reads */
  format: z.enum(['sql', 'mongodump']),
  destination: BlobTargetSchema,
});

export const CancelCommandSchema = z.strictObject({
  ...envelopeShape,
  kind: z.literal('cancel'),
  /** the running command to abort (it ends with a `failed` reply, code ABORTED) */
  commandId: z.uuid(),
  reason: Text(500),
});

export const ShutdownCommandSchema = z.strictObject({
  ...envelopeShape,
  kind: z.literal('shutdown'),
  reason: Text(500),
  /** abort the running job instead of finishing it first */
  abortRunning: z.boolean(),
});

export const CommandSchema = z.discriminatedUnion('kind', [
  BackupCommandSchema, RestoreCommandSchema, CopyCommandSchema, VerifyCommandSchema, ExportCommandSchema,
  CancelCommandSchema, ShutdownCommandSchema,
]);
export type Command = z.infer<typeof CommandSchema>;
export type CommandKind = Command['kind'];
export type CommandOf<K extends CommandKind> = Extract<Command, { kind: K }>;
export const COMMAND_KINDS = ['backup', 'restore', 'copy', 'verify', 'export', 'cancel', 'shutdown'] as const satisfies readonly CommandKind[];
/** Commands that act on a running job rather than start one; a busy worker handles them at once. */
export const CONTROL_KINDS = ['cancel', 'shutdown'] as const satisfies readonly CommandKind[];
export function isControlKind(kind: CommandKind): boolean {
  return (CONTROL_KINDS as readonly string[]).includes(kind);
}

// ---------------------------------------------------------------- replies (worker → controller)

// Every ErrorCode, listed at runtime for the schema; the type below fails to compile when
// shared/errors.ts gains a code that is missing here.
const ERROR_CODES = [
  'NOT_FOUND', 'ALREADY_EXISTS', 'REPO_NOT_FOUND', 'REPO_EXISTS', 'WRONG_PASSWORD', 'PASSWORD_REQUIRED',
  'REPO_LOCKED', 'CORRUPT_OBJECT', 'UNSUPPORTED_FORMAT', 'STORAGE_UNAVAILABLE', 'STORAGE_AUTH', 'STORAGE_FULL',
  'INVALID_ARGUMENT', 'DATABASE_UNREACHABLE', 'DATABASE_AUTH', 'DATABASE_PERMISSION', 'DATABASE_ERROR',
  'TARGET_NOT_EMPTY', 'DATA_ARCHIVED', 'ABORTED', 'UNAUTHENTICATED', 'INTERNAL',
] as const satisfies readonly ErrorCode[];
type MissingErrorCodes = Exclude<ErrorCode, (typeof ERROR_CODES)[number]>;
const _allErrorCodesListed: [MissingErrorCodes] extends [never] ? true : MissingErrorCodes = true;
export const ErrorCodeSchema = z.enum(ERROR_CODES);

export const HostFactsSchema = z.strictObject({
  hostname: z.string().min(1).max(255),
  cpus: z.int().min(1),
  memoryBytes: Count,
  os: z.strictObject({ platform: z.string().max(32), release: z.string().max(128), arch: z.string().max(32) }),
  /** glibc version when known (the binary needs ≥ 2.35) */
  glibc: z.string().max(32).optional(),
});
export type HostFacts = z.infer<typeof HostFactsSchema>;

export const HelloReplySchema = z.strictObject({
  ...envelopeShape,
  kind: z.literal('hello'),
  version: z.string().min(1).max(64),
  commit: z.string().min(1).max(64),
  host: HostFactsSchema,
  /** the worker's X25519 public key, raw 32 bytes, base64: secrets are sealed to it */
  publicKey: base64Of(32, 'publicKey'),
  pid: z.int().min(1).optional(),
  startedAt: z.iso.datetime(),
});

export const AcceptedReplySchema = z.strictObject({
  ...envelopeShape,
  kind: z.literal('accepted'),
  commandId: z.uuid(),
  commandKind: z.enum(COMMAND_KINDS),
  /** 1 on first run; more when a redelivery runs again after an interrupted or retryable attempt */
  attempt: z.int().min(1),
});

export const ProgressReplySchema = z.strictObject({
  ...envelopeShape,
  kind: z.literal('progress'),
  commandId: z.uuid(),
  /** e.g. connecting, schema, data, post-data, indexes, committing, copying, verifying, exporting */
  phase: z.string().regex(/^[a-z][a-z0-9-]{0,39}$/, 'must be a lowercase word'),
  /** logical bytes read (backup), written (restore) or copied */
  bytes: Count,
  objects: Count,
  bytesTotal: Count.optional(),
  objectsTotal: Count.optional(),
  /** bytes actually stored after dedup and compression (backup, copy) */
  bytesStored: Count.optional(),
  /** bytes per second over the recent window */
  rate: z.number().min(0),
  /** null while unknown */
  etaSeconds: z.number().min(0).nullable(),
});

export const HeartbeatReplySchema = z.strictObject({
  ...envelopeShape,
  kind: z.literal('heartbeat'),
  state: z.enum(['idle', 'busy', 'stopping']),
  commandId: z.uuid().optional(),
  uptimeSeconds: Count,
});

export const StatsSchema = z.strictObject({
  durationMs: Count,
  bytesRead: Count.optional(),
  bytesStored: Count.optional(),
  bytesWritten: Count.optional(),
  objects: Count.optional(),
  chunks: Count.optional(),
  newChunks: Count.optional(),
  copiedChunks: Count.optional(),
  copiedBytes: Count.optional(),
  rows: Count.optional(),
  documents: Count.optional(),
});
export type Stats = z.infer<typeof StatsSchema>;

export const ResultSchema = z.strictObject({
  /** the restore point made (backup of one database) or copied (copy of one) */
  restorePointId: RestorePointIdSchema.optional(),
  /** every restore point made, when a backup covered several databases */
  restorePoints: z.array(z.strictObject({
    database: DatabaseName, restorePointId: RestorePointIdSchema,
    /** bytes this point added to the repository (backup) */
    bytesStored: Count.optional(),
  })).max(256).optional(),
  stats: StatsSchema,
  /** restore fidelity: rows / documents per object on the target */
  counts: z.record(z.string().min(1).max(512), Count).optional(),
  /** verify: what is wrong (empty = clean); the full list goes to `report` when long */
  problems: z.array(Text(1000)).max(100).optional(),
  /** export: the blob written */
  output: PayloadRefSchema.optional(),
  /** details too large for the message (JSON blob) */
  report: PayloadRefSchema.optional(),
});
export type Result = z.infer<typeof ResultSchema>;

export const CompletedReplySchema = z.strictObject({
  ...envelopeShape,
  kind: z.literal('completed'),
  commandId: z.uuid(),
  result: ResultSchema,
});

const DetailValue = z.union([Text(1000), z.number(), z.boolean(), z.null()]);

export const FailedReplySchema = z.strictObject({
  ...envelopeShape,
  kind: z.literal('failed'),
  commandId: z.uuid(),
  code: ErrorCodeSchema,
  /** one human line, already passed through redactString */
  message: Text(2000, 1),
  /** true when running the same command again may succeed (throttling, network, a lost lock) */
  retryable: z.boolean(),
  details: z.record(z.string().min(1).max(64), DetailValue)
    .refine((m) => !Object.keys(m).some(isSecretKey), { message: 'keys must not name a secret' }).optional(),
});

export const REJECT_FAULTS = [...PROTOCOL_FAULTS, 'poison'] as const;

/** A queue message the worker refused without running anything (forged, malformed, poisoned). */
export const RejectedReplySchema = z.strictObject({
  ...envelopeShape,
  kind: z.literal('rejected'),
  /** the queue's message id */
  messageId: z.string().min(1).max(128).optional(),
  /** the `id` the message claimed, unverified */
  claimedId: z.string().min(1).max(128).optional(),
  fault: z.enum(REJECT_FAULTS),
  code: ErrorCodeSchema,
  message: Text(2000, 1),
});

export const GoodbyeReplySchema = z.strictObject({
  ...envelopeShape,
  kind: z.literal('goodbye'),
  reason: z.enum(['sigterm', 'idle-timeout', 'shutdown', 'fatal']),
  /** the job that was aborted on the way out, if any (it also gets its own `failed`) */
  abortedCommandId: z.uuid().optional(),
  message: Text(2000).optional(),
});

export const ReplySchema = z.discriminatedUnion('kind', [
  HelloReplySchema, AcceptedReplySchema, ProgressReplySchema, HeartbeatReplySchema, CompletedReplySchema,
  FailedReplySchema, RejectedReplySchema, GoodbyeReplySchema,
]);
export type Reply = z.infer<typeof ReplySchema>;
export type ReplyKind = Reply['kind'];
export type ReplyOf<K extends ReplyKind> = Extract<Reply, { kind: K }>;
export const REPLY_KINDS = ['hello', 'accepted', 'progress', 'heartbeat', 'completed', 'failed', 'rejected', 'goodbye'] as const satisfies readonly ReplyKind[];

export type Message = Command | Reply;

type Envelope = 'v' | 'id' | 'workerId' | 'sentAt' | 'mac';
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A command as the controller writes it, before the envelope is added. */
export type CommandBody = DistributiveOmit<Command, Envelope>;
export type ReplyBody = DistributiveOmit<Reply, Envelope>;

// ---------------------------------------------------------------- queues

export interface QueueNames {
  commands: string;
  replies: string;
  commandsPoison: string;
  repliesPoison: string;
}

/** The worker's queue pair and their poison queues. */
export function queueNames(workerId: string): QueueNames {
  const ok = WorkerIdSchema.safeParse(workerId);
  if (!ok.success) throw new ProtocolError('schema', `invalid worker id: ${ok.error.issues[0]?.message ?? 'bad format'}`);
  const commands = `cb-${workerId}-cmd`;
  const replies = `cb-${workerId}-reply`;
  return { commands, replies, commandsPoison: poisonQueueName(commands), repliesPoison: poisonQueueName(replies) };
}

export function poisonQueueName(queue: string): string {
  return `${queue}-poison`;
}

// ---------------------------------------------------------------- building

interface EnvelopeOptions {
  workerId: string;
  /** defaults to a random UUID; the controller picks it first when it seals secrets bound to it */
  id?: string;
  /** defaults to the current time */
  now?: Date;
}

function envelope(o: EnvelopeOptions) {
  return { v: PROTOCOL_VERSION, id: o.id ?? crypto.randomUUID(), workerId: o.workerId, sentAt: (o.now ?? new Date()).toISOString() } as const;
}

/** Wraps a body in a fresh v1 envelope (unsigned: pass it to signCommand). Validates the result. */
export function createCommand<B extends CommandBody>(body: B, opts: EnvelopeOptions): B & ReturnType<typeof envelope> {
  const msg = { ...envelope(opts), ...body };
  validateCommand(msg);
  return msg;
}

/** Wraps a body in a fresh v1 envelope (unsigned: pass it to signReply). Validates the result. */
export function createReply<B extends ReplyBody>(body: B, opts: EnvelopeOptions): B & ReturnType<typeof envelope> {
  const msg = { ...envelope(opts), ...body };
  validateReply(msg);
  return msg;
}

// ---------------------------------------------------------------- validating and parsing

const COMMAND_SET: ReadonlySet<string> = new Set(COMMAND_KINDS);
const REPLY_SET: ReadonlySet<string> = new Set(REPLY_KINDS);

function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  // Paths can contain record keys, which are data: shorten and redact them like any text.
  const where = (p: readonly PropertyKey[]) => (p.length ? redactString(p.map((k) => String(k).slice(0, 64)).join('.')) : '(message)');
  const shown = issues.slice(0, 4).map((i) => `${where(i.path)}: ${i.message}`);
  return shown.join('; ') + (issues.length > 4 ? `; and ${issues.length - 4} more` : '');
}

function validate<T>(value: unknown, direction: 'command' | 'reply', schema: z.ZodType<T>): T {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError('malformed', `${direction} is not a JSON object`);
  }
  const o = value as Record<string, unknown>;
  const ids = { claimedId: typeof o.id === 'string' ? o.id.slice(0, 128) : undefined };
  if (o.v !== PROTOCOL_VERSION) {
    if (o.v === undefined) throw new ProtocolError('schema', `${direction} has no version field "v"`, ids);
    throw new ProtocolError('version', `${direction} has protocol version ${JSON.stringify(o.v).slice(0, 20)}; this build speaks ${PROTOCOL_VERSION}`, ids);
  }
  const own = direction === 'command' ? COMMAND_SET : REPLY_SET;
  const other = direction === 'command' ? REPLY_SET : COMMAND_SET;
  if (typeof o.kind !== 'string' || !own.has(o.kind)) {
    const kind = typeof o.kind === 'string' ? o.kind.slice(0, 40) : undefined;
    const why = kind === undefined ? 'no kind' : other.has(kind) ? `kind '${kind}', which is not a ${direction}` : `unknown kind '${kind}'`;
    throw new ProtocolError('schema', `${direction} has ${why}`, { ...ids, kind });
  }
  const r = schema.safeParse(value);
  if (!r.success) {
    throw new ProtocolError('schema', `invalid ${o.kind} ${direction}: ${formatIssues(r.error.issues)}`, { ...ids, kind: o.kind });
  }
  return r.data;
}

/** Schema check of a decoded JSON value. */
export function validateCommand(value: unknown): Command {
  return validate(value, 'command', CommandSchema);
}
export function validateReply(value: unknown): Reply {
  return validate(value, 'reply', ReplySchema);
}

/** Queue text → JSON value: base64, UTF-8, JSON. Size-checked; no schema. */
export function decodeMessage(text: string): unknown {
  if (text.length > MAX_MESSAGE_TEXT_BYTES) {
    throw new ProtocolError('too-large', `message text is ${text.length} bytes; the limit is ${MAX_MESSAGE_TEXT_BYTES}`, { size: text.length });
  }
  if (!BASE64.test(text)) throw new ProtocolError('malformed', 'message text is not base64');
  const json = Buffer.from(text, 'base64').toString('utf8');
  try {
    return JSON.parse(json);
  } catch (err) {
    throw new ProtocolError('malformed', 'message is not JSON', {}, err);
  }
}

/** Queue text → a command that matches its schema (authenticity is auth.ts's openCommand). */
export function parseCommand(text: string): Command {
  return validateCommand(decodeMessage(text));
}

/** Queue text → a reply that matches its schema (authenticity is auth.ts's openReply). */
export function parseReply(text: string): Reply {
  return validateReply(decodeMessage(text));
}

/** Best effort, never throws: what a message claims to be, for `rejected` replies and logs. */
export function peekEnvelope(text: string): { v?: unknown; id?: string; kind?: string; workerId?: string } {
  try {
    const o = JSON.parse(Buffer.from(text.slice(0, MAX_MESSAGE_TEXT_BYTES * 2), 'base64').toString('utf8')) as Record<string, unknown>;
    if (typeof o !== 'object' || o === null) return {};
    const str = (x: unknown) => (typeof x === 'string' ? x.slice(0, 128) : undefined);
    return { v: typeof o.v === 'number' ? o.v : undefined, id: str(o.id), kind: str(o.kind), workerId: str(o.workerId) };
  } catch {
    return {};
  }
}

function findSecretText(v: unknown, path: string): string | undefined {
  if (typeof v === 'string') return containsSecretText(v) ? path : undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = findSecretText(v[i], `${path}[${i}]`);
      if (p) return p;
    }
  } else if (typeof v === 'object' && v !== null) {
    for (const [k, x] of Object.entries(v)) {
      if (containsSecretText(k)) return path ? `${path}.<key>` : '<key>';
      const p = findSecretText(x, path ? `${path}.${k}` : k);
      if (p) return p;
    }
  }
  return undefined;
}

/**
 * A signed message → queue text (base64 of its JSON). Refuses an invalid or unsigned message,
 * one carrying a plaintext secret, and one over MAX_MESSAGE_TEXT_BYTES (put the bulk in a blob
 * and send a PayloadRef).
 */
export function encodeMessage(msg: Message): string {
  const valid = COMMAND_SET.has(msg.kind) ? validateCommand(msg) : validateReply(msg);
  const ids = { claimedId: valid.id, kind: valid.kind };
  if (valid.mac === undefined) throw new ProtocolError('missing-mac', `refusing to send unsigned ${valid.kind} ${valid.id}`, ids);
  // Schemas already refuse secrets in the fields they know; this also covers keys and records.
  const leak = findSecretText(valid, '');
  if (leak) throw new ProtocolError('secret-in-message', `refusing to send ${valid.kind} ${valid.id}: ${leak} holds a plaintext secret`, { ...ids, path: leak });
  const text = Buffer.from(JSON.stringify(msg), 'utf8').toString('base64');
  if (text.length > MAX_MESSAGE_TEXT_BYTES) {
    throw new ProtocolError('too-large', `${valid.kind} ${valid.id} encodes to ${text.length} bytes; the limit is ${MAX_MESSAGE_TEXT_BYTES} (send large payloads as a PayloadRef)`, { ...ids, size: text.length });
  }
  return text;
}
