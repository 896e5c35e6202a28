// The product doc's harmonized-scheduling example, step by step, plus property tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Schedules, type Flag } from '../../controller/policies/model.ts';
import { occurrences, flagsAt, cronPatterns, nextOccurrence, previousOccurrence } from '../../controller/policies/schedule.ts';
import { applyRetention, assignFlags, flagExpiry, reexpire, type RetainedPoint } from '../../controller/policies/retention.ts';
import { retentionPreview, simulate } from '../../controller/policies/preview.ts';
import { addLocal, localDate } from '../../controller/policies/zoned.ts';

const TZ = 'Europe/Berlin';
// Daily at 7:00 on weekdays, keep 3 days; weekly: the Monday 7:00 point kept 14 days.
const example = Schedules.parse({
  timeZone: TZ,
  daily: { hours: [7], weekdays: ['mon', 'tue', 'wed', 'thu', 'fri'], keepDays: 3 },
  weekly: { weekday: 'mon', hour: 7, keepDays: 14 },
});

/** Runs one backup at `at` followed by retention, as the controller does, and returns labels. */
function step(chain: RetainedPoint[], at: string): { chain: RetainedPoint[]; removed: string[]; unassigned: string[] } {
  const when = new Date(at);
  const created = { id: label(when), createdAt: when, flags: assignFlags(flagsAt(example, when), when, example) };
  const r = applyRetention([...chain, created], when);
  return { chain: r.kept, removed: r.removed.map((p) => p.id), unassigned: r.unassigned.map((u) => `${u.id}-${u.flags.join('')}`) };
}
const label = (d: Date) => localDate(d, TZ);
const show = (chain: RetainedPoint[]) => chain.map((p) => `${p.id}:${p.flags.map((f) => f.flag).join('')}`);

test('seed example: daily 7:00 weekdays keep 3 days + weekly Monday keep 14 days, step by step', () => {
  // Week 1 starts Monday 3 March 2025 (CET, UTC+1): 7:00 local is 06:00Z.
  let chain: RetainedPoint[] = [];
  // 1. Monday: the first point gets D, and W because Monday 7:00 is the weekly time.
  let s = step(chain, '2025-03-03T06:00:00Z'); chain = s.chain;
  assert.deepEqual(show(chain), ['2025-03-03:DW']);
  // 2. Tuesday and Wednesday: D only.
  s = step(chain, '2025-03-04T06:00:00Z'); chain = s.chain;
  s = step(chain, '2025-03-05T06:00:00Z'); chain = s.chain;
  assert.deepEqual(show(chain), ['2025-03-03:DW', '2025-03-04:D', '2025-03-05:D']);
  // 3. Thursday: Monday's point is past the daily limit; it loses D but stays for its W flag.
  s = step(chain, '2025-03-06T06:00:00Z'); chain = s.chain;
  assert.deepEqual(s.unassigned, ['2025-03-03-D']);
  assert.deepEqual(s.removed, []);
  assert.deepEqual(show(chain), ['2025-03-03:W', '2025-03-04:D', '2025-03-05:D', '2025-03-06:D']);
  // 4. Friday: Tuesday's point has only D and it expired: removed.
  s = step(chain, '2025-03-07T06:00:00Z'); chain = s.chain;
  assert.deepEqual(s.removed, ['2025-03-04']);
  assert.deepEqual(show(chain), ['2025-03-03:W', '2025-03-05:D', '2025-03-06:D', '2025-03-07:D']);
  // 5. Week 2 continues the same way; the weekly point of week 1 stays throughout.
  for (const day of ['10', '11', '12', '13', '14']) {
    s = step(chain, `2025-03-${day}T06:00:00Z`); chain = s.chain;
    assert.ok(show(chain).includes('2025-03-03:W'), `week-1 weekly point kept on 2025-03-${day}`);
  }
  assert.deepEqual(show(chain), ['2025-03-03:W', '2025-03-10:W', '2025-03-12:D', '2025-03-13:D', '2025-03-14:D']);
  // 6. Week 3 Monday: week 1's W expires (14 days); no flag left, so that point is removed.
  s = step(chain, '2025-03-17T06:00:00Z'); chain = s.chain;
  // The week-2 daily points of Wednesday to Friday are past 3 days too.
  assert.deepEqual(s.removed, ['2025-03-03', '2025-03-12', '2025-03-13', '2025-03-14']);
  assert.deepEqual(show(chain), ['2025-03-10:W', '2025-03-17:DW']);
  // The same run through the simulator gives the same chain.
  const sim = simulate(example, new Date('2025-03-03T00:00:00Z'), new Date('2025-03-17T23:00:00Z'));
  assert.deepEqual(sim.at(-1)!.kept.map((p) => `${label(p.createdAt)}:${p.flags.map((f) => f.flag).join('')}`), show(chain));
});

test('schedules become cron patterns and harmonize on shared instants', () => {
  assert.deepEqual(cronPatterns(example), { D: '0 7 * * 1,2,3,4,5', W: '0 7 * * 1' });
  const m = Schedules.parse({ timeZone: TZ, monthly: { occurrence: 'last', weekday: 'fri', hour: 22, keepMonths: 12 }, yearly: { month: 12, day: 'last', hour: 22, keepYears: 7 } });
  assert.deepEqual(cronPatterns(m), { M: '0 22 * * 5#L', Y: '0 22 L 12 *' });
  const occ = occurrences(example, new Date('2025-03-03T00:00:00Z'), new Date('2025-03-09T23:00:00Z'));
  assert.deepEqual(occ.map((o) => `${label(o.at)}:${o.flags.join('')}`), ['2025-03-03:DW', '2025-03-04:D', '2025-03-05:D', '2025-03-06:D', '2025-03-07:D']);
  assert.equal(nextOccurrence(example, new Date('2025-03-07T06:00:00Z'))!.at.toISOString(), '2025-03-10T06:00:00.000Z');
  assert.deepEqual(nextOccurrence(example, new Date('2025-03-07T06:00:00Z'))!.flags, ['D', 'W']);
  assert.equal(previousOccurrence(example, new Date('2025-03-08T12:00:00Z'))!.at.toISOString(), '2025-03-07T06:00:00.000Z');
  assert.equal(previousOccurrence(example, new Date('2025-03-07T06:00:00Z'))!.at.toISOString(), '2025-03-07T06:00:00.000Z');
  // A weekly time that no daily run covers gets its own run with W only.
  const off = Schedules.parse({ timeZone: TZ, daily: { hours: [7], weekdays: ['mon'], keepDays: 3 }, weekly: { weekday: 'sun', hour: 9, keepWeeks: 2 } });
  assert.deepEqual(occurrences(off, new Date('2025-03-03T00:00:00Z'), new Date('2025-03-09T23:00:00Z')).map((o) => o.flags.join('')), ['D', 'W']);
});

test('DST: runs stay at 7:00 local and "3 days" means three local days', () => {
  const daily = Schedules.parse({ timeZone: TZ, daily: { hours: [7], keepDays: 3 } });
  const occ = occurrences(daily, new Date('2025-03-29T00:00:00Z'), new Date('2025-03-31T23:00:00Z'));
  // CET (UTC+1) until 30 March 02:00, then CEST (UTC+2).
  assert.deepEqual(occ.map((o) => o.at.toISOString()), ['2025-03-29T06:00:00.000Z', '2025-03-30T05:00:00.000Z', '2025-03-31T05:00:00.000Z']);
  // Friday 28 March 7:00 CET + 3 local days = Monday 31 March 7:00 CEST: 71 hours, not 72.
  assert.equal(flagExpiry('D', new Date('2025-03-28T06:00:00Z'), daily)!.toISOString(), '2025-03-31T05:00:00.000Z');
  assert.equal(addLocal(new Date('2025-01-31T12:00:00Z'), TZ, { months: 1 }).toISOString(), '2025-02-28T12:00:00.000Z');
  assert.equal(addLocal(new Date('2024-02-29T12:00:00Z'), TZ, { years: 1 }).toISOString(), '2025-02-28T12:00:00.000Z');
  // A 2:30 run on the spring-forward day runs after the gap instead of being skipped.
  const night = Schedules.parse({ timeZone: TZ, daily: { hours: [2], keepDays: 1 } });
  assert.equal(occurrences(night, new Date('2025-03-30T00:00:00Z'), new Date('2025-03-30T12:00:00Z')).length, 1);
});

test('validation explains bad schedules', () => {
  const bad = Schedules.safeParse({ timeZone: 'Mars/Olympus', weekly: { weekday: 'mon', hour: 25, keepWeeks: 2, keepDays: 3 } });
  assert.equal(bad.success, false);
  const paths = bad.error!.issues.map((i) => i.path.join('.'));
  assert.ok(paths.includes('timeZone'));
  assert.ok(paths.includes('weekly.hour'));
  assert.equal(Schedules.safeParse({ timeZone: 'UTC' }).success, false);
});

test('retention preview lists the points of every day', () => {
  const days = retentionPreview(example, '2025-03-03', '2025-03-17');
  assert.equal(days.length, 15);
  assert.deepEqual(days[0]!.created, ['2025-03-03T06:00:00.000Z']);
  assert.deepEqual(days[0]!.points.map((p) => p.flags.map((f) => f.flag).join('')), ['DW']);
  // Saturday 8 March: no backup, so the chain of Friday stands.
  assert.equal(days[5]!.date, '2025-03-08');
  assert.equal(days[5]!.points.length, 4);
  assert.equal(days.at(-1)!.points.length, 2);
  assert.deepEqual(days.at(-1)!.removed, ['2025-03-03T06:00:00.000Z', '2025-03-12T06:00:00.000Z', '2025-03-13T06:00:00.000Z', '2025-03-14T06:00:00.000Z']);
});

// ---- properties ----

const flagArb = fc.constantFrom<Flag>('D', 'W', 'M', 'Y', 'A');
const T0 = Date.UTC(2025, 0, 1);
const DAY = 86_400_000;
const pointArb = fc.record({
  id: fc.uuid(),
  createdAt: fc.integer({ min: 0, max: 400 }).map((d) => new Date(T0 + d * DAY)),
  flags: fc.uniqueArray(flagArb, { minLength: 1, maxLength: 5 }).chain((flags) =>
    fc.tuple(...flags.map((flag) => fc.integer({ min: 1, max: 800 }).map((d) => ({ flag, days: d }))))),
}).map((p) => ({ id: p.id, createdAt: p.createdAt, flags: p.flags.map((f) => ({ flag: f.flag, expiresAt: new Date(p.createdAt.getTime() + f.days * DAY) })) }));
const nowArb = fc.integer({ min: 0, max: 1300 }).map((d) => new Date(T0 + d * DAY));

test('property: no point that carries an unexpired flag is ever removed', () => {
  fc.assert(fc.property(fc.array(pointArb, { maxLength: 30 }), nowArb, (points, now) => {
    const r = applyRetention(points, now);
    for (const p of r.removed) assert.ok(p.flags.every((f) => f.expiresAt <= now), `removed ${p.id} with a live flag`);
    for (const p of r.kept) assert.ok(p.flags.length > 0 && p.flags.every((f) => f.expiresAt > now));
    assert.equal(r.kept.length + r.removed.length, points.length);
  }));
});

test('property: the kept set does not depend on the order of points or of evaluations', () => {
  fc.assert(fc.property(fc.array(pointArb, { maxLength: 30 }), fc.array(nowArb, { minLength: 1, maxLength: 6 }), (points, nows) => {
    const sorted = [...nows].sort((a, b) => a.getTime() - b.getTime());
    const last = sorted.at(-1)!;
    const once = applyRetention(points, last).kept;
    // Evaluated repeatedly over time (as after each backup), in time order...
    let chain: RetainedPoint[] = points;
    for (const n of sorted) chain = applyRetention(chain, n).kept;
    // ...and with the input shuffled.
    const shuffled = applyRetention([...points].reverse(), last).kept;
    const key = (ps: RetainedPoint[]) => ps.map((p) => `${p.id}:${p.flags.map((f) => f.flag).sort().join('')}`).sort();
    assert.deepEqual(key(chain), key(once));
    assert.deepEqual(key(shuffled), key(once));
  }));
});

const scheduleArb = fc.record({
  daily: fc.option(fc.record({ hours: fc.uniqueArray(fc.integer({ min: 0, max: 23 }), { minLength: 1, maxLength: 3 }), weekdays: fc.uniqueArray(fc.constantFrom('sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'), { minLength: 1, maxLength: 7 }), keepDays: fc.integer({ min: 1, max: 14 }) }), { nil: undefined }),
  weekly: fc.option(fc.record({ weekday: fc.constantFrom('sun', 'mon', 'fri'), hour: fc.integer({ min: 0, max: 23 }), keepWeeks: fc.integer({ min: 1, max: 6 }) }), { nil: undefined }),
  monthly: fc.option(fc.record({ day: fc.oneof(fc.integer({ min: 1, max: 28 }), fc.constant('last' as const)), hour: fc.integer({ min: 0, max: 23 }), keepMonths: fc.integer({ min: 1, max: 3 }) }), { nil: undefined }),
  timeZone: fc.constantFrom('UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Sydney'),
}).filter((s) => Boolean(s.daily || s.weekly || s.monthly)).map((s) => Schedules.parse(s));

test('property: once the longest retention has passed, nothing older is kept', () => {
  fc.assert(fc.property(scheduleArb, fc.integer({ min: 0, max: 200 }), (s, startDay) => {
    const from = new Date(T0 + startDay * DAY);
    const to = new Date(from.getTime() + 120 * DAY);
    const steps = simulate(s, from, to);
    for (const st of steps) {
      for (const p of st.kept) {
        const longest = Math.max(...(['D', 'W', 'M', 'Y'] as Flag[]).map((f) => flagExpiry(f, p.createdAt, s)?.getTime() ?? 0));
        assert.ok(longest > st.at.getTime(), `point of ${p.createdAt.toISOString()} kept at ${st.at.toISOString()} past every retention`);
      }
    }
  }), { numRuns: 30 });
});

test('reexpire applies an edited retention but never shortens a flag whose schedule was removed', () => {
  const p: RetainedPoint = { id: 'a', createdAt: new Date('2025-03-03T06:00:00Z'), flags: assignFlags(['D', 'W'], new Date('2025-03-03T06:00:00Z'), example) };
  const longer = Schedules.parse({ timeZone: TZ, daily: { hours: [7], keepDays: 10 } });
  const r = reexpire(p, longer);
  assert.equal(r.flags[0]!.expiresAt.toISOString(), '2025-03-13T06:00:00.000Z');
  assert.equal(r.flags[1]!.expiresAt.toISOString(), p.flags[1]!.expiresAt.toISOString());
});
