// Databases, collections, views and indexes: what a backup lists and a restore creates.
import { BSON, Int32, type Document } from 'bson';
import { Query } from 'mingo';
import { CommandError, badValue, notFound } from './errors.ts';
import { Collection, serialize, type CollectionKind } from './store.ts';
import { sameBson, checkDbName, collName, exact, notOnView, num, openCursor, plainField, type CommandContext, type Reply } from './command-context.ts';

// ---------------------------------------------------------------- metadata

export function listDatabases(ctx: CommandContext): Reply {
  const rows: Document[] = [];
  let total = 0;
  for (const db of ctx.server.store.databases.values()) {
    let size = 0;
    for (const c of db.collections.values()) size += c.bytes;
    total += size;
    rows.push(ctx.cmd.nameOnly ? { name: db.name } : { name: db.name, sizeOnDisk: size, empty: false });
  }
  const filter = plainField(ctx, 'filter');
  const out = filter ? new Query(filter).find(rows).all() : rows;
  return ctx.cmd.nameOnly ? { databases: out, ok: 1 } : { databases: out, totalSize: total, totalSizeMb: Math.floor(total / 1048576), ok: 1 };
}

function collectionInfo(c: Collection): Document {
  if (c.kind === 'view') return { name: c.name, type: 'view', options: c.options, info: { readOnly: true } };
  const out: Document = { name: c.name, type: c.kind, options: c.options, info: { readOnly: false, uuid: c.uuid } };
  if (c.kind === 'collection' && !c.options.clusteredIndex) out.idIndex = c.indexes[0];
  return out;
}

export function listCollections(ctx: CommandContext): Reply {
  const db = ctx.server.store.databases.get(ctx.db);
  const rows = db ? [...db.collections.values()].map(collectionInfo) : [];
  const filter = plainField(ctx, 'filter');
  let selected = rows;
  if (filter) {
    const q = new Query(filter);
    selected = rows.filter((r) => q.test(BSON.deserialize(BSON.serialize(r))));
  }
  const docs = selected.map((r) => serialize(ctx.cmd.nameOnly ? { name: r.name, type: r.type } : r));
  const batchSize = num((ctx.cmd.cursor as Document | undefined)?.batchSize);
  return openCursor(ctx, `${ctx.db}.$cmd.listCollections`, docs, batchSize ?? Infinity);
}

const COLLATION_DEFAULTS: Array<[string, unknown]> = [
  ['caseLevel', false], ['caseFirst', 'off'], ['strength', new Int32(3)], ['numericOrdering', false],
  ['alternate', 'non-ignorable'], ['maxVariable', 'punct'], ['normalization', false], ['backwards', false], ['version', '57.1'],
];

/** A collation as mongod reports it: every field filled in, or none for the simple locale. */
function normalizeCollation(c: unknown): Document | undefined {
  if (!c || typeof c !== 'object') return undefined;
  const given = c as Document;
  if (given.locale === 'simple') return undefined;
  const out: Document = { locale: given.locale };
  for (const [k, def] of COLLATION_DEFAULTS) out[k] = given[k] ?? def;
  return out;
}

const NOT_OPTIONS = new Set(['create', '$db', 'lsid', '$clusterTime', 'writeConcern', 'comment', '$readPreference', 'apiVersion', 'apiStrict', 'apiDeprecationErrors', 'txnNumber', 'autocommit', 'startTransaction']);

export function create(ctx: CommandContext): Reply {
  checkDbName(ctx.db);
  const name = collName(ctx);
  const store = ctx.server.store;
  if (store.collection(ctx.db, name)) throw new CommandError(48, 'NamespaceExists', `Collection ${ctx.db}.${name} already exists.`);
  const given = exact(ctx);
  const options: Document = {};
  for (const [k, v] of Object.entries(given)) if (!NOT_OPTIONS.has(k)) options[k] = v;
  let kind: CollectionKind = 'collection';
  if (options.viewOn !== undefined) {
    if (typeof options.viewOn !== 'string') throw badValue('viewOn must be a string');
    if (options.pipeline === undefined) options.pipeline = [];
    if (!Array.isArray(options.pipeline)) throw badValue('pipeline must be an array');
    kind = 'view';
  } else if (options.pipeline !== undefined) {
    throw badValue("'pipeline' requires 'viewOn' to also be specified");
  }
  if (options.timeseries !== undefined) {
    const ts = options.timeseries as Document;
    if (!ts || typeof ts.timeField !== 'string') throw new CommandError(40414, 'Location40414', "BSON field 'timeseries.timeField' is missing but a required field");
    kind = 'timeseries';
  }
  if (options.capped && !options.size) throw new CommandError(72, 'InvalidOptions', "the 'size' field is required when 'capped' is true");
  if (options.collation !== undefined) {
    const c = normalizeCollation(options.collation);
    if (c) options.collation = c;
    else delete options.collation;
  }
  const coll = new Collection(name, kind, options);
  store.database(ctx.db, true)!.collections.set(name, coll);
  return { ok: 1 };
}

export function drop(ctx: CommandContext): Reply {
  const name = collName(ctx);
  const gone = ctx.server.store.dropCollection(ctx.db, name);
  // MongoDB 7 answers ok for a collection that does not exist.
  return gone ? { nIndexesWas: gone.indexes.length, ns: `${ctx.db}.${name}`, ok: 1 } : { ok: 1 };
}

export function dropDatabase(ctx: CommandContext): Reply {
  ctx.server.store.databases.delete(ctx.db);
  return { dropped: ctx.db, ok: 1 };
}

export function dbStats(ctx: CommandContext): Reply {
  const db = ctx.server.store.databases.get(ctx.db);
  const colls = db ? [...db.collections.values()] : [];
  const objects = colls.reduce((n, c) => n + c.docs.length, 0);
  const dataSize = colls.reduce((n, c) => n + c.bytes, 0);
  return {
    db: ctx.db, collections: colls.filter((c) => c.kind !== 'view').length, views: colls.filter((c) => c.kind === 'view').length,
    objects, avgObjSize: objects ? dataSize / objects : 0, dataSize, storageSize: dataSize,
    indexes: colls.reduce((n, c) => n + c.indexes.length, 0), indexSize: 0, totalSize: dataSize, scaleFactor: 1, ok: 1,
  };
}

export function collStats(ctx: CommandContext): Reply {
  const name = collName(ctx);
  const coll = ctx.server.store.collection(ctx.db, name);
  if (!coll) throw notFound(`${ctx.db}.${name}`);
  notOnView(ctx, coll);
  const count = coll.docs.length;
  return {
    ns: `${ctx.db}.${name}`, size: coll.bytes, count, avgObjSize: count ? Math.floor(coll.bytes / count) : 0,
    storageSize: coll.bytes, capped: Boolean(coll.options.capped), nindexes: coll.indexes.length,
    indexSizes: Object.fromEntries(coll.indexes.map((i) => [String(i.name), 0])), totalIndexSize: 0, scaleFactor: 1, ok: 1,
  };
}

// ---------------------------------------------------------------- indexes


/** An index spec as listIndexes shows it: v, key, name first; text and 2dsphere defaults filled in as mongod does. */
function normalizeIndex(spec: Document): Document {
  const key = spec.key as Document;
  const { v: _v, key: _k, name, ...rest } = spec;
  const keyEntries = Object.entries(key);
  const textFields = keyEntries.filter(([, t]) => t === 'text');
  let outKey: Document = key;
  if (textFields.length > 0 && !('_fts' in key)) {
    // mongod stores text indexes as {_fts: 'text', _ftsx: 1} with the fields moved into weights.
    outKey = {};
    let placed = false;
    for (const [k, t] of keyEntries) {
      if (t === 'text') {
        if (!placed) { outKey._fts = 'text'; outKey._ftsx = new Int32(1); placed = true; }
      } else outKey[k] = t;
    }
    const weights: Document = {};
    for (const [k] of textFields) weights[k] = new Int32(1);
    if (rest.weights && typeof rest.weights === 'object') Object.assign(weights, rest.weights);
    rest.weights = weights;
  }
  if ('_fts' in outKey) {
    rest.default_language ??= 'english';
    rest.language_override ??= 'language';
    rest.textIndexVersion ??= new Int32(3);
  }
  if (Object.values(outKey).includes('2dsphere')) rest['2dsphereIndexVersion'] ??= new Int32(3);
  if (rest.collation !== undefined) {
    const c = normalizeCollation(rest.collation);
    if (c) rest.collation = c;
    else delete rest.collation;
  }
  delete rest.background;
  return { v: new Int32(2), key: outKey, name, ...rest };
}

export function createIndexes(ctx: CommandContext): Reply {
  checkDbName(ctx.db);
  const name = collName(ctx);
  const store = ctx.server.store;
  const existed = store.collection(ctx.db, name);
  notOnView(ctx, existed);
  const specs = exact(ctx).indexes;
  if (!Array.isArray(specs) || specs.length === 0) throw badValue('Must specify at least one index to create');
  const normalized = (specs as Document[]).map((s) => {
    if (!s || typeof s.key !== 'object' || Object.keys(s.key as Document).length === 0) throw new CommandError(9, 'FailedToParse', 'Index key must be a non-empty object');
    if (typeof s.name !== 'string' || !s.name) throw new CommandError(9, 'FailedToParse', "The 'name' field is a required property of an index specification");
    return normalizeIndex(s);
  });
  const coll = existed ?? store.ensureCollection(ctx.db, name);
  const before = coll.indexes.length;
  for (const spec of normalized) {
    const byName = coll.indexes.find((i) => i.name === spec.name);
    const byKey = coll.indexes.find((i) => sameBson(i.key, spec.key));
    if (byName) {
      if (!sameBson(byName.key, spec.key)) {
        throw new CommandError(86, 'IndexKeySpecsConflict', `An existing index has the same name as the requested index. When index names are not specified, they are auto generated and can cause conflicts. Please refer to our documentation. Requested index: ${JSON.stringify(spec)}, existing index: ${JSON.stringify(byName)}`);
      }
      continue;
    }
    if (byKey && byKey.name !== '_id_' && sameBson(byKey.collation, spec.collation)) {
      throw new CommandError(85, 'IndexOptionsConflict', `An equivalent index already exists with a different name and options. Requested index: ${JSON.stringify(spec)}, existing index: ${JSON.stringify(byKey)}`);
    }
    coll.indexes.push(spec);
  }
  const out: Document = { numIndexesBefore: before, numIndexesAfter: coll.indexes.length, createdCollectionAutomatically: !existed };
  if (before === coll.indexes.length) out.note = 'all indexes already exist';
  out.ok = 1;
  return out;
}

export function listIndexes(ctx: CommandContext): Reply {
  const name = collName(ctx);
  const coll = ctx.server.store.collection(ctx.db, name);
  if (!coll) throw notFound(`${ctx.db}.${name}`);
  notOnView(ctx, coll);
  const batchSize = num((ctx.cmd.cursor as Document | undefined)?.batchSize);
  return openCursor(ctx, `${ctx.db}.${name}`, coll.indexes.map(serialize), batchSize ?? Infinity);
}

export function dropIndexes(ctx: CommandContext): Reply {
  const name = collName(ctx);
  const coll = ctx.server.store.collection(ctx.db, name);
  if (!coll) throw notFound(`${ctx.db}.${name}`);
  notOnView(ctx, coll);
  const was = coll.indexes.length;
  const target = ctx.cmd.index;
  const names: string[] = [];
  if (target === '*') {
    coll.indexes = coll.indexes.filter((i) => i.name === '_id_');
    return { nIndexesWas: was, ok: 1 };
  } else if (typeof target === 'string') names.push(target);
  else if (Array.isArray(target)) names.push(...target.map(String));
  else if (target && typeof target === 'object') {
    const found = coll.indexes.find((i) => sameBson(BSON.deserialize(BSON.serialize(i.key as Document)), target));
    if (!found) throw new CommandError(27, 'IndexNotFound', `can't find index with key: ${JSON.stringify(target)}`);
    names.push(String(found.name));
  }
  for (const n of names) {
    if (n === '_id_') throw new CommandError(72, 'InvalidOptions', 'cannot drop _id index');
    if (!coll.indexes.some((i) => i.name === n)) throw new CommandError(27, 'IndexNotFound', `index not found with name [${n}]`);
  }
  coll.indexes = coll.indexes.filter((i) => !names.includes(String(i.name)));
  return { nIndexesWas: was, ok: 1 };
}
