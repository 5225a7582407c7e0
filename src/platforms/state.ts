/**
 * In-memory {@link AttestationState}: for unit tests and single-process tools. The server binds
 * the same interface to the SQL store. Operations are synchronous inside, hence atomic in one
 * process.
 */
import type { AttestationState, CredentialRecord, RedeemOutcome } from './attestor.js';

interface Stored {
  readonly record: CredentialRecord;
  usedAt: number | undefined;
}

export class MemoryAttestationState implements AttestationState {
  readonly #consumed = new Map<string, number>();
  readonly #credentials = new Map<string, Stored>();

  async consumeOnce(kind: string, key: string, expiresAt: number): Promise<boolean> {
    const id = `${kind}\u0000${key}`;
    if (this.#consumed.has(id)) return false;
    this.#consumed.set(id, expiresAt);
    return true;
  }

  async putCredential(kind: string, keyHash: string, record: CredentialRecord): Promise<void> {
    const id = `${kind}\u0000${keyHash}`;
    if (this.#credentials.has(id)) throw new Error('credential already exists');
    this.#credentials.set(id, { record: Object.freeze({ expiresAt: record.expiresAt, data: Object.freeze({ ...record.data }) }), usedAt: undefined });
  }

  async redeemCredential(kind: string, keyHash: string, now: number): Promise<RedeemOutcome> {
    const stored = this.#credentials.get(`${kind}\u0000${keyHash}`);
    if (stored === undefined) return { outcome: 'unknown' };
    if (stored.usedAt !== undefined) return { outcome: 'used', record: stored.record };
    stored.usedAt = now;
    return { outcome: 'redeemed', record: stored.record };
  }

  /** Drops records whose expiry is before `now` (the SQL binding does the same in a job). */
  purgeExpired(now: number): number {
    let removed = 0;
    for (const [id, exp] of this.#consumed) if (exp < now) { this.#consumed.delete(id); removed++; }
    for (const [id, s] of this.#credentials) if (s.record.expiresAt < now) { this.#credentials.delete(id); removed++; }
    return removed;
  }
}
