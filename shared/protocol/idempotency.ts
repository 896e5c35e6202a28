// What a worker does with a delivered command under at-least-once delivery: run it, keep
// working on it (a redelivery of the job already running), send its stored outcome again, put
// it off while busy, or send it to the poison queue. Pure: the worker persists the ledger
// (a small state file) and does the queue calls. docs/PROTOCOL.md "Idempotency".
import * as z from 'zod';
import { LEDGER_RETENTION_SECONDS, MAX_DEQUEUE_COUNT, VISIBILITY_TIMEOUT_SECONDS } from './constants.ts';
import { COMMAND_KINDS, ErrorCodeSchema, ResultSchema, isControlKind, type CommandKind } from './messages.ts';
import { ProtocolError } from './errors.ts';

/** The outcome of a finished command, stored so that a redelivery gets the same answer. */
export const FinalOutcomeSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('completed'), result: ResultSchema }),
  z.strictObject({
    kind: z.literal('failed'),
    code: ErrorCodeSchema,
    message: z.string().min(1).max(2000),
    retryable: z.boolean(),
    details: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])).optional(),
  }),
]);
export type FinalOutcome = z.infer<typeof FinalOutcomeSchema>;

const entryShape = {
  commandId: z.uuid(),
  kind: z.enum(COMMAND_KINDS),
  /** how many times this worker has started the command */
  attempt: z.int().min(1),
  startedAt: z.iso.datetime(),
};
export const LedgerEntrySchema = z.discriminatedUnion('state', [
  z.strictObject({ ...entryShape, state: z.literal('running') }),
  z.strictObject({ ...entryShape, state: z.literal('finished'), finishedAt: z.iso.datetime(), outcome: FinalOutcomeSchema }),
]);
export type LedgerEntry = z.infer<typeof LedgerEntrySchema>;

/** The worker's state file: validate it with this when reading it back. */
export const LedgerFileSchema = z.strictObject({ v: z.literal(1), entries: z.array(LedgerEntrySchema) });
export type LedgerFile = z.infer<typeof LedgerFileSchema>;

/** What the decision needs from the worker's record of commands. */
export interface CommandLedger {
  get(commandId: string): LedgerEntry | undefined;
}

export interface Delivery {
  commandId: string;
  kind: CommandKind;
  /** the queue's dequeue count of this delivery (1 on the first) */
  dequeueCount: number;
}

export interface WorkerSituation {
  /** the job command this process is running now, if any */
  runningCommandId?: string;
  /** deliveries beyond this count go to the poison queue (default MAX_DEQUEUE_COUNT) */
  maxDequeue?: number;
  /** how long to hide a job that arrives while another runs (default VISIBILITY_TIMEOUT_SECONDS) */
  deferSeconds?: number;
}

export type DeliveryDecision =
  /** start it; `interrupted` = a previous attempt was cut short (worker killed), clean up after it */
  | { action: 'run'; attempt: number; interrupted: boolean }
  /** it is the job running here: keep working, and from now on use this delivery's pop receipt */
  | { action: 'adopt' }
  /** it already finished: send the stored outcome again, delete the message */
  | { action: 'reply-again'; outcome: FinalOutcome }
  /** another job is running: make the message invisible for a while (one job at a time) */
  | { action: 'defer'; visibilitySeconds: number }
  /** delivered too often without finishing: move to `<queue>-poison`, reply `rejected` */
  | { action: 'poison'; reason: string };

/** True when a message seen `dequeueCount` times must go to the poison queue. */
export function shouldPoison(dequeueCount: number, maxDequeue: number = MAX_DEQUEUE_COUNT): boolean {
  if (!Number.isInteger(dequeueCount) || dequeueCount < 1) throw new ProtocolError('schema', `dequeue count must be a positive integer, got ${dequeueCount}`);
  if (!Number.isInteger(maxDequeue) || maxDequeue < 1) throw new ProtocolError('schema', `max dequeue count must be a positive integer, got ${maxDequeue}`);
  return dequeueCount > maxDequeue;
}

export function decideDelivery(delivery: Delivery, ledger: CommandLedger, situation: WorkerSituation = {}): DeliveryDecision {
  const entry = ledger.get(delivery.commandId);
  // A finished command is answered again whatever its dequeue count: it costs nothing and is
  // what the controller needs if the first reply was sent but the delete was lost.
  if (entry?.state === 'finished' && !(entry.outcome.kind === 'failed' && entry.outcome.retryable)) {
    return { action: 'reply-again', outcome: entry.outcome };
  }
  if (situation.runningCommandId === delivery.commandId) return { action: 'adopt' };
  const maxDequeue = situation.maxDequeue ?? MAX_DEQUEUE_COUNT;
  if (shouldPoison(delivery.dequeueCount, maxDequeue)) {
    return { action: 'poison', reason: `delivered ${delivery.dequeueCount} times without finishing (limit ${maxDequeue})` };
  }
  if (situation.runningCommandId !== undefined && !isControlKind(delivery.kind)) {
    return { action: 'defer', visibilitySeconds: situation.deferSeconds ?? VISIBILITY_TIMEOUT_SECONDS };
  }
  return { action: 'run', attempt: (entry?.attempt ?? 0) + 1, interrupted: entry?.state === 'running' };
}

/** The ledger entry to persist before running (write it before sending `accepted`). */
export function startEntry(previous: LedgerEntry | undefined, commandId: string, kind: CommandKind, now: Date = new Date()): LedgerEntry {
  return { commandId, kind, attempt: (previous?.attempt ?? 0) + 1, startedAt: now.toISOString(), state: 'running' };
}

/** The ledger entry to persist when the command ends (write it before sending the final reply). */
export function finishEntry(entry: LedgerEntry, outcome: FinalOutcome, now: Date = new Date()): LedgerEntry {
  const { commandId, kind, attempt, startedAt } = entry;
  return { commandId, kind, attempt, startedAt, state: 'finished', finishedAt: now.toISOString(), outcome };
}

/** Drops finished entries older than the retention (which outlasts the replay window); running ones stay. */
export function pruneLedger(entries: readonly LedgerEntry[], now: Date = new Date(), retentionSeconds: number = LEDGER_RETENTION_SECONDS): LedgerEntry[] {
  const cutoff = now.getTime() - retentionSeconds * 1000;
  return entries.filter((e) => e.state === 'running' || Date.parse(e.finishedAt) >= cutoff);
}
