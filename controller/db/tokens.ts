// API bearer tokens: only the SHA-256 of a token is stored; the token itself is shown once.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { CosmosBackupError } from '../../shared/errors.ts';
import type { Queryable } from './db.ts';

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export interface TokenInfo { id: string; name: string; createdAt: Date; lastUsedAt: Date | null }

/** Creates a token and returns it in clear, the only time it exists outside its holder. */
export async function createToken(db: Queryable, name: string): Promise<{ token: string; info: TokenInfo }> {
  if (!/^[A-Za-z0-9._@-]{1,64}$/.test(name)) throw new CosmosBackupError('INVALID_ARGUMENT', 'token name: use 1-64 letters, digits, ".", "_", "@" or "-"');
  const token = 'cbk_' + randomBytes(32).toString('base64url');
  const id = randomUUID();
  const rows = await db.query(
    `INSERT INTO api_tokens (id, name, token_sha256) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING id, name, created_at, last_used_at`,
    [id, name, sha256(token)]);
  if (!rows.length) throw new CosmosBackupError('ALREADY_EXISTS', `a token named "${name}" already exists`);
  return { token, info: toInfo(rows[0]!) };
}

export async function findToken(db: Queryable, token: string): Promise<TokenInfo | undefined> {
  const rows = await db.query('UPDATE api_tokens SET last_used_at = now() WHERE token_sha256 = $1 RETURNING id, name, created_at, last_used_at', [sha256(token)]);
  return rows[0] ? toInfo(rows[0]) : undefined;
}

export async function listTokens(db: Queryable): Promise<TokenInfo[]> {
  return (await db.query('SELECT id, name, created_at, last_used_at FROM api_tokens ORDER BY created_at')).map(toInfo);
}

export async function revokeToken(db: Queryable, name: string): Promise<boolean> {
  return (await db.query('DELETE FROM api_tokens WHERE name = $1 RETURNING id', [name])).length > 0;
}

export async function tokenCount(db: Queryable): Promise<number> {
  return Number((await db.query('SELECT count(*) AS n FROM api_tokens'))[0]!.n);
}

function toInfo(r: Record<string, any>): TokenInfo {
  return { id: r.id, name: r.name, createdAt: new Date(r.created_at), lastUsedAt: r.last_used_at ? new Date(r.last_used_at) : null };
}

/** Revokes a token by id; refuses the last one (nobody could use the API any more). */
export async function revokeTokenById(db: Queryable, id: string): Promise<TokenInfo | undefined> {
  const rows = await db.query(
    `DELETE FROM api_tokens WHERE id = $1 AND (SELECT count(*) FROM api_tokens) > 1 RETURNING id, name, created_at, last_used_at`, [id]);
  if (rows[0]) return toInfo(rows[0]);
  if ((await db.query('SELECT 1 FROM api_tokens WHERE id = $1', [id])).length) {
    throw new CosmosBackupError('ALREADY_EXISTS', 'this is the last API token; create another one before revoking it');
  }
  return undefined;
}
