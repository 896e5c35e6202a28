// Harmonized retention (product doc "harmonized scheduling"): a restore point carries one flag
// per schedule that claimed it (D/W/M/Y, A for archive copies); each flag expires by its own
// schedule's retention, counted in local calendar units from the point's creation; a point is
// removed only when no flag is left. Expiry is a fixed instant per flag, so the result of an
// evaluation depends only on `now`, never on the order points or evaluations come in.
import type { Flag, FlagState, Schedules } from './model.ts';
import { addLocal } from './zoned.ts';

export interface RetainedPoint {
  id: string;
  createdAt: Date;
  flags: FlagState[];
}

type RetentionSource = Pick<Schedules, 'daily' | 'weekly' | 'monthly' | 'yearly'> & { timeZone: string };

/** When `flag` on a point created at `createdAt` expires under the schedules; undefined if that schedule is not configured. */
export function flagExpiry(flag: Flag, createdAt: Date, s: RetentionSource): Date | undefined {
  switch (flag) {
    case 'D': return s.daily ? addLocal(createdAt, s.timeZone, { days: s.daily.keepDays }) : undefined;
    case 'W': return s.weekly ? addLocal(createdAt, s.timeZone, { days: s.weekly.keepDays ?? s.weekly.keepWeeks! * 7 }) : undefined;
    case 'M': return s.monthly ? addLocal(createdAt, s.timeZone, { months: s.monthly.keepMonths }) : undefined;
    case 'Y': return s.yearly ? addLocal(createdAt, s.timeZone, { years: s.yearly.keepYears }) : undefined;
    case 'A': return undefined;
  }
}

/** Flag states for a new point: each flag with its expiry (flags whose schedule is missing are dropped). */
export function assignFlags(flags: Flag[], createdAt: Date, s: RetentionSource): FlagState[] {
  const out: FlagState[] = [];
  for (const flag of flags) {
    const expiresAt = flagExpiry(flag, createdAt, s);
    if (expiresAt) out.push({ flag, expiresAt });
  }
  return out;
}

/**
 * After a policy's retention changes, existing flags take the new retention; a flag whose
 * schedule was removed keeps the expiry it had (removing a schedule never deletes points early).
 */
export function reexpire(point: RetainedPoint, s: RetentionSource): RetainedPoint {
  return {
    ...point,
    flags: point.flags.map((f) => ({ flag: f.flag, expiresAt: flagExpiry(f.flag, point.createdAt, s) ?? f.expiresAt })),
  };
}

export function isExpired(f: FlagState, now: Date): boolean {
  return f.expiresAt.getTime() <= now.getTime();
}

export interface RetentionResult {
  /** points that stay, with only their unexpired flags */
  kept: RetainedPoint[];
  /** points with no flag left */
  removed: RetainedPoint[];
  /** flags taken off points (kept or removed) */
  unassigned: { id: string; flags: Flag[] }[];
}

export function applyRetention(points: readonly RetainedPoint[], now: Date): RetentionResult {
  const kept: RetainedPoint[] = [];
  const removed: RetainedPoint[] = [];
  const unassigned: { id: string; flags: Flag[] }[] = [];
  for (const p of points) {
    const live = p.flags.filter((f) => !isExpired(f, now));
    if (live.length !== p.flags.length) unassigned.push({ id: p.id, flags: p.flags.filter((f) => isExpired(f, now)).map((f) => f.flag) });
    if (live.length === 0) removed.push(p);
    else kept.push({ ...p, flags: live });
  }
  return { kept, removed, unassigned };
}
