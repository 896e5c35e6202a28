// What to back up and where to restore it, from the command line's words: --database,
// --collection db.coll, --database-map old:new.
import { CosmosBackupError } from '../../../shared/errors.ts';

export interface DatabaseSelection {
  database: string;
  /** undefined: every collection */
  collections?: string[];
}

/** Splits "db.coll" at the first dot (collection names may contain dots, database names may not). */
export function parseCollectionArg(arg: string): { database: string; collection: string } {
  const i = arg.indexOf('.');
  if (i <= 0 || i === arg.length - 1) throw new CosmosBackupError('INVALID_ARGUMENT', `--collection "${arg}" is not DATABASE.COLLECTION`);
  return { database: arg.slice(0, i), collection: arg.slice(i + 1) };
}

/**
 * Databases to back up: those named by --database and --collection; else the one in the URL;
 * else undefined (meaning: every user database, listed from the server).
 */
export function selectDatabases(databases: string[] = [], collections: string[] = [], urlDatabase?: string): DatabaseSelection[] | undefined {
  const byDb = new Map<string, Set<string> | undefined>();
  for (const d of databases) byDb.set(d, undefined);
  for (const c of collections) {
    const { database, collection } = parseCollectionArg(c);
    // --database db together with --collection db.x: only the named collections of db.
    const set = byDb.get(database) ?? new Set<string>();
    set.add(collection);
    byDb.set(database, set);
  }
  if (byDb.size === 0) return urlDatabase ? [{ database: urlDatabase }] : undefined;
  return [...byDb].map(([database, set]) => (set ? { database, collections: [...set] } : { database }));
}

/** --database-map old:new pairs. */
export function parseDatabaseMap(list: string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of list) {
    const i = m.indexOf(':');
    if (i <= 0 || i === m.length - 1) throw new CosmosBackupError('INVALID_ARGUMENT', `--database-map "${m}" is not OLD:NEW`);
    out.set(m.slice(0, i), m.slice(i + 1));
  }
  return out;
}

/** Target database of a restore: the map's entry, else --database, else the backed-up name. */
export function targetDatabase(backedUp: string, map: Map<string, string>, database?: string): string {
  if (map.size && !map.has(backedUp)) {
    throw new CosmosBackupError('INVALID_ARGUMENT', `--database-map has no entry for ${backedUp}, the database of this restore point (use --database-map ${backedUp}:NEW)`);
  }
  return map.get(backedUp) ?? database ?? backedUp;
}
