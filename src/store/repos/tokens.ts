/**
 * Join tokens and admin tokens. Only SHA-256 hashes are stored: a database leak yields no usable
 * token. Lookups are by hash equality in SQL; since the secret has 256 bits of entropy and only
 * its hash is compared, timing reveals nothing usable about a valid token.
 */
import { createHash, randomBytes } from 'node:crypto';
import { isSpiffeId } from '../../events/types.js';
import type { Scope } from '../scope.js';
import { conflict, invalid, notFound, requireString } from './json.js';

export type AdminRole = 'admin' | 'operator' | 'viewer' | 'auditor';
export const ADMIN_ROLES: readonly AdminRole[] = Object.freeze(['admin', 'operator', 'viewer', 'auditor']);

export interface JoinTokenRecord {
  /** SPIFFE ID the token admits the agent as, if it was bound to one. */
  readonly spiffeId: string | null;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly usedAt: number;
  readonly usedBy: string;
}

export interface AdminTokenRecord {
  readonly name: string;
  readonly role: AdminRole;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly revoked: boolean;
}

/** A fresh 256-bit secret token, URL-safe. */
export function newSecretToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The stored form of a token. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function checkToken(token: string): void {
  if (typeof token !== 'string' || token.length < 16 || token.length > 512) throw invalid('token', 'expected 16 to 512 characters');
}

export class JoinTokenRepository {
  readonly #scope: Scope;
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  /** Stores a join token (hashed) valid for `ttlMs`. */
  async create(input: { token: string; ttlMs: number; spiffeId?: string }): Promise<{ expiresAt: number }> {
    checkToken(input.token);
    if (!Number.isSafeInteger(input.ttlMs) || input.ttlMs <= 0) throw invalid('ttlMs', 'expected a positive integer');
    if (input.spiffeId !== undefined && !isSpiffeId(input.spiffeId)) throw invalid('spiffeId', 'not a valid SPIFFE ID');
    const now = this.#scope.now;
    const expiresAt = now + input.ttlMs;
    await this.#scope.read((db) => db.insertInto('join_tokens').values({
      token_hash: hashToken(input.token), spiffe_id: input.spiffeId ?? null, created_at: now, expires_at: expiresAt, used_at: null, used_by: null,
    }).execute());
    return { expiresAt };
  }

  /**
   * Consumes a token once. One conditional UPDATE does it, so of any number of concurrent
   * consumers exactly one gets the record; everyone else (and any unknown, used or expired
   * token) gets null — deliberately the same answer, so callers cannot probe which it was.
   */
  async consume(token: string, usedBy: string): Promise<JoinTokenRecord | null> {
    if (typeof token !== 'string' || token.length < 16 || token.length > 512) return null;
    requireString('usedBy', usedBy, 256);
    const now = this.#scope.now;
    const row = await this.#scope.read((db) => db.updateTable('join_tokens')
      .set({ used_at: now, used_by: usedBy })
      .where('token_hash', '=', hashToken(token))
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .returningAll()
      .executeTakeFirst());
    return row ? { spiffeId: row.spiffe_id, createdAt: Number(row.created_at), expiresAt: Number(row.expires_at), usedAt: now, usedBy } : null;
  }

  /** Deletes tokens that expired before `now` (used ones are kept until then for audit). */
  async pruneExpired(): Promise<number> {
    const res = await this.#scope.read((db) => db.deleteFrom('join_tokens').where('expires_at', '<=', this.#scope.now).executeTakeFirst());
    return Number(res.numDeletedRows);
  }
}

export class AdminTokenRepository {
  readonly #scope: Scope;
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  async create(input: { token: string; name: string; role: AdminRole; expiresAt?: number }): Promise<AdminTokenRecord> {
    checkToken(input.token);
    requireString('name', input.name, 128);
    if (!ADMIN_ROLES.includes(input.role)) throw invalid('role', `expected one of ${ADMIN_ROLES.join(', ')}`);
    const now = this.#scope.now;
    const row = { token_hash: hashToken(input.token), name: input.name, role: input.role, created_at: now, expires_at: input.expiresAt ?? null, revoked: 0 };
    try {
      await this.#scope.read((db) => db.insertInto('admin_tokens').values(row).execute());
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_STORE_CONFLICT') throw conflict('an admin token with this name exists', { name: input.name });
      throw e;
    }
    return { name: row.name, role: input.role, createdAt: now, expiresAt: row.expires_at, revoked: false };
  }

  /** The token's identity if it is known, not revoked and not expired; otherwise null. */
  async verify(token: string): Promise<AdminTokenRecord | null> {
    if (typeof token !== 'string' || token.length < 16 || token.length > 512) return null;
    const r = await this.#scope.read((db) => db.selectFrom('admin_tokens').selectAll().where('token_hash', '=', hashToken(token)).executeTakeFirst());
    if (!r || Number(r.revoked) === 1) return null;
    const expiresAt = r.expires_at === null ? null : Number(r.expires_at);
    if (expiresAt !== null && expiresAt <= this.#scope.now) return null;
    return { name: r.name, role: r.role as AdminRole, createdAt: Number(r.created_at), expiresAt, revoked: false };
  }

  async revoke(name: string): Promise<void> {
    const res = await this.#scope.read((db) => db.updateTable('admin_tokens').set({ revoked: 1 }).where('name', '=', name).executeTakeFirst());
    if (Number(res.numUpdatedRows) !== 1) throw notFound('admin token', name);
  }

  async list(): Promise<AdminTokenRecord[]> {
    const rows = await this.#scope.read((db) => db.selectFrom('admin_tokens').select(['name', 'role', 'created_at', 'expires_at', 'revoked']).orderBy('name').execute());
    return rows.map((r) => ({ name: r.name, role: r.role as AdminRole, createdAt: Number(r.created_at), expiresAt: r.expires_at === null ? null : Number(r.expires_at), revoked: Number(r.revoked) === 1 }));
  }
}
