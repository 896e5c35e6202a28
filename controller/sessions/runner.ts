// Runs sessions: each run is a session row (state, timings, bytes, per-account results, log).
// A session starts in the background and its row is the only way to follow it.
import { CosmosBackupError, humanMessage } from '../../shared/errors.ts';
import type { Db } from '../db/db.ts';
import type { SecretBox } from '../db/secrets.ts';
import * as cfg from '../db/config-store.ts';
import * as st from '../db/session-store.ts';
import type { AccountResult, Session, SessionTrigger, SessionType } from '../db/session-store.ts';
import { CONTINUOUS_NOT_APPLICABLE, DUMPABLE_KINDS, NO_CONTINUOUS_KINDS, continuousNotApplicableReason, inScope, noContinuousReason, owners, type CloudAccount } from '../policies/scope.ts';
import { applyRetention, assignFlags, flagExpiry } from '../policies/retention.ts';
import { mostFrequentFlag } from '../policies/schedule.ts';
import type { Flag } from '../policies/model.ts';
import { addLocal } from '../policies/zoned.ts';
import type { DatabaseLogin, ExportFormat, Gateways, RepositoryAccess, RetrievalStatus } from './gateways.ts';
import { inArchiveTier, repositoryAccess } from './repository-access.ts';
import { dailyReportMail, sessionMail, sessionRecipients } from '../notifications/messages.ts';
import { sendMail } from '../notifications/mailer.ts';

export interface Logger {
  info(msg: string, meta?: Record<string, unknown>): void;
  error(msg: string, meta?: Record<string, unknown>): void;
}
export const silentLogger: Logger = { info() {}, error() {} };

export interface StartRequest {
  type: SessionType;
  policyId?: string | null;
  trigger: SessionTrigger;
  scheduledFor?: Date | null;
  flags?: Flag[];
  /** recorded with the session (never secrets) */
  params?: Record<string, unknown> | null;
  /** handed to the session body in memory only, never stored (e.g. a restore target's login) */
  secrets?: SessionSecrets;
}

export interface SessionSecrets { credentials?: DatabaseLogin }

/** What a restore session records: the restore point, and where it goes. */
export interface RestoreParams {
  restorePointId: string;
  serviceAccountId: string;
  targetAccountId: string;
  databaseName: string;
  subset: string[];
  /** Archive-tier points: how fast Azure rehydrates their data (Standard: up to 15 hours; High: about one) */
  rehydratePriority?: 'Standard' | 'High';
}

/** What an export session records. */
export interface ExportParams {
  restorePointId: string;
  serviceAccountId: string;
  /** default: by the account's engine (sql for PostgreSQL, mongodump for MongoDB) */
  format?: ExportFormat;
}

/** One running session's handle for its body: log lines go to the session's log. */
interface Ctx {
  session: Session;
  signal: AbortSignal;
  log(level: 'info' | 'warning' | 'error', message: string): Promise<void>;
}
type Outcome = { state: 'success' | 'warning' | 'failed'; error?: string };

export class SessionRunner {
  readonly #db: Db;
  readonly #box: SecretBox;
  readonly #gw: Gateways;
  readonly #logger: Logger;
  readonly #inflight = new Map<Promise<void>, string>();
  readonly #secrets = new Map<string, SessionSecrets>();
  readonly #stop = new AbortController();

  readonly #retrievalPollMs: number;

  constructor(opts: { db: Db; box: SecretBox; gateways: Gateways; logger?: Logger; retrievalPollMs?: number }) {
    this.#retrievalPollMs = opts.retrievalPollMs ?? 600_000;
    this.#db = opts.db;
    this.#box = opts.box;
    this.#gw = opts.gateways;
    this.#logger = opts.logger ?? silentLogger;
  }

  /** Inserts the session row and runs it in the background; undefined when a scheduled time was already served. */
  async start(req: StartRequest): Promise<Session | undefined> {
    if (this.#stop.signal.aborted) throw new CosmosBackupError('ABORTED', 'the controller is stopping');
    const session = await st.insertSession(this.#db, req);
    if (!session) return undefined;
    if (req.secrets) this.#secrets.set(session.id, req.secrets);
    const p = this.#run(session).finally(() => this.#inflight.delete(p));
    this.#inflight.set(p, session.id);
    return session;
  }

  /** Resolves when no session is running in this process. */
  async idle(): Promise<void> {
    while (this.#inflight.size) await Promise.allSettled([...this.#inflight.keys()]);
  }

  /**
   * Graceful stop: running sessions are told to abort and end as failed. One that does not end
   * within the grace time is recorded as failed here, so no row stays "running".
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.#stop.abort(new CosmosBackupError('ABORTED', 'the controller is stopping'));
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      this.idle().then(() => false),
      new Promise<boolean>((r) => { timer = setTimeout(() => r(true), graceMs); }),
    ]);
    clearTimeout(timer);
    if (!late) return;
    for (const id of this.#inflight.values()) {
      await st.appendLog(this.#db, id, 'error', 'controller stopped before this session ended').catch(() => {});
      await st.finishSession(this.#db, id, 'failed', 'interrupted: the controller stopped').catch(() => {});
    }
  }

  async #run(session: Session): Promise<void> {
    const ctx: Ctx = {
      session,
      signal: this.#stop.signal,
      log: (level, message) => st.appendLog(this.#db, session.id, level, message),
    };
    let outcome: Outcome;
    try {
      await ctx.log('info', `${session.type} session started (${session.trigger}${session.scheduledFor ? `, scheduled for ${session.scheduledFor}` : ''})`);
      outcome = await this.#body(ctx);
    } catch (e) {
      outcome = { state: 'failed', error: humanMessage(e) };
      await ctx.log('error', humanMessage(e)).catch(() => {});
    }
    try {
      await st.finishSession(this.#db, session.id, outcome.state, outcome.error);
    } catch (e) {
      this.#logger.error('cannot record the end of a session', { sessionId: session.id, error: humanMessage(e) });
    }
    this.#secrets.delete(session.id);
    this.#logger.info('session finished', { sessionId: session.id, type: session.type, state: outcome.state });
    await this.#notify(session.id);
    // Retention follows every backup and archive that ran.
    if ((session.type === 'backup' || session.type === 'archive') && session.policyId && outcome.state !== 'failed' && !this.#stop.signal.aborted) {
      await this.start({ type: 'retention', policyId: session.policyId, trigger: 'system' }).catch((e) =>
        this.#logger.error('cannot start retention', { policyId: session.policyId, error: humanMessage(e) }));
    }
  }

  #body(ctx: Ctx): Promise<Outcome> {
    switch (ctx.session.type) {
      case 'backup': return this.#backup(ctx);
      case 'archive': return this.#archive(ctx);
      case 'configuration': return this.#configuration(ctx);
      case 'retention': return this.#retention(ctx);
      case 'cleanup': return this.#cleanup(ctx);
      case 'restore': return this.#restore(ctx);
      case 'export': return this.#export(ctx);
      case 'report': return this.#report(ctx);
      default: throw new CosmosBackupError('INVALID_ARGUMENT', `${ctx.session.type} sessions are not started by the controller core`);
    }
  }

  /** Accounts in the policy's scope that this policy owns (a higher-priority policy takes an account first). */
  async #accounts(ctx: Ctx, policy: cfg.Policy, sa: cfg.ServiceAccountCredentials): Promise<CloudAccount[]> {
    const all = await this.#gw.cloud.listAccounts(sa);
    const mine = all.filter((a) => inScope(a, policy.scope));
    const policies = await cfg.listPolicies(this.#db);
    const own = owners(policies.map((p) => ({ ...p, createdAt: new Date(p.createdAt) })), mine);
    const out: CloudAccount[] = [];
    for (const a of mine) {
      const owner = own.get(a.id.toLowerCase());
      if (owner === policy.id) out.push(a);
      else await ctx.log('info', `${a.name}: skipped, processed by policy "${policies.find((p) => p.id === owner)?.name ?? owner}" (higher priority)`);
    }
    await ctx.log('info', `${out.length} account(s) in scope`);
    return out;
  }

  #repoAccess(repositoryId: string): Promise<RepositoryAccess & { repo: cfg.Repository }> {
    return repositoryAccess(this.#db, this.#box, repositoryId);
  }

  async #policy(ctx: Ctx): Promise<{ policy: cfg.Policy; sa: cfg.ServiceAccountCredentials }> {
    if (!ctx.session.policyId) throw new CosmosBackupError('INVALID_ARGUMENT', 'session has no policy');
    const policy = await cfg.getPolicy(this.#db, ctx.session.policyId);
    return { policy, sa: await cfg.serviceAccountCredentials(this.#db, this.#box, policy.serviceAccountId) };
  }

  async #backup(ctx: Ctx): Promise<Outcome> {
    const { policy, sa } = await this.#policy(ctx);
    if (!policy.backup) {
      await ctx.log('info', 'backup to repository is off for this policy; accounts are protected by continuous backup');
      return { state: 'success' };
    }
    const schedules = policy.backup.schedules;
    const repo = await this.#repoAccess(policy.backup.repositoryId);
    const createdAt = ctx.session.scheduledFor ? new Date(ctx.session.scheduledFor) : new Date(ctx.session.startedAt);
    // A scheduled run carries the flags of every schedule due then; an on-demand run is kept like the most frequent schedule's points.
    const flags = ctx.session.flags.length ? ctx.session.flags : [mostFrequentFlag(schedules)!];
    const flagStates = assignFlags(flags, createdAt, schedules);
    const results: AccountResult[] = [];
    for (const account of await this.#accounts(ctx, policy, sa)) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const base = { accountId: account.id, accountName: account.name, bytes: 0 };
      if (!DUMPABLE_KINDS.includes(account.kind)) {
        results.push({ ...base, state: 'skipped', message: NO_CONTINUOUS_KINDS.includes(account.kind) ? noContinuousReason(account.kind) : `${account.kind} accounts are protected by continuous backup only` });
        continue;
      }
      const credentials = (await cfg.policyCredential(this.#db, this.#box, policy.id, account.id)) ?? null;
      if (account.kind === 'PostgreSQL' && !credentials) {
        results.push({ ...base, state: 'failed', message: 'no database credentials for this account in the policy' });
        await ctx.log('error', `${account.name}: no database credentials in the policy`);
        await st.setAccounts(this.#db, ctx.session.id, results);
        continue;
      }
      try {
        await ctx.log('info', `${account.name}: backup to repository "${repo.repo.name}" started`);
        const earlier = await st.listRestorePoints(this.#db, { accountId: account.id, kind: 'repository', limit: 1 });
        const r = await this.#gw.workers.runBackup({
          sessionId: ctx.session.id, account, serviceAccount: sa, repository: repo,
          credentials, databases: credentials?.databases ?? [], tags: flags, sizeHint: null, firstBackup: earlier.length === 0,
          workerConfiguration: (await cfg.workerConfigurationFor(this.#db, account.region)) ?? null,
          signal: ctx.signal, log: (m) => void ctx.log('info', `${account.name}: ${m}`).catch(() => {}),
        });
        const ids: string[] = [];
        for (const made of r.points) {
          const point = await st.insertRestorePoint(this.#db, {
            policyId: policy.id, sessionId: ctx.session.id, accountId: account.id, accountName: account.name, kind: 'repository',
            createdAt, flags: flagStates, size: made.bytes, repositoryId: repo.repo.id, formatPointId: made.formatPointId, accessTier: repo.repo.accessTier,
            databaseName: made.database,
          });
          ids.push(point.id);
          await ctx.log('info', `${account.name}: restore point ${point.id} of database "${made.database}" created (${made.bytes} bytes stored, flags ${flags.join('')})`);
        }
        const bytes = r.points.reduce((n, p) => n + p.bytes, 0);
        results.push({
          ...base, state: 'success', bytes, restorePointId: ids[0], restorePointIds: ids, bytesRead: r.bytesRead, durationMs: r.durationMs,
          ...(r.worker ? { worker: r.worker } : {}),
        });
      } catch (e) {
        if (ctx.signal.aborted) throw e;
        results.push({ ...base, state: 'failed', message: humanMessage(e) });
        await ctx.log('error', `${account.name}: ${humanMessage(e)}`);
      }
      await st.setAccounts(this.#db, ctx.session.id, results);
    }
    await st.setAccounts(this.#db, ctx.session.id, results);
    return summarize(results);
  }

  async #archive(ctx: Ctx): Promise<Outcome> {
    const { policy, sa } = await this.#policy(ctx);
    if (!policy.archive || !policy.backup) {
      await ctx.log('info', 'archive is off for this policy');
      return { state: 'success' };
    }
    const source = await this.#repoAccess(policy.backup.repositoryId);
    const target = await this.#repoAccess(policy.archive.repositoryId);
    const sched = policy.archive.schedule;
    const kind: Flag = sched.weekly ? 'W' : sched.monthly ? 'M' : 'Y';
    const results: AccountResult[] = [];
    for (const account of await this.#accounts(ctx, policy, sa)) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      // The latest backup's points of the account: one per database.
      const recent = await st.listRestorePoints(this.#db, { accountId: account.id, policyId: policy.id, kind: 'repository', limit: 1000 });
      const latest = recent[0];
      const base = { accountId: account.id, accountName: account.name, bytes: 0 };
      if (!latest?.formatPointId) {
        results.push({ ...base, state: 'skipped', message: 'no restore point to archive yet' });
        continue;
      }
      const points = recent.filter((p) => p.sessionId === latest.sessionId && p.formatPointId);
      try {
        const r = await this.#gw.workers.runArchive({
          sessionId: ctx.session.id, account, serviceAccount: sa, source, target, formatPointIds: points.map((p) => p.formatPointId!),
          workerConfiguration: (await cfg.workerConfigurationFor(this.#db, account.region)) ?? null,
          signal: ctx.signal, log: (m) => void ctx.log('info', `${account.name}: ${m}`).catch(() => {}),
        });
        const createdAt = new Date(latest.createdAt);
        const expiresAt = flagExpiry(kind, createdAt, { timeZone: sched.timeZone, weekly: sched.weekly, monthly: sched.monthly, yearly: sched.yearly })!;
        const ids: string[] = [];
        for (const [i, p] of points.entries()) {
          const point = await st.insertRestorePoint(this.#db, {
            policyId: policy.id, sessionId: ctx.session.id, accountId: account.id, accountName: account.name, kind: 'archive', createdAt,
            flags: [{ flag: 'A', expiresAt }], size: p.size, repositoryId: target.repo.id, formatPointId: r.formatPointIds[i]!, accessTier: target.repo.accessTier,
            databaseName: p.databaseName,
          });
          ids.push(point.id);
        }
        results.push({ ...base, state: 'success', bytes: r.copiedBytes, restorePointId: ids[0], restorePointIds: ids, ...(r.worker ? { worker: r.worker } : {}) });
        await ctx.log('info', `${account.name}: archived ${points.length} restore point(s) of ${latest.createdAt} to "${target.repo.name}" (${r.copiedChunks} new chunks, ${r.copiedBytes} bytes copied), kept until ${expiresAt.toISOString()}`);
      } catch (e) {
        if (ctx.signal.aborted) throw e;
        results.push({ ...base, state: 'failed', message: humanMessage(e) });
        await ctx.log('error', `${account.name}: ${humanMessage(e)}`);
      }
      await st.setAccounts(this.#db, ctx.session.id, results);
    }
    return summarize(results);
  }

  /** Every 8 hours: keep each account's continuous backup at the policy's tier and record the restore window. */
  async #configuration(ctx: Ctx): Promise<Outcome> {
    const { policy, sa } = await this.#policy(ctx);
    const tier = policy.continuousTier;
    const results: AccountResult[] = [];
    let unsupported = 0;
    for (const account of await this.#accounts(ctx, policy, sa)) {
      const base = { accountId: account.id, accountName: account.name, bytes: 0 };
      if (CONTINUOUS_NOT_APPLICABLE.includes(account.kind)) {
        // Not an error and not a gap: the cluster's protection is the repository backup sessions.
        results.push({ ...base, state: 'success', message: continuousNotApplicableReason(account.kind) });
        await ctx.log('info', `${account.name}: ${continuousNotApplicableReason(account.kind)}`);
        continue;
      }
      if (NO_CONTINUOUS_KINDS.includes(account.kind)) {
        // Reported, never silently dropped: the administrator learns the account is not protected.
        unsupported++;
        results.push({ ...base, state: 'warning', message: noContinuousReason(account.kind) });
        await ctx.log('warning', `${account.name}: ${noContinuousReason(account.kind)}`);
        continue;
      }
      try {
        const r = await this.#gw.cloud.ensureContinuousBackup(sa, account, tier, { allowMigration: policy.allowMigration });
        if (r.changed) await ctx.log('warning', `${account.name}: continuous backup tier was ${r.previousTier ?? 'not continuous'}, set to ${tier} days`);
        const now = new Date();
        const tierStart = addLocal(now, 'UTC', { days: -tier });
        const windowStart = new Date(Math.max(tierStart.getTime(), r.oldestRestorableTime?.getTime() ?? tierStart.getTime()));
        const point = await st.insertRestorePoint(this.#db, {
          policyId: policy.id, sessionId: ctx.session.id, accountId: account.id, accountName: account.name, kind: 'continuous',
          createdAt: now, continuousTier: tier, windowStart, windowEnd: now,
        });
        // Records whose whole window has left the tier can no longer be restored to.
        await this.#db.query(`DELETE FROM restore_points WHERE kind = 'continuous' AND lower(account_id) = lower($1) AND window_end < $2`, [account.id, tierStart]);
        results.push({ ...base, state: r.changed ? 'warning' : 'success', restorePointId: point.id });
      } catch (e) {
        results.push({ ...base, state: 'failed', message: humanMessage(e) });
        await ctx.log('error', `${account.name}: ${humanMessage(e)}`);
      }
    }
    await st.setAccounts(this.#db, ctx.session.id, results);
    // A tier correction is expected work, not a problem: the session succeeds. An account of a
    // kind without continuous backup is a problem, but not a failure: the session warns.
    const outcome = summarize(results.map((r) => (r.state === 'warning' ? { ...r, state: 'success' } : r)));
    return outcome.state === 'success' && unsupported ? { state: 'warning', error: `${unsupported} account(s) cannot use continuous backup` } : outcome;
  }

  /** Harmonized retention: unassign expired flags, remove points with none left. */
  async #retention(ctx: Ctx): Promise<Outcome> {
    const { policy } = await this.#policy(ctx);
    const stored = [
      ...(await st.listRestorePoints(this.#db, { policyId: policy.id, kind: 'repository', limit: 100_000 })),
      ...(await st.listRestorePoints(this.#db, { policyId: policy.id, kind: 'archive', limit: 100_000 })),
    ];
    const byId = new Map(stored.map((p) => [p.id, p]));
    const r = applyRetention(stored.map((p) => ({ id: p.id, createdAt: new Date(p.createdAt), flags: st.flagStates(p) })), new Date());
    for (const k of r.kept) {
      if (k.flags.length !== byId.get(k.id)!.flags.length) {
        await st.setFlags(this.#db, k.id, k.flags);
        const gone = r.unassigned.find((u) => u.id === k.id)!.flags.join('');
        await ctx.log('info', `${byId.get(k.id)!.accountName}: restore point of ${byId.get(k.id)!.createdAt} loses flag ${gone}, kept for ${k.flags.map((f) => f.flag).join('')}`);
      }
    }
    let failed = 0;
    const byRepo = new Map<string, typeof stored>();
    for (const p of r.removed) {
      const sp = byId.get(p.id)!;
      byRepo.set(sp.repositoryId ?? '', [...(byRepo.get(sp.repositoryId ?? '') ?? []), sp]);
    }
    for (const [repoId, points] of byRepo) {
      try {
        if (repoId) await this.#gw.repositories.forget(await this.#repoAccess(repoId), points.map((p) => p.formatPointId!).filter(Boolean));
        for (const p of points) {
          await st.deleteRestorePoint(this.#db, p.id);
          await ctx.log('info', `${p.accountName}: restore point of ${p.createdAt} removed (no flag left)`);
        }
      } catch (e) {
        failed++;
        await ctx.log('error', `cannot remove ${points.length} restore point(s) from repository ${repoId}: ${humanMessage(e)}; retried after the next backup`);
      }
    }
    await ctx.log('info', `retention: ${r.kept.length} kept, ${r.removed.length} removed`);
    return failed ? { state: 'warning', error: 'some restore points could not be removed' } : { state: 'success' };
  }

  /** Deletes session records older than the configured retention. */
  async #cleanup(ctx: Ctx): Promise<Outcome> {
    const settings = await cfg.getSettings(this.#db);
    const cutoff = addLocal(new Date(), 'UTC', { days: -settings.sessionRetentionDays });
    const n = await st.deleteOldSessions(this.#db, cutoff);
    await ctx.log('info', `removed ${n} session record(s) finished before ${cutoff.toISOString()} (retention ${settings.sessionRetentionDays} days)`);
    return { state: 'success' };
  }

  /** Mails the session's result to whoever the switches say (after it is recorded; a mail problem never changes the result). */
  async #notify(sessionId: string): Promise<void> {
    try {
      const settings = await cfg.settingsWithSecrets(this.#db, this.#box);
      if (!settings.email?.enabled) return;
      const s = await st.getSession(this.#db, sessionId);
      const policy = s.policyId ? await cfg.getPolicy(this.#db, s.policyId).catch(() => null) : null;
      const to = sessionRecipients(s, settings.email, policy?.notifications ?? null);
      if (!to.length) return;
      await sendMail(settings.email, sessionMail(s, policy?.name ?? null, to));
      await st.appendLog(this.#db, sessionId, 'info', `notification mail sent to ${to.length} recipient(s)`);
    } catch (e) {
      this.#logger.error('cannot send a notification mail', { sessionId, error: humanMessage(e) });
      await st.appendLog(this.#db, sessionId, 'warning', `notification mail not sent: ${humanMessage(e)}`).catch(() => {});
    }
  }

  /** The daily report: every session of the 24 hours before this one, mailed to the global recipients. */
  async #report(ctx: Ctx): Promise<Outcome> {
    const settings = await cfg.settingsWithSecrets(this.#db, this.#box);
    if (!settings.email?.enabled) {
      await ctx.log('info', 'email notifications are off; no report sent');
      return { state: 'success' };
    }
    const until = new Date(ctx.session.startedAt);
    const since = new Date(until.getTime() - 24 * 3_600_000);
    const sessions = (await st.sessionsBetween(this.#db, since, until)).filter((s) => s.id !== ctx.session.id);
    const policyNames = new Map((await cfg.listPolicies(this.#db)).map((p) => [p.id, p.name]));
    await sendMail(settings.email, dailyReportMail({ since, until, sessions, policyNames }, settings.email.to));
    await ctx.log('info', `daily report on ${sessions.length} session(s) sent to ${settings.email.to.length} recipient(s)`);
    return { state: 'success' };
  }

  /** Restores a repository restore point into a new database on a target account, through a worker. */
  async #restore(ctx: Ctx): Promise<Outcome> {
    const p = ctx.session.params as RestoreParams | null;
    if (!p?.restorePointId) throw new CosmosBackupError('INVALID_ARGUMENT', 'restore session without a restore point');
    const point = await st.getRestorePoint(this.#db, p.restorePointId);
    if (point.kind === 'continuous' || !point.repositoryId || !point.formatPointId) {
      throw new CosmosBackupError('INVALID_ARGUMENT', `restore point ${point.id} is a continuous backup window; use point-in-time restore`);
    }
    const sa = await cfg.serviceAccountCredentials(this.#db, this.#box, p.serviceAccountId);
    const target = (await this.#gw.cloud.listAccounts(sa)).find((a) => a.id.toLowerCase() === p.targetAccountId.toLowerCase());
    if (!target) throw new CosmosBackupError('NOT_FOUND', `target account ${p.targetAccountId} is not visible to the service account`);
    if (!DUMPABLE_KINDS.includes(target.kind)) throw new CosmosBackupError('INVALID_ARGUMENT', `${target.name} is a ${target.kind} account; only PostgreSQL and MongoDB accounts take repository restores`);
    const given = this.#secrets.get(ctx.session.id)?.credentials;
    const credentials = given ?? (point.policyId ? await cfg.policyCredential(this.#db, this.#box, point.policyId, target.id) : undefined) ?? null;
    if (target.kind === 'PostgreSQL' && !credentials) {
      throw new CosmosBackupError('INVALID_ARGUMENT', `no database login for ${target.name}: give credentials with the restore request`);
    }
    const repo = await this.#repoAccess(point.repositoryId);
    const subset = p.subset.length ? ` (only ${p.subset.join(', ')})` : '';
    await ctx.log('info', `restoring ${point.accountName} as of ${point.createdAt} from repository "${repo.repo.name}" into database "${p.databaseName}" on ${target.name}${subset}`);
    const base = { accountId: target.id, accountName: target.name, restorePointId: point.id };
    const archived = inArchiveTier(point, repo);
    return this.#fromRepository(ctx, { repo, formatPointId: point.formatPointId, archived, priority: p.rehydratePriority ?? 'Standard', base }, async () => {
      const r = await this.#gw.workers.runRestore({
        sessionId: ctx.session.id, formatPointId: point.formatPointId!, sourceAccountId: point.accountId, sourceAccountName: point.accountName,
        pointCreatedAt: new Date(point.createdAt), target: { account: target, databaseName: p.databaseName, subset: p.subset },
        serviceAccount: sa, repository: repo, credentials, sourceDatabase: point.databaseName,
        workerConfiguration: (await cfg.workerConfigurationFor(this.#db, target.region)) ?? null,
        signal: ctx.signal, log: (m) => void ctx.log('info', `${target.name}: ${m}`).catch(() => {}),
      });
      await st.setAccounts(this.#db, ctx.session.id, [{ ...base, state: 'success', bytes: r.bytes, counts: r.counts, ...(r.worker ? { worker: r.worker } : {}) }]);
      const total = Object.values(r.counts).reduce((n, c) => n + c, 0);
      await ctx.log('info', `${target.name}: database "${p.databaseName}" restored (${r.bytes} bytes; ${Object.keys(r.counts).length} tables/collections, ${total} rows/documents on the target)`);
    });
  }

  /**
   * The work of a restore or export session on one repository point: data retrieval first when
   * its packs are archived (and back to the Archive tier afterwards, whatever happened), a failure
   * recorded on the account result.
   */
  async #fromRepository(ctx: Ctx, o: { repo: RepositoryAccess; formatPointId: string; archived: boolean; priority: 'Standard' | 'High'; base: { accountId: string; accountName: string; restorePointId: string } },
    work: () => Promise<void>): Promise<Outcome> {
    try {
      if (o.archived) await this.#rehydrate(ctx, o.repo, o.formatPointId, o.priority, o.base);
      await work();
      return { state: 'success' };
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      await st.setAccounts(this.#db, ctx.session.id, [{ ...o.base, state: 'failed', bytes: 0, message: humanMessage(e) }]);
      await ctx.log('error', `${o.base.accountName}: ${humanMessage(e)}`);
      return { state: 'failed', error: humanMessage(e) };
    } finally {
      // Rehydrated packs go back to the Archive tier: they cost Hot-tier storage otherwise.
      if (o.archived) {
        await this.#gw.repositories.rearchive(o.repo, [o.formatPointId]).then(
          (n) => (n ? ctx.log('info', `${n} pack(s) of the restore point moved back to the Archive tier`) : undefined),
          (e) => ctx.log('warning', `could not move the rehydrated packs back to the Archive tier: ${humanMessage(e)}`),
        ).catch(() => {});
      }
    }
  }

  /**
   * Data retrieval: the point's packs sit in the Archive tier and cannot be read until Azure has
   * rehydrated them (hours). Starts that, then looks again every poll interval until all are
   * readable; the status is in the session's account result meanwhile.
   */
  async #rehydrate(ctx: Ctx, repo: RepositoryAccess, formatPointId: string, priority: 'Standard' | 'High', base: { accountId: string; accountName: string; restorePointId: string }): Promise<void> {
    let last = '';
    for (;;) {
      const s: RetrievalStatus = await this.#gw.repositories.retrieval(repo, [formatPointId], { start: true, priority });
      const line = s.state === 'online' || s.state === 'ready'
        ? `data retrieval: all ${s.packs} pack(s) of the restore point are readable`
        : `data retrieval: ${s.rehydrating} of ${s.packs} pack(s) rehydrating from the Archive tier (${priority} priority)${s.archived ? `, ${s.archived} not started` : ''}`;
      await st.setAccounts(this.#db, ctx.session.id, [{ ...base, state: 'warning', bytes: 0, message: line, retrieval: s }]);
      if (line !== last) await ctx.log('info', line);
      last = line;
      if (s.state === 'online' || s.state === 'ready') return;
      await sleep(this.#retrievalPollMs, ctx.signal);
    }
  }

  /** Writes a restore point as a plain SQL script or a mongodump archive into a blob, through a worker. */
  async #export(ctx: Ctx): Promise<Outcome> {
    const p = ctx.session.params as ExportParams | null;
    if (!p?.restorePointId) throw new CosmosBackupError('INVALID_ARGUMENT', 'export session without a restore point');
    const point = await st.getRestorePoint(this.#db, p.restorePointId);
    if (point.kind === 'continuous' || !point.repositoryId || !point.formatPointId) {
      throw new CosmosBackupError('INVALID_ARGUMENT', `restore point ${point.id} is a continuous backup window: it has no data in a repository to export`);
    }
    const sa = await cfg.serviceAccountCredentials(this.#db, this.#box, p.serviceAccountId);
    const account = (await this.#gw.cloud.listAccounts(sa)).find((a) => a.id.toLowerCase() === point.accountId.toLowerCase());
    if (!account) throw new CosmosBackupError('NOT_FOUND', `account ${point.accountName} is not visible to the service account: the export runs in its region`);
    if (!DUMPABLE_KINDS.includes(account.kind)) throw new CosmosBackupError('INVALID_ARGUMENT', `${account.name} is a ${account.kind} account: only PostgreSQL and MongoDB restore points are exported`);
    const format: ExportFormat = p.format ?? (account.kind === 'PostgreSQL' ? 'sql' : 'mongodump');
    const repo = await this.#repoAccess(point.repositoryId);
    const base = { accountId: account.id, accountName: account.name, restorePointId: point.id };
    const archived = inArchiveTier(point, repo);
    const ext = format === 'sql' ? 'sql' : 'tar.gz';
    const fileName = `${point.accountName}-${point.databaseName ?? 'database'}-${point.createdAt.replace(/[:.]/g, '-')}.${ext}`.replace(/[^A-Za-z0-9._-]/g, '_');
    await ctx.log('info', `exporting ${point.accountName} as of ${point.createdAt} from repository "${repo.repo.name}" as ${format} (${fileName})`);
    return this.#fromRepository(ctx, { repo, formatPointId: point.formatPointId, archived, priority: 'Standard', base }, async () => {
      const r = await this.#gw.workers.runExport({
        sessionId: ctx.session.id, formatPointId: point.formatPointId!, account, serviceAccount: sa, repository: repo, format, fileName,
        workerConfiguration: (await cfg.workerConfigurationFor(this.#db, account.region)) ?? null,
        signal: ctx.signal, log: (m) => void ctx.log('info', `${account.name}: ${m}`).catch(() => {}),
      });
      await st.setAccounts(this.#db, ctx.session.id, [{ ...base, state: 'success', bytes: r.file.size, export: r.file, ...(r.worker ? { worker: r.worker } : {}) }]);
      await ctx.log('info', `${fileName} written (${r.file.size} bytes, sha256 ${r.file.sha256}); kept until ${r.file.expiresAt}; get a download link with POST /sessions/${ctx.session.id}/download-link`);
    });
  }
}

/** Waits ms, or rejects with the signal's reason when it fires first. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => { signal.removeEventListener('abort', stop); resolve(); }, ms);
    const stop = () => { clearTimeout(t); reject(signal.reason); };
    signal.addEventListener('abort', stop, { once: true });
  });
}

function summarize(results: AccountResult[]): Outcome {
  const failed = results.filter((r) => r.state === 'failed').length;
  const ok = results.filter((r) => r.state === 'success').length;
  if (failed === 0) return { state: 'success' };
  if (ok === 0) return { state: 'failed', error: `${failed} account(s) failed` };
  return { state: 'warning', error: `${failed} of ${failed + ok} account(s) failed` };
}
