// `export --format mongodump`: the directory layout mongodump writes and mongorestore reads
// (<db>/<coll>.bson and <db>/<coll>.metadata.json), or the same files as one tar.gz, so a
// backup never depends on this tool to be read.
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { CosmosBackupError } from '../../../shared/errors.ts';
import type { RestorePointReader } from '../../../shared/repository/types.ts';
import { writeTarGz, type ArchiveEntry } from '../../archive.ts';
import { mongodumpMetadata } from './metadata.ts';
import { loadMetadata } from './restore.ts';

/** File name of a collection as mongodump escapes it ('/' and '%' would break the layout). */
export function dumpFileName(collection: string): string {
  return collection.replace(/%/g, '%25').replace(/\//g, '%2F').replace(/\\/g, '%5C');
}

/** The files of the dump, in order, each readable when its turn comes. */
export async function mongodumpEntries(reader: RestorePointReader, database?: string): Promise<ArchiveEntry[]> {
  const meta = await loadMetadata(reader);
  const db = dumpFileName(database ?? meta.database);
  const objects = new Map(reader.restorePoint.objects.map((o) => [o.name, o]));
  const out: ArchiveEntry[] = [];
  for (const c of meta.collections) {
    const base = `${db}/${dumpFileName(c.name)}`;
    if (c.type !== 'view') {
      const obj = objects.get(c.object ?? '');
      if (!obj) throw new CosmosBackupError('CORRUPT_OBJECT', `restore point ${reader.restorePoint.id.slice(0, 12)} lacks the documents of ${c.name}`);
      out.push({ name: `${base}.bson`, size: obj.size, open: () => reader.openObject(obj) });
    }
    const json = Buffer.from(mongodumpMetadata(c));
    out.push({ name: `${base}.metadata.json`, size: json.length, open: () => json });
  }
  return out;
}

/** Writes the dump under `dir` (created if needed); refuses to overwrite existing files. */
export async function exportMongodumpDir(reader: RestorePointReader, dir: string, opts: { database?: string } = {}): Promise<string[]> {
  const entries = await mongodumpEntries(reader, opts.database);
  const written: string[] = [];
  for (const e of entries) {
    const file = path.join(dir, e.name);
    await mkdir(path.dirname(file), { recursive: true });
    const src = e.open();
    try {
      if (Buffer.isBuffer(src)) await writeFile(file, src, { flag: 'wx', mode: 0o600 });
      else await pipeline(src, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    } catch (err) {
      if ((err as { code?: string }).code === 'EEXIST') throw new CosmosBackupError('ALREADY_EXISTS', `${file} already exists: export into an empty directory`);
      throw err;
    }
    written.push(file);
  }
  return written;
}

/** Streams the dump as one tar.gz to `out`. */
export async function exportMongodumpArchive(reader: RestorePointReader, out: Writable, opts: { database?: string } = {}): Promise<void> {
  await writeTarGz(await mongodumpEntries(reader, opts.database), out);
}
