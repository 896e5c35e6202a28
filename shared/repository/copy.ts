// Copying a restore point into another repository (archiving). Chunk ids, chunk boundaries and
// encryption keys are per repository, so chunks cannot be moved as they are: every object is
// streamed out of the source reader into a backup writer of the target, which re-chunks it with
// the target's parameters and stores only the chunks the target lacks (its usual dedup). What was
// actually added is the target writer's newChunks/storedBytes.
import { pipeline } from 'node:stream/promises';
import { CosmosBackupError } from '../errors.ts';
import { openRestorePoint } from './reader.ts';
import { startBackup } from './backup-writer.ts';
import type { Repository } from './repository.ts';
import type { BackupWriter, ProgressFn, RestorePoint } from './types.ts';

export interface CopyResult {
  /** id of the restore point in the target (ids differ between repositories: they hash the stored manifest) */
  id: string;
  sourceId: string;
  database: string;
  objects: number;
  /** plaintext bytes read from the source */
  bytes: number;
  /** chunks the target did not have */
  copiedChunks: number;
  /** bytes added to the target (compressed, sealed) */
  copiedBytes: number;
}

export interface CopyOptions {
  onProgress?: ProgressFn;
  /** checked between objects and by the caller's store; an aborted copy leaves no restore point */
  signal?: AbortSignal;
}

/** Copies one restore point; the target gets it with the same engine, database, tags, labels and metadata. */
export async function copyRestorePoint(src: Repository, dst: Repository, id: string, opts: CopyOptions = {}): Promise<CopyResult> {
  const reader = await openRestorePoint(src, id);
  const rp: RestorePoint = reader.restorePoint;
  let writer: BackupWriter | undefined = await startBackup(dst, {
    engine: rp.engine, database: rp.database, source: rp.source, tags: rp.tags,
    // Where the copy came from, for people reading the archive; never secrets (ids and times).
    labels: { ...rp.labels, 'copy.of': rp.id, 'copy.finishedAt': rp.finishedAt },
    server: rp.server, onProgress: opts.onProgress,
    // Whole chunks: archive repositories keep their packs in the Archive tier, where the old
    // chunks a delta is made against cannot be read while the copy runs.
    parent: null,
  });
  try {
    for (const obj of rp.objects) {
      if (opts.signal?.aborted) throw new CosmosBackupError('ABORTED', `copy of restore point ${rp.id.slice(0, 12)} was aborted`, { cause: opts.signal.reason });
      const out = writer.createObject(obj.name, obj.kind, obj.meta);
      try {
        await pipeline(reader.openObject(obj), out);
        await out.finish();
      } catch (e) {
        out.destroy();
        throw e;
      }
    }
    const w = writer;
    writer = undefined;
    const copied = await w.commit(rp.meta);
    return {
      id: copied.id, sourceId: rp.id, database: rp.database, objects: copied.stats.objects, bytes: copied.stats.bytes,
      copiedChunks: copied.stats.newChunks, copiedBytes: copied.stats.storedBytes,
    };
  } catch (e) {
    if (writer) await writer.abort(e).catch(() => undefined);
    throw e;
  }
}
