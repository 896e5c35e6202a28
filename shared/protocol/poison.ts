// The text put on `<queue>-poison`: why the message was set aside, plus the original message
// text unchanged (so it can be inspected or re-queued). Format: base64(JSON record) "." original.
// A base64 wrapper around the original would not fit: 4/3 of 60 KiB is over the 64 KiB limit.
import * as z from 'zod';
import { MAX_MESSAGE_TEXT_BYTES } from './constants.ts';
import { ProtocolError } from './errors.ts';
import { REJECT_FAULTS } from './messages.ts';
import { redactString } from './redact.ts';

/** Azure's limit for a queue message's text. */
const QUEUE_TEXT_LIMIT = 64 * 1024;

export const PoisonRecordSchema = z.strictObject({
  v: z.literal(1),
  /** the queue the message came from */
  queue: z.string().min(3).max(63),
  messageId: z.string().min(1).max(128),
  dequeueCount: z.int().min(0),
  /** when it was set aside (ISO 8601) */
  at: z.iso.datetime(),
  fault: z.enum(REJECT_FAULTS),
  reason: z.string().min(1).max(1000),
  /** the id the message claimed, unverified */
  claimedId: z.string().max(128).optional(),
  /** the original text was cut to fit */
  truncated: z.boolean(),
});
export type PoisonRecord = z.infer<typeof PoisonRecordSchema>;

export function encodePoisonMessage(record: Omit<PoisonRecord, 'v' | 'truncated'>, originalText: string): string {
  const build = (truncated: boolean) => Buffer.from(JSON.stringify(PoisonRecordSchema.parse({
    v: 1, ...record, reason: redactString(record.reason).slice(0, 1000), truncated,
  }))).toString('base64');
  const head = build(false);
  // The record itself stays small (a few hundred bytes); the original is cut only if it was oversized already.
  const room = Math.min(QUEUE_TEXT_LIMIT - head.length - 1, MAX_MESSAGE_TEXT_BYTES + 2048);
  if (originalText.length <= room) return `${head}.${originalText}`;
  return `${build(true)}.${originalText.slice(0, room)}`;
}

export function decodePoisonMessage(text: string): { record: PoisonRecord; originalText: string } {
  const dot = text.indexOf('.');
  if (dot < 0) throw new ProtocolError('malformed', 'poison message has no record');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(text.slice(0, dot), 'base64').toString('utf8'));
  } catch (err) {
    throw new ProtocolError('malformed', 'poison record is not JSON', {}, err);
  }
  const r = PoisonRecordSchema.safeParse(json);
  if (!r.success) throw new ProtocolError('schema', `invalid poison record: ${r.error.issues[0]?.message ?? 'bad shape'}`);
  return { record: r.data, originalText: text.slice(dot + 1) };
}
