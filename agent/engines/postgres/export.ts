// `export --format sql`: a plain SQL script that psql alone can load (no lock-in).
import type { Writable } from 'node:stream';
import type { RestorePointReader } from '../../../shared/repository/types.ts';
import { writeSqlScript } from './apply.ts';
import { loadSchema, tableJobs } from './restore.ts';
import { relationKey } from './subset.ts';
import type { TableDataMeta, TableInfo } from './schema-types.ts';
import { BinaryCopyToText } from './binary-copy.ts';

export async function exportPostgresSql(reader: RestorePointReader, out: Writable, opts: { noOwner?: boolean; noPrivileges?: boolean } = {}): Promise<void> {
  const doc = await loadSchema(reader);
  const objects = reader.restorePoint.objects;
  const write = async (s: string | Buffer) => {
    if (!out.write(s)) await new Promise<void>((resolve, reject) => {
      const done = (e?: unknown) => { out.off('drain', ok); out.off('error', done); if (e) reject(e); else resolve(); };
      const ok = () => done();
      out.once('drain', ok);
      out.once('error', done);
    });
  };
  // Each table's parts in their backup order, as the restore loads them.
  const jobs = new Map(tableJobs(objects.filter((o) => o.kind === 'table-data')).map((j) => [j.id, j]));
  const tableData = (t: TableInfo) => {
    const parts = jobs.get(relationKey(t.schema, t.name))?.parts ?? [];
    return (async function* () {
      for (const p of parts) {
        const m = p.meta as TableDataMeta;
        if (m.format !== 'binary') { yield* reader.openObject(p) as AsyncIterable<Buffer>; continue; }
        // psql scripts take COPY text only.
        const text = new BinaryCopyToText(m.types ?? []);
        for await (const chunk of reader.openObject(p) as AsyncIterable<Buffer>) yield text.push(chunk);
        text.end();
      }
    })();
  };
  await writeSqlScript(doc, write, tableData, {
    ...opts,
    largeObjectData: (oid) => {
      const obj = objects.find((o) => o.name === `lo/${oid}`);
      return (async function* () { if (obj) yield* reader.openObject(obj) as AsyncIterable<Buffer>; })();
    },
  });
}
