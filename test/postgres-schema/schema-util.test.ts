// Pure helpers of the schema engine: quoting, ACL statements, dependency sort, item selection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aclStatements, optionList, quoteIdent, quoteLiteral, sortByDependencies, type AclEntry } from '../../agent/engines/postgres/schema-util.ts';
import { selectItems, toSqlScript } from '../../agent/engines/postgres/apply.ts';
import type { DdlItem, SchemaDocument } from '../../agent/engines/postgres/schema-types.ts';

test('quoting: identifiers always quoted, literals doubled, reloptions as literals', () => {
  assert.equal(quoteIdent('select'), '"select"');
  assert.equal(quoteIdent('a"b'), '"a""b"');
  assert.equal(quoteLiteral("it's \\n"), "'it''s \\n'");
  assert.equal(optionList(['fillfactor=70', 'check_option=local']), "fillfactor='70', check_option='local'");
  assert.equal(optionList(null), '');
});

test('aclStatements: default acl means nothing; differences become REVOKE then GRANT', () => {
  const owner: AclEntry[] = [['o', 'EXECUTE', false, 'o']];
  const dflt: AclEntry[] = [[null, 'EXECUTE', false, 'o'], ...owner];
  assert.deepEqual(aclStatements('FUNCTION f()', null, dflt), []);
  assert.deepEqual(aclStatements('FUNCTION f()', dflt, dflt), []);
  assert.deepEqual(aclStatements('FUNCTION f()', [...owner, ['r x', 'EXECUTE', true, 'o']], dflt), [
    'REVOKE EXECUTE ON FUNCTION f() FROM PUBLIC;',
    'GRANT EXECUTE ON FUNCTION f() TO "r x" WITH GRANT OPTION;',
  ]);
  assert.deepEqual(aclStatements('TABLE t', [['r', 'SELECT', false, 'o'], ['r', 'UPDATE', false, 'o']], [], 'c'), [
    'GRANT SELECT("c"),UPDATE("c") ON TABLE t TO "r";',
  ]);
});

test('sortByDependencies: dependencies first, then priority and name; cycles reported, not lost', () => {
  const n = (key: string, priority: number, deps: string[] = []) => ({ key, priority, sortName: key, deps: new Set(deps) });
  const order = sortByDependencies([n('view', 13, ['table']), n('table', 9, ['func']), n('func', 6), n('a-schema', 1), n('b-schema', 1)]);
  assert.deepEqual(order.map((x) => x.key), ['a-schema', 'b-schema', 'func', 'table', 'view']);
  const cycles: string[] = [];
  const cyc = sortByDependencies([n('x', 2, ['y']), n('y', 1, ['x']), n('z', 3, ['x'])], (c) => cycles.push(c.key));
  assert.deepEqual(cyc.map((x) => x.key), ['y', 'x', 'z']);
  assert.deepEqual(cycles, ['y']);
});

test('selectItems and toSqlScript honour section, noOwner, noPrivileges and missing roles', () => {
  const items: DdlItem[] = [
    { section: 'pre-data', kind: 'table', schema: 's', name: 't', sql: 'CREATE TABLE s.t ();' },
    { section: 'pre-data', kind: 'owner', schema: 's', name: 't', sql: 'ALTER TABLE s.t OWNER TO bob;', owner: 'bob', requires: ['bob'] },
    { section: 'pre-data', kind: 'acl', schema: 's', name: 't', sql: 'GRANT SELECT ON s.t TO eve;', owner: 'bob', requires: ['bob', 'eve'] },
    { section: 'post-data', kind: 'index', schema: 's', name: 'i', sql: 'CREATE INDEX i ON s.t (a);' },
  ];
  const all = selectItems(items, { availableRoles: new Set(['bob']) });
  assert.deepEqual(all.run.map((i) => i.kind), ['table', 'owner', 'index']);
  assert.deepEqual(all.warnings, ['skipped acl of "s"."t": role "eve" does not exist on the target']);
  assert.deepEqual(selectItems(items, { section: 'pre-data', noOwner: true, noPrivileges: true }).run.map((i) => i.kind), ['table']);
  const doc: SchemaDocument = {
    formatVersion: 1,
    server: { version: 'PostgreSQL 15.1 on x', versionNum: 150001, encoding: 'UTF8', collate: 'C', ctype: 'C', extensions: [] },
    database: { name: 'd' }, items, tables: [], matviews: [], roles: ['bob', 'eve'],
    sequences: [{ schema: 's', name: 'q', lastValue: '5', isCalled: true }], largeObjects: [{ oid: 7, owner: 'bob' }],
  };
  const script = toSqlScript(doc, { noOwner: true });
  assert.match(script.preData, /SET check_function_bodies = false;/);
  assert.match(script.preData, /CREATE TABLE s\.t \(\);/);
  assert.doesNotMatch(script.preData, /OWNER TO/);
  assert.match(script.preData, /GRANT SELECT ON s\.t TO eve;/);
  assert.match(script.preData, /SELECT pg_catalog\.lo_create\('7'\);/);
  assert.match(script.postData, /CREATE INDEX i ON s\.t \(a\);[\s\S]*SELECT pg_catalog\.setval\('"s"\."q"', 5, true\);/);
});
