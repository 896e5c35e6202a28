// Schedule evaluation: each schedule becomes a cron pattern evaluated by croner in the policy's
// time zone (DST-correct; croner is only used to compute times here, it starts no timers).
import { Cron } from 'croner';
import { WEEKDAYS, type Flag, type Schedules, type Weekday } from './model.ts';

type ScheduleSet = Omit<Schedules, 'timeZone' | 'daily'> & { timeZone: string; daily?: Schedules['daily'] };

const wd = (w: Weekday) => WEEKDAYS.indexOf(w);
const dom = (d: number | 'last') => (d === 'last' ? 'L' : String(d));
const NTH = { first: '1', second: '2', third: '3', fourth: '4', last: 'L' } as const;

/** Cron patterns (minute hour day-of-month month day-of-week) per flag. */
export function cronPatterns(s: ScheduleSet): Partial<Record<Flag, string>> {
  const out: Partial<Record<Flag, string>> = {};
  if (s.daily) {
    const hours = [...new Set(s.daily.hours)].sort((a, b) => a - b).join(',');
    const days = [...new Set(s.daily.weekdays.map(wd))].sort().join(',');
    out.D = `0 ${hours} * * ${days}`;
  }
  if (s.weekly) out.W = `0 ${s.weekly.hour} * * ${wd(s.weekly.weekday)}`;
  if (s.monthly) {
    const m = s.monthly;
    out.M = m.day !== undefined ? `0 ${m.hour} ${dom(m.day)} * *` : `0 ${m.hour} * * ${wd(m.weekday!)}#${NTH[m.occurrence!]}`;
  }
  if (s.yearly) out.Y = `0 ${s.yearly.hour} ${dom(s.yearly.day)} ${s.yearly.month} *`;
  return out;
}

function cron(pattern: string, timeZone: string): Cron {
  // 'no-wildcard': "7,19 o'clock" is two fixed times, so a DST gap moves it instead of skipping it.
  return new Cron(pattern, { timezone: timeZone, paused: true, fixedTimeRule: 'no-wildcard' });
}

export interface Occurrence {
  at: Date;
  /** every schedule due at this instant: one backup serves them all (harmonization) */
  flags: Flag[];
}

/** All scheduled runs in [from, to], merged by instant, in time order. */
export function occurrences(s: ScheduleSet, from: Date, to: Date): Occurrence[] {
  const byTime = new Map<number, Flag[]>();
  for (const [flag, pattern] of Object.entries(cronPatterns(s)) as [Flag, string][]) {
    const c = cron(pattern, s.timeZone);
    let prev = new Date(from.getTime() - 1);
    for (;;) {
      const next = c.nextRun(prev);
      if (!next || next.getTime() > to.getTime()) break;
      const list = byTime.get(next.getTime()) ?? [];
      list.push(flag);
      byTime.set(next.getTime(), list);
      prev = next;
    }
  }
  return [...byTime.entries()].sort((a, b) => a[0] - b[0]).map(([t, flags]) => ({ at: new Date(t), flags: sortFlags(flags) }));
}

/** The next scheduled run strictly after `after`, with its flags. */
export function nextOccurrence(s: ScheduleSet, after: Date): Occurrence | undefined {
  let best: Occurrence | undefined;
  for (const [flag, pattern] of Object.entries(cronPatterns(s)) as [Flag, string][]) {
    const next = cron(pattern, s.timeZone).nextRun(after);
    if (!next) continue;
    if (!best || next.getTime() < best.at.getTime()) best = { at: next, flags: [flag] };
    else if (next.getTime() === best.at.getTime()) best.flags = sortFlags([...best.flags, flag]);
  }
  return best;
}

/** The latest scheduled run at or before `at`. */
export function previousOccurrence(s: ScheduleSet, at: Date): Occurrence | undefined {
  let best: Occurrence | undefined;
  for (const [flag, pattern] of Object.entries(cronPatterns(s)) as [Flag, string][]) {
    const prev = cron(pattern, s.timeZone).previousRuns(1, new Date(at.getTime() + 1))[0];
    if (!prev) continue;
    if (!best || prev.getTime() > best.at.getTime()) best = { at: prev, flags: [flag] };
    else if (prev.getTime() === best.at.getTime()) best.flags = sortFlags([...best.flags, flag]);
  }
  return best;
}

/** Flags a run at exactly `at` earns (empty for an off-schedule run). */
export function flagsAt(s: ScheduleSet, at: Date): Flag[] {
  return occurrences(s, at, at).find((o) => o.at.getTime() === at.getTime())?.flags ?? [];
}

/** The flag of the most frequent configured schedule: what an on-demand run is kept by. */
export function mostFrequentFlag(s: ScheduleSet): Flag | undefined {
  return s.daily ? 'D' : s.weekly ? 'W' : s.monthly ? 'M' : s.yearly ? 'Y' : undefined;
}

function sortFlags(flags: Flag[]): Flag[] {
  const order = 'DWMYA';
  return [...new Set(flags)].sort((a, b) => order.indexOf(a) - order.indexOf(b));
}
