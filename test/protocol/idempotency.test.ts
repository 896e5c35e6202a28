import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { MAX_DEQUEUE_COUNT } from '../../shared/protocol/constants.ts';
import {
  LedgerFileSchema, decideDelivery, finishEntry, pruneLedger, shouldPoison, startEntry,
  type CommandLedger, type FinalOutcome, type LedgerEntry,
} from '../../shared/protocol/idempotency.ts';
import type { CommandKind } from '../../shared/protocol/messages.ts';
import { decodePoisonMessage, encodePoisonMessage } from '../../shared/protocol/poison.ts';

function ledgerOf(entries: LedgerEntry[]): CommandLedger & { map: Map<string, LedgerEntry> } {
  const map = new Map(entries.map((e) => [e.commandId, e]));
  return { map, get: (id) => map.get(id) };
}

const T0 = new Date('2030-01-01T00:00:00.000Z');
const completed: FinalOutcome = { kind: 'completed', result: { restorePointId: 'b'.repeat(64), stats: { durationMs: 5 } } };

test('a new command runs; a finished one is answered again with its stored outcome', () => {
  const id = randomUUID();
  const empty = ledgerOf([]);
  assert.deepEqual(decideDelivery({ commandId: id, kind: 'backup', dequeueCount: 1 }, empty), { action: 'run', attempt: 1, interrupted: false });
  const done = finishEntry(startEntry(undefined, id, 'backup', T0), completed, T0);
  const ledger = ledgerOf([done]);
  assert.deepEqual(decideDelivery({ commandId: id, kind: 'backup', dequeueCount: 2 }, ledger), { action: 'reply-again', outcome: completed });
  // Even past the poison limit: answering costs nothing and the controller needs it.
  assert.deepEqual(decideDelivery({ commandId: id, kind: 'backup', dequeueCount: 99 }, ledger), { action: 'reply-again', outcome: completed });
  const failed: FinalOutcome = { kind: 'failed', code: 'DATABASE_AUTH', message: 'password authentication failed', retryable: false };
  const id2 = randomUUID();
  assert.deepEqual(decideDelivery({ commandId: id2, kind: 'restore', dequeueCount: 1 }, ledgerOf([finishEntry(startEntry(undefined, id2, 'restore', T0), failed, T0)])), { action: 'reply-again', outcome: failed });
});

test('a retryable failure runs again when the command comes back', () => {
  const id = randomUUID();
  const entry = finishEntry(startEntry(undefined, id, 'backup', T0), { kind: 'failed', code: 'STORAGE_UNAVAILABLE', message: 'throttled', retryable: true }, T0);
  assert.deepEqual(decideDelivery({ commandId: id, kind: 'backup', dequeueCount: 1 }, ledgerOf([entry])), { action: 'run', attempt: 2, interrupted: false });
});

test('a command left running by a killed worker runs again, marked interrupted', () => {
  const id = randomUUID();
  const ledger = ledgerOf([startEntry(undefined, id, 'backup', T0)]);
  assert.deepEqual(decideDelivery({ commandId: id, kind: 'backup', dequeueCount: 2 }, ledger), { action: 'run', attempt: 2, interrupted: true });
});

test('a redelivery of the job running here is adopted, never run twice nor poisoned', () => {
  const id = randomUUID();
  const ledger = ledgerOf([startEntry(undefined, id, 'backup', T0)]);
  for (const dequeueCount of [1, 2, MAX_DEQUEUE_COUNT + 5]) {
    assert.deepEqual(decideDelivery({ commandId: id, kind: 'backup', dequeueCount }, ledger, { runningCommandId: id }), { action: 'adopt' });
  }
});

test('while a job runs, other jobs are deferred and control commands run', () => {
  const running = randomUUID();
  const ledger = ledgerOf([startEntry(undefined, running, 'backup', T0)]);
  const situation = { runningCommandId: running, deferSeconds: 30 };
  assert.deepEqual(decideDelivery({ commandId: randomUUID(), kind: 'restore', dequeueCount: 1 }, ledger, situation), { action: 'defer', visibilitySeconds: 30 });
  for (const kind of ['cancel', 'shutdown'] as const) {
    assert.deepEqual(decideDelivery({ commandId: randomUUID(), kind, dequeueCount: 1 }, ledger, situation), { action: 'run', attempt: 1, interrupted: false });
  }
});

test('a message delivered more than maxDequeue times is poisoned', () => {
  const id = randomUUID();
  const d = decideDelivery({ commandId: id, kind: 'verify', dequeueCount: 4 }, ledgerOf([]), { maxDequeue: 3 });
  assert.equal(d.action, 'poison');
  assert.match((d as { reason: string }).reason, /delivered 4 times.*limit 3/);
  assert.equal(decideDelivery({ commandId: id, kind: 'verify', dequeueCount: 3 }, ledgerOf([]), { maxDequeue: 3 }).action, 'run');
  assert.equal(decideDelivery({ commandId: id, kind: 'verify', dequeueCount: MAX_DEQUEUE_COUNT + 1 }, ledgerOf([])).action, 'poison');
});

test('shouldPoison is dequeueCount > maxDequeue and refuses nonsense (property)', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 1000 }), (d, m) => {
    assert.equal(shouldPoison(d, m), d > m);
  }));
  for (const [d, m] of [[0, 5], [1, 0], [1.5, 5], [Number.NaN, 5]] as const) assert.throws(() => shouldPoison(d, m), /positive integer/);
});

test('at-least-once delivery with duplicates and crashes runs each command to one outcome (property)', () => {
  // A model worker: deliveries arrive in any order, any number of times; the worker may crash
  // after starting (entry stays "running") or after finishing but before deleting the message.
  const kinds: CommandKind[] = ['backup', 'restore', 'copy', 'verify', 'export'];
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 5 }),
    fc.array(fc.record({ which: fc.nat(), crash: fc.constantFrom('none', 'mid-run', 'before-delete') }), { minLength: 1, maxLength: 40 }),
    (n, deliveries) => {
      const ids = Array.from({ length: n }, () => randomUUID());
      const ledger = ledgerOf([]);
      const queue = new Map(ids.map((id) => [id, 0])); // id → dequeue count; present = still on the queue
      const completions = new Map<string, number>();
      const replies = new Map<string, FinalOutcome[]>();
      for (const { which, crash } of deliveries) {
        const id = ids[which % n]!;
        if (!queue.has(id)) continue;
        const dequeueCount = queue.get(id)! + 1;
        queue.set(id, dequeueCount);
        const kind = kinds[(which % n) % kinds.length]!;
        const d = decideDelivery({ commandId: id, kind, dequeueCount }, ledger, { maxDequeue: 1000 });
        if (d.action === 'reply-again') {
          replies.set(id, [...(replies.get(id) ?? []), d.outcome]);
          queue.delete(id);
          continue;
        }
        assert.equal(d.action, 'run');
        const started = startEntry(ledger.get(id), id, kind, T0);
        ledger.map.set(id, started);
        if (crash === 'mid-run') continue; // killed: no outcome, message comes back
        const outcome: FinalOutcome = { kind: 'completed', result: { stats: { durationMs: 1 }, restorePointId: id.replace(/-/g, '').padEnd(64, '0') } };
        completions.set(id, (completions.get(id) ?? 0) + 1);
        ledger.map.set(id, finishEntry(started, outcome, T0));
        replies.set(id, [...(replies.get(id) ?? []), outcome]);
        if (crash === 'before-delete') continue; // reply sent, delete lost: message comes back
        queue.delete(id);
      }
      for (const [id, count] of completions) {
        assert.equal(count, 1, 'a command completes at most once');
        const rs = replies.get(id)!;
        assert.ok(rs.every((r) => JSON.stringify(r) === JSON.stringify(rs[0])), 'every reply for a command is the same');
      }
    },
  ), { numRuns: 300 });
});

test('ledger entries persist, validate, and are pruned after the retention', () => {
  const a = finishEntry(startEntry(undefined, randomUUID(), 'backup', T0), completed, T0);
  const b = startEntry(undefined, randomUUID(), 'copy', T0);
  const c = finishEntry(startEntry(undefined, randomUUID(), 'verify', T0), completed, new Date(T0.getTime() + 3_600_000));
  const file = LedgerFileSchema.parse(JSON.parse(JSON.stringify({ v: 1, entries: [a, b, c] })));
  assert.deepEqual(file.entries, [a, b, c]);
  assert.throws(() => LedgerFileSchema.parse({ v: 1, entries: [{ ...a, state: 'half-done' }] }));
  const later = new Date(T0.getTime() + 2 * 3_600_000);
  assert.deepEqual(pruneLedger([a, b, c], later, 5400).map((e) => e.commandId), [b.commandId, c.commandId]);
  assert.equal(startEntry(a, a.commandId, 'backup', T0).attempt, 2);
});

test('poison messages carry the reason and the original text, within the queue limit', () => {
  const original = Buffer.from(JSON.stringify({ v: 1, kind: 'backup' })).toString('base64');
  const rec = { queue: 'cb-w1-cmd', messageId: 'm-1', dequeueCount: 6, at: T0.toISOString(), fault: 'poison' as const, reason: 'delivered 6 times; last error at https://a/c?sig=SECRETSIG', claimedId: 'abc' };
  const text = encodePoisonMessage(rec, original);
  const back = decodePoisonMessage(text);
  assert.equal(back.originalText, original);
  assert.equal(back.record.truncated, false);
  assert.equal(back.record.dequeueCount, 6);
  assert.ok(!text.includes('SECRETSIG') && !Buffer.from(text.split('.')[0]!, 'base64').toString().includes('SECRETSIG'));
  // An oversized original (already refused for size) is cut so the poison message still fits.
  const huge = 'A'.repeat(70_000);
  const cut = encodePoisonMessage({ ...rec, fault: 'too-large', reason: 'too large' }, huge);
  assert.ok(cut.length <= 64 * 1024);
  assert.equal(decodePoisonMessage(cut).record.truncated, true);
  assert.throws(() => decodePoisonMessage('nodot'), /no record/);
});
