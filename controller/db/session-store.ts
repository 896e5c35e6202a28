// Sessions (one row per run, with a log) and restore points.
import { randomUUID } from 'node:crypto';
import type { Queryable } from './db.ts';
import { notFound } from './errors.ts';
import type { Flag, FlagState } from '../policies/model.ts';

export type SessionType = 'backup' | 'archive' | 'restore' | 'export' | 'configuration' | 'retention' | 'cleanup' | 'report';
/** Data retrieval of restore points in the Archive tier (shared/repository/retrieval.ts). */
export interface RetrievalStatus {
  state: 'online' | 'archived' | 'rehydrating' | 'ready';
  packs: number;
  archived: number;
  rehydrating: number;
}

export type ExportFormat = 'sql' | 'mongodump';
/** Where an export was written: a blob in the controller's storage account of that region (no SAS). */
export interface ExportFile {
  subscriptionId: string;
  storageAccountId: string;
  container: string;
  blob: string;
  fileName: string;
  format: ExportFormat;
  size: number;
  sha256: string;
  /** after this the blob is deleted and no link is given out */
  expiresAt: string;
}

export type SessionState = 'running' | 'success' | 'warning' | 'failed';
export type SessionTrigger = 'schedule' | 'manual' | 'missed' | 'system';

export interface AccountResult {
  accountId: string;
  accountName: string;
  state: 'success' | 'warning' | 'failed' | 'skipped';
  bytes: number;
  restorePointId?: string;
  message?: string;
  /** backups through workers: every point made (one per database), bytes read from the database, time taken, the worker */
  restorePointIds?: string[];
  bytesRead?: number;
  durationMs?: number;
  worker?: string;
  /** restores: rows/documents per table or collection on the target */
  counts?: Record<string, number>;
  /** restores and exports from the Archive tier: the data retrieval under way */
  retrieval?: RetrievalStatus;
  /** exports: the file written (a link to it comes from POST /sessions/{id}/download-link) */
  export?: ExportFile;
}
export interface LogLine { at: string; level: 'info' | 'warning' | 'error'; message: string }
export interface Session {
  id: string; type: SessionType; state: SessionState; policyId: string | null; trigger: SessionTrigger;
  scheduledFor: string | null; flags: Flag[]; startedAt: string; finishedAt: string | null; bytes: number;
  accounts: AccountResult[]; error: string | null; interrupted: boolean;
  /** non-secret parameters, e.g. a restore's point and target; null for most sessions */
  params: Record<string, unknown> | null;
}

const iso = (d: unknown) => (d === null || d === undefined ? null : new Date(d as string).toISOString());
const sessionRow = (r: any): Session => ({
  id: r.id, type: r.type, state: r.state, policyId: r.policy_id, trigger: r.trigger, scheduledFor: iso(r.scheduled_for),
  flags: r.flags, startedAt: iso(r.started_at)!, finishedAt: iso(r.finished_at), bytes: Number(r.bytes), accounts: r.accounts,
  error: r.error, interrupted: r.interrupted, params: r.params ?? null,
});

/**
 * Starts a session row in state running. For a scheduled run, returns undefined when that
 * scheduled time was already served (the unique index makes "runs once" hold across restarts).
 */
export async function insertSession(db: Queryable, s: { type: SessionType; policyId?: string | null; trigger: SessionTrigger; scheduledFor?: Date | null; flags?: Flag[]; params?: Record<string, unknown> | null }): Promise<Session | undefined> {
  const rows = await db.query(
    `INSERT INTO sessions (id, type, state, policy_id, trigger, scheduled_for, flags, params) VALUES ($1,$2,'running',$3,$4,$5,$6,$7)
     ON CONFLICT DO NOTHING RETURNING *`,
    [randomUUID(), s.type, s.policyId ?? null, s.trigger, s.scheduledFor ?? null, JSON.stringify(s.flags ?? []), s.params ? JSON.stringify(s.params) : null]);
  return rows[0] ? sessionRow(rows[0]) : undefined;
}

export async function appendLog(db: Queryable, sessionId: string, level: LogLine['level'], message: string): Promise<void> {
  await db.query('INSERT INTO session_logs (session_id, level, message) VALUES ($1,$2,$3)', [sessionId, level, message]);
}

export async function setAccounts(db: Queryable, sessionId: string, accounts: AccountResult[]): Promise<void> {
  const bytes = accounts.reduce((n, a) => n + a.bytes, 0);
  await db.query('UPDATE sessions SET accounts = $2, bytes = $3 WHERE id = $1', [sessionId, JSON.stringify(accounts), bytes]);
}

export async function finishSession(db: Queryable, sessionId: string, state: Exclude<SessionState, 'running'>, error?: string): Promise<void> {
  await db.query(`UPDATE sessions SET state = $2, error = $3, finished_at = now() WHERE id = $1 AND state = 'running'`, [sessionId, state, error ?? null]);
}

export interface SessionFilter { policyId?: string; type?: SessionType; state?: SessionState; limit?: number }
export async function listSessions(db: Queryable, f: SessionFilter = {}): Promise<Session[]> {
  const rows = await db.query(
    `SELECT * FROM sessions WHERE ($1::text IS NULL OR policy_id = $1) AND ($2::text IS NULL OR type = $2) AND ($3::text IS NULL OR state = $3)
     ORDER BY started_at DESC, id LIMIT $4`,
    [f.policyId ?? null, f.type ?? null, f.state ?? null, f.limit ?? 100]);
  return rows.map(sessionRow);
}

export async function getSession(db: Queryable, id: string): Promise<Session & { log: LogLine[] }> {
  const r = (await db.query('SELECT * FROM sessions WHERE id = $1', [id]))[0];
  if (!r) throw notFound('session', id);
  const log = await db.query('SELECT at, level, message FROM session_logs WHERE session_id = $1 ORDER BY id', [id]);
  return { ...sessionRow(r), log: log.map((l) => ({ at: iso(l.at)!, level: l.level, message: l.message })) };
}

/** Sessions started in [since, until), newest first (for the daily report). */
export async function sessionsBetween(db: Queryable, since: Date, until: Date): Promise<Session[]> {
  return (await db.query('SELECT * FROM sessions WHERE started_at >= $1 AND started_at < $2 ORDER BY started_at DESC, id', [since, until])).map(sessionRow);
}

/** Start-up: whatever a stopped controller left running can never finish now. */
export async function failInterrupted(db: Queryable): Promise<string[]> {
  const rows = await db.query(
    `UPDATE sessions SET state = 'failed', finished_at = now(), interrupted = true,
       error = 'interrupted: the controller stopped while this session was running'
     WHERE state = 'running' RETURNING id`);
  for (const r of rows) await appendLog(db, r.id, 'error', 'Controller restarted: this session was still running when the previous controller process stopped; marked failed.');
  return rows.map((r) => r.id as string);
}

export async function lastSession(db: Queryable, type: SessionType, policyId: string | null): Promise<Session | undefined> {
  const r = (await db.query(`SELECT * FROM sessions WHERE type = $1 AND policy_id IS NOT DISTINCT FROM $2 ORDER BY started_at DESC LIMIT 1`, [type, policyId]))[0];
  return r ? sessionRow(r) : undefined;
}

/** Deletes finished session records (and their logs) older than the retention. */
export async function deleteOldSessions(db: Queryable, olderThan: Date): Promise<number> {
  return (await db.query(`DELETE FROM sessions WHERE finished_at IS NOT NULL AND finished_at < $1 RETURNING id`, [olderThan])).length;
}

// ---- restore points ----

export type RestorePointKind = 'continuous' | 'repository' | 'archive';
export interface RestorePoint {
  id: string; policyId: string | null; sessionId: string | null; accountId: string; accountName: string; kind: RestorePointKind;
  createdAt: string; flags: { flag: Flag; expiresAt: string }[]; size: number; repositoryId: string | null; formatPointId: string | null;
  accessTier: string | null; continuousTier: number | null; windowStart: string | null; windowEnd: string | null;
  databaseName: string | null;
}

const rpRow = (r: any): RestorePoint => ({
  id: r.id, policyId: r.policy_id, sessionId: r.session_id, accountId: r.account_id, accountName: r.account_name, kind: r.kind,
  createdAt: iso(r.created_at)!, flags: r.flags, size: Number(r.size), repositoryId: r.repository_id, formatPointId: r.format_point_id,
  accessTier: r.access_tier, continuousTier: r.continuous_tier, windowStart: iso(r.window_start), windowEnd: iso(r.window_end),
  databaseName: r.database_name ?? null,
});

export interface NewRestorePoint {
  policyId: string; sessionId: string; accountId: string; accountName: string; kind: RestorePointKind; createdAt: Date;
  flags?: FlagState[]; size?: number; repositoryId?: string | null; formatPointId?: string | null; accessTier?: string | null;
  continuousTier?: number | null; windowStart?: Date | null; windowEnd?: Date | null;
  /** the database a repository point holds (one point per database) */
  databaseName?: string | null;
}

export async function insertRestorePoint(db: Queryable, p: NewRestorePoint): Promise<RestorePoint> {
  const rows = await db.query(
    `INSERT INTO restore_points (id, policy_id, session_id, account_id, account_name, kind, created_at, flags, size, repository_id, format_point_id, access_tier, continuous_tier, window_start, window_end, database_name)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16) RETURNING *`,
    [randomUUID(), p.policyId, p.sessionId, p.accountId, p.accountName, p.kind, p.createdAt, JSON.stringify(p.flags ?? []), p.size ?? 0,
      p.repositoryId ?? null, p.formatPointId ?? null, p.accessTier ?? null, p.continuousTier ?? null, p.windowStart ?? null, p.windowEnd ?? null, p.databaseName ?? null]);
  return rpRow(rows[0]);
}

export interface RestorePointFilter { accountId?: string; policyId?: string; kind?: RestorePointKind; limit?: number }
export async function listRestorePoints(db: Queryable, f: RestorePointFilter = {}): Promise<RestorePoint[]> {
  const rows = await db.query(
    `SELECT * FROM restore_points WHERE ($1::text IS NULL OR lower(account_id) = lower($1)) AND ($2::text IS NULL OR policy_id = $2) AND ($3::text IS NULL OR kind = $3)
     ORDER BY created_at DESC, id LIMIT $4`,
    [f.accountId ?? null, f.policyId ?? null, f.kind ?? null, f.limit ?? 1000]);
  return rows.map(rpRow);
}

export async function getRestorePoint(db: Queryable, id: string): Promise<RestorePoint> {
  const r = (await db.query('SELECT * FROM restore_points WHERE id = $1', [id]))[0];
  if (!r) throw notFound('restore point', id);
  return rpRow(r);
}

export async function setFlags(db: Queryable, id: string, flags: FlagState[]): Promise<void> {
  await db.query('UPDATE restore_points SET flags = $2 WHERE id = $1', [id, JSON.stringify(flags)]);
}

export async function deleteRestorePoint(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM restore_points WHERE id = $1', [id]);
}

/** Flag states of a stored point, as the pure retention code wants them. */
export function flagStates(p: RestorePoint): FlagState[] {
  return p.flags.map((f) => ({ flag: f.flag, expiresAt: new Date(f.expiresAt) }));
}

/** After a policy's retention changed: existing repository points take the new expiries (see policies/retention.ts reexpire). */
export async function reexpirePoints(db: Queryable, policyId: string, fn: (p: { id: string; createdAt: Date; flags: FlagState[] }) => { flags: FlagState[] }): Promise<number> {
  let changed = 0;
  for (const p of await listRestorePoints(db, { policyId, kind: 'repository', limit: 100_000 })) {
    const next = fn({ id: p.id, createdAt: new Date(p.createdAt), flags: flagStates(p) }).flags;
    if (JSON.stringify(next) !== JSON.stringify(flagStates(p))) {
      await setFlags(db, p.id, next);
      changed++;
    }
  }
  return changed;
}
