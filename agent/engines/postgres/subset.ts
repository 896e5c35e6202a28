// Subset restore: which parts of a schema document to replay when only some tables or schemas
// are wanted (friendlier `pg_restore -t/-n`). Pure: it reads the document's items and their
// `table` / `references` annotations and returns a smaller document; restore.ts loads the data
// of the tables it names.
import { CosmosBackupError } from '../../../shared/errors.ts';
import { citusDdl } from './citus.ts';
import type { DdlItem, SchemaDocument } from './schema-types.ts';
import { qualify } from './schema-util.ts';

export interface PgSubset {
  /** schema names: every table of each (not its views) */
  schemas?: string[];
  /** "schema.table" with raw (unquoted) names; views and materialized views too */
  tables?: string[];
}

export interface SubsetSelection {
  /** the document with only the items, tables, sequences and matviews to restore */
  doc: SchemaDocument;
  /** relationKey() of each table whose rows are restored */
  tables: Set<string>;
}

type Rel = { schema: string; name: string };

/** Set key of a relation (names may hold dots, so not "schema.name"). */
export function relationKey(schema: string, name: string): string {
  return JSON.stringify([schema, name]);
}

const relKey = (r: Rel) => relationKey(r.schema, r.name);
const RELATION_KINDS = new Set(['table', 'view', 'matview']);
/** Items that hang off another object and carry its name. */
const ATTACHED_KINDS = new Set(['owner', 'acl', 'comment']);

/**
 * What object an unannotated owner/acl/comment item without a schema is about: a schema, an
 * extension or an event trigger (the only unqualified objects that have them).
 */
function unqualifiedTarget(item: DdlItem): 'schema' | 'extension' | 'event-trigger' {
  if (/^(ALTER|COMMENT ON) EVENT TRIGGER /.test(item.sql)) return 'event-trigger';
  if (item.sql.startsWith('COMMENT ON EXTENSION ')) return 'extension';
  return 'schema';
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * Narrows `doc` to `subset`. Selected: the named tables/views/matviews and every table of the named
 * schemas, partitions of selected partitioned tables, and the parents (definition only) of
 * selected partitions and inheritance children. Kept: extensions, collations, types, domains,
 * routines and sequences (tables may need them), and the schemas that hold anything kept.
 * Dropped with a warning: foreign keys to tables left out, items that use a relation left out
 * (DdlItem.needs), views and matviews not named (counted), event triggers, large objects. A
 * chosen relation that needs one left out is refused. `point` names the restore point in messages.
 */
export function selectSubset(doc: SchemaDocument, subset: PgSubset, warn: (m: string) => void, point = 'this restore point'): SubsetSelection {
  const wantTables = subset.tables ?? [];
  const wantSchemas = subset.schemas ?? [];
  if (wantTables.length === 0 && wantSchemas.length === 0) {
    throw new CosmosBackupError('INVALID_ARGUMENT', 'a subset restore needs at least one table or schema');
  }
  if (doc.items.some((i) => (RELATION_KINDS.has(i.kind) || i.kind === 'sequence' || i.kind === 'index' || i.kind === 'constraint') && !i.table)) {
    throw new CosmosBackupError('UNSUPPORTED_FORMAT', `restore point ${point} predates subset restore: restore it whole, or back it up again`);
  }

  // What the restore point holds.
  const relations = new Map<string, Rel & { kind: string }>();
  for (const i of doc.items) if (RELATION_KINDS.has(i.kind) && i.table) relations.set(relKey(i.table), { ...i.table, kind: i.kind });
  const schemas = new Set<string>();
  for (const i of doc.items) {
    if (i.kind === 'schema') schemas.add(i.name);
    else if (i.schema !== undefined) schemas.add(i.schema);
    else if (ATTACHED_KINDS.has(i.kind) && !i.table && unqualifiedTarget(i) === 'schema') schemas.add(i.name);
  }

  // The names asked for, tables split at the first dot that names an existing relation.
  const missing: string[] = [];
  const selected = new Set<string>();
  for (const t of wantTables) {
    let found: string | undefined;
    for (let dot = t.indexOf('.'); dot > 0 && found === undefined; dot = t.indexOf('.', dot + 1)) {
      const k = relationKey(t.slice(0, dot), t.slice(dot + 1));
      if (relations.has(k)) found = k;
    }
    if (found === undefined) missing.push(`table ${t}`);
    else selected.add(found);
  }
  for (const s of wantSchemas) {
    if (!schemas.has(s)) { missing.push(`schema ${s}`); continue; }
    for (const [k, r] of relations) if (r.schema === s && r.kind === 'table') selected.add(k);
  }
  if (missing.length) {
    const tables = [...relations.values()].map((r) => `${r.schema}.${r.name}`).sort();
    const shown = tables.length > 8 ? `${tables.slice(0, 8).join(', ')} and ${tables.length - 8} more` : tables.join(', ') || 'none';
    throw new CosmosBackupError('NOT_FOUND', `restore point ${point} has no ${missing.join(', no ')} (its tables and views: ${shown}; list them all with \`export ${point} --format sql\`)`);
  }

  // Partitions of selected partitioned tables come along; parents of selected partitions and
  // inheritance children are needed for their definitions only.
  const tableByQualified = new Map(doc.tables.map((t) => [qualify(t.schema, t.name), t]));
  const tableByKey = new Map(doc.tables.map((t) => [relKey(t), t]));
  const createByKey = new Map(doc.items.filter((i) => i.kind === 'table' && i.table).map((i) => [relKey(i.table!), i]));
  const parentsOf = (k: string): string[] => {
    const info = tableByKey.get(k);
    const out: string[] = [];
    const parent = info?.partitionOf === undefined ? undefined : tableByQualified.get(info.partitionOf);
    if (parent) out.push(relKey(parent));
    // Inheritance parents appear only in the CREATE TABLE's INHERITS clause.
    const inherits = createByKey.get(k)?.sql.split('\n').find((l) => l.startsWith('INHERITS ('));
    if (inherits) {
      const list = inherits.replace(/;$/, '').slice('INHERITS ('.length, -1);
      for (const [q, t] of tableByQualified) {
        const at = list.indexOf(q);
        if (at >= 0 && (at === 0 || list.slice(at - 2, at) === ', ') && (at + q.length === list.length || list.startsWith(', ', at + q.length))) out.push(relKey(t));
      }
    }
    return out;
  };
  for (let grew = true; grew;) {
    grew = false;
    for (const t of doc.tables) {
      const parent = t.partitionOf === undefined ? undefined : tableByQualified.get(t.partitionOf);
      const k = relKey(t);
      if (parent && selected.has(relKey(parent)) && !selected.has(k)) { selected.add(k); grew = true; }
    }
  }
  const kept = new Set(selected);
  const pending = [...selected];
  for (let k = pending.pop(); k !== undefined; k = pending.pop()) {
    for (const p of parentsOf(k)) if (!kept.has(p)) { kept.add(p); pending.push(p); }
  }
  // Sequences are kept whole: defaults of the selected tables may use any of them.
  for (const i of doc.items) if (i.kind === 'sequence' && i.table) kept.add(relKey(i.table));

  // The items.
  // Citus calls are made again for the kept tables (colocation leads may be gone): 'citus'
  // marks where they go.
  const items: (DdlItem | 'citus')[] = [];
  const blocked: string[] = [];
  let views = 0;
  let eventTriggers = 0;
  for (const i of doc.items) {
    if (i.kind === 'citus') {
      if (items.at(-1) !== 'citus') items.push('citus');
      continue;
    }
    if (i.table && !kept.has(relKey(i.table))) {
      if (i.kind === 'view' || i.kind === 'matview') views++;
      continue;
    }
    if (i.kind === 'fk' && i.references && !kept.has(relKey(i.references))) {
      warn(`skipped foreign key ${i.schema}.${i.name}: it references ${i.references.schema}.${i.references.name}, which is not restored`);
      continue;
    }
    const lacking = (i.needs ?? []).filter((n) => !kept.has(relKey(n))).map((n) => `${n.schema}.${n.name}`);
    if (lacking.length) {
      // A chosen relation cannot be left out; anything else that would fail is, with a warning
      // (owners, grants and comments go with their object, unmentioned).
      if (RELATION_KINDS.has(i.kind)) blocked.push(`${i.kind} ${i.schema}.${i.name} needs ${lacking.join(', ')}`);
      else if (!ATTACHED_KINDS.has(i.kind)) warn(`skipped ${i.kind} ${i.schema !== undefined ? `${i.schema}.` : ''}${i.name}: it uses ${lacking.join(', ')}, which ${lacking.length === 1 ? 'is' : 'are'} not restored`);
      continue;
    }
    if (i.table) {
      items.push(i);
      continue;
    }
    if (i.kind === 'event-trigger') { eventTriggers++; continue; }
    if (i.kind === 'default-acl') {
      if (i.schema !== undefined && wantSchemas.includes(i.schema)) items.push(i);
      continue;
    }
    if (ATTACHED_KINDS.has(i.kind) && i.schema === undefined && unqualifiedTarget(i) === 'event-trigger') continue;
    items.push(i);
  }

  if (blocked.length) {
    throw new CosmosBackupError('INVALID_ARGUMENT', `${blocked.join('; ')}, not in the subset: add ${blocked.length === 1 && !blocked[0]!.includes(', ') ? 'it' : 'them'} to the tables to restore`);
  }

  // Schemas: the named ones and those holding anything kept (extensions count where installed).
  const keepSchemas = new Set(wantSchemas);
  const extSchema = new Map(doc.server.extensions.map((e) => [e.name, e.schema]));
  for (const i of items) {
    if (i === 'citus' || i.kind === 'schema') continue;
    if (i.schema !== undefined) keepSchemas.add(i.schema);
    if (i.kind === 'extension' && extSchema.has(i.name)) keepSchemas.add(extSchema.get(i.name)!);
  }
  const isSchemaItem = (i: DdlItem) => i.kind === 'schema' || (ATTACHED_KINDS.has(i.kind) && !i.table && i.schema === undefined && unqualifiedTarget(i) === 'schema');
  const keptTables = doc.tables.filter((t) => kept.has(relKey(t)));
  const citus = doc.citus ? { ...doc.citus, tables: doc.citus.tables.filter((t) => kept.has(relKey(t))) } : undefined;
  const finalItems = items.flatMap((i) => (i === 'citus' ? (citus ? citusDdl(citus) : []) : isSchemaItem(i) && !keepSchemas.has(i.name) ? [] : [i]));

  // Sequence values: standalone sequences, and identity sequences of kept tables (created by
  // the table's ADD GENERATED ... AS IDENTITY (SEQUENCE NAME ...)).
  const standalone = new Set(finalItems.filter((i) => i.kind === 'sequence' && i.table).map((i) => relKey(i.table!)));
  const identitySql = finalItems.filter((i) => i.kind === 'table').map((i) => i.sql).join('\n');
  const sequences = doc.sequences.filter((s) => standalone.has(relKey(s)) || identitySql.includes(`SEQUENCE NAME ${qualify(s.schema, s.name)}\n`));

  if (views) warn(`skipped ${plural(views, 'view/materialized view', 'views/materialized views')} outside the subset (name them with --table to restore them)`);
  if (eventTriggers) warn(`skipped ${plural(eventTriggers, 'event trigger', 'event triggers')}: a subset restore leaves them out`);
  if (doc.largeObjects.length) warn(`skipped ${plural(doc.largeObjects.length, 'large object', 'large objects')}: a subset restore leaves them out`);

  const out: SchemaDocument = {
    ...doc,
    items: finalItems,
    tables: keptTables,
    sequences,
    matviews: doc.matviews.filter((m) => kept.has(relKey(m))),
    largeObjects: [],
  };
  if (citus) out.citus = citus;
  const data = new Set([...selected].filter((k) => tableByKey.get(k)?.hasData));
  return { doc: out, tables: data };
}
