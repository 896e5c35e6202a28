// Retention preview: simulates the policy day by day (backups at their times, retention after
// each backup, as the controller runs it) so administrators can check a policy before trusting it.
import type { Schedules } from './model.ts';
import { occurrences } from './schedule.ts';
import { applyRetention, assignFlags, type RetainedPoint } from './retention.ts';
import { localDate, nextLocalDate, startOfLocalDay } from './zoned.ts';

export interface PreviewDay {
  date: string;
  /** restore points created that day */
  created: string[];
  /** restore points removed that day */
  removed: string[];
  /** what exists at the end of the day; existing = a restore point that exists now (id is its id), else a simulated one */
  points: { id: string; createdAt: string; existing: boolean; flags: { flag: string; expiresAt: string }[] }[];
}

export interface SimulationStep {
  at: Date;
  created: RetainedPoint;
  kept: RetainedPoint[];
  removed: RetainedPoint[];
}

/** Runs every scheduled backup in [from, to] and the retention after it. */
export function simulate(s: Schedules, from: Date, to: Date, existing: RetainedPoint[] = []): SimulationStep[] {
  let points = existing;
  const steps: SimulationStep[] = [];
  for (const o of occurrences(s, from, to)) {
    const created: RetainedPoint = { id: o.at.toISOString(), createdAt: o.at, flags: assignFlags(o.flags, o.at, s) };
    const r = applyRetention([...points, created], o.at);
    points = r.kept;
    steps.push({ at: o.at, created, kept: r.kept, removed: r.removed });
  }
  return steps;
}

/**
 * Day-by-day view of `simulate` between two local dates (inclusive), in the policy's zone.
 * `existing` are the restore points that exist before the first day; they age and lose flags
 * like the simulated ones.
 */
export function retentionPreview(s: Schedules, fromDate: string, toDate: string, existing: RetainedPoint[] = []): PreviewDay[] {
  const tz = s.timeZone;
  const steps = simulate(s, startOfLocalDay(fromDate, tz), new Date(startOfLocalDay(nextLocalDate(toDate), tz).getTime() - 1), existing);
  const days: PreviewDay[] = [];
  let current = existing;
  const known = new Set(existing.map((p) => p.id));
  let i = 0;
  for (let date = fromDate; date <= toDate; date = nextLocalDate(date)) {
    const created: string[] = [];
    const removed: string[] = [];
    while (i < steps.length && localDate(steps[i]!.at, tz) === date) {
      const st = steps[i]!;
      created.push(st.created.id);
      removed.push(...st.removed.map((p) => p.id));
      current = st.kept;
      i++;
    }
    days.push({
      date, created, removed,
      points: current.map((p) => ({ id: p.id, createdAt: p.createdAt.toISOString(), existing: known.has(p.id), flags: p.flags.map((f) => ({ flag: f.flag, expiresAt: f.expiresAt.toISOString() })) })),
    });
  }
  return days;
}
