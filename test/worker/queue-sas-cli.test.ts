// The worker's queue SAS as the controller hands it over: a JSON object of one token per queue.
// A value that is not such an object, or one without a token for this worker's queues, stops the
// worker at start with one line, before it talks to any queue; the token never appears in it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { runAgentCli } from '../support/agent-cli.ts';

const KEY = randomBytes(32).toString('base64');
const worker = (sas: string) => runAgentCli(['worker', '--worker-id', 'w-0123456789', '--queue-service', 'http://127.0.0.1:9/devstoreaccount1', '--state-dir', '/tmp/cb-never-used'],
  { COSMOS_BACKUP_WORKER_KEY: KEY, COSMOS_BACKUP_QUEUE_SAS: sas });

test('a queue SAS that starts like JSON but is not an object of tokens is refused in one line', async () => {
  for (const bad of ['{"cb-w-0123456789-cmd": ', '{"cb-w-0123456789-cmd": 5}', '{}x']) {
    const r = await worker(bad);
    assert.notEqual(r.code, 0);
    assert.equal(r.stderr.trim(), 'error: COSMOS_BACKUP_QUEUE_SAS starts with "{" but is not a JSON object of queue names to SAS tokens');
  }
});

test('a queue SAS without a token for one of this worker\'s queues is refused in one line, without the tokens', async () => {
  const secret = `sv=2024-01-01&sp=a&sig=${randomBytes(8).toString('hex')}`;
  const r = await worker(JSON.stringify({ 'cb-w-0123456789-reply': secret, 'cb-w-other-cmd': secret }));
  assert.notEqual(r.code, 0);
  assert.equal(r.stderr.trim(), 'error: the queue SAS holds no token for queue cb-w-0123456789-cmd: the worker id and the SAS must come from the same launch');
  assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret));
});
