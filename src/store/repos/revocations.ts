/** Revoked SVID serials, pushed to every agent until the certificate would have expired anyway. */
import { isSpiffeId } from '../../events/types.js';
import type { Scope } from '../scope.js';
import { invalid, requireString } from './json.js';

export interface Revocation {
  readonly serial: string;
  readonly spiffeId: string;
  readonly reason: string;
  readonly revokedAt: number;
  readonly expiresAt: number;
}

const SERIAL_RE = /^[0-9a-fA-F]{1,64}$/;

export class RevocationRepository {
  readonly #scope: Scope;
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  /** Revokes a serial; revoking twice keeps the first record. Returns true if newly revoked. */
  async add(r: { serial: string; spiffeId: string; reason: string; expiresAt: number }): Promise<boolean> {
    if (!SERIAL_RE.test(r.serial)) throw invalid('serial', 'expected a hex serial number');
    if (!isSpiffeId(r.spiffeId)) throw invalid('spiffeId', 'not a valid SPIFFE ID');
    requireString('reason', r.reason, 512);
    return this.#scope.atomic(async (s) => {
      const res = await s.db.insertInto('revocations')
        .values({ serial: r.serial.toLowerCase(), spiffe_id: r.spiffeId, reason: r.reason, revoked_at: s.now, expires_at: r.expiresAt })
        .onConflict((oc) => oc.column('serial').doNothing())
        .executeTakeFirst();
      const added = Number(res.numInsertedOrUpdatedRows ?? 0) === 1;
      if (added) await s.recordChange('revocation', r.serial.toLowerCase(), 'upsert');
      return added;
    });
  }

  async isRevoked(serial: string): Promise<boolean> {
    const row = await this.#scope.read((db) => db.selectFrom('revocations').select('serial').where('serial', '=', serial.toLowerCase()).executeTakeFirst());
    return row !== undefined;
  }

  /** Revocations whose certificates have not expired yet (what agents must know). */
  async listActive(): Promise<Revocation[]> {
    const rows = await this.#scope.read((db) => db.selectFrom('revocations').selectAll().where('expires_at', '>', this.#scope.now).orderBy('revoked_at').orderBy('serial').execute());
    return rows.map((r) => ({ serial: r.serial, spiffeId: r.spiffe_id, reason: r.reason, revokedAt: Number(r.revoked_at), expiresAt: Number(r.expires_at) }));
  }

  /** Forgets revocations of certificates that have expired. */
  async pruneExpired(): Promise<number> {
    const res = await this.#scope.read((db) => db.deleteFrom('revocations').where('expires_at', '<=', this.#scope.now).executeTakeFirst());
    return Number(res.numDeletedRows);
  }
}
