// The dependency rules of ARCHITECTURE.md are enforced by the lint configuration: prove that a
// forbidden import is reported (and an allowed one is not), so the check cannot silently rot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ESLint } from 'eslint';

const root = path.resolve(import.meta.dirname, '..', '..');
const eslint = new ESLint({ cwd: root });

async function restricted(file: string, source: string): Promise<string[]> {
  const [res] = await eslint.lintText(source, { filePath: path.join(root, file) });
  return res!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

test('shared/ may not import agent/, controller/ or test/', async () => {
  assert.match((await restricted('shared/repository/x.ts', `import { main } from '../../agent/cli.ts';\nvoid main;\n`)).join(), /shared\/ must not import agent/);
  assert.match((await restricted('shared/x.ts', `import { startController } from '../controller/start.ts';\nvoid startController;\n`)).join(), /must not import controller/);
  assert.match((await restricted('shared/x.ts', `import { usePostgres } from '../test/support/postgres.ts';\nvoid usePostgres;\n`)).join(), /must not import test code/);
  assert.deepEqual(await restricted('shared/x.ts', `import { CosmosBackupError } from './errors.ts';\nvoid CosmosBackupError;\n`), []);
});

test('agent/ and controller/ never import each other', async () => {
  assert.match((await restricted('agent/x.ts', `import { startController } from '../controller/start.ts';\nvoid startController;\n`)).join(), /meet only through shared/);
  assert.match((await restricted('controller/api/x.ts', `import { main } from '../../agent/cli.ts';\nvoid main;\n`)).join(), /meet only through shared/);
  assert.deepEqual(await restricted('controller/api/x.ts', `import { Hono } from 'hono';\nvoid Hono;\n`), []);
});

test('policies stay pure and Hono stays in the API layer', async () => {
  assert.match((await restricted('controller/policies/x.ts', `import { Hono } from 'hono';\nvoid Hono;\n`)).join(), /no framework/);
  assert.match((await restricted('controller/policies/x.ts', `import { migrate } from '../db/migrate.ts';\nvoid migrate;\n`)).join(), /no I\/O/);
  assert.match((await restricted('controller/policies/x.ts', `import pg from 'pg';\nvoid pg;\n`)).join(), /no I\/O/);
  assert.match((await restricted('controller/sessions/x.ts', `import { Hono } from 'hono';\nvoid Hono;\n`)).join(), /Hono stays in controller\/api/);
});
