// Wall-clock arithmetic in an IANA time zone, so "keep 3 days" means three local days even
// across a DST change (a fixed 72 h would keep Monday's point a day too long in spring).
export interface LocalTime {
  year: number;
  month: number; // 1-12
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
      hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

export function toLocal(instant: Date, timeZone: string): LocalTime {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(instant)) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  return { year: parts.year!, month: parts.month!, day: parts.day!, hour: parts.hour!, minute: parts.minute!, second: parts.second! };
}

function offsetAt(ms: number, timeZone: string): number {
  const l = toLocal(new Date(ms), timeZone);
  return Date.UTC(l.year, l.month - 1, l.day, l.hour, l.minute, l.second) - (ms - (((ms % 1000) + 1000) % 1000));
}

/** The instant of a local time; a time inside a DST gap resolves to just after the gap. */
export function fromLocal(t: LocalTime, timeZone: string): Date {
  const asUtc = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second);
  let guess = asUtc - offsetAt(asUtc, timeZone);
  const o2 = offsetAt(guess, timeZone);
  if (asUtc - o2 !== guess) {
    const alt = asUtc - o2;
    // Ambiguous (fall back): take the earlier instant; gap: take the one that lands after it.
    guess = offsetAt(alt, timeZone) === o2 ? Math.min(guess, alt) : Math.max(guess, alt);
  }
  return new Date(guess);
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

export interface CalendarPeriod {
  days?: number;
  months?: number;
  years?: number;
}

/** Adds whole local days/months/years; the day of month is clamped (31 Jan + 1 month = 28/29 Feb). */
export function addLocal(instant: Date, timeZone: string, p: CalendarPeriod): Date {
  const l = toLocal(instant, timeZone);
  const totalMonths = (l.year + (p.years ?? 0)) * 12 + (l.month - 1) + (p.months ?? 0);
  const year = Math.floor(totalMonths / 12);
  const month = (totalMonths % 12) + 1;
  const day = Math.min(l.day, daysInMonth(year, month));
  // Days are added on the calendar (UTC date maths on the local date), then converted back.
  const d = new Date(Date.UTC(year, month - 1, day + (p.days ?? 0)));
  return fromLocal({ year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: l.hour, minute: l.minute, second: l.second }, timeZone);
}

/** 'YYYY-MM-DD' of the instant in the zone. */
export function localDate(instant: Date, timeZone: string): string {
  const l = toLocal(instant, timeZone);
  return `${l.year}-${String(l.month).padStart(2, '0')}-${String(l.day).padStart(2, '0')}`;
}

/** Local midnight of a 'YYYY-MM-DD' date. */
export function startOfLocalDay(date: string, timeZone: string): Date {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  return fromLocal({ year: y, month: m, day: d, hour: 0, minute: 0, second: 0 }, timeZone);
}

export function nextLocalDate(date: string): string {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}
