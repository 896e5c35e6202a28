// Starts sessions at their times: policy backups and archives at their schedules, a
// configuration session per policy every 8 hours, session-record cleanup daily, and the daily
// email report at its time (global settings). On start it
// first repairs what a stopped controller left: running sessions become failed, and a scheduled
// run missed while the controller was down runs once if still inside its window.
import { Cron } from 'croner';
import { humanMessage } from '../../shared/errors.ts';
import type { Db } from '../db/db.ts';
import * as cfg from '../db/config-store.ts';
import * as st from '../db/session-store.ts';
import { nextOccurrence, previousOccurrence } from '../policies/schedule.ts';
import { addLocal, fromLocal, toLocal } from '../policies/zoned.ts';
import type { Schedules } from '../policies/model.ts';
import type { Logger, SessionRunner } from './runner.ts';
import { silentLogger } from './runner.ts';

const HOUR = 3_600_000;

export interface SchedulerOptions {
  db: Db;
  runner: SessionRunner;
  logger?: Logger;
  /** how late a missed scheduled run may still start after a restart */
  missedRunWindowMinutes: number;
  configurationIntervalHours?: number;
}

type ScheduleLike = Pick<Schedules, 'daily' | 'weekly' | 'monthly' | 'yearly'> & { timeZone: string };

/** The latest instant at or before `now` whose local time in `timeZone` is `time` (HH:MM). */
export function previousDailyTime(now: Date, time: string, timeZone: string): Date {
  const [hour, minute] = time.split(':').map(Number) as [number, number];
  const today = fromLocal({ ...toLocal(now, timeZone), hour, minute, second: 0 }, timeZone);
  return today.getTime() <= now.getTime() ? today : fromLocal({ ...toLocal(addLocal(today, timeZone, { days: -1 }), timeZone), hour, minute, second: 0 }, timeZone);
}

export class Scheduler {
  readonly #o: Required<SchedulerOptions>;
  #policyTimers: Cron[] = [];
  #fixedTimers: Cron[] = [];
  #reportTimer: Cron | undefined;
  #stopped = false;

  constructor(o: SchedulerOptions) {
    this.#o = { logger: silentLogger, configurationIntervalHours: 8, ...o };
  }

  async start(): Promise<{ interrupted: string[]; missed: string[] }> {
    const interrupted = await st.failInterrupted(this.#o.db);
    for (const id of interrupted) this.#o.logger.error('session interrupted by a controller stop, marked failed', { sessionId: id });
    const missed = await this.#runMissed();
    const every = this.#o.configurationIntervalHours;
    this.#fixedTimers.push(
      new Cron(`0 0 */${every} * * *`, { timezone: 'UTC' }, () => void this.#configurationAll(false)),
      new Cron('0 30 3 * * *', { timezone: 'UTC' }, () => void this.#startSafe({ type: 'cleanup', trigger: 'schedule' })),
    );
    await this.reload();
    await this.reloadReport();
    return { interrupted, missed };
  }

  /** Re-reads the policies (call after any policy change) and re-arms their timers. */
  async reload(): Promise<void> {
    for (const t of this.#policyTimers) t.stop();
    this.#policyTimers = [];
    if (this.#stopped) return;
    for (const p of await cfg.listPolicies(this.#o.db)) {
      if (!p.enabled) continue;
      if (p.backup) this.#arm(p.id, 'backup', p.backup.schedules);
      if (p.archive && p.backup) this.#arm(p.id, 'archive', p.archive.schedule);
    }
    // New or re-enabled policies get their continuous-backup check now rather than within 8 hours.
    await this.#configurationAll(true);
  }

  /** Re-reads the email settings (call after they change) and re-arms the daily report. */
  async reloadReport(): Promise<void> {
    this.#reportTimer?.stop();
    this.#reportTimer = undefined;
    if (this.#stopped) return;
    const r = await this.#reportSchedule();
    if (!r) return;
    const [hour, minute] = r.time.split(':').map(Number);
    this.#reportTimer = new Cron(`0 ${minute} ${hour} * * *`, { timezone: r.timeZone }, () => void this.#startSafe({ type: 'report', trigger: 'schedule' }));
  }

  /** When the next daily report is due; null when reports are off. */
  nextReport(): Date | null {
    return this.#reportTimer?.nextRun() ?? null;
  }

  async #reportSchedule(): Promise<{ time: string; timeZone: string } | null> {
    const email = (await cfg.getSettings(this.#o.db)).email;
    return email?.enabled && email.dailyReport.enabled ? { time: email.dailyReport.time, timeZone: email.dailyReport.timeZone } : null;
  }

  stop(): void {
    this.#stopped = true;
    this.#reportTimer?.stop();
    this.#reportTimer = undefined;
    for (const t of [...this.#policyTimers, ...this.#fixedTimers]) t.stop();
    this.#policyTimers = [];
    this.#fixedTimers = [];
  }

  #arm(policyId: string, type: 'backup' | 'archive', s: ScheduleLike): void {
    const next = nextOccurrence(s, new Date());
    if (!next) return;
    const timer = new Cron(next.at, () => {
      this.#policyTimers = this.#policyTimers.filter((t) => t !== timer);
      void this.#startSafe({ type, policyId, trigger: 'schedule', scheduledFor: next.at, flags: next.flags });
      if (!this.#stopped) this.#arm(policyId, type, s);
    });
    this.#policyTimers.push(timer);
  }

  async #runMissed(): Promise<string[]> {
    const started: string[] = [];
    const now = Date.now();
    const window = this.#o.missedRunWindowMinutes * 60_000;
    for (const p of await cfg.listPolicies(this.#o.db)) {
      if (!p.enabled || !p.backup) continue;
      const plans: ['backup' | 'archive', ScheduleLike][] = [['backup', p.backup.schedules]];
      if (p.archive) plans.push(['archive', p.archive.schedule]);
      for (const [type, s] of plans) {
        const prev = previousOccurrence(s, new Date(now));
        // Only times the policy existed for, and only inside the window; the unique index makes it once.
        if (!prev || prev.at.getTime() < new Date(p.createdAt).getTime() || now - prev.at.getTime() > window) continue;
        const session = await this.#startSafe({ type, policyId: p.id, trigger: 'missed', scheduledFor: prev.at, flags: prev.flags });
        if (session) {
          started.push(session.id);
          this.#o.logger.info('missed scheduled run started', { policyId: p.id, type, scheduledFor: prev.at.toISOString() });
        }
      }
    }
    const report = await this.#reportSchedule();
    if (report) {
      const due = previousDailyTime(new Date(now), report.time, report.timeZone);
      const last = await st.lastSession(this.#o.db, 'report', null);
      if (now - due.getTime() <= window && (!last || new Date(last.startedAt).getTime() < due.getTime())) {
        await this.#startSafe({ type: 'report', trigger: 'missed' });
      }
    }
    const lastCleanup = await st.lastSession(this.#o.db, 'cleanup', null);
    if (!lastCleanup || now - new Date(lastCleanup.startedAt).getTime() > 24 * HOUR) {
      await this.#startSafe({ type: 'cleanup', trigger: lastCleanup ? 'missed' : 'system' });
    }
    return started;
  }

  /** Configuration sessions for all enabled policies; with onlyStale, for those without one in the interval. */
  async #configurationAll(onlyStale: boolean): Promise<void> {
    try {
      for (const p of await cfg.listPolicies(this.#o.db)) {
        if (!p.enabled) continue;
        if (onlyStale) {
          const last = await st.lastSession(this.#o.db, 'configuration', p.id);
          if (last && Date.now() - new Date(last.startedAt).getTime() < this.#o.configurationIntervalHours * HOUR) continue;
        }
        await this.#startSafe({ type: 'configuration', policyId: p.id, trigger: onlyStale ? 'system' : 'schedule' });
      }
    } catch (e) {
      this.#o.logger.error('cannot start configuration sessions', { error: humanMessage(e) });
    }
  }

  async #startSafe(req: Parameters<SessionRunner['start']>[0]): Promise<st.Session | undefined> {
    if (this.#stopped) return undefined;
    try {
      return await this.#o.runner.start(req);
    } catch (e) {
      this.#o.logger.error('cannot start a session', { type: req.type, policyId: req.policyId, error: humanMessage(e) });
      return undefined;
    }
  }
}
