import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, ConfigError } from '../../controller/config.ts';
import { tempDir } from './support/controller.ts';

test('defaults need no configuration: PGlite under ./.cosmos-backup, 127.0.0.1:8440', () => {
  const c = loadConfig({}, '/srv/app');
  assert.deepEqual(c, {
    port: 8440, host: '127.0.0.1', databaseUrl: null, dataDir: '/srv/app/.cosmos-backup', masterKey: null,
    masterKeyFile: '/srv/app/.cosmos-backup/master.key', logLevel: 'info', missedRunWindowMinutes: 240, retrievalPollSeconds: 600,
  });
});

test('config file, then environment variables', () => {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'c.json'), JSON.stringify({ port: 9000, host: '0.0.0.0', dataDir: 'data', logLevel: 'debug' }));
  const c = loadConfig({ COSMOS_BACKUP_CONFIG: 'c.json', PORT: '9100', DATABASE_URL: 'postgres://u:p@db/cb' }, dir);
  assert.equal(c.port, 9100);
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.dataDir, path.join(dir, 'data'));
  assert.equal(c.databaseUrl, 'postgres://u:p@db/cb');
  assert.equal(c.logLevel, 'debug');
});

test('every problem is reported at once as "where: message"', () => {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'c.json'), JSON.stringify({ port: 'x', colour: 'blue' }));
  try {
    loadConfig({ COSMOS_BACKUP_CONFIG: 'c.json', PORT: '70000', DATABASE_URL: 'mysql://x', COSMOS_BACKUP_MASTER_KEY: 'c2hvcnQ=' }, dir);
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    const lines = e.problems.join('\n');
    assert.match(lines, /^c\.json: port: /m);
    assert.match(lines, /^c\.json: .*colour/m);
    assert.match(lines, /^PORT: /m);
    assert.match(lines, /^DATABASE_URL: expected a postgres:\/\/ or postgresql:\/\/ URL$/m);
    assert.match(lines, /^COSMOS_BACKUP_MASTER_KEY: expected base64 of 32 bytes/m);
    assert.ok(!e.message.includes('c2hvcnQ='), 'values are not echoed');
  }
  assert.throws(() => loadConfig({ COSMOS_BACKUP_CONFIG: 'missing.json' }, dir), /COSMOS_BACKUP_CONFIG \(missing\.json\): ENOENT/);
});
