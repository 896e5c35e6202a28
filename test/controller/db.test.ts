// Migrations and queries on both engines (PGlite and a real PostgreSQL), secrets at rest, the master key.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { usePostgres, createTestDatabase } from '../support/postgres.ts';
import { openPglite, openPostgres, type Db } from '../../controller/db/db.ts';
import { migrate, loadMigrations } from '../../controller/db/migrate.ts';
import { SecretBox, loadMasterKey } from '../../controller/db/secrets.ts';
import * as cfg from '../../controller/db/config-store.ts';
import * as st from '../../controller/db/session-store.ts';
import { createToken, findToken, revokeToken, sha256 } from '../../controller/db/tokens.ts';
import { Schedules } from '../../controller/policies/model.ts';
import { tempDir } from './support/controller.ts';

const open: Db[] = [];
after(async () => { for (const db of open) await db.close(); });

async function engines(): Promise<[string, Db][]> {
  const pglite = await openPglite(path.join(tempDir(), 'db'));
  const pg = await usePostgres();
  const postgres = await openPostgres(pg.url(await createTestDatabase(pg, 'ctl')));
  open.push(pglite, postgres);
  return [['pglite', pglite], ['postgres', postgres]];
}
const both = engines();

const SECRETS = { sa: 'azure-client-secret-PLAINTEXT-1', repo: 'repository-password-PLAINTEXT-2', db: 'database-password-PLAINTEXT-3', smtp: 'smtp-password-PLAINTEXT-4' };

async function dumpAll(db: Db): Promise<string> {
  const tables = await db.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`);
  let out = '';
  for (const t of tables) out += JSON.stringify(await db.query(`SELECT * FROM "${t.table_name}"`));
  return out;
}

for (const name of ['pglite', 'postgres']) {
  test(`${name}: migrations apply once and are recorded`, async () => {
    const db = (await both).find(([n]) => n === name)![1];
    const first = await migrate(db);
    assert.deepEqual(first, loadMigrations().map((m) => m.version));
    assert.deepEqual(await migrate(db), [], 'a second run applies nothing');
    const rows = await db.query('SELECT version, name FROM schema_migrations ORDER BY version');
    assert.equal(rows[0]!.name, 'initial');
  });

  test(`${name}: the same queries work; secrets never appear in a dump of the database`, async () => {
    const db = (await both).find(([n]) => n === name)![1];
    const box = new SecretBox(randomBytes(32));
    await cfg.verifyMasterKey(db, box);
    const sa = await cfg.createServiceAccount(db, box, { name: 'sa', tenantId: 't', auth: 'secret', clientId: '11111111-2222-3333-4444-555555555555', clientSecret: SECRETS.sa, subscriptions: ['s1'] });
    assert.equal(sa.hasSecret, true);
    await assert.rejects(cfg.createServiceAccount(db, box, { name: 'sa', tenantId: 't', auth: 'managedIdentity', subscriptions: [] }), { code: 'ALREADY_EXISTS' });
    const repo = await cfg.insertRepository(db, box, 'r1', { name: 'repo', storageAccount: 'sa1', container: 'c1', folder: '', accessTier: 'Hot', password: SECRETS.repo, immutability: false }, 'fmt-1');
    const schedules = Schedules.parse({ daily: { hours: [1], keepDays: 2 } });
    const policy = await cfg.createPolicy(db, box, {
      name: 'p', enabled: true, serviceAccountId: sa.id, scope: { accounts: ['a'], resourceGroups: [], tags: [], exclusions: { accounts: [], tags: [] } }, continuousTier: 7,
      backup: { repositoryId: repo.id, schedules, credentials: [{ accountId: 'acc-1', username: 'u', password: SECRETS.db }] },
      notifications: { onSuccess: false, onWarning: true, onFailure: true, recipients: [] },
    });
    await cfg.putSettings(db, box, { sessionRetentionDays: 10, privateNetwork: false, email: { enabled: true, smtp: { host: 'h', port: 25, secure: false, username: 'u', password: SECRETS.smtp }, from: 'a@b.c', to: ['d@e.f'], notifyOnSuccess: true, notifyOnWarning: true, notifyOnFailure: true, dailyReport: { enabled: false, time: '08:00' } } });
    const { token } = await createToken(db, 'ci');

    // Secrets come back only through the opening functions.
    assert.equal((await cfg.serviceAccountCredentials(db, box, sa.id)).clientSecret, SECRETS.sa);
    assert.equal(await cfg.repositoryPassword(db, box, repo.id), SECRETS.repo);
    assert.equal((await cfg.policyCredential(db, box, policy.id, 'ACC-1'))!.password, SECRETS.db);
    assert.equal((await cfg.settingsWithSecrets(db, box)).email!.smtp.password, SECRETS.smtp);
    assert.equal((await findToken(db, token))!.name, 'ci');

    const dump = await dumpAll(db);
    for (const secret of [...Object.values(SECRETS), token]) assert.ok(!dump.includes(secret), `dump must not contain ${secret.slice(0, 12)}…`);
    assert.ok(dump.includes(sha256(token)), 'tokens are stored as hashes');
    assert.ok(!JSON.stringify(await cfg.getSettings(db)).includes(SECRETS.smtp));
    // A sealed value moved to another row does not open (bound to where it is stored).
    const sealed = (await db.query('SELECT secret_sealed FROM service_accounts WHERE id = $1', [sa.id]))[0]!.secret_sealed;
    assert.throws(() => box.open(sealed, 'service_accounts.secret:other'), { code: 'WRONG_PASSWORD' });
    // Another master key on this database is refused at start.
    await assert.rejects(cfg.verifyMasterKey(db, new SecretBox(randomBytes(32))), /master key does not match/);

    // Sessions, logs, restore points: bigint and jsonb come back the same on both engines.
    const s = (await st.insertSession(db, { type: 'backup', policyId: policy.id, trigger: 'schedule', scheduledFor: new Date('2025-01-01T01:00:00Z'), flags: ['D'] }))!;
    assert.equal(await st.insertSession(db, { type: 'backup', policyId: policy.id, trigger: 'missed', scheduledFor: new Date('2025-01-01T01:00:00Z') }), undefined, 'a scheduled time runs once');
    await st.appendLog(db, s.id, 'info', 'hello');
    await st.setAccounts(db, s.id, [{ accountId: 'a', accountName: 'a', state: 'success', bytes: 5_000_000_000 }]);
    const rp = await st.insertRestorePoint(db, { policyId: policy.id, sessionId: s.id, accountId: 'a', accountName: 'a', kind: 'repository', createdAt: new Date('2025-01-01T01:00:00Z'), flags: [{ flag: 'D', expiresAt: new Date('2025-01-03T01:00:00Z') }], size: 5_000_000_000 });
    assert.equal(rp.size, 5_000_000_000);
    assert.deepEqual(rp.flags, [{ flag: 'D', expiresAt: '2025-01-03T01:00:00.000Z' }]);
    assert.deepEqual(await st.failInterrupted(db), [s.id]);
    const got = await st.getSession(db, s.id);
    assert.equal(got.state, 'failed');
    assert.equal(got.bytes, 5_000_000_000);
    assert.equal(got.interrupted, true);
    assert.deepEqual(got.log.map((l) => l.level), ['info', 'error']);
    // An interrupted scheduled run may run again, once.
    assert.ok(await st.insertSession(db, { type: 'backup', policyId: policy.id, trigger: 'missed', scheduledFor: new Date('2025-01-01T01:00:00Z') }));
    assert.equal(await st.insertSession(db, { type: 'backup', policyId: policy.id, trigger: 'missed', scheduledFor: new Date('2025-01-01T01:00:00Z') }), undefined);
    assert.equal(await st.deleteOldSessions(db, new Date(Date.now() + 60_000)), 1, 'only finished sessions are cleaned up');
    assert.equal((await st.getRestorePoint(db, rp.id)).sessionId, null, 'restore points outlive their session record');
    assert.equal(await revokeToken(db, 'ci'), true);
    assert.equal(await findToken(db, token), undefined);
  });
}

test('master key: created 0600, looser permissions refused, env key must be 32 bytes', () => {
  const dir = tempDir();
  const file = path.join(dir, 'k', 'master.key');
  const k = loadMasterKey({ keyFile: file });
  assert.equal(k.created, true);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(loadMasterKey({ keyFile: file }).key, k.key);
  chmodSync(file, 0o644);
  assert.throws(() => loadMasterKey({ keyFile: file }), /permissions 0644; .*chmod 600/);
  assert.throws(() => loadMasterKey({ envValue: Buffer.alloc(16).toString('base64'), keyFile: file }), /expected base64 of 32 bytes, got 16/);
  const env = randomBytes(32);
  assert.deepEqual(loadMasterKey({ envValue: env.toString('base64'), keyFile: file }).key, env);
  const short = path.join(dir, 'short.key');
  writeFileSync(short, 'abcd', { mode: 0o600 });
  assert.throws(() => loadMasterKey({ keyFile: short }), /expected base64 of 32 bytes/);
});

test('migration 004: a policy\'s allowMigration moves from policy_continuous_settings onto the policy', async () => {
  const pg = await usePostgres();
  const db = await openPostgres(pg.url(await createTestDatabase(pg, 'ctl004')));
  open.push(db);
  assert.deepEqual(await migrate(db, loadMigrations().filter((m) => m.version <= 3)), [1, 2, 3]);
  await db.query(`INSERT INTO service_accounts (id, name, tenant_id, auth) VALUES ('sa', 'sa', 't', 'managedIdentity')`);
  for (const id of ['on', 'off', 'unset']) {
    await db.query(`INSERT INTO policies (id, name, priority, service_account_id, scope, continuous_tier) VALUES ($1, $1, 1, 'sa', '{}', 30)`, [id]);
  }
  await db.query(`INSERT INTO policy_continuous_settings (policy_id, allow_migration) VALUES ('on', true), ('off', false)`);
  assert.deepEqual(await migrate(db), [4, 5, 6]);
  const rows = await db.query('SELECT id, allow_migration FROM policies ORDER BY id');
  assert.deepEqual(rows.map((r) => [r.id, r.allow_migration]), [['off', false], ['on', true], ['unset', false]]);
  assert.deepEqual(await db.query(`SELECT 1 FROM information_schema.tables WHERE table_name = 'policy_continuous_settings'`), []);
  assert.equal((await cfg.getPolicy(db, 'on')).allowMigration, true);
});
