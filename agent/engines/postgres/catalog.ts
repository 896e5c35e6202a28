// Reads a database's schema from the system catalogs into a SchemaDocument: ordered DDL items
// (pre-data in dependency order, post-data after), the tables to copy, sequence values and
// large object ids. Runs inside the caller's open REPEATABLE READ transaction so that schema and
// data come from one snapshot; it never commits and never touches the snapshot.
//
// The server's own deparsers (pg_get_*def, pg_get_expr, format_type) produce every expression,
// with search_path narrowed to pg_catalog for the duration so that they qualify user objects.
import type pg from 'pg';
import type {
  CitusInfo, DdlItem, DdlSection, ExtensionInfo, MatviewInfo, RelKind, SchemaDocument, SequenceValue, TableInfo,
} from './schema-types.ts';
import {
  aclRoles, aclStatements, optionList, qualify, quoteIdent, quoteLiteral, sortByDependencies,
  type AclEntry, type SortNode,
} from './schema-util.ts';
import { citusDdl, readCitus } from './citus.ts';

export type QueryFn = (sql: string, params?: unknown[]) => Promise<Record<string, any>[]>;

export interface ReadSchemaOptions {
  /** non-fatal findings (dependency cycles, unsupported objects) */
  onWarning?: (message: string) => void;
}

interface Obj extends SortNode {
  section: DdlSection;
  items: DdlItem[];
  matview?: boolean;
  /** views: a same-columns stand-in for pre-data when the real query needs a post-data object */
  placeholder?: string;
  /** the relation every item of this object belongs to (DdlItem.table) */
  table?: { schema: string; name: string };
}

// pg_dump-like kind order, used only to break ties between objects with no dependency between them.
const PRIORITY: Record<string, number> = {
  schema: 1, extension: 2, collation: 3, type: 4, domain: 5, function: 6, procedure: 6, aggregate: 7,
  sequence: 8, table: 9, 'table-attach': 10, default: 11, 'sequence-owned-by': 12, view: 13, matview: 14,
  constraint: 20, index: 20, 'index-attach': 22, cluster: 23, 'replica-identity': 23, statistics: 24,
  'check-constraint': 25, 'domain-constraint': 25, fk: 26, trigger: 27, rule: 28, rls: 29, policy: 30,
  'view-definition': 29, 'event-trigger': 31, 'default-acl': 32, 'matview-refresh': 33,
};

const NS_FILTER = (alias: string) =>
  `${alias}.nspname NOT IN ('pg_catalog', 'information_schema') AND ${alias}.nspname !~ '^pg_(toast|temp_|toast_temp_)'`;

/** aclexplode of an acl and of its default (defaultType is an SQL expression such as `'r'`), as JSON arrays of [grantee|null, privilege, grantable, grantor]. */
function aclColumns(aclExpr: string, defaultType: string | null, ownerExpr: string): string {
  const explode = (expr: string) => `(SELECT coalesce(json_agg(json_build_array(CASE WHEN x.grantee = 0 THEN NULL ELSE pg_get_userbyid(x.grantee) END, x.privilege_type, x.is_grantable, pg_get_userbyid(x.grantor)) ORDER BY x.ord), '[]') FROM aclexplode(${expr}) WITH ORDINALITY AS x(grantor, grantee, privilege_type, is_grantable, ord))`;
  const dflt = defaultType === null ? `'[]'::json` : explode(`acldefault(${defaultType}, ${ownerExpr})`);
  return `CASE WHEN ${aclExpr} IS NULL THEN NULL ELSE ${explode(aclExpr)} END AS acl, ${dflt} AS acldef`;
}

const PROC_NAME = (oidExpr: string) =>
  `(SELECT quote_ident(fn.nspname) || '.' || quote_ident(fp.proname) FROM pg_proc fp JOIN pg_namespace fn ON fn.oid = fp.pronamespace WHERE fp.oid = ${oidExpr})`;
const COLL_NAME = (oidExpr: string) =>
  `(SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = ${oidExpr})`;

export async function readSchema(client: pg.ClientBase, opts: ReadSchemaOptions = {}): Promise<SchemaDocument> {
  const q: QueryFn = async (sql, params) => (await client.query(sql, params as any[])).rows;
  const saved = (await q(`SELECT current_setting('search_path') AS sp`))[0]!.sp as string;
  // Local to the caller's transaction: deparsed SQL then names every non-catalog object with its schema.
  await q(`SELECT set_config('search_path', 'pg_catalog', true)`);
  // On failure the caller's transaction is aborted and rolls the setting back with it.
  const doc = await readWith(q, opts);
  await q(`SELECT set_config('search_path', $1, true)`, [saved]);
  return doc;
}

/** The reader proper, over any query function (the tests and readSchema both use it). */
export async function readWith(q: QueryFn, opts: ReadSchemaOptions = {}): Promise<SchemaDocument> {
  const warn = opts.onWarning ?? (() => {});
  const objs = new Map<string, Obj>();
  const alias = new Map<string, string>(); // "catalog:oid" -> object key
  const comments = new Map<string, { obj: string; target: string; schema?: string; name: string }>();
  const roles = new Set<string>();

  const add = (key: string, section: DdlSection, kind: string, schema: string | undefined, name: string, sql: string): Obj => {
    const o: Obj = { key, section, priority: PRIORITY[kind] ?? 50, sortName: `${schema ?? ''}\u0000${name}`, deps: new Set(), items: [] };
    o.items.push({ section, kind, ...(schema !== undefined ? { schema } : {}), name, sql });
    objs.set(key, o);
    alias.set(key, key);
    return o;
  };
  const item = (o: Obj, kind: string, schema: string | undefined, name: string, sql: string, extra: Partial<DdlItem> = {}) => {
    o.items.push({ section: o.section, kind, ...(schema !== undefined ? { schema } : {}), name, sql, ...(o.table ? { table: o.table } : {}), ...extra });
    for (const r of extra.requires ?? []) roles.add(r);
  };
  /** Marks the object, and so each of its items (those added later too), as belonging to a relation. */
  const belongsTo = <T extends Obj>(o: T, schema: string, name: string): T => {
    o.table = { schema, name };
    for (const i of o.items) i.table = o.table;
    return o;
  };
  const owner = (o: Obj, alterWhat: string, schema: string | undefined, name: string, role: string | null | undefined) => {
    if (!role) return;
    item(o, 'owner', schema, name, `ALTER ${alterWhat} OWNER TO ${quoteIdent(role)};`, { owner: role, requires: [role] });
  };
  const acl = (o: Obj, onObject: string, schema: string | undefined, name: string, ownerRole: string, a: AclEntry[] | null, d: AclEntry[] | null, column?: string) => {
    const stmts = aclStatements(onObject, a, d, column);
    if (stmts.length === 0) return;
    const need = [...new Set([ownerRole, ...aclRoles(a)])];
    item(o, 'acl', schema, column === undefined ? name : `${name}.${column}`, stmts.join('\n'), { owner: ownerRole, requires: need });
  };
  const commentOn = (cls: string, oid: number, subid: number, objKey: string, target: string, schema: string | undefined, name: string) => {
    comments.set(`${cls}:${oid}:${subid}`, { obj: objKey, target, ...(schema !== undefined ? { schema } : {}), name });
  };

  // ---- server, database, extensions -------------------------------------------------------
  const srv = (await q(`SELECT version() AS version, current_setting('server_version_num')::int AS num,
      d.datname, pg_get_userbyid(d.datdba) AS owner, shobj_description(d.oid, 'pg_database') AS comment,
      pg_encoding_to_char(d.encoding) AS encoding, d.datcollate, d.datctype
    FROM pg_database d WHERE d.datname = current_database()`))[0]!;
  const extRows = await q(`SELECT e.oid, e.extname, e.extversion, n.nspname FROM pg_extension e
    JOIN pg_namespace n ON n.oid = e.extnamespace ORDER BY e.extname`);
  const extensions: ExtensionInfo[] = extRows.map((r) => ({ name: r.extname, version: r.extversion, schema: r.nspname }));

  // Extension members are re-created by CREATE EXTENSION: never dumped, but depending on one
  // means depending on the extension.
  const members = new Set<string>();
  for (const r of await q(`SELECT classid::regclass::text AS cls, objid, refobjid FROM pg_depend
      WHERE deptype = 'e' AND refclassid = 'pg_extension'::regclass`)) {
    const k = `${r.cls}:${r.objid}`;
    members.add(k);
    alias.set(k, `pg_extension:${r.refobjid}`);
  }
  // Objects internal to another (a range type's constructor functions) come with their owner.
  for (const r of await q(`SELECT objid, refclassid::regclass::text AS refcls, refobjid FROM pg_depend
      WHERE deptype = 'i' AND classid = 'pg_proc'::regclass AND objid >= 16384`)) {
    const k = `pg_proc:${r.objid}`;
    members.add(k);
    if (!alias.has(k)) alias.set(k, `${r.refcls}:${r.refobjid}`);
  }
  const isMember = (cls: string, oid: number) => members.has(`${cls}:${oid}`);

  // ---- schemas ------------------------------------------------------------------------------
  for (const r of await q(`SELECT n.oid, n.nspname, pg_get_userbyid(n.nspowner) AS owner, ${aclColumns('n.nspacl', `'n'`, 'n.nspowner')}
      FROM pg_namespace n WHERE ${NS_FILTER('n')}`)) {
    if (isMember('pg_namespace', r.oid)) continue;
    const key = `pg_namespace:${r.oid}`;
    // public exists in every new database; its owner, grants and comment still apply.
    const o = add(key, 'pre-data', 'schema', undefined, r.nspname, r.nspname === 'public' ? '' : `CREATE SCHEMA ${quoteIdent(r.nspname)};`);
    if (r.nspname === 'public') o.items.pop();
    owner(o, `SCHEMA ${quoteIdent(r.nspname)}`, undefined, r.nspname, r.owner);
    acl(o, `SCHEMA ${quoteIdent(r.nspname)}`, undefined, r.nspname, r.owner, r.acl, r.acldef);
    commentOn('pg_namespace', r.oid, 0, key, `SCHEMA ${quoteIdent(r.nspname)}`, undefined, r.nspname);
  }
  for (const r of extRows) {
    if (Number(r.oid) < 16384) continue; // built in (plpgsql): present in every database
    const key = `pg_extension:${r.oid}`;
    add(key, 'pre-data', 'extension', undefined, r.extname, `CREATE EXTENSION IF NOT EXISTS ${quoteIdent(r.extname)} WITH SCHEMA ${quoteIdent(r.nspname)};`);
    commentOn('pg_extension', r.oid, 0, key, `EXTENSION ${quoteIdent(r.extname)}`, undefined, r.extname);
  }

  // ---- collations ---------------------------------------------------------------------------
  for (const r of await q(`SELECT c.oid, c.collname, n.nspname, c.collprovider, c.collisdeterministic, c.collcollate,
      c.collctype, c.colliculocale, pg_get_userbyid(c.collowner) AS owner
    FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace WHERE ${NS_FILTER('n')}`)) {
    if (isMember('pg_collation', r.oid)) continue;
    const key = `pg_collation:${r.oid}`;
    const parts = [`provider = ${r.collprovider === 'i' ? 'icu' : 'libc'}`];
    if (!r.collisdeterministic) parts.push('deterministic = false');
    if (r.collprovider === 'i') parts.push(`locale = ${quoteLiteral(r.colliculocale ?? '')}`);
    else parts.push(`lc_collate = ${quoteLiteral(r.collcollate ?? '')}`, `lc_ctype = ${quoteLiteral(r.collctype ?? '')}`);
    const qn = qualify(r.nspname, r.collname);
    const o = add(key, 'pre-data', 'collation', r.nspname, r.collname, `CREATE COLLATION ${qn} (${parts.join(', ')});`);
    owner(o, `COLLATION ${qn}`, r.nspname, r.collname, r.owner);
    commentOn('pg_collation', r.oid, 0, key, `COLLATION ${qn}`, r.nspname, r.collname);
  }

  // ---- types: enum, composite, domain, range ------------------------------------------------
  const typeRows = await q(`SELECT t.oid, t.typname, n.nspname, t.typtype, t.typrelid, t.typarray,
      format_type(t.typbasetype, t.typtypmod) AS basetype, t.typnotnull, t.typdefault,
      CASE WHEN t.typcollation <> 0 AND t.typcollation <> bt.typcollation THEN ${COLL_NAME('t.typcollation')} END AS collation,
      pg_get_userbyid(t.typowner) AS owner, ${aclColumns('t.typacl', `'T'`, 't.typowner')}
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
    WHERE ${NS_FILTER('n')} AND t.typtype IN ('c', 'e', 'd', 'r')
      AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')`);
  const typeOids = typeRows.filter((r) => !isMember('pg_type', r.oid)).map((r) => Number(r.oid));
  const enumLabels = new Map<number, string[]>();
  for (const r of await q(`SELECT enumtypid, enumlabel FROM pg_enum WHERE enumtypid = ANY($1) ORDER BY enumtypid, enumsortorder`, [typeOids])) {
    const list = enumLabels.get(Number(r.enumtypid)) ?? [];
    list.push(r.enumlabel);
    enumLabels.set(Number(r.enumtypid), list);
  }
  const compositeAttrs = new Map<number, string[]>();
  for (const r of await q(`SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod) AS type,
      CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN ${COLL_NAME('a.attcollation')} END AS collation
    FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
    WHERE a.attrelid IN (SELECT typrelid FROM pg_type WHERE oid = ANY($1)) AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attrelid, a.attnum`, [typeOids])) {
    const list = compositeAttrs.get(Number(r.attrelid)) ?? [];
    list.push(`    ${quoteIdent(r.attname)} ${r.type}${r.collation ? ` COLLATE ${r.collation}` : ''}`);
    compositeAttrs.set(Number(r.attrelid), list);
  }
  const domainChecks = new Map<number, { oid: number; name: string; def: string; valid: boolean }[]>();
  for (const r of await q(`SELECT oid, contypid, conname, pg_get_constraintdef(oid) AS def, convalidated FROM pg_constraint
      WHERE contypid = ANY($1) ORDER BY contypid, conname`, [typeOids])) {
    const list = domainChecks.get(Number(r.contypid)) ?? [];
    list.push({ oid: Number(r.oid), name: r.conname, def: r.def, valid: r.convalidated });
    domainChecks.set(Number(r.contypid), list);
  }
  const ranges = new Map<number, Record<string, any>>();
  for (const r of await q(`SELECT r.rngtypid, r.rngmultitypid, mt.typarray AS multiarray, format_type(r.rngsubtype, NULL) AS subtype,
      quote_ident(mn.nspname) || '.' || quote_ident(mt.typname) AS multiname,
      CASE WHEN r.rngcollation <> 0 THEN ${COLL_NAME('r.rngcollation')} END AS collation,
      CASE WHEN NOT oc.opcdefault THEN quote_ident(ocn.nspname) || '.' || quote_ident(oc.opcname) END AS opclass,
      CASE WHEN r.rngsubdiff <> 0 THEN ${PROC_NAME('r.rngsubdiff')} END AS subdiff
    FROM pg_range r JOIN pg_type mt ON mt.oid = r.rngmultitypid JOIN pg_namespace mn ON mn.oid = mt.typnamespace
      JOIN pg_opclass oc ON oc.oid = r.rngsubopc JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace
    WHERE r.rngtypid = ANY($1)`, [typeOids])) ranges.set(Number(r.rngtypid), r);

  for (const r of typeRows) {
    if (isMember('pg_type', r.oid)) continue;
    const key = `pg_type:${r.oid}`;
    const qn = qualify(r.nspname, r.typname);
    let sql: string;
    let kind = 'type';
    if (r.typtype === 'e') {
      sql = `CREATE TYPE ${qn} AS ENUM (\n${(enumLabels.get(Number(r.oid)) ?? []).map((l) => `    ${quoteLiteral(l)}`).join(',\n')}\n);`;
    } else if (r.typtype === 'c') {
      sql = `CREATE TYPE ${qn} AS (\n${(compositeAttrs.get(Number(r.typrelid)) ?? []).join(',\n')}\n);`;
      alias.set(`pg_class:${r.typrelid}`, key);
    } else if (r.typtype === 'd') {
      kind = 'domain';
      let s = `CREATE DOMAIN ${qn} AS ${r.basetype}`;
      if (r.collation) s += ` COLLATE ${r.collation}`;
      if (r.typdefault !== null) s += ` DEFAULT ${r.typdefault}`;
      if (r.typnotnull) s += ' NOT NULL';
      for (const c of domainChecks.get(Number(r.oid)) ?? []) {
        if (c.valid) {
          s += `\n    CONSTRAINT ${quoteIdent(c.name)} ${c.def}`;
          alias.set(`pg_constraint:${c.oid}`, key);
        }
      }
      sql = s + ';';
    } else {
      const rg = ranges.get(Number(r.oid))!;
      const parts = [`subtype = ${rg.subtype}`, `multirange_type_name = ${rg.multiname}`];
      if (rg.opclass) parts.push(`subtype_opclass = ${rg.opclass}`);
      if (rg.collation) parts.push(`collation = ${rg.collation}`);
      if (rg.subdiff) parts.push(`subtype_diff = ${rg.subdiff}`);
      sql = `CREATE TYPE ${qn} AS RANGE (\n    ${parts.join(',\n    ')}\n);`;
      alias.set(`pg_type:${rg.rngmultitypid}`, key);
      alias.set(`pg_type:${rg.multiarray}`, key);
    }
    const o = add(key, 'pre-data', kind, r.nspname, r.typname, sql);
    alias.set(`pg_type:${r.typarray}`, key);
    const what = kind === 'domain' ? 'DOMAIN' : 'TYPE';
    owner(o, `${what} ${qn}`, r.nspname, r.typname, r.owner);
    acl(o, `${what} ${qn}`, r.nspname, r.typname, r.owner, r.acl, r.acldef);
    commentOn('pg_type', r.oid, 0, key, `${what} ${qn}`, r.nspname, r.typname);
    for (const c of domainChecks.get(Number(r.oid)) ?? []) {
      if (!c.valid) {
        const ck = `pg_constraint:${c.oid}`;
        const co = add(ck, 'post-data', 'domain-constraint', r.nspname, `${r.typname}.${c.name}`, `ALTER DOMAIN ${qn} ADD CONSTRAINT ${quoteIdent(c.name)} ${c.def};`);
        co.deps.add(key);
        commentOn('pg_constraint', c.oid, 0, ck, `CONSTRAINT ${quoteIdent(c.name)} ON DOMAIN ${qn}`, r.nspname, `${r.typname}.${c.name}`);
      } else {
        commentOn('pg_constraint', c.oid, 0, key, `CONSTRAINT ${quoteIdent(c.name)} ON DOMAIN ${qn}`, r.nspname, `${r.typname}.${c.name}`);
      }
    }
  }

  // ---- functions, procedures, aggregates -----------------------------------------------------
  for (const r of await q(`SELECT p.oid, p.proname, n.nspname, p.prokind, pg_get_function_identity_arguments(p.oid) AS idargs,
      pg_get_function_arguments(p.oid) AS args, pg_get_userbyid(p.proowner) AS owner, p.proparallel,
      CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END AS def, ${aclColumns('p.proacl', `'f'`, 'p.proowner')},
      a.aggkind, a.aggnumdirectargs, ${PROC_NAME('a.aggtransfn')} AS sfunc, format_type(a.aggtranstype, NULL) AS stype,
      a.aggtransspace, a.agginitval, a.aggfinalextra, a.aggfinalmodify,
      CASE WHEN a.aggfinalfn <> 0 THEN ${PROC_NAME('a.aggfinalfn')} END AS finalfunc,
      CASE WHEN a.aggcombinefn <> 0 THEN ${PROC_NAME('a.aggcombinefn')} END AS combinefunc,
      CASE WHEN a.aggserialfn <> 0 THEN ${PROC_NAME('a.aggserialfn')} END AS serialfunc,
      CASE WHEN a.aggdeserialfn <> 0 THEN ${PROC_NAME('a.aggdeserialfn')} END AS deserialfunc,
      CASE WHEN a.aggmtransfn <> 0 THEN ${PROC_NAME('a.aggmtransfn')} END AS msfunc,
      CASE WHEN a.aggminvtransfn <> 0 THEN ${PROC_NAME('a.aggminvtransfn')} END AS minvfunc,
      CASE WHEN a.aggmtranstype <> 0 THEN format_type(a.aggmtranstype, NULL) END AS mstype,
      CASE WHEN a.aggmfinalfn <> 0 THEN ${PROC_NAME('a.aggmfinalfn')} END AS mfinalfunc,
      a.aggmfinalextra, a.aggmfinalmodify, a.aggmtransspace, a.aggminitval,
      CASE WHEN a.aggsortop <> 0 THEN (SELECT 'OPERATOR(' || quote_ident(opn.nspname) || '.' || o.oprname || ')' FROM pg_operator o JOIN pg_namespace opn ON opn.oid = o.oprnamespace WHERE o.oid = a.aggsortop) END AS sortop
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace LEFT JOIN pg_aggregate a ON a.aggfnoid = p.oid
    WHERE ${NS_FILTER('n')}`)) {
    if (isMember('pg_proc', r.oid)) continue;
    const key = `pg_proc:${r.oid}`;
    const qn = qualify(r.nspname, r.proname);
    const kind = r.prokind === 'p' ? 'procedure' : r.prokind === 'a' ? 'aggregate' : 'function';
    const what = kind === 'procedure' ? 'PROCEDURE' : kind === 'aggregate' ? 'AGGREGATE' : 'FUNCTION';
    const sig = `${qn}(${kind === 'aggregate' && r.idargs === '' ? '*' : r.idargs})`;
    let sql: string;
    if (kind === 'aggregate') {
      const modify = (m: string) => (m === 's' ? 'SHAREABLE' : m === 'w' ? 'READ_WRITE' : 'READ_ONLY');
      const parts = [`SFUNC = ${r.sfunc}`, `STYPE = ${r.stype}`];
      if (r.aggtransspace) parts.push(`SSPACE = ${r.aggtransspace}`);
      if (r.finalfunc) parts.push(`FINALFUNC = ${r.finalfunc}`);
      if (r.aggfinalextra) parts.push('FINALFUNC_EXTRA');
      if (r.finalfunc) parts.push(`FINALFUNC_MODIFY = ${modify(r.aggfinalmodify)}`);
      if (r.combinefunc) parts.push(`COMBINEFUNC = ${r.combinefunc}`);
      if (r.serialfunc) parts.push(`SERIALFUNC = ${r.serialfunc}`, `DESERIALFUNC = ${r.deserialfunc}`);
      if (r.agginitval !== null) parts.push(`INITCOND = ${quoteLiteral(r.agginitval)}`);
      if (r.msfunc) parts.push(`MSFUNC = ${r.msfunc}`, `MINVFUNC = ${r.minvfunc}`, `MSTYPE = ${r.mstype}`);
      if (r.aggmtransspace) parts.push(`MSSPACE = ${r.aggmtransspace}`);
      if (r.mfinalfunc) parts.push(`MFINALFUNC = ${r.mfinalfunc}`, `MFINALFUNC_MODIFY = ${modify(r.aggmfinalmodify)}`);
      if (r.aggmfinalextra) parts.push('MFINALFUNC_EXTRA');
      if (r.aggminitval !== null) parts.push(`MINITCOND = ${quoteLiteral(r.aggminitval)}`);
      if (r.sortop) parts.push(`SORTOP = ${r.sortop}`);
      if (r.aggkind === 'h') parts.push('HYPOTHETICAL');
      if (r.proparallel !== 'u') parts.push(`PARALLEL = ${r.proparallel === 's' ? 'SAFE' : 'RESTRICTED'}`);
      sql = `CREATE AGGREGATE ${qn}(${r.args === '' ? '*' : r.args}) (\n    ${parts.join(',\n    ')}\n);`;
    } else {
      sql = `${String(r.def).trimEnd()};`;
    }
    const o = add(key, 'pre-data', kind, r.nspname, `${r.proname}(${r.idargs})`, sql);
    owner(o, `${what} ${sig}`, r.nspname, `${r.proname}(${r.idargs})`, r.owner);
    acl(o, `${kind === 'procedure' ? 'PROCEDURE' : 'FUNCTION'} ${qualify(r.nspname, r.proname)}(${r.idargs})`, r.nspname, `${r.proname}(${r.idargs})`, r.owner, r.acl, r.acldef);
    commentOn('pg_proc', r.oid, 0, key, `${what} ${sig}`, r.nspname, `${r.proname}(${r.idargs})`);
  }

  // ---- relations ------------------------------------------------------------------------------
  const relRows = (await q(`SELECT c.oid, c.relname, n.nspname, c.relkind, c.relpersistence, c.relispartition,
      pg_get_expr(c.relpartbound, c.oid) AS bound, CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partkey,
      CASE WHEN c.reloftype <> 0 THEN format_type(c.reloftype, NULL) END AS oftype, c.reloptions, c.relrowsecurity, c.relforcerowsecurity, c.relreplident, c.relispopulated, c.reltype,
      (SELECT typarray FROM pg_type WHERE oid = c.reltype) AS reltypearray,
      CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END AS viewdef,
      CASE WHEN c.relkind IN ('r', 'p', 'm') THEN pg_table_size(c.oid) ELSE 0 END AS size,
      pg_get_userbyid(c.relowner) AS owner, ${aclColumns('c.relacl', `(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char"`, 'c.relowner')}
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE ${NS_FILTER('n')} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    ORDER BY n.nspname, c.relname`)).filter((r) => !isMember('pg_class', r.oid));
  const rels = new Map<number, Record<string, any>>(relRows.map((r) => [Number(r.oid), r]));
  const relName = (oid: number) => {
    const r = rels.get(oid);
    return r ? qualify(r.nspname, r.relname) : undefined;
  };
  const relOids = relRows.filter((r) => r.relkind !== 'S').map((r) => Number(r.oid));

  const columns = new Map<number, Record<string, any>[]>();
  for (const r of await q(`SELECT a.attrelid, a.attnum, a.attname, a.atttypid::int AS typid, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
      a.attislocal, a.attgenerated, a.attidentity, d.oid AS defoid, pg_get_expr(d.adbin, d.adrelid) AS defexpr,
      CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN ${COLL_NAME('a.attcollation')} END AS collation,
      a.attstorage, t.typstorage, a.attcompression, a.attstattarget, a.attoptions,
      ${aclColumns('a.attacl', null, '0')}
    FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum`, [relOids])) {
    const list = columns.get(Number(r.attrelid)) ?? [];
    list.push(r);
    columns.set(Number(r.attrelid), list);
  }
  const parents = new Map<number, number[]>();
  for (const r of await q(`SELECT inhrelid, inhparent FROM pg_inherits WHERE inhrelid = ANY($1) ORDER BY inhrelid, inhseqno`, [relOids])) {
    const list = parents.get(Number(r.inhrelid)) ?? [];
    list.push(Number(r.inhparent));
    parents.set(Number(r.inhrelid), list);
  }
  const constraints = await q(`SELECT c.oid, c.conname, c.conrelid, c.contype, pg_get_constraintdef(c.oid) AS def, c.conislocal,
      c.convalidated, c.conparentid, c.conindid, c.confrelid
    FROM pg_constraint c WHERE c.conrelid = ANY($1) ORDER BY c.conrelid, c.conname`, [relOids]);
  const checksOf = new Map<number, Record<string, any>[]>();
  for (const c of constraints) {
    if (c.contype !== 'c') continue;
    const list = checksOf.get(Number(c.conrelid)) ?? [];
    list.push(c);
    checksOf.set(Number(c.conrelid), list);
  }
  // Sequences tied to columns: identity ('i') and serial / OWNED BY ('a').
  const seqLinks = await q(`SELECT d.objid AS seq, d.refobjid AS rel, a.attname, d.deptype FROM pg_depend d
      JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
      JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0`);
  const identitySeq = new Map<string, number>(); // "reloid:attname" -> sequence oid
  for (const l of seqLinks) if (l.deptype === 'i') identitySeq.set(`${l.rel}:${l.attname}`, Number(l.seq));
  const seqOpts = new Map<number, Record<string, any>>();
  for (const r of await q(`SELECT seqrelid, format_type(seqtypid, NULL) AS type, seqstart, seqincrement, seqmax, seqmin, seqcache, seqcycle
      FROM pg_sequence`)) seqOpts.set(Number(r.seqrelid), r);
  const seqOptions = (s: Record<string, any>, indent: string) =>
    [`START WITH ${s.seqstart}`, `INCREMENT BY ${s.seqincrement}`, `MINVALUE ${s.seqmin}`, `MAXVALUE ${s.seqmax}`, `CACHE ${s.seqcache}`, s.seqcycle ? 'CYCLE' : 'NO CYCLE']
      .map((x) => indent + x).join('\n');

  const tables: TableInfo[] = [];
  const matviews: MatviewInfo[] = [];
  const sequences: SequenceValue[] = [];
  const relKey = (oid: number) => `pg_class:${oid}`;

  for (const r of relRows) {
    const oid = Number(r.oid);
    const key = relKey(oid);
    const qn = qualify(r.nspname, r.relname);
    const cols = columns.get(oid) ?? [];
    if (r.reltype && Number(r.reltype) !== 0) {
      alias.set(`pg_type:${r.reltype}`, key);
      if (r.reltypearray) alias.set(`pg_type:${r.reltypearray}`, key);
    }
    if (r.relkind === 'S') {
      const seq = seqOpts.get(oid)!;
      const v = (await q(`SELECT last_value::text AS last_value, is_called FROM ${qn}`))[0]!;
      sequences.push({ schema: r.nspname, name: r.relname, lastValue: v.last_value, isCalled: v.is_called });
      if (seqLinks.some((l) => Number(l.seq) === oid && l.deptype === 'i')) {
        const link = seqLinks.find((l) => Number(l.seq) === oid)!;
        alias.set(key, relKey(Number(link.rel))); // created by the table's identity column
        commentOn('pg_class', oid, 0, relKey(Number(link.rel)), `SEQUENCE ${qn}`, r.nspname, r.relname);
        continue;
      }
      const o = belongsTo(add(key, 'pre-data', 'sequence', r.nspname, r.relname, `CREATE SEQUENCE ${qn}\n    AS ${seq.type}\n${seqOptions(seq, '    ')};`), r.nspname, r.relname);
      owner(o, `SEQUENCE ${qn}`, r.nspname, r.relname, r.owner);
      acl(o, `SEQUENCE ${qn}`, r.nspname, r.relname, r.owner, r.acl, r.acldef);
      commentOn('pg_class', oid, 0, key, `SEQUENCE ${qn}`, r.nspname, r.relname);
      continue;
    }
    if (r.relkind === 'f') {
      warn(`foreign table ${qn} is not supported and was skipped`);
      continue;
    }
    const what = r.relkind === 'v' ? 'VIEW' : r.relkind === 'm' ? 'MATERIALIZED VIEW' : 'TABLE';
    const kind = r.relkind === 'v' ? 'view' : r.relkind === 'm' ? 'matview' : 'table';
    const reloptions = optionList(r.reloptions);
    let sql: string;
    if (r.relkind === 'v' || r.relkind === 'm') {
      const def = String(r.viewdef).trim().replace(/;$/, '');
      sql = `CREATE ${what} ${qn}${reloptions ? ` WITH (${reloptions})` : ''} AS\n${def}${r.relkind === 'm' ? '\n  WITH NO DATA' : ''};`;
    } else {
      // Partitions list every column and inherited CHECK (ATTACH PARTITION requires them and
      // then marks them inherited); inheritance children list only their local ones.
      // Typed tables take their columns from the type; only NOT NULL and defaults differ.
      const shown = r.oftype ? [] : cols.filter((c) => r.relispartition || c.attislocal);
      const lines = shown.map((c) => {
        let s = `    ${quoteIdent(c.attname)} ${c.type}`;
        if (c.collation) s += ` COLLATE ${c.collation}`;
        if (c.attgenerated === 's') s += ` GENERATED ALWAYS AS (${c.defexpr}) STORED`;
        if (c.attnotnull) s += ' NOT NULL';
        return s;
      });
      for (const c of checksOf.get(oid) ?? []) {
        if (c.convalidated && (c.conislocal || r.relispartition)) {
          lines.push(`    CONSTRAINT ${quoteIdent(c.conname)} ${c.def}`);
          alias.set(`pg_constraint:${c.oid}`, key);
        }
      }
      let s = `CREATE ${r.relpersistence === 'u' ? 'UNLOGGED ' : ''}TABLE ${qn}${r.oftype ? ` OF ${r.oftype}` : ''}`;
      if (!r.oftype || lines.length) s += ` (\n${lines.join(',\n')}\n)`;
      const inh = r.relispartition ? [] : (parents.get(oid) ?? []);
      if (inh.length) s += `\nINHERITS (${inh.map((p) => relName(p) ?? `pg_class ${p}`).join(', ')})`;
      if (r.partkey) s += `\nPARTITION BY ${r.partkey}`;
      if (reloptions) s += `\nWITH (${reloptions})`;
      s += ';';
      const extra: string[] = [];
      for (const c of cols) {
        const col = `ALTER TABLE ONLY ${qn} ALTER COLUMN ${quoteIdent(c.attname)}`;
        if (!shown.includes(c) && c.attnotnull) extra.push(`${col} SET NOT NULL;`);
        if (c.attidentity === 'a' || c.attidentity === 'd') {
          const seqOid = identitySeq.get(`${oid}:${c.attname}`);
          const so = seqOid === undefined ? undefined : seqOpts.get(seqOid);
          const sr = seqOid === undefined ? undefined : rels.get(seqOid);
          const opt = so && sr ? ` (\n    SEQUENCE NAME ${qualify(sr.nspname, sr.relname)}\n${seqOptions(so, '    ')}\n)` : '';
          extra.push(`${col} ADD GENERATED ${c.attidentity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY${opt};`);
        }
        if (c.attstorage !== c.typstorage) {
          const st = ({ p: 'PLAIN', e: 'EXTERNAL', m: 'MAIN', x: 'EXTENDED' } as Record<string, string>)[c.attstorage];
          if (st) extra.push(`${col} SET STORAGE ${st};`);
        }
        if (c.attcompression === 'p' || c.attcompression === 'l') extra.push(`${col} SET COMPRESSION ${c.attcompression === 'p' ? 'pglz' : 'lz4'};`);
        if (c.attstattarget !== null && Number(c.attstattarget) >= 0) extra.push(`${col} SET STATISTICS ${c.attstattarget};`);
        if (c.attoptions && c.attoptions.length) extra.push(`${col} SET (${optionList(c.attoptions)});`);
      }
      sql = [s, ...extra].join('\n');
    }
    const o = belongsTo(add(key, 'pre-data', kind, r.nspname, r.relname, sql), r.nspname, r.relname);
    if (r.relkind === 'v') {
      // pg_dump's trick for views that need a constraint (GROUP BY a primary key): a stand-in
      // with the same columns now, CREATE OR REPLACE with the real query after the constraints.
      const fake = cols.map((c) => `    NULL::${c.type}${c.collation ? ` COLLATE ${c.collation}` : ''} AS ${quoteIdent(c.attname)}`);
      o.placeholder = `CREATE VIEW ${qn} AS\n SELECT\n${fake.join(',\n')};`;
    }
    if (r.relkind === 'm') {
      o.matview = true;
      matviews.push({ schema: r.nspname, name: r.relname, populated: r.relispopulated });
    }
    owner(o, `${what} ${qn}`, r.nspname, r.relname, r.owner);
    acl(o, `TABLE ${qn}`, r.nspname, r.relname, r.owner, r.acl, r.acldef);
    commentOn('pg_class', oid, 0, key, `${what} ${qn}`, r.nspname, r.relname);
    for (const c of cols) {
      commentOn('pg_class', oid, Number(c.attnum), key, `COLUMN ${qn}.${quoteIdent(c.attname)}`, r.nspname, `${r.relname}.${c.attname}`);
      if (c.acl) acl(o, `TABLE ${qn}`, r.nspname, r.relname, r.owner, c.acl, [], c.attname);
      if (c.defoid === null) continue;
      if (c.attgenerated === 's') {
        alias.set(`pg_attrdef:${c.defoid}`, key);
        continue;
      }
      const dk = `pg_attrdef:${c.defoid}`;
      const alter = r.relkind === 'v' ? `ALTER VIEW ${qn}` : `ALTER TABLE ONLY ${qn}`;
      const d = belongsTo(add(dk, 'pre-data', 'default', r.nspname, `${r.relname}.${c.attname}`, `${alter} ALTER COLUMN ${quoteIdent(c.attname)} SET DEFAULT ${c.defexpr};`), r.nspname, r.relname);
      d.deps.add(key);
    }
    if (r.relispartition) {
      const parent = (parents.get(oid) ?? [])[0];
      if (parent !== undefined && relName(parent)) {
        const a = belongsTo(add(`attach:${oid}`, 'pre-data', 'table-attach', r.nspname, r.relname, `ALTER TABLE ONLY ${relName(parent)} ATTACH PARTITION ${qn} ${r.bound};`), r.nspname, r.relname);
        a.deps.add(key);
        a.deps.add(relKey(parent));
      }
    }
    if (r.relkind === 'r' || r.relkind === 'p' || r.relkind === 'm') {
      const pk = constraints.find((c) => Number(c.conrelid) === oid && c.contype === 'p');
      const info: TableInfo = {
        schema: r.nspname, name: r.relname, oid, relkind: r.relkind as RelKind,
        columns: cols.filter((c) => c.attgenerated !== 's').map((c) => c.attname as string),
        columnTypes: cols.filter((c) => c.attgenerated !== 's').map((c) => Number(c.typid)),
        hasData: r.relkind === 'r', estimatedBytes: Number(r.size),
      };
      if (pk) {
        const m = /^PRIMARY KEY \((.*)\)/.exec(pk.def);
        if (m) info.primaryKey = m[1]!.split(', ').map((s) => s.replace(/^"(.*)"$/, '$1').replace(/""/g, '"'));
      }
      if (r.relispartition) {
        const parent = (parents.get(oid) ?? [])[0];
        if (parent !== undefined && relName(parent)) info.partitionOf = relName(parent)!;
      }
      if (r.relpersistence === 'u') info.unlogged = true;
      tables.push(info);
    }
    if (r.relrowsecurity || r.relforcerowsecurity) {
      const stmts = [];
      if (r.relrowsecurity) stmts.push(`ALTER TABLE ${qn} ENABLE ROW LEVEL SECURITY;`);
      if (r.relforcerowsecurity) stmts.push(`ALTER TABLE ONLY ${qn} FORCE ROW LEVEL SECURITY;`);
      belongsTo(add(`rls:${oid}`, 'post-data', 'rls', r.nspname, r.relname, stmts.join('\n')), r.nspname, r.relname);
    }
    if (r.relkind === 'm' && r.relispopulated) {
      belongsTo(add(`refresh:${oid}`, 'post-data', 'matview-refresh', r.nspname, r.relname, `REFRESH MATERIALIZED VIEW ${qn};`), r.nspname, r.relname);
    }
  }
  // Serial-style sequences: OWNED BY once both exist.
  for (const l of seqLinks) {
    if (l.deptype !== 'a') continue;
    const s = rels.get(Number(l.seq));
    const tr = rels.get(Number(l.rel));
    const t = relName(Number(l.rel));
    if (!s || !tr || !t || !objs.has(relKey(Number(l.seq)))) continue;
    // Belongs to the owning table: without it the sequence stays, unowned.
    const o = belongsTo(add(`owned:${l.seq}`, 'pre-data', 'sequence-owned-by', s.nspname, s.relname,
      `ALTER SEQUENCE ${qualify(s.nspname, s.relname)} OWNED BY ${t}.${quoteIdent(l.attname)};`), tr.nspname, tr.relname);
    o.deps.add(relKey(Number(l.seq)));
    o.deps.add(relKey(Number(l.rel)));
  }
  // View rules stand for their views in pg_depend.
  for (const r of await q(`SELECT oid, ev_class FROM pg_rewrite WHERE rulename = '_RETURN' AND ev_class = ANY($1)`, [relOids])) {
    alias.set(`pg_rewrite:${r.oid}`, relKey(Number(r.ev_class)));
  }

  // ---- post-data: constraints, indexes, triggers, rules, policies, statistics ----------------
  for (const c of constraints) {
    const rel = rels.get(Number(c.conrelid));
    if (!rel || !objs.has(relKey(Number(c.conrelid)))) continue;
    const qn = qualify(rel.nspname, rel.relname);
    const ck = `pg_constraint:${c.oid}`;
    const sub = `${rel.relname}.${c.conname}`;
    let o: Obj | undefined;
    if (c.contype === 'c') {
      if (c.convalidated || !c.conislocal) {
        if (!alias.has(ck)) alias.set(ck, relKey(Number(c.conrelid)));
        commentOn('pg_constraint', c.oid, 0, alias.get(ck)!, `CONSTRAINT ${quoteIdent(c.conname)} ON ${qn}`, rel.nspname, sub);
        continue;
      }
      o = add(ck, 'post-data', 'check-constraint', rel.nspname, sub, `ALTER TABLE ${qn}\n    ADD CONSTRAINT ${quoteIdent(c.conname)} ${c.def};`);
    } else if (c.contype === 'p' || c.contype === 'u' || c.contype === 'x') {
      o = add(ck, 'post-data', 'constraint', rel.nspname, sub, `ALTER TABLE ONLY ${qn}\n    ADD CONSTRAINT ${quoteIdent(c.conname)} ${c.def};`);
      alias.set(`pg_class:${c.conindid}`, ck);
    } else if (c.contype === 'f') {
      if (Number(c.conparentid) !== 0) continue; // clone of a partitioned table's key
      o = add(ck, 'post-data', 'fk', rel.nspname, sub, `ALTER TABLE ${rel.relkind === 'p' ? '' : 'ONLY '}${qn}\n    ADD CONSTRAINT ${quoteIdent(c.conname)} ${c.def};`);
      const ref = rels.get(Number(c.confrelid));
      if (ref) o.items[0]!.references = { schema: ref.nspname, name: ref.relname };
    } else {
      continue; // constraint triggers come with the triggers
    }
    belongsTo(o, rel.nspname, rel.relname);
    o.deps.add(relKey(Number(c.conrelid)));
    commentOn('pg_constraint', c.oid, 0, ck, `CONSTRAINT ${quoteIdent(c.conname)} ON ${qn}`, rel.nspname, sub);
  }
  const indexRows = await q(`SELECT i.indexrelid, ic.relname, n.nspname, i.indrelid, pg_get_indexdef(i.indexrelid) AS def,
      i.indisclustered, i.indisreplident, ih.inhparent,
      EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')) AS isconstraint
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
      LEFT JOIN pg_inherits ih ON ih.inhrelid = i.indexrelid
    WHERE i.indrelid = ANY($1) ORDER BY n.nspname, ic.relname`, [relOids]);
  for (const r of indexRows) {
    const rel = rels.get(Number(r.indrelid));
    if (!rel || !objs.has(relKey(Number(r.indrelid)))) continue;
    const iq = qualify(r.nspname, r.relname);
    const ik = relKey(Number(r.indexrelid));
    if (!r.isconstraint) {
      const o = belongsTo(add(ik, 'post-data', 'index', r.nspname, r.relname, `${r.def};`), rel.nspname, rel.relname);
      o.deps.add(relKey(Number(r.indrelid)));
    }
    const owning = alias.get(ik) ?? ik;
    commentOn('pg_class', r.indexrelid, 0, owning, `INDEX ${iq}`, r.nspname, r.relname);
    if (r.inhparent !== null) {
      const p = indexRows.find((x) => Number(x.indexrelid) === Number(r.inhparent));
      if (p) {
        const a = belongsTo(add(`attach:${r.indexrelid}`, 'post-data', 'index-attach', r.nspname, r.relname, `ALTER INDEX ${qualify(p.nspname, p.relname)} ATTACH PARTITION ${iq};`), rel.nspname, rel.relname);
        a.deps.add(owning);
        a.deps.add(alias.get(relKey(Number(p.indexrelid))) ?? relKey(Number(p.indexrelid)));
      }
    }
    const relq = qualify(rel.nspname, rel.relname);
    if (r.indisclustered) belongsTo(add(`cluster:${r.indexrelid}`, 'post-data', 'cluster', rel.nspname, rel.relname, `ALTER TABLE ${relq} CLUSTER ON ${quoteIdent(r.relname)};`), rel.nspname, rel.relname).deps.add(owning);
    if (r.indisreplident) belongsTo(add(`replident:${r.indrelid}`, 'post-data', 'replica-identity', rel.nspname, rel.relname, `ALTER TABLE ONLY ${relq} REPLICA IDENTITY USING INDEX ${quoteIdent(r.relname)};`), rel.nspname, rel.relname).deps.add(owning);
  }
  for (const r of relRows) {
    if ((r.relkind === 'r' || r.relkind === 'p') && (r.relreplident === 'f' || r.relreplident === 'n') && objs.has(relKey(Number(r.oid)))) {
      belongsTo(add(`replident:${r.oid}`, 'post-data', 'replica-identity', r.nspname, r.relname,
        `ALTER TABLE ONLY ${qualify(r.nspname, r.relname)} REPLICA IDENTITY ${r.relreplident === 'f' ? 'FULL' : 'NOTHING'};`), r.nspname, r.relname);
    }
  }
  for (const r of await q(`SELECT s.oid, s.stxname, n.nspname, s.stxrelid, pg_get_statisticsobjdef(s.oid) AS def, s.stxstattarget,
      pg_get_userbyid(s.stxowner) AS owner
    FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE s.stxrelid = ANY($1)`, [relOids])) {
    const key = `pg_statistic_ext:${r.oid}`;
    const qn = qualify(r.nspname, r.stxname);
    const stmts = [`${r.def};`];
    if (r.stxstattarget !== null && Number(r.stxstattarget) >= 0) stmts.push(`ALTER STATISTICS ${qn} SET STATISTICS ${r.stxstattarget};`);
    const o = add(key, 'post-data', 'statistics', r.nspname, r.stxname, stmts.join('\n'));
    const on = rels.get(Number(r.stxrelid));
    if (on) belongsTo(o, on.nspname, on.relname);
    owner(o, `STATISTICS ${qn}`, r.nspname, r.stxname, r.owner);
    commentOn('pg_statistic_ext', r.oid, 0, key, `STATISTICS ${qn}`, r.nspname, r.stxname);
  }
  for (const r of await q(`SELECT t.oid, t.tgname, t.tgrelid, pg_get_triggerdef(t.oid) AS def, t.tgenabled FROM pg_trigger t
      WHERE t.tgrelid = ANY($1) AND NOT t.tgisinternal AND t.tgparentid = 0 ORDER BY t.tgname`, [relOids])) {
    const rel = rels.get(Number(r.tgrelid))!;
    const qn = qualify(rel.nspname, rel.relname);
    const key = `pg_trigger:${r.oid}`;
    const stmts = [`${r.def};`];
    const state = ({ D: 'DISABLE', R: 'ENABLE REPLICA', A: 'ENABLE ALWAYS' } as Record<string, string>)[r.tgenabled];
    if (state) stmts.push(`ALTER TABLE ${qn} ${state} TRIGGER ${quoteIdent(r.tgname)};`);
    belongsTo(add(key, 'post-data', 'trigger', rel.nspname, `${rel.relname}.${r.tgname}`, stmts.join('\n')), rel.nspname, rel.relname).deps.add(relKey(Number(r.tgrelid)));
    commentOn('pg_trigger', r.oid, 0, key, `TRIGGER ${quoteIdent(r.tgname)} ON ${qn}`, rel.nspname, `${rel.relname}.${r.tgname}`);
  }
  for (const r of await q(`SELECT r.oid, r.rulename, r.ev_class, pg_get_ruledef(r.oid) AS def, r.ev_enabled FROM pg_rewrite r
      WHERE r.ev_class = ANY($1) AND r.rulename <> '_RETURN' ORDER BY r.rulename`, [relOids])) {
    const rel = rels.get(Number(r.ev_class))!;
    const qn = qualify(rel.nspname, rel.relname);
    const key = `pg_rewrite:${r.oid}`;
    const stmts = [String(r.def).trim().replace(/;?$/, ';')];
    const state = ({ D: 'DISABLE', R: 'ENABLE REPLICA', A: 'ENABLE ALWAYS' } as Record<string, string>)[r.ev_enabled];
    if (state) stmts.push(`ALTER TABLE ${qn} ${state} RULE ${quoteIdent(r.rulename)};`);
    belongsTo(add(key, 'post-data', 'rule', rel.nspname, `${rel.relname}.${r.rulename}`, stmts.join('\n')), rel.nspname, rel.relname).deps.add(relKey(Number(r.ev_class)));
    commentOn('pg_rewrite', r.oid, 0, key, `RULE ${quoteIdent(r.rulename)} ON ${qn}`, rel.nspname, `${rel.relname}.${r.rulename}`);
  }
  for (const r of await q(`SELECT p.oid, p.polname, p.polrelid, p.polcmd, p.polpermissive,
      ARRAY(SELECT CASE WHEN x = 0 THEN NULL ELSE pg_get_userbyid(x)::text END FROM unnest(p.polroles) AS x) AS roles,
      pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS withcheck
    FROM pg_policy p WHERE p.polrelid = ANY($1) ORDER BY p.polname`, [relOids])) {
    const rel = rels.get(Number(r.polrelid))!;
    const qn = qualify(rel.nspname, rel.relname);
    const key = `pg_policy:${r.oid}`;
    const cmd = ({ r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE', '*': 'ALL' } as Record<string, string>)[r.polcmd] ?? 'ALL';
    const polRoles = (r.roles as (string | null)[]);
    let s = `CREATE POLICY ${quoteIdent(r.polname)} ON ${qn}${r.polpermissive ? '' : ' AS RESTRICTIVE'} FOR ${cmd}`;
    s += ` TO ${polRoles.map((x) => (x === null ? 'PUBLIC' : quoteIdent(x))).join(', ')}`;
    if (r.qual !== null) s += ` USING (${r.qual})`;
    if (r.withcheck !== null) s += ` WITH CHECK (${r.withcheck})`;
    const named = polRoles.filter((x): x is string => x !== null);
    const o = belongsTo(add(key, 'post-data', 'policy', rel.nspname, `${rel.relname}.${r.polname}`, s + ';'), rel.nspname, rel.relname);
    if (named.length) {
      o.items[0]!.requires = named;
      for (const x of named) roles.add(x);
    }
    o.deps.add(relKey(Number(r.polrelid)));
    commentOn('pg_policy', r.oid, 0, key, `POLICY ${quoteIdent(r.polname)} ON ${qn}`, rel.nspname, `${rel.relname}.${r.polname}`);
  }
  for (const r of await q(`SELECT e.oid, e.evtname, e.evtevent, e.evttags, e.evtenabled, ${PROC_NAME('e.evtfoid')} AS func,
      pg_get_userbyid(e.evtowner) AS owner FROM pg_event_trigger e ORDER BY e.evtname`)) {
    if (isMember('pg_event_trigger', r.oid)) continue;
    const key = `pg_event_trigger:${r.oid}`;
    let s = `CREATE EVENT TRIGGER ${quoteIdent(r.evtname)} ON ${quoteIdent(r.evtevent)}`;
    const tags = r.evttags as string[] | null;
    if (tags && tags.length) s += `\n    WHEN TAG IN (${tags.map(quoteLiteral).join(', ')})`;
    s += `\n    EXECUTE FUNCTION ${r.func}();`;
    const state = ({ D: 'DISABLE', R: 'ENABLE REPLICA', A: 'ENABLE ALWAYS' } as Record<string, string>)[r.evtenabled];
    if (state) s += `\nALTER EVENT TRIGGER ${quoteIdent(r.evtname)} ${state};`;
    const o = add(key, 'post-data', 'event-trigger', undefined, r.evtname, s);
    owner(o, `EVENT TRIGGER ${quoteIdent(r.evtname)}`, undefined, r.evtname, r.owner);
    commentOn('pg_event_trigger', r.oid, 0, key, `EVENT TRIGGER ${quoteIdent(r.evtname)}`, undefined, r.evtname);
  }
  // Default privileges for future objects.
  const defObjType: Record<string, [string, string]> = { r: ['TABLES', 'r'], S: ['SEQUENCES', 's'], f: ['FUNCTIONS', 'f'], T: ['TYPES', 'T'], n: ['SCHEMAS', 'n'] };
  for (const r of await q(`SELECT d.oid, pg_get_userbyid(d.defaclrole) AS role, n.nspname, d.defaclobjtype, d.defaclrole,
      ${aclColumns('d.defaclacl', null, '0')},
      (SELECT coalesce(json_agg(json_build_array(CASE WHEN x.grantee = 0 THEN NULL ELSE pg_get_userbyid(x.grantee) END, x.privilege_type, x.is_grantable, pg_get_userbyid(x.grantor)) ORDER BY x.ord), '[]')
        FROM aclexplode(acldefault((CASE d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype END)::"char", d.defaclrole)) WITH ORDINALITY AS x(grantor, grantee, privilege_type, is_grantable, ord)) AS globaldef
    FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace`)) {
    const t = defObjType[r.defaclobjtype];
    if (!t) continue;
    const prefix = `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(r.role)}${r.nspname ? ` IN SCHEMA ${quoteIdent(r.nspname)}` : ''} `;
    const stmts = aclStatements(t[0], r.acl, r.nspname ? [] : r.globaldef).map((s) => prefix + s);
    if (stmts.length === 0) continue;
    const need = [...new Set([r.role as string, ...aclRoles(r.acl)])];
    for (const x of need) roles.add(x);
    const o = add(`pg_default_acl:${r.oid}`, 'post-data', 'default-acl', r.nspname ?? undefined, `${r.role}.${t[0]}`, stmts.join('\n'));
    o.items[0]!.requires = need;
    o.items[0]!.owner = r.role;
  }

  // ---- comments ---------------------------------------------------------------------------------
  for (const r of await q(`SELECT objoid, classoid::regclass::text AS cls, objsubid, description FROM pg_description
      WHERE objoid >= 16384 ORDER BY classoid, objoid, objsubid`)) {
    const c = comments.get(`${r.cls}:${r.objoid}:${r.objsubid}`);
    const o = c ? objs.get(c.obj) : undefined;
    if (!c || !o) continue;
    item(o, 'comment', c.schema, c.name, `COMMENT ON ${c.target} IS ${quoteLiteral(r.description)};`);
  }

  // ---- dependency order --------------------------------------------------------------------------
  const postponed = new Map<string, Set<string>>(); // pre-data object -> post-data objects it needs
  const uses = new Map<string, Set<string>>(); // every dependency between dumped objects, any section
  for (const r of await q(`SELECT classid::regclass::text AS cls, objid, refclassid::regclass::text AS refcls, refobjid
      FROM pg_depend WHERE deptype IN ('n', 'a') AND objid >= 16384`)) {
    const from = alias.get(`${r.cls}:${r.objid}`);
    const to = alias.get(`${r.refcls}:${r.refobjid}`);
    if (!from || !to || from === to) continue;
    const a = objs.get(from);
    const b = objs.get(to);
    if (!a || !b) continue;
    (uses.get(from) ?? uses.set(from, new Set()).get(from)!).add(to);
    if (a.section === b.section) a.deps.add(to);
    else if (a.section === 'pre-data') (postponed.get(from) ?? postponed.set(from, new Set()).get(from)!).add(to);
    if (a.matview && b.matview) objs.get(`refresh:${from.slice('pg_class:'.length)}`)?.deps.add(`refresh:${to.slice('pg_class:'.length)}`);
  }
  for (const [key, needs] of postponed) {
    const o = objs.get(key)!;
    const create = o.items[0]!;
    if (o.placeholder === undefined) {
      warn(`${create.kind} ${o.sortName.replace('\u0000', '.')} depends on a post-data object and may fail to restore`);
      continue;
    }
    const def = add(`viewdef:${key}`, 'post-data', 'view-definition', create.schema, create.name, create.sql.replace(/^CREATE VIEW/, 'CREATE OR REPLACE VIEW'));
    if (o.table) belongsTo(def, o.table.schema, o.table.name);
    for (const n of needs) def.deps.add(n);
    create.sql = o.placeholder;
  }
  relationNeeds(objs, uses);
  const ordered = (section: DdlSection) => sortByDependencies([...objs.values()].filter((o) => o.section === section),
    (o) => warn(`dependency cycle at ${o.items[0]?.kind ?? 'object'} ${o.sortName.replace('\u0000', '.')}; restored in kind order`));

  const largeObjects = (await q(`SELECT oid, pg_get_userbyid(lomowner) AS owner FROM pg_largeobject_metadata ORDER BY oid`))
    .map((r) => ({ oid: Number(r.oid), owner: r.owner as string }));

  let citus: CitusInfo | undefined;
  if (extensions.some((e) => e.name === 'citus')) citus = await readCitus(q);
  // Distribution goes after every table exists and before data and foreign keys, so rows are
  // routed to shards and keys are created on distributed tables.
  const items: DdlItem[] = [
    ...ordered('pre-data').flatMap((o) => o.items),
    ...(citus ? citusDdl(citus) : []),
    ...ordered('post-data').flatMap((o) => o.items),
  ];

  const doc: SchemaDocument = {
    formatVersion: 1,
    server: { version: srv.version, versionNum: Number(srv.num), encoding: srv.encoding, collate: srv.datcollate, ctype: srv.datctype, extensions },
    database: { name: srv.datname, ...(srv.owner ? { owner: srv.owner } : {}), ...(srv.comment !== null ? { comment: srv.comment } : {}) },
    items,
    tables,
    sequences,
    matviews,
    largeObjects,
    ...(citus ? { citus } : {}),
    roles: [...roles].sort(),
  };
  return doc;
}

/**
 * Sets DdlItem.needs: the relations besides its own that each object uses, directly or through
 * objects that belong to no relation (a function whose SQL body reads a table, a type built on
 * a view's row type), so that a subset restore can leave out what would fail without them.
 */
function relationNeeds(objs: Map<string, Obj>, uses: Map<string, Set<string>>): void {
  type Rel = { schema: string; name: string };
  const keyOf = (r: Rel) => `${r.schema}\u0000${r.name}`;
  const memo = new Map<string, Map<string, Rel>>();
  const visiting = new Set<string>();
  const needsOf = (key: string): Map<string, Rel> => {
    const known = memo.get(key);
    if (known) return known;
    const out = new Map<string, Rel>();
    const o = objs.get(key);
    if (!o || visiting.has(key)) return out; // a cycle: its other members add the rest
    visiting.add(key);
    const own = o.table ? keyOf(o.table) : undefined;
    // A sequence's only tie to a table is its OWNED BY column: it exists without the table.
    const sequence = o.items[0]?.kind === 'sequence';
    for (const d of new Set([...o.deps, ...(uses.get(key) ?? [])])) {
      const dep = objs.get(d);
      if (!dep) continue;
      if (dep.table) {
        if (sequence) continue;
        if (keyOf(dep.table) !== own) out.set(keyOf(dep.table), dep.table);
      } else {
        for (const [k, r] of needsOf(d)) if (k !== own) out.set(k, r);
      }
    }
    visiting.delete(key);
    memo.set(key, out);
    return out;
  };
  for (const [key, o] of objs) {
    const needs = [...needsOf(key).values()].sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
    if (needs.length) for (const i of o.items) i.needs = needs;
  }
}

/**
 * Takes ACCESS SHARE locks on every user table (views, matviews and sequences cannot be locked), as pg_dump does: several
 * pg_get_*def functions read the current catalogs rather than the transaction's snapshot, so
 * concurrent DDL must wait until the schema has been read. Call it first in the backup
 * transaction, before readSchema. `lockTimeoutMs` makes a blocked lock fail instead of hang.
 */
export async function lockRelations(client: pg.ClientBase, opts: { lockTimeoutMs?: number } = {}): Promise<number> {
  if (opts.lockTimeoutMs !== undefined) await client.query(`SELECT pg_catalog.set_config('lock_timeout', $1, true)`, [`${Math.max(1, Math.floor(opts.lockTimeoutMs))}ms`]);
  const names = (await client.query(`SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS name
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'f') AND ${NS_FILTER('n')}
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY c.oid`)).rows.map((r) => r.name as string);
  for (let i = 0; i < names.length; i += 500) {
    await client.query(`LOCK TABLE ${names.slice(i, i + 500).join(', ')} IN ACCESS SHARE MODE`);
  }
  if (opts.lockTimeoutMs !== undefined) await client.query(`SELECT pg_catalog.set_config('lock_timeout', '0', true)`);
  return names.length;
}
