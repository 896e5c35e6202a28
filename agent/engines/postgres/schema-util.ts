// Pure helpers for the schema reader and applier: SQL quoting, ACL statements, and the
// dependency-ordered sort of DDL objects. No I/O here.

/** Always-quoted identifier: correct for reserved words, mixed case and any character. */
export function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

export function qualify(schema: string | undefined, name: string): string {
  return schema === undefined ? quoteIdent(name) : `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/** String literal for a session with standard_conforming_strings = on (the default since 9.1). */
export function quoteLiteral(value: string): string {
  return "'" + value.replace(/'/g, "''") + "'";
}

/** `WITH (...)` option list from a reloptions array such as ['fillfactor=70']. */
export function optionList(options: string[] | null | undefined): string {
  if (!options || options.length === 0) return '';
  return options.map((o) => {
    const eq = o.indexOf('=');
    return eq < 0 ? o : `${o.slice(0, eq)}=${quoteLiteral(o.slice(eq + 1))}`;
  }).join(', ');
}

/** One exploded aclitem: grantee null means PUBLIC. */
export type AclEntry = [grantee: string | null, privilege: string, grantable: boolean, grantor: string];

/**
 * GRANT/REVOKE statements that turn an object's default privileges into `acl`.
 * `acl` null means the object still has its default privileges: nothing to do.
 * `onObject` is e.g. `TABLE "s"."t"` or `FUNCTION "s"."f"(integer)`; `columns` limits to column privileges.
 */
export function aclStatements(onObject: string, acl: AclEntry[] | null, defaults: AclEntry[] | null, column?: string): string[] {
  if (acl === null) return [];
  const key = (e: AclEntry) => `${e[0] ?? ''}\u0000${e[1]}\u0000${e[2]}`;
  const have = new Set(acl.map(key));
  const dflt = new Set((defaults ?? []).map(key));
  const who = (g: string | null) => (g === null ? 'PUBLIC' : quoteIdent(g));
  const col = column === undefined ? '' : `(${quoteIdent(column)})`;
  const out: string[] = [];
  // Revoke what the default grants but the object no longer has (group by grantee).
  const revokes = new Map<string | null, string[]>();
  for (const e of defaults ?? []) {
    if (have.has(key(e))) continue;
    const list = revokes.get(e[0]) ?? [];
    if (!list.includes(e[1])) list.push(e[1]);
    revokes.set(e[0], list);
  }
  for (const [grantee, privs] of revokes) out.push(`REVOKE ${privs.map((p) => p + col).join(',')} ON ${onObject} FROM ${who(grantee)};`);
  // Grant what the object has beyond its default, in acl order, grouped by grantee and grant option.
  const grants = new Map<string, { grantee: string | null; grantable: boolean; privs: string[] }>();
  for (const e of acl) {
    if (dflt.has(key(e))) continue;
    const k = `${e[0] ?? ''}\u0000${e[2]}`;
    const g = grants.get(k) ?? { grantee: e[0], grantable: e[2], privs: [] };
    g.privs.push(e[1]);
    grants.set(k, g);
  }
  for (const g of grants.values()) {
    out.push(`GRANT ${g.privs.map((p) => p + col).join(',')} ON ${onObject} TO ${who(g.grantee)}${g.grantable ? ' WITH GRANT OPTION' : ''};`);
  }
  return out;
}

/** Roles named in an ACL (PUBLIC excluded). */
export function aclRoles(acl: AclEntry[] | null): string[] {
  return [...new Set((acl ?? []).flatMap((e) => [e[0], e[3]]).filter((r): r is string => r !== null))];
}

export interface SortNode {
  key: string;
  priority: number;
  sortName: string;
  deps: Set<string>;
}

/**
 * Topological order of `nodes` (dependencies first). Among ready nodes the lowest priority,
 * then name, goes first, which reproduces pg_dump's type-then-name ordering where the
 * dependencies allow it. Cycles are broken at the lowest-priority node and reported.
 */
export function sortByDependencies<T extends SortNode>(nodes: T[], onCycle?: (node: T) => void): T[] {
  const byKey = new Map(nodes.map((n) => [n.key, n]));
  const remaining = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const n of nodes) {
    let count = 0;
    for (const d of n.deps) {
      if (d === n.key || !byKey.has(d)) continue;
      count++;
      const list = dependents.get(d) ?? [];
      list.push(n.key);
      dependents.set(d, list);
    }
    remaining.set(n.key, count);
  }
  const before = (a: T, b: T) => a.priority - b.priority || (a.sortName < b.sortName ? -1 : a.sortName > b.sortName ? 1 : 0);
  const heap = new MinHeap<T>(before);
  for (const n of nodes) if (remaining.get(n.key) === 0) heap.push(n);
  const out: T[] = [];
  const done = new Set<string>();
  while (out.length < nodes.length) {
    let next = heap.pop();
    if (!next) {
      // A cycle: take the first pending node in preferred order and carry on.
      next = nodes.filter((n) => !done.has(n.key)).sort(before)[0]!;
      onCycle?.(next);
    }
    if (done.has(next.key)) continue;
    done.add(next.key);
    out.push(next);
    for (const k of dependents.get(next.key) ?? []) {
      const left = remaining.get(k)! - 1;
      remaining.set(k, left);
      if (left === 0 && !done.has(k)) heap.push(byKey.get(k)!);
    }
  }
  return out;
}

class MinHeap<T> {
  private readonly items: T[] = [];
  private readonly less: (a: T, b: T) => number;
  constructor(less: (a: T, b: T) => number) {
    this.less = less;
  }
  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(a[i]!, a[p]!) >= 0) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!) < 0) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!) < 0) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}
