/**
 * The attestors' one-time state (ADR 0051) in SQL, so join tokens and replay records survive a
 * restart and are shared by every replica. It satisfies `AttestationState` from
 * src/platforms/attestor.ts structurally (the store does not import the platforms layer; the
 * server assigns one to the other, so the compiler checks they match).
 *
 * Every operation is one statement, hence atomic across connections, replicas and processes:
 * - `consumeOnce`: INSERT ... ON CONFLICT DO NOTHING; only the inserting call sees a row back.
 * - `redeemCredential`: UPDATE ... SET used_at WHERE used_at IS NULL RETURNING; concurrent
 *   updaters serialise on the row and re-check the condition, so exactly one gets the row.
 * Keys are hashes or public identifiers chosen by the attestor; no secret is ever stored.
 */
import type { Scope } from '../scope.js';
import { conflict, invalid } from './json.js';

/** Mirror of `CredentialRecord` (src/platforms/attestor.ts). */
export interface StoredCredential {
  readonly expiresAt: number;
  readonly data: Readonly<Record<string, string>>;
}

/** Mirror of `RedeemOutcome` (src/platforms/attestor.ts). */
export type CredentialRedeemOutcome =
  | { readonly outcome: 'redeemed'; readonly record: StoredCredential }
  | { readonly outcome: 'used'; readonly record: StoredCredential }
  | { readonly outcome: 'unknown' };

/** What {@link AttestationStateRepository.pruneExpired} removed. */
export interface AttestationPruneResult {
  readonly credentials: number;
  readonly consumed: number;
}

const KIND_MAX = 64;
const KEY_MAX = 512;
const DATA_MAX = 64 * 1024;

function checkKind(kind: unknown): string {
  if (typeof kind !== 'string' || kind.length === 0 || kind.length > KIND_MAX) throw invalid('kind', `expected 1 to ${KIND_MAX} characters`);
  return kind;
}

function checkKey(field: string, key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > KEY_MAX) throw invalid(field, `expected 1 to ${KEY_MAX} characters`);
  return key;
}

function checkTime(field: string, t: unknown): number {
  if (typeof t !== 'number' || !Number.isSafeInteger(t)) throw invalid(field, 'expected an integer time in ms');
  return t;
}

function encodeData(data: unknown): string {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw invalid('data', 'expected a map of strings');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data)) {
    if (typeof v !== 'string') throw invalid('data', 'expected a map of strings');
    out[k] = v;
  }
  const text = JSON.stringify(out);
  if (text.length > DATA_MAX) throw invalid('data', `at most ${DATA_MAX} bytes`);
  return text;
}

function decode(row: { data: string; expires_at: number }): StoredCredential {
  const parsed = JSON.parse(row.data) as Record<string, string>;
  return Object.freeze({ expiresAt: Number(row.expires_at), data: Object.freeze({ ...parsed }) });
}

export class AttestationStateRepository {
  readonly #scope: Scope;
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  /**
   * Records `(kind, key)` as used until `expiresAt`. True when this call recorded it, false when
   * it was already recorded (a replay) — even if that record has expired but is not yet pruned,
   * so a replay is never admitted by a slow prune.
   */
  async consumeOnce(kind: string, key: string, expiresAt: number): Promise<boolean> {
    checkKind(kind);
    checkKey('key', key);
    checkTime('expiresAt', expiresAt);
    const now = this.#scope.now;
    const row = await this.#scope.read((db) => db.insertInto('attestation_consumed')
      .values({ kind, key, consumed_at: now, expires_at: expiresAt })
      .onConflict((oc) => oc.columns(['kind', 'key']).doNothing())
      .returning('kind')
      .executeTakeFirst());
    return row !== undefined;
  }

  /** Stores a one-time credential; ERR_STORE_CONFLICT if `(kind, keyHash)` exists. */
  async putCredential(kind: string, keyHash: string, record: StoredCredential): Promise<void> {
    checkKind(kind);
    checkKey('keyHash', keyHash);
    if (record === null || typeof record !== 'object') throw invalid('record', 'expected {expiresAt, data}');
    const expiresAt = checkTime('expiresAt', record.expiresAt);
    const data = encodeData(record.data);
    try {
      await this.#scope.read((db) => db.insertInto('attestation_credentials')
        .values({ kind, key_hash: keyHash, data, created_at: this.#scope.now, expires_at: expiresAt, used_at: null })
        .execute());
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_STORE_CONFLICT') throw conflict('the credential already exists', { kind });
      throw e;
    }
  }

  /**
   * Marks the credential used and returns it (`redeemed`); `used` if it was already redeemed;
   * `unknown` if it was never stored (or was pruned after expiring). Expiry is the caller's to
   * judge from `record.expiresAt`, as the contract says: an expired credential is still marked
   * used, so it cannot be redeemed later either.
   */
  async redeemCredential(kind: string, keyHash: string, now: number): Promise<CredentialRedeemOutcome> {
    checkKind(kind);
    checkKey('keyHash', keyHash);
    checkTime('now', now);
    const won = await this.#scope.read((db) => db.updateTable('attestation_credentials')
      .set({ used_at: now })
      .where('kind', '=', kind)
      .where('key_hash', '=', keyHash)
      .where('used_at', 'is', null)
      .returning(['data', 'expires_at'])
      .executeTakeFirst());
    if (won) return { outcome: 'redeemed', record: decode(won) };
    const seen = await this.#scope.read((db) => db.selectFrom('attestation_credentials')
      .select(['data', 'expires_at'])
      .where('kind', '=', kind)
      .where('key_hash', '=', keyHash)
      .executeTakeFirst());
    return seen ? { outcome: 'used', record: decode(seen) } : { outcome: 'unknown' };
  }

  /** Deletes credentials and replay records whose expiry is before `now` (default: the clock). */
  async pruneExpired(now = this.#scope.now): Promise<AttestationPruneResult> {
    return this.#scope.atomic(async (s) => {
      const a = await s.db.deleteFrom('attestation_credentials').where('expires_at', '<', now).executeTakeFirst();
      const b = await s.db.deleteFrom('attestation_consumed').where('expires_at', '<', now).executeTakeFirst();
      return { credentials: Number(a.numDeletedRows), consumed: Number(b.numDeletedRows) };
    });
  }
}
