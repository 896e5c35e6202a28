// Which Cosmos DB accounts a policy covers, and which policy owns an account that several
// policies cover: only the highest-priority one processes it (product doc "policy priority").
import { z } from 'zod';

/** Every kind discovery knows; a policy's scope can hold any of them (Cassandra is then reported, not protected). */
export const AccountKinds = ['NoSql', 'MongoRU', 'PostgreSQL', 'Gremlin', 'Table', 'Cassandra'] as const;
export type AccountKind = (typeof AccountKinds)[number];
/** Kinds Azure offers no continuous backup for: configuration sessions report them with a warning. */
export const NO_CONTINUOUS_KINDS: readonly AccountKind[] = ['Cassandra'];
export const noContinuousReason = (kind: AccountKind) =>
  `${kind} accounts cannot use continuous backup (Azure supports it for NoSQL, MongoDB RU, Gremlin and Table); the account is not protected`;
/**
 * Cosmos DB for PostgreSQL clusters are not Cosmos DB accounts: Azure backs them up on its own and
 * the continuous-backup tier does not govern them, so configuration sessions never touch them.
 */
export const CONTINUOUS_NOT_APPLICABLE: readonly AccountKind[] = ['PostgreSQL'];
export const continuousNotApplicableReason = (kind: AccountKind) =>
  `continuous backup does not apply to ${kind === 'PostgreSQL' ? 'Cosmos DB for PostgreSQL clusters' : `${kind} accounts`} (Azure backs them up automatically); the cluster is protected by backups to a repository`;
/** Kinds that can be dumped to a repository; the others are protected by continuous backup only. */
export const DUMPABLE_KINDS: readonly AccountKind[] = ['MongoRU', 'PostgreSQL'];

export interface CloudAccount {
  /** ARM resource id */
  id: string;
  name: string;
  subscriptionId: string;
  resourceGroup: string;
  region: string;
  kind: AccountKind;
  tags: Record<string, string>;
}

const TagMatch = z.object({ name: z.string().min(1), value: z.string().optional() });
export const Scope = z.object({
  /** explicit accounts: ARM resource ids */
  accounts: z.array(z.string().min(1)).default([]),
  /** "<subscriptionId>/<resourceGroup>" */
  resourceGroups: z.array(z.string().regex(/^[^/]+\/[^/]+$/, 'expected "<subscriptionId>/<resourceGroup>"')).default([]),
  tags: z.array(TagMatch).default([]),
  exclusions: z.object({
    accounts: z.array(z.string().min(1)).default([]),
    tags: z.array(TagMatch).default([]),
  }).default({ accounts: [], tags: [] }),
}).refine((s) => s.accounts.length + s.resourceGroups.length + s.tags.length > 0, { message: 'scope selects nothing: give accounts, resourceGroups or tags' });
export type Scope = z.infer<typeof Scope>;

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
const tagMatches = (acc: CloudAccount, t: { name: string; value?: string }) =>
  Object.entries(acc.tags).some(([k, v]) => same(k, t.name) && (t.value === undefined || v === t.value));

export function inScope(acc: CloudAccount, scope: Scope): boolean {
  if (scope.exclusions.accounts.some((id) => same(id, acc.id))) return false;
  if (scope.exclusions.tags.some((t) => tagMatches(acc, t))) return false;
  return scope.accounts.some((id) => same(id, acc.id))
    || scope.resourceGroups.some((rg) => same(rg, `${acc.subscriptionId}/${acc.resourceGroup}`))
    || scope.tags.some((t) => tagMatches(acc, t));
}

export interface RankedPolicy {
  id: string;
  enabled: boolean;
  /** lower number = higher priority; ties go to the older policy */
  priority: number;
  createdAt: Date;
  scope: Scope;
}

export function byPriority(a: RankedPolicy, b: RankedPolicy): number {
  return a.priority - b.priority || a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : 1);
}

/** Account id -> id of the enabled policy that processes it. */
export function owners(policies: readonly RankedPolicy[], accounts: readonly CloudAccount[]): Map<string, string> {
  const out = new Map<string, string>();
  const ranked = policies.filter((p) => p.enabled).sort(byPriority);
  for (const acc of accounts) {
    const owner = ranked.find((p) => inScope(acc, p.scope));
    if (owner) out.set(acc.id.toLowerCase(), owner.id);
  }
  return out;
}
