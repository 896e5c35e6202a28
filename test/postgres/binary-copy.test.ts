// Binary COPY (binary-copy.ts): which tables may use it, and the binary-to-text conversion that
// `export --format sql` relies on. The conversion is judged against the server itself: its own
// COPY text of the same rows (DateStyle ISO, TimeZone UTC), and, for floats, whose digits print
// differently, the rows the server reads back from the converted text.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import pg from 'pg';
import { to as copyTo, from as copyFrom } from 'pg-copy-streams';
import { usePostgres, createTestDatabase } from '../support/postgres.ts';
import { BinaryCopyToText, binaryCopyTypes, BINARY_TYPES } from '../../agent/engines/postgres/binary-copy.ts';
import { CosmosBackupError } from '../../shared/errors.ts';

const server = await usePostgres();
const db = await createTestDatabase(server, 'bincopy');
const c = new pg.Client({ connectionString: server.url(db) });
await c.connect();
after(() => c.end());
await c.query(`SET TimeZone = 'UTC'; SET DateStyle = ISO; SET extra_float_digits = 1`);

const COLUMNS = `id int4, b bool, raw bytea, i8 int8, i2 int2, t text, o oid, j json, f4 float4, f8 float8, ch char(5),
  v varchar(10), d date, tm time, ts timestamp, tz timestamptz, n numeric, n2 numeric(12,2), u uuid, jb jsonb`;
await c.query(`CREATE TABLE t (${COLUMNS})`);
await c.query(`INSERT INTO t VALUES
  (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (2, true, '\\x00ff5c0a0d09', -9223372036854775808, -32768, E'tab\\there\\nnew\\\\back\\rcr é 😀 \\x01', 4294967295,
   '{ "a" : [1, "x\\ny"] }', 3.14159, 0.1, 'ab', E'x\\ty', '4713-01-01 BC', '24:00:00', '294276-12-31 23:59:59.999999',
   '2000-01-01 00:00:00+00', 'NaN', -0.01, '00000000-0000-0000-0000-000000000000', '{"k": "line\\nbreak", "q": "\\\\"}'),
  (3, false, '', 9223372036854775807, 32767, '', 0, '"s"', '1e-40', 1e300, '', '', '5874897-12-31', '00:00:00.000001',
   '4713-01-01 00:00:00 BC', '1999-12-31 23:59:59.5+00', '-0.000001', 9999999999.99, 'ffffffff-ffff-ffff-ffff-ffffffffffff', '[]'),
  (4, true, '\\x01', 0, 0, 'x', 1, 'null', 'NaN', '-Infinity', 'abcde', 'z', 'infinity', '12:34:56.5', '-infinity',
   'infinity', '123456789012345678901234567890.123456789', 0, gen_random_uuid(), '{"deep": {"a": [1.50, -2e3, true, null]}}'),
  (5, false, '\\x', -1, -1, 'y', 2, '1', '-0', '-0', 'a', 'b', '-infinity', '23:59:59.999999', '0044-03-15 12:00:00 BC',
   '-infinity', 'Infinity', -0.01, gen_random_uuid(), '-1.5'),
  (6, true, '\\xab', 1, 1, 'z', 3, '2', 'Infinity', 5e-324, 'b', 'c', '0001-01-01', '00:00:00', '1999-12-31 23:59:59',
   '2026-11-25 10:11:12.123456+00', '-Infinity', 1, gen_random_uuid(), '3')`);
// Many ordinary rows, so that the stream spans many chunks.
await c.query(`INSERT INTO t SELECT i, i % 2 = 0, decode(md5(i::text), 'hex'), i::bigint * 1000003, (i % 30000)::int2,
    repeat(md5(i::text), 1 + i % 5), i, json_build_object('i', i), i / 3.0, i / 7.0, chr(97 + i % 26), 'v' || i % 100,
    date '2000-01-01' + (i * 37 - 500000), time '00:00' + (i || ' seconds')::interval, timestamp '1900-01-01' + (i || ' minutes')::interval,
    now() - (i || ' hours')::interval, (i - 2000)::numeric / 997, round((i % 100000) / 3.0, 2), gen_random_uuid(), jsonb_build_object('i', i, 'a', jsonb_build_array(i, 'x'))
  FROM generate_series(7, 4000) i`);

const types = (await c.query(`SELECT atttypid::int AS t FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 ORDER BY attnum`)).rows.map((r) => r.t as number);

async function copyOut(sql: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of c.query(copyTo(sql))) parts.push(b as Buffer);
  return Buffer.concat(parts);
}

/** The converter's text for `wire`, fed in pieces of the given sizes (cycled). */
function convert(wire: Buffer, ts: number[], sizes: number[]): Buffer {
  const conv = new BinaryCopyToText(ts);
  const out: Buffer[] = [];
  for (let at = 0, k = 0; at < wire.length; k++) {
    const n = sizes[k % sizes.length]!;
    out.push(conv.push(Buffer.from(wire.subarray(at, at + n))));
    at += n;
  }
  conv.end();
  return Buffer.concat(out);
}

test('every type in the list is the built-in type of that OID', async () => {
  const names = (await c.query(`SELECT oid::int AS oid, typname FROM pg_type WHERE oid = ANY($1)`, [[...BINARY_TYPES.keys()]])).rows;
  assert.deepEqual(new Map(names.map((r) => [r.oid as number, r.typname as string])), BINARY_TYPES);
  assert.deepEqual(new Set(types), new Set(BINARY_TYPES.keys()), 'the fixture has a column of every listed type');
});

test('binary only when every column has a listed type', () => {
  assert.deepEqual(binaryCopyTypes([20, 25, 3802], 3), [20, 25, 3802]);
  assert.equal(binaryCopyTypes([20, 1007], 2), undefined, 'an array column');
  assert.equal(binaryCopyTypes([20, 16_385], 2), undefined, 'a user-defined type');
  assert.equal(binaryCopyTypes(undefined, 2), undefined, 'a document from before column types');
  assert.equal(binaryCopyTypes([20], 2), undefined, 'types that do not match the columns');
  assert.equal(binaryCopyTypes([], 0), undefined, 'no columns');
});

test('the text is the server\'s own COPY text, wherever the chunks split the rows (floats aside)', async () => {
  const cols = (await c.query(`SELECT attname, atttypid::int AS t FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 AND atttypid NOT IN (700, 701) ORDER BY attnum`)).rows;
  const list = cols.map((r) => `"${r.attname}"`).join(', ');
  const expected = await copyOut(`COPY t (${list}) TO STDOUT`);
  const wire = await copyOut(`COPY t (${list}) TO STDOUT (FORMAT binary)`);
  const ts = cols.map((r) => r.t as number);
  for (const sizes of [[wire.length], [1, 1, 1, 4093], [7, 3, 65_536], [19, 2, 4, 1000]]) {
    const got = convert(wire, ts, sizes);
    if (!got.equals(expected)) {
      const a = got.toString().split('\n');
      const b = expected.toString().split('\n');
      const i = a.findIndex((l, k) => l !== b[k]);
      assert.fail(`pieces ${sizes.join(',')}: line ${i} differs:\n got ${a[i]}\nwant ${b[i]}`);
    }
  }
});

test('the server reads the text back as the same rows, floats included', async () => {
  const wire = await copyOut('COPY t TO STDOUT (FORMAT binary)');
  const text = convert(wire, types, [4096, 13]);
  await c.query('CREATE TABLE back (LIKE t)');
  await pipeline(Readable.from([text]), c.query(copyFrom('COPY back FROM STDIN')));
  const sum = async (rel: string) => (await c.query(`SELECT count(*)::int AS n, md5(string_agg(x::text, E'\\n' ORDER BY id)) AS h FROM ${rel} x`)).rows[0];
  const a = await sum('t');
  assert.equal(a.n, 4000);
  assert.deepEqual(await sum('back'), a);
  const floats = async (rel: string) => (await c.query(`SELECT string_agg(coalesce(f4::text, 'null') || '/' || coalesce(f8::text, 'null'), ',' ORDER BY id) AS s FROM ${rel}`)).rows[0].s;
  const f = await floats('t');
  assert.match(f, /(^|,)-0\/-0(,|$)/, 'the server prints the sign of -0, so the comparison sees it');
  assert.equal(await floats('back'), f, 'floats, NaN, infinities and -0');
});

test('a damaged or cut-short stream is a CORRUPT_OBJECT error, never wrong text', async () => {
  const wire = await copyOut(`COPY (SELECT id, t FROM t WHERE id < 10 ORDER BY id) TO STDOUT (FORMAT binary)`);
  const corrupt = (e: unknown) => e instanceof CosmosBackupError && e.code === 'CORRUPT_OBJECT';
  assert.throws(() => convert(wire.subarray(0, wire.length - 2), [23, 25], [wire.length]), corrupt, 'no trailer');
  assert.throws(() => convert(wire.subarray(0, wire.length - 9), [23, 25], [wire.length]), corrupt, 'a row cut short');
  const bad = Buffer.from(wire);
  bad[0] = 0x51;
  assert.throws(() => convert(bad, [23, 25], [100]), corrupt, 'no signature');
  assert.throws(() => convert(wire, [23], [100]), corrupt, 'a row with more fields than columns');
  assert.throws(() => convert(wire, [23, 20], [100]), corrupt, 'an int8 field of another width');
  assert.throws(() => convert(Buffer.concat([wire, wire.subarray(19)]), [23, 25], [100]), corrupt, 'rows after the trailer');
  assert.throws(() => new BinaryCopyToText([23, 1007]), (e: unknown) => e instanceof CosmosBackupError && e.code === 'INVALID_ARGUMENT');
});
