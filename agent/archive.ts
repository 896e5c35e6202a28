// tar.gz output for `export --archive`: entries streamed one after another (sizes are known up
// front, so nothing is held in memory), built with the `archiver` package.
import { once } from 'node:events';
import type { Stats } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { TarArchive } from 'archiver';

export interface ArchiveEntry {
  name: string;
  size: number;
  open(): Readable | Buffer;
}

/** Writes entries as a gzip-compressed tar to `out`; ends `out` unless it is stdout. */
export async function writeTarGz(entries: AsyncIterable<ArchiveEntry> | Iterable<ArchiveEntry>, out: Writable): Promise<void> {
  const archive = new TarArchive({ gzip: true });
  let failure: unknown;
  archive.on('error', (e: unknown) => { failure ??= e; });
  archive.on('warning', (e: unknown) => { failure ??= e; });
  const toStdout = out === process.stdout;
  archive.pipe(out, { end: !toStdout });
  const done = toStdout ? finished(archive) : finished(out);
  done.catch(() => undefined);
  const date = new Date();
  for await (const e of entries) {
    if (failure) break;
    const src = e.open();
    const entered = once(archive, 'entry');
    entered.catch(() => undefined);
    if (Buffer.isBuffer(src)) {
      archive.append(src, { name: e.name, mode: 0o644, date });
    } else {
      // A failing source (a corrupt object) must fail the archive, not leave it waiting.
      src.once('error', (err) => { failure ??= err; archive.abort(); archive.emit('error', err); });
      archive.append(src, { name: e.name, mode: 0o644, date, stats: { size: e.size } as Stats });
    }
    await Promise.race([entered, finished(archive).then(() => undefined, () => undefined)]);
    if (failure) break;
  }
  if (failure) {
    if (!toStdout) out.destroy();
    throw failure;
  }
  await archive.finalize();
  await done;
  if (failure) throw failure;
}
