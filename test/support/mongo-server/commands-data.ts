// Reads (find, count, aggregate) and writes (insert, update, delete) over stored BSON bytes.
import { BSON, type Document } from 'bson';
import { update as mingoUpdate } from 'mingo';
import { COMPARE_DECODE } from './compare.ts';
import { CommandError, COSMOS_TOO_LARGE_CODE, badValue, cosmosThrottleMessage, cosmosTooLargeMessage } from './errors.ts';
import { countTail, decodeForMingo, matchEntries, project, QueryError, runPipeline, sortEntries } from './query.ts';
import { elements, documentFromElements } from './raw-bson.ts';
import { prepareForInsert, serialize, type Collection, type DocEntry } from './store.ts';
import { sameBson, checkDbName, collName, MAX_BSON_OBJECT_SIZE, MAX_WRITE_BATCH, notOnView, num, openCursor, plainField, rawDocs, EXACT, type CommandContext, type Reply } from './command-context.ts';

// ---------------------------------------------------------------- reads

function viewSource(ctx: CommandContext, view: Collection, depth = 0): { docs: Document[] } {
  if (depth > 20) throw new CommandError(149, 'ViewDepthLimitExceeded', 'View depth too deep or view cycle detected');
  const on = ctx.server.store.collection(ctx.db, String(view.options.viewOn));
  const pipeline = BSON.deserialize(BSON.serialize({ p: view.options.pipeline ?? [] })).p as Document[];
  let docs: Document[];
  if (!on) docs = [];
  else if (on.kind === 'view') docs = viewSource(ctx, on, depth + 1).docs;
  else docs = on.docs.map((e) => decodeForMingo(e.raw));
  return { docs: runPipeline(docs, pipeline).map((b) => BSON.deserialize(b)) };
}

export function find(ctx: CommandContext): Reply {
  const name = collName(ctx);
  const ns = `${ctx.db}.${name}`;
  const coll = ctx.server.store.collection(ctx.db, name);
  const skip = num(ctx.cmd.skip, 0)!;
  const limit = num(ctx.cmd.limit, 0)!;
  const batchSize = num(ctx.cmd.batchSize);
  let docs: Buffer[];
  if (!coll) {
    docs = [];
  } else if (coll.kind === 'view') {
    const pipeline: Document[] = [];
    const filter = plainField(ctx, 'filter');
    if (filter) pipeline.push({ $match: filter });
    const sort = plainField(ctx, 'sort');
    if (sort && Object.keys(sort).length) pipeline.push({ $sort: sort });
    if (skip) pipeline.push({ $skip: skip });
    if (limit) pipeline.push({ $limit: Math.abs(limit) });
    const projection = plainField(ctx, 'projection');
    if (projection && Object.keys(projection).length) pipeline.push({ $project: projection });
    docs = runPipeline(viewSource(ctx, coll).docs, pipeline);
  } else {
    const entries = sortEntries(matchEntries(coll, ctx.cmd.filter as Document | undefined, plainField(ctx, 'filter')), ctx.cmd.sort as Document | undefined);
    const end = limit ? skip + Math.abs(limit) : entries.length;
    const projection = ctx.cmd.projection as Document | undefined;
    docs = entries.slice(skip, end).map((e) => project(e.raw, projection));
  }
  return openCursor(ctx, ns, docs, batchSize, Boolean(ctx.cmd.singleBatch) || limit < 0);
}

export function count(ctx: CommandContext): Reply {
  const name = collName(ctx);
  const coll = ctx.server.store.collection(ctx.db, name);
  const skip = num(ctx.cmd.skip, 0)!;
  const limit = Math.abs(num(ctx.cmd.limit, 0)!);
  let n: number;
  if (!coll) n = 0;
  else if (coll.kind === 'view') {
    const q = plainField(ctx, 'query');
    n = runPipeline(viewSource(ctx, coll).docs, q ? [{ $match: q }] : []).length;
  } else n = matchEntries(coll, ctx.cmd.query as Document | undefined, plainField(ctx, 'query')).length;
  n = Math.max(0, n - skip);
  if (limit) n = Math.min(n, limit);
  return { n, ok: 1 };
}

export function aggregate(ctx: CommandContext): Reply {
  if (typeof ctx.cmd.aggregate !== 'string') throw new CommandError(59, 'CommandNotFound', 'collectionless aggregate is not supported by the stand-in');
  const name = collName(ctx);
  const ns = `${ctx.db}.${name}`;
  const coll = ctx.server.store.collection(ctx.db, name);
  const pipeline = (BSON.deserialize(ctx.body).pipeline ?? []) as Document[];
  const exactPipeline = (ctx.cmd.pipeline ?? []) as Document[];
  if (!Array.isArray(pipeline)) throw new CommandError(14, 'TypeMismatch', "'pipeline' option must be specified as an array");
  for (const st of pipeline) {
    const stage = Object.keys(st)[0];
    if (stage === '$out' || stage === '$merge') throw new CommandError(59, 'CommandNotFound', `${stage} is not supported by the stand-in`);
  }
  const batchSize = num((ctx.cmd.cursor as Document | undefined)?.batchSize);
  let docs: Buffer[];
  if (!coll) docs = [];
  else if (coll.kind === 'view') docs = runPipeline(viewSource(ctx, coll).docs, pipeline);
  else {
    // A leading $match runs on the _id index when it can; a counting tail needs no decoding.
    const first = pipeline[0] && Object.keys(pipeline[0])[0] === '$match' ? 1 : 0;
    const entries: DocEntry[] = matchEntries(coll, first ? exactPipeline[0]!.$match : undefined, first ? pipeline[0]!.$match : undefined);
    const rest = pipeline.slice(first);
    const tail = countTail(rest);
    if (tail) {
      let n = Math.max(0, entries.length - tail.skip);
      if (tail.limit !== undefined) n = Math.min(n, tail.limit);
      docs = tail.output(n).map(serialize);
    } else if (rest.length === 0) {
      docs = entries.map((e) => e.raw);
    } else {
      docs = runPipeline(entries.map((e) => decodeForMingo(e.raw)), rest);
    }
  }
  return openCursor(ctx, ns, docs, batchSize);
}

// ---------------------------------------------------------------- writes

interface WriteError { index: number; code: number; errmsg: string; keyPattern?: Document; keyValue?: Document; codeName?: string }

function dupKeyError(index: number, ns: string, raw: Buffer): WriteError {
  const idDoc = BSON.deserialize(documentFromElements(raw, [elements(raw)[0]!]), EXACT);
  return {
    index, code: 11000,
    errmsg: `E11000 duplicate key error collection: ${ns} index: _id_ dup key: { _id: ${BSON.EJSON.stringify(idDoc._id, { relaxed: true })} }`,
    keyPattern: { _id: 1 }, keyValue: idDoc,
  };
}

function writeReply(n: number, errors: WriteError[], extra: Document = {}): Document {
  const out: Document = { n, ...extra };
  if (errors.length) out.writeErrors = errors;
  out.ok = 1;
  return out;
}

export function insert(ctx: CommandContext): Reply {
  checkDbName(ctx.db);
  const name = collName(ctx);
  const ns = `${ctx.db}.${name}`;
  const store = ctx.server.store;
  notOnView(ctx, store.collection(ctx.db, name));
  const docs = rawDocs(ctx, 'documents');
  if (docs.length > MAX_WRITE_BATCH) throw new CommandError(16, 'InvalidLength', `Write batch sizes must be between 1 and ${MAX_WRITE_BATCH}. Got ${docs.length} operations.`);
  const ordered = ctx.cmd.ordered !== false;
  const coll = store.ensureCollection(ctx.db, name);
  const errors: WriteError[] = [];
  let n = 0;
  const partial = ctx.server.partialThrottle('insert', docs.length);
  for (let i = 0; i < docs.length; i++) {
    const raw = docs[i]!;
    let err: WriteError | undefined;
    if (partial && i >= partial.allowed) {
      err = { index: i, code: 16500, codeName: 'RequestRateTooLarge', errmsg: cosmosThrottleMessage(partial.retryAfterMs) };
    } else if (ctx.server.maxDocumentSize !== undefined && raw.length > ctx.server.maxDocumentSize) {
      err = { index: i, code: COSMOS_TOO_LARGE_CODE, errmsg: cosmosTooLargeMessage() };
      ctx.server.stats.rejectedTooLarge++;
    } else if (raw.length > MAX_BSON_OBJECT_SIZE) {
      err = { index: i, code: 10334, errmsg: `object to insert too large. size in bytes: ${raw.length}, max size: ${MAX_BSON_OBJECT_SIZE}` };
    } else {
      let entry: DocEntry | undefined;
      try {
        entry = prepareForInsert(raw);
      } catch (e) {
        err = { index: i, code: 2, errmsg: (e as Error).message };
      }
      if (entry) {
        if (coll.add(entry)) n++;
        else err = dupKeyError(i, ns, entry.raw);
      }
    }
    if (err) {
      errors.push(err);
      if (ordered) break;
    }
  }
  return writeReply(n, errors);
}

/** The replacement's bytes with the original _id first (mongod keeps _id immutable). */
function replacementBytes(original: Buffer, replacement: Buffer): Buffer {
  const origId = elements(original)[0]!;
  const els = elements(replacement);
  const idx = els.findIndex((e) => e.name === '_id');
  if (idx >= 0) {
    const a = original.subarray(origId.valueStart, origId.end);
    const b = replacement.subarray(els[idx]!.valueStart, els[idx]!.end);
    if (els[idx]!.type !== origId.type || !a.equals(b)) {
      throw new CommandError(66, 'ImmutableField', "After applying the update, the (immutable) field '_id' was found to have been altered");
    }
    if (idx === 0) return Buffer.from(replacement);
  }
  return documentFromElements(replacement, els.filter((e) => e.name !== '_id'), original.subarray(origId.start, origId.end));
}

function isOperatorUpdate(u: Buffer): boolean {
  const first = elements(u)[0];
  return Boolean(first && first.name.startsWith('$'));
}

export function update(ctx: CommandContext): Reply {
  const name = collName(ctx);
  const ns = `${ctx.db}.${name}`;
  const store = ctx.server.store;
  notOnView(ctx, store.collection(ctx.db, name));
  const statements = rawDocs(ctx, 'updates');
  const ordered = ctx.cmd.ordered !== false;
  let n = 0;
  let nModified = 0;
  const upserted: Document[] = [];
  const errors: WriteError[] = [];
  for (let i = 0; i < statements.length; i++) {
    const stRaw = statements[i]!;
    const st = BSON.deserialize(stRaw, COMPARE_DECODE);
    const stEls = elements(stRaw);
    const uEl = stEls.find((e) => e.name === 'u');
    const qEl = stEls.find((e) => e.name === 'q');
    try {
      if (!uEl || uEl.type !== 0x03) throw badValue('pipeline-style and missing updates are not supported by the stand-in');
      const u = stRaw.subarray(uEl.valueStart, uEl.end);
      const plainQ = qEl && qEl.type === 0x03 ? BSON.deserialize(stRaw.subarray(qEl.valueStart, qEl.end)) : undefined;
      const coll = store.collection(ctx.db, name);
      const matched = coll ? matchEntries(coll, st.q as Document, plainQ) : [];
      const targets = st.multi ? matched : matched.slice(0, 1);
      const operator = isOperatorUpdate(u);
      const modifier = operator ? BSON.deserialize(u, EXACT) : undefined;
      for (const target of targets) {
        const before = target.raw;
        let after: Buffer;
        if (modifier) {
          const doc = BSON.deserialize(before, EXACT);
          applyModifier(doc, modifier, st.arrayFilters as Document[] | undefined);
          after = serialize(doc);
        } else {
          after = replacementBytes(before, u);
        }
        if (after.length > MAX_BSON_OBJECT_SIZE) throw new CommandError(17419, 'Location17419', 'Resulting document after update is larger than 16777216');
        n++;
        if (!after.equals(before)) {
          nModified++;
          coll!.replaceAt(coll!.indexOfId(target.id), after);
        }
      }
      if (targets.length === 0 && st.upsert) {
        const base: Document = {};
        const q = (plainQ ?? {}) as Document;
        const exactQ = qEl && qEl.type === 0x03 ? BSON.deserialize(stRaw.subarray(qEl.valueStart, qEl.end), EXACT) : {};
        for (const [k, v] of Object.entries(exactQ)) {
          const pv = q[k];
          if (!k.startsWith('$') && !(pv && typeof pv === 'object' && Object.keys(pv).some((x) => x.startsWith('$')))) base[k] = v;
        }
        let raw: Buffer;
        if (modifier) {
          applyModifier(base, modifier, st.arrayFilters as Document[] | undefined);
          raw = serialize(base);
        } else {
          raw = Buffer.from(u);
          if (base._id !== undefined && !elements(raw).some((e) => e.name === '_id')) raw = serialize({ _id: base._id, ...BSON.deserialize(raw, EXACT) });
        }
        const entry = prepareForInsert(raw);
        const c = store.ensureCollection(ctx.db, name);
        if (!c.add(entry)) throw new CommandError(11000, 'DuplicateKey', dupKeyError(i, ns, entry.raw).errmsg);
        n++;
        upserted.push({ index: i, _id: BSON.deserialize(entry.raw, EXACT)._id });
      }
    } catch (e) {
      if (!(e instanceof CommandError || e instanceof QueryError)) throw e;
      errors.push({ index: i, code: e.code, codeName: e.codeName, errmsg: e.message });
      if (ordered) break;
    }
  }
  return writeReply(n, errors, upserted.length ? { nModified, upserted } : { nModified });
}

function applyModifier(doc: Document, modifier: Document, arrayFilters: Document[] | undefined): void {
  for (const op of Object.keys(modifier)) {
    if (op === '$set' || op === '$unset' || op === '$setOnInsert') continue;
    // Other operators do arithmetic; they need plain JS numbers, which EXACT decoding does not give.
    if (!['$inc', '$push', '$pull', '$addToSet', '$rename', '$min', '$max', '$mul', '$pop', '$currentDate'].includes(op)) {
      throw badValue(`Unknown modifier: ${op}`);
    }
  }
  for (const [op, spec] of Object.entries(modifier)) {
    const fields = spec as Document;
    if (op === '$set' || op === '$setOnInsert') {
      for (const [path, v] of Object.entries(fields)) setPath(doc, path, v);
    } else if (op === '$unset') {
      for (const path of Object.keys(fields)) unsetPath(doc, path);
    } else {
      const plainDoc = BSON.deserialize(BSON.serialize(doc));
      mingoUpdate(plainDoc, { [op]: BSON.deserialize(BSON.serialize(fields)) }, arrayFilters);
      const reencoded = BSON.deserialize(BSON.serialize(plainDoc), EXACT);
      for (const k of Object.keys(doc)) delete doc[k];
      Object.assign(doc, reencoded);
    }
  }
}

function setPath(doc: Document, path: string, v: unknown): void {
  if (path === '_id' && doc._id !== undefined && !sameBson(doc._id, v)) {
    throw new CommandError(66, 'ImmutableField', "Performing an update on the path '_id' would modify the immutable field '_id'");
  }
  const parts = path.split('.');
  let cur: Document = doc;
  for (const p of parts.slice(0, -1)) {
    if (cur[p] === undefined || cur[p] === null || typeof cur[p] !== 'object') cur[p] = {};
    cur = cur[p] as Document;
  }
  cur[parts[parts.length - 1]!] = v;
}

function unsetPath(doc: Document, path: string): void {
  const parts = path.split('.');
  let cur: Document | undefined = doc;
  for (const p of parts.slice(0, -1)) {
    cur = cur?.[p] as Document | undefined;
    if (!cur || typeof cur !== 'object') return;
  }
  delete cur[parts[parts.length - 1]!];
}

export function del(ctx: CommandContext): Reply {
  const name = collName(ctx);
  const store = ctx.server.store;
  notOnView(ctx, store.collection(ctx.db, name));
  const statements = rawDocs(ctx, 'deletes');
  let n = 0;
  for (const stRaw of statements) {
    const st = BSON.deserialize(stRaw, COMPARE_DECODE);
    const qEl = elements(stRaw).find((e) => e.name === 'q');
    const plainQ = qEl && qEl.type === 0x03 ? BSON.deserialize(stRaw.subarray(qEl.valueStart, qEl.end)) : undefined;
    const coll = store.collection(ctx.db, name);
    if (!coll) continue;
    const matched = matchEntries(coll, st.q as Document, plainQ);
    const targets = num(st.limit) === 1 ? matched.slice(0, 1) : matched;
    for (const t of targets) {
      const i = coll.indexOfId(t.id);
      if (i >= 0) {
        coll.removeAt(i);
        n++;
      }
    }
  }
  return writeReply(n, []);
}
