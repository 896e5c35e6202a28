// Restore side of the schema: runs DDL items against a target in document order, skipping
// owner/grant items whose roles the target lacks, and turns a server error into one line that
// names the object. Also renders the document as a plain SQL script for `export --format sql`.
import type pg from 'pg';
import { CosmosBackupError } from '../../../shared/errors.ts';
import type { DdlItem, DdlSection, SchemaDocument, TableInfo } from './schema-types.ts';
import { qualify, quoteIdent, quoteLiteral } from './schema-util.ts';

export interface ApplyOptions {
  /** only items of this section (default: all, in document order) */
  section?: DdlSection;
  /** skip ALTER ... OWNER TO items */
  noOwner?: boolean;
  /** skip GRANT/REVOKE and default-privilege items */
  noPrivileges?: boolean;
  /** roles present on the target; read from pg_roles when absent */
  availableRoles?: Iterable<string>;
  /** whether Citus items run; detected from pg_extension when absent */
  citus?: boolean;
  onWarning?: (message: string) => void;
  /** called after each applied item (progress) */
  onItem?: (item: DdlItem) => void;
}

export interface ApplyResult {
  applied: number;
  skipped: number;
}

/**
 * Session settings every restore connection needs: empty search_path (all DDL is qualified),
 * no body validation for functions that reference objects created later.
 */
export const SESSION_SETUP_SQL = [
  `SET client_encoding = 'UTF8';`,
  `SET standard_conforming_strings = on;`,
  `SELECT pg_catalog.set_config('search_path', '', false);`,
  `SET check_function_bodies = false;`,
  `SET xmloption = content;`,
  `SET client_min_messages = warning;`,
].join('\n');

/** "table "s"."t"" style description of an item, for messages. */
export function describeItem(item: DdlItem): string {
  return `${item.kind} ${item.schema !== undefined ? `${quoteIdent(item.schema)}.` : ''}${quoteIdent(item.name)}`;
}

/** Which items apply under the options, and a warning for each skipped for a missing role. */
export function selectItems(items: DdlItem[], opts: { section?: DdlSection; noOwner?: boolean; noPrivileges?: boolean; citus?: boolean; availableRoles?: Set<string> }): { run: DdlItem[]; warnings: string[]; skipped: number } {
  const run: DdlItem[] = [];
  const warnings: string[] = [];
  let skipped = 0;
  let citusWarned = false;
  for (const item of items) {
    if (opts.section && item.section !== opts.section) continue;
    if (opts.noOwner && item.kind === 'owner') { skipped++; continue; }
    if (opts.noPrivileges && (item.kind === 'acl' || item.kind === 'default-acl')) { skipped++; continue; }
    if (item.kind === 'citus' && opts.citus === false) {
      if (!citusWarned) warnings.push('target has no citus extension: tables are restored as plain (not distributed) tables');
      citusWarned = true;
      skipped++;
      continue;
    }
    if (opts.availableRoles && item.requires) {
      const missing = item.requires.filter((r) => !opts.availableRoles!.has(r));
      if (missing.length) {
        warnings.push(`skipped ${item.kind} of ${describeItem({ ...item, kind: '' }).trim()}: role ${missing.map((r) => quoteIdent(r)).join(', ')} does not exist on the target`);
        skipped++;
        continue;
      }
    }
    run.push(item);
  }
  return { run, warnings, skipped };
}

export async function prepareSession(client: pg.ClientBase): Promise<void> {
  await client.query(SESSION_SETUP_SQL);
}

export async function applyItems(client: pg.ClientBase, items: DdlItem[], opts: ApplyOptions = {}): Promise<ApplyResult> {
  const warn = opts.onWarning ?? (() => {});
  await prepareSession(client);
  const availableRoles = new Set(opts.availableRoles ?? (await client.query(`SELECT rolname FROM pg_catalog.pg_roles`)).rows.map((r) => r.rolname as string));
  let citus = opts.citus;
  const wantsCitus = items.some((i) => i.kind === 'citus' || (i.kind === 'extension' && i.name === 'citus'));
  if (citus === undefined && wantsCitus) {
    citus = (await client.query(`SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'citus'`)).rowCount! > 0;
  }
  // Without Citus on the target, its extension item is dropped along with the distribution calls.
  const list = citus === false ? items.filter((i) => !(i.kind === 'extension' && i.name === 'citus')) : items;
  const { run, warnings, skipped } = selectItems(list, { ...opts, citus, availableRoles });
  for (const w of warnings) warn(w);
  for (const item of run) {
    try {
      await client.query(item.sql);
    } catch (err) {
      const e = err as { message?: string; code?: string; detail?: string };
      throw new CosmosBackupError('DATABASE_ERROR', `restore failed at ${describeItem(item)}: ${e.message ?? String(err)}`, {
        cause: err,
        details: { kind: item.kind, schema: item.schema, name: item.name, sqlstate: e.code, detail: e.detail },
      });
    }
    opts.onItem?.(item);
  }
  return { applied: run.length, skipped: skipped + (items.length - list.length) };
}

/** Sets every sequence to its recorded value. */
export function sequenceValuesSql(doc: SchemaDocument): string {
  return doc.sequences.map((s) => `SELECT pg_catalog.setval(${quoteLiteral(qualify(s.schema, s.name))}, ${s.lastValue}, ${s.isCalled});`).join('\n');
}

/** Creates the recorded large objects (empty) with their owners; their bytes are data. */
export function largeObjectsSql(doc: SchemaDocument, opts: { noOwner?: boolean } = {}): string {
  return doc.largeObjects.map((lo) => {
    let s = `SELECT pg_catalog.lo_create('${lo.oid}');`;
    if (!opts.noOwner && lo.owner) s += `\nALTER LARGE OBJECT ${lo.oid} OWNER TO ${quoteIdent(lo.owner)};`;
    return s;
  }).join('\n');
}

/** `COPY ... FROM stdin;` header for a table's data in a psql script (data lines and `\.` follow). */
export function copyFromStdinSql(t: TableInfo): string {
  return `COPY ${qualify(t.schema, t.name)} (${t.columns.map(quoteIdent).join(', ')}) FROM stdin;`;
}

export interface ScriptOptions {
  noOwner?: boolean;
  noPrivileges?: boolean;
  /** include Citus distribution calls (the script's reader must have Citus) */
  citus?: boolean;
}

/**
 * The schema parts of a psql-loadable script. `preData` holds session settings, pre-data DDL and
 * empty large objects; `postData` holds post-data DDL (incl. matview refreshes) and sequence
 * values. Table data (COPY ... FROM stdin blocks) goes between them.
 */
export function toSqlScript(doc: SchemaDocument, opts: ScriptOptions = {}): { preData: string; postData: string } {
  const { run } = selectItems(doc.items.filter((i) => opts.citus || !(i.kind === 'citus' || (i.kind === 'extension' && i.name === 'citus'))), { ...opts, citus: opts.citus ?? false });
  const render = (section: DdlSection) => run.filter((i) => i.section === section).map((i) => `-- ${describeItem(i)}\n${i.sql}\n`).join('\n');
  const los = largeObjectsSql(doc, opts);
  const preData = [
    `-- cosmos-backup export of database ${doc.database.name} (server ${doc.server.version.split(' ').slice(0, 2).join(' ')})`,
    SESSION_SETUP_SQL, '', render('pre-data'), los ? `${los}\n` : '',
  ].join('\n');
  const seq = sequenceValuesSql(doc);
  const postData = [render('post-data'), seq ? `${seq}\n` : ''].join('\n');
  return { preData, postData };
}

/** COPY-format text chunks of one table's rows (as `COPY ... TO STDOUT` produces them). */
export type TableDataSource = (table: TableInfo) => AsyncIterable<string | Buffer>;

/**
 * Writes a whole psql script: pre-data, each table's rows as a COPY block, post-data.
 * `write` must respect its own back-pressure (await a drain inside it if needed).
 */
export async function writeSqlScript(doc: SchemaDocument, write: (s: string | Buffer) => Promise<void> | void, data: TableDataSource,
  opts: ScriptOptions & { largeObjectData?: (oid: number) => AsyncIterable<Buffer> } = {}): Promise<void> {
  const { preData, postData } = toSqlScript(doc, opts);
  await write(preData);
  for (const t of doc.tables) {
    if (!t.hasData) continue;
    await write(`\n${copyFromStdinSql(t)}\n`);
    for await (const chunk of data(t)) await write(chunk);
    await write('\\.\n');
  }
  if (opts.largeObjectData) {
    for (const lo of doc.largeObjects) {
      let offset = 0;
      for await (const chunk of opts.largeObjectData(lo.oid)) {
        await write(`SELECT pg_catalog.lo_put('${lo.oid}', ${offset}, '\\x${chunk.toString('hex')}'::bytea);\n`);
        offset += chunk.length;
      }
    }
  }
  await write('\n' + postData);
}
