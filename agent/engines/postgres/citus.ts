// Citus (Cosmos DB for PostgreSQL): which tables are distributed, on which column, in which
// colocation group, and which are reference tables; and the calls that re-create that layout
// on a Citus target. Reading takes a query function so it can be tested on recorded rows.
import type { CitusInfo, CitusTable, DdlItem } from './schema-types.ts';
import { qualify, quoteLiteral } from './schema-util.ts';

export type CitusQuery = (sql: string, params?: unknown[]) => Promise<Record<string, any>[]>;

export const CITUS_TABLES_SQL = `SELECT n.nspname, c.relname, p.partmethod, p.repmodel, p.colocationid,
    CASE WHEN p.partkey IS NOT NULL THEN column_to_column_name(p.logicalrelid, p.partkey) END AS distcol,
    g.shardcount
  FROM pg_dist_partition p
    JOIN pg_class c ON c.oid = p.logicalrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_dist_colocation g ON g.colocationid = p.colocationid
  ORDER BY p.colocationid, p.logicalrelid`;

/** Reads the distribution metadata (coordinator catalogs). */
export async function readCitus(q: CitusQuery): Promise<CitusInfo> {
  const version = (await q(`SELECT extversion FROM pg_extension WHERE extname = 'citus'`))[0]?.extversion ?? 'unknown';
  const tables = (await q(CITUS_TABLES_SQL)).map(citusTableFromRow);
  return { version: String(version), tables };
}

export function citusTableFromRow(r: Record<string, any>): CitusTable {
  const method = String(r.partmethod) as CitusTable['method'];
  // partmethod 'n' is a reference table, or a Citus-managed local table (replication model 's').
  const kind: CitusTable['kind'] = method !== 'n' ? 'distributed' : r.repmodel === 's' ? 'local' : 'reference';
  const t: CitusTable = { schema: r.nspname, name: r.relname, kind, method, colocationId: Number(r.colocationid ?? 0) };
  if (r.distcol !== null && r.distcol !== undefined) t.column = String(r.distcol);
  if (r.shardcount !== null && r.shardcount !== undefined) t.shardCount = Number(r.shardcount);
  if (r.repmodel !== null && r.repmodel !== undefined) t.replicationModel = String(r.repmodel);
  return t;
}

/**
 * Statements that re-create the distribution, in an order Citus accepts: reference tables first
 * (distributed tables may reference them), then each colocation group led by its first table
 * (which opens a new group), the others colocated with it, then local tables.
 */
export function citusDdl(info: CitusInfo): DdlItem[] {
  const items: DdlItem[] = [];
  const name = (t: CitusTable) => quoteLiteral(qualify(t.schema, t.name));
  const push = (t: CitusTable, sql: string) => items.push({ section: 'pre-data', kind: 'citus', schema: t.schema, name: t.name, sql });
  for (const t of info.tables.filter((x) => x.kind === 'reference')) push(t, `SELECT create_reference_table(${name(t)});`);
  const groups = new Map<string, CitusTable[]>();
  for (const t of info.tables.filter((x) => x.kind === 'distributed')) {
    // Colocation id 0 (append/range in old versions) means "no group": each table alone.
    const g = t.colocationId === 0 ? `alone:${t.schema}.${t.name}` : `group:${t.colocationId}`;
    groups.set(g, [...(groups.get(g) ?? []), t]);
  }
  for (const members of groups.values()) {
    const lead = members[0]!;
    for (const t of members) {
      if (!t.column) throw new Error(`citus: distributed table ${t.schema}.${t.name} has no distribution column`);
      const method = t.method === 'a' ? 'append' : t.method === 'r' ? 'range' : 'hash';
      const args = [name(t), quoteLiteral(t.column), `distribution_type => ${quoteLiteral(method)}`];
      if (method === 'hash') {
        if (t === lead) {
          if (t.shardCount) args.push(`shard_count => ${t.shardCount}`);
          args.push(`colocate_with => 'none'`);
        } else {
          args.push(`colocate_with => ${name(lead)}`);
        }
      }
      push(t, `SELECT create_distributed_table(${args.join(', ')});`);
    }
  }
  for (const t of info.tables.filter((x) => x.kind === 'local')) push(t, `SELECT citus_add_local_table_to_metadata(${name(t)});`);
  return items;
}
