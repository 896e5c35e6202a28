// The policy's schedule and retention shapes, validated with zod. The API reuses these schemas
// so the OpenAPI document, the validation and the pure logic share one definition.
import { z } from 'zod';
import { isValidTimeZone } from './zoned.ts';

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export const Weekday = z.enum(WEEKDAYS);
export type Weekday = z.infer<typeof Weekday>;

const Hour = z.number().int().min(0).max(23);
// Days 29-31 do not exist in every month; 'last' says what is meant instead.
const DayOfMonth = z.union([z.number().int().min(1).max(28), z.literal('last')]);
const Keep = (max: number) => z.number().int().min(1).max(max);

export const DailySchedule = z.object({
  hours: z.array(Hour).min(1).max(24),
  weekdays: z.array(Weekday).min(1).max(7).default([...WEEKDAYS]),
  keepDays: Keep(3650),
});
export const WeeklySchedule = z.object({
  weekday: Weekday,
  hour: Hour,
  keepWeeks: Keep(520).optional(),
  keepDays: Keep(3650).optional(),
}).refine((w) => (w.keepWeeks === undefined) !== (w.keepDays === undefined), { message: 'set exactly one of keepWeeks or keepDays', path: ['keepWeeks'] });
export const MonthlySchedule = z.object({
  day: DayOfMonth.optional(),
  occurrence: z.enum(['first', 'second', 'third', 'fourth', 'last']).optional(),
  weekday: Weekday.optional(),
  hour: Hour,
  keepMonths: Keep(1200),
}).refine((m) => (m.day !== undefined) !== (m.occurrence !== undefined && m.weekday !== undefined) && (m.occurrence === undefined) === (m.weekday === undefined),
  { message: 'set either day, or occurrence and weekday', path: ['day'] });
export const YearlySchedule = z.object({
  month: z.number().int().min(1).max(12),
  day: DayOfMonth,
  hour: Hour,
  keepYears: Keep(100),
});

export const TimeZone = z.string().refine(isValidTimeZone, { message: 'unknown IANA time zone' });

export const Schedules = z.object({
  timeZone: TimeZone.default('UTC'),
  daily: DailySchedule.optional(),
  weekly: WeeklySchedule.optional(),
  monthly: MonthlySchedule.optional(),
  yearly: YearlySchedule.optional(),
}).refine((s) => s.daily || s.weekly || s.monthly || s.yearly, { message: 'at least one of daily, weekly, monthly, yearly is required' });
export type Schedules = z.infer<typeof Schedules>;

/** Archive: one schedule, and how long archived points are kept. */
export const ArchiveSchedule = z.object({
  timeZone: TimeZone.default('UTC'),
  weekly: WeeklySchedule.optional(),
  monthly: MonthlySchedule.optional(),
  yearly: YearlySchedule.optional(),
}).refine((s) => [s.weekly, s.monthly, s.yearly].filter(Boolean).length === 1, { message: 'set exactly one of weekly, monthly, yearly' });
export type ArchiveSchedule = z.infer<typeof ArchiveSchedule>;

/** D/W/M/Y are the harmonized schedule flags; A marks an archived copy kept by the archive retention. */
export type Flag = 'D' | 'W' | 'M' | 'Y' | 'A';
export const FLAG_ORDER: readonly Flag[] = ['D', 'W', 'M', 'Y', 'A'];

export interface FlagState {
  flag: Flag;
  expiresAt: Date;
}
