// Connection settings as libpq users expect them (pure: no server).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { parseKeywords, pgpassLookup, resolveTarget } from '../../agent/engines/postgres/connection.ts';
import { tempDir } from '../support/temp-dir.ts';

test('libpq keywords with quoting', () => {
  assert.deepEqual(parseKeywords(`host=db.example.org port=6432 dbname='my db' user=me password='it\\'s' sslmode=require`),
    { host: 'db.example.org', port: '6432', dbname: 'my db', user: 'me', password: "it's", sslmode: 'require' });
  assert.throws(() => parseKeywords('host=x garbage'), /cannot read the connection keywords/);
});

test('password precedence: URL, then --password-env, then PGPASSWORD, then .pgpass; label never holds it', () => {
  const dir = tempDir('pgpass-');
  const file = path.join(dir, 'pgpass');
  writeFileSync(file, '# comment\nother:5432:*:me:nope\ndb.example.org:5432:shop:me:from\\:pgpass\n');
  chmodSync(file, 0o600);
  const env = { ...process.env };
  try {
    process.env.PGPASSFILE = file;
    delete process.env.PGPASSWORD;
    assert.equal(resolveTarget('postgres://me@db.example.org:5432/shop').password, 'from:pgpass');
    process.env.PGPASSWORD = 'from-env';
    assert.equal(resolveTarget('postgres://me@db.example.org:5432/shop').password, 'from-env');
    process.env.DBPW = 'from-named-env';
    assert.equal(resolveTarget('postgres://me@db.example.org:5432/shop', { passwordEnv: 'DBPW' }).password, 'from-named-env');
    const t = resolveTarget('postgres://me:in%20url@db.example.org:5432/shop?sslmode=require', { passwordEnv: 'DBPW' });
    assert.equal(t.password, 'in url');
    assert.deepEqual(t.ssl, { rejectUnauthorized: false });
    assert.equal(t.label, 'db.example.org:5432');
    assert.throws(() => resolveTarget('postgres://me@h/db', { passwordEnv: 'NOT_SET_ANYWHERE' }), /NOT_SET_ANYWHERE/);
    // A group-readable .pgpass is ignored, as libpq does.
    chmodSync(file, 0o644);
    delete process.env.PGPASSWORD;
    assert.equal(pgpassLookup({ host: 'db.example.org', port: 5432, database: 'shop', user: 'me' }, file), undefined);
  } finally {
    process.env = env;
  }
});
