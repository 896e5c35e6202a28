// Controller settings: built-in defaults, then an optional JSON file (COSMOS_BACKUP_CONFIG), then
// environment variables. Everything is validated at start and all problems are reported at once
// as `where: message` lines.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { CosmosBackupError } from '../shared/errors.ts';

export interface ControllerConfig {
  port: number;
  host: string;
  /** PostgreSQL URL; absent = embedded PGlite in <dataDir>/controller */
  databaseUrl: string | null;
  dataDir: string;
  /** base64 of 32 bytes, from the environment only */
  masterKey: string | null;
  masterKeyFile: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  missedRunWindowMinutes: number;
  /** how often a restore from the Archive tier looks at its rehydration (Azure takes hours) */
  retrievalPollSeconds: number;
}

const Port = z.coerce.number().int().min(0).max(65535);
const Level = z.enum(['debug', 'info', 'warn', 'error']);
const Minutes = z.coerce.number().int().min(0).max(7 * 24 * 60);
const Seconds = z.coerce.number().int().min(1).max(24 * 3600);
const PgUrl = z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgres:// or postgresql:// URL');

const FileSchema = z.object({
  port: Port.optional(),
  host: z.string().min(1).optional(),
  databaseUrl: PgUrl.optional(),
  dataDir: z.string().min(1).optional(),
  masterKeyFile: z.string().min(1).optional(),
  logLevel: Level.optional(),
  missedRunWindowMinutes: Minutes.optional(),
  retrievalPollSeconds: Seconds.optional(),
}).strict();

const ENV = {
  PORT: ['port', Port],
  HOST: ['host', z.string().min(1)],
  DATABASE_URL: ['databaseUrl', PgUrl],
  COSMOS_BACKUP_DATA_DIR: ['dataDir', z.string().min(1)],
  COSMOS_BACKUP_MASTER_KEY: ['masterKey', z.string().refine((v) => Buffer.from(v, 'base64').length === 32, 'expected base64 of 32 bytes (e.g. `openssl rand -base64 32`)')],
  COSMOS_BACKUP_MASTER_KEY_FILE: ['masterKeyFile', z.string().min(1)],
  COSMOS_BACKUP_LOG_LEVEL: ['logLevel', Level],
  COSMOS_BACKUP_MISSED_RUN_WINDOW_MINUTES: ['missedRunWindowMinutes', Minutes],
  COSMOS_BACKUP_RETRIEVAL_POLL_SECONDS: ['retrievalPollSeconds', Seconds],
} as const;

export class ConfigError extends CosmosBackupError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super('INVALID_ARGUMENT', `invalid controller configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ControllerConfig {
  const problems: string[] = [];
  let fromFile: z.infer<typeof FileSchema> = {};
  const file = env.COSMOS_BACKUP_CONFIG;
  if (file) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path.resolve(cwd, file), 'utf8'));
    } catch (e) {
      problems.push(`COSMOS_BACKUP_CONFIG (${file}): ${(e as Error).message}`);
    }
    if (raw !== undefined) {
      const r = FileSchema.safeParse(raw);
      if (r.success) fromFile = r.data;
      else for (const i of r.error.issues) problems.push(`${file}: ${i.path.join('.') || (i as { keys?: string[] }).keys?.join(', ') || '(root)'}: ${i.message}`);
    }
  }
  const fromEnv: Record<string, unknown> = {};
  for (const [name, [key, schema]] of Object.entries(ENV)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const r = (schema as z.ZodType).safeParse(v);
    if (r.success) fromEnv[key] = r.data;
    else problems.push(`${name}: ${r.error.issues.map((i) => i.message).join('; ')}`);
  }
  if (problems.length) throw new ConfigError(problems);
  const merged = { ...fromFile, ...fromEnv } as Partial<ControllerConfig>;
  const dataDir = path.resolve(cwd, merged.dataDir ?? '.cosmos-backup');
  return {
    port: merged.port ?? 8440,
    host: merged.host ?? '127.0.0.1',
    databaseUrl: merged.databaseUrl ?? null,
    dataDir,
    masterKey: merged.masterKey ?? null,
    masterKeyFile: path.resolve(cwd, merged.masterKeyFile ?? path.join(dataDir, 'master.key')),
    logLevel: merged.logLevel ?? 'info',
    missedRunWindowMinutes: merged.missedRunWindowMinutes ?? 240,
    retrievalPollSeconds: merged.retrievalPollSeconds ?? 600,
  };
}
