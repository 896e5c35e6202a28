// The schema half of a PostgreSQL restore point: one JSON document, read from the catalogs at
// backup time (catalog.ts) and replayed at restore time (apply.ts). Plain data only, so it
// round-trips through JSON unchanged.

export type DdlSection = 'pre-data' | 'post-data';

/**
 * One restorable step. `sql` holds one or more complete statements (each ending in `;`).
 * Kinds: schema, extension, collation, type, domain, function, procedure, aggregate, sequence,
 * table, table-attach, default, identity, sequence-owned-by, view, matview, constraint,
 * check-constraint, domain-constraint, fk, index, index-attach, cluster, statistics, trigger,
 * rule, rls, policy, event-trigger, matview-refresh, comment, owner, acl, default-acl.
 */
export interface DdlItem {
  section: DdlSection;
  kind: string;
  schema?: string;
  /** the object's name; for sub-objects (constraints, triggers, columns) `table.object` */
  name: string;
  sql: string;
  /** owner / acl items: the owner of the object (for messages) */
  owner?: string;
  /** roles that must exist on the target for this item to apply (owner and acl items) */
  requires?: string[];
  /**
   * The relation (table, view, matview, sequence) the item belongs to: the relation itself, its
   * sub-objects (constraints, indexes, triggers, defaults…), and their owners, grants and
   * comments. Lets a subset restore keep only what belongs to the chosen tables; restore points
   * made before it existed lack it.
   */
  table?: { schema: string; name: string };
  /** foreign keys: the referenced table */
  references?: { schema: string; name: string };
  /**
   * Relations besides `table` that must exist for the item to apply: those it uses directly
   * (a view's tables, a policy's subquery) or through types and routines (a function whose SQL
   * body reads a table). A subset restore leaves out items whose relations it does not restore.
   */
  needs?: { schema: string; name: string }[];
}

export type RelKind = 'r' | 'p' | 'm' | 'v' | 'f';

export interface TableInfo {
  schema: string;
  name: string;
  oid: number;
  relkind: RelKind;
  /** columns to COPY, in order (generated columns excluded); raw names, quote before use */
  columns: string[];
  /** type OIDs of `columns`, to choose binary COPY (binary-copy.ts); absent in older documents */
  columnTypes?: number[];
  /** true when the relation holds rows of its own to COPY (plain tables, incl. partitions and inheritance children) */
  hasData: boolean;
  /** pg_table_size at backup time (heap + TOAST), to schedule large tables first */
  estimatedBytes: number;
  primaryKey?: string[];
  /** qualified, quoted parent name when this is a partition */
  partitionOf?: string;
  unlogged?: boolean;
}

/** The manifest meta of a `table-data` object: one table, or one ctid range of it. A type, not
 * an interface, so that it is a manifest's Record<string, unknown>. */
export type TableDataMeta = {
  schema: string;
  table: string;
  columns: string[];
  /** ctid block range [from, to) of a split table */
  from?: number;
  to?: number;
  /** absent: COPY text; 'binary': COPY binary of columns of `types` (binary-copy.ts) */
  format?: 'binary';
  types?: number[];
};

export interface SequenceValue {
  schema: string;
  name: string;
  lastValue: string;
  isCalled: boolean;
}

export interface MatviewInfo {
  schema: string;
  name: string;
  /** whether the source had it populated: only populated ones are refreshed */
  populated: boolean;
}

export interface CitusTable {
  schema: string;
  name: string;
  /** 'distributed' (hash/append/range), 'reference', or 'local' (a Citus-managed local table) */
  kind: 'distributed' | 'reference' | 'local';
  method: 'h' | 'a' | 'r' | 'n';
  /** distribution column (raw name); absent for reference tables */
  column?: string;
  colocationId: number;
  shardCount?: number;
  /** pg_dist_partition.repmodel */
  replicationModel?: string;
}

export interface CitusInfo {
  version: string;
  tables: CitusTable[];
}

export interface ExtensionInfo {
  name: string;
  version: string;
  schema: string;
}

export interface SchemaDocument {
  formatVersion: 1;
  server: {
    version: string;
    versionNum: number;
    encoding: string;
    collate: string;
    ctype: string;
    extensions: ExtensionInfo[];
  };
  database: { name: string; owner?: string; comment?: string };
  /** pre-data items in dependency order, then post-data items in dependency order */
  items: DdlItem[];
  tables: TableInfo[];
  sequences: SequenceValue[];
  matviews: MatviewInfo[];
  largeObjects: { oid: number; owner?: string }[];
  citus?: CitusInfo;
  /** every role an owner or acl item needs */
  roles: string[];
}
