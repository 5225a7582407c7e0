/** The CA's sealed key material (already encrypted by the PKI layer), versioned for compare-and-swap. */
import type { Scope } from '../scope.js';
import { conflict, fromJson, toJson } from './json.js';

export interface CaState {
  /** Increments on every write; pass it back to `put` to detect a concurrent rotation. */
  readonly version: number;
  /** Opaque JSON produced by the PKI keystore (never plaintext keys). */
  readonly sealed: unknown;
  readonly updatedAt: number;
}

export class CaStateRepository {
  readonly #scope: Scope;
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  async get(): Promise<CaState | null> {
    const row = await this.#scope.read((db) => db.selectFrom('ca_state').selectAll().where('id', '=', 1).executeTakeFirst());
    return row ? { version: Number(row.version), sealed: fromJson(row.sealed), updatedAt: Number(row.updated_at) } : null;
  }

  /**
   * Writes the sealed state if the stored version is still `expectedVersion` (null: none stored
   * yet). Returns the new version; ERR_STORE_CONFLICT when another writer got there first.
   */
  async put(sealed: unknown, expectedVersion: number | null): Promise<number> {
    return this.#scope.atomic(async (s) => {
      const now = s.now;
      if (expectedVersion === null) {
        const existing = await s.db.selectFrom('ca_state').select('version').where('id', '=', 1).executeTakeFirst();
        if (existing) throw conflict('CA state already exists', { version: Number(existing.version) });
        await s.db.insertInto('ca_state').values({ id: 1, version: 1, sealed: toJson(sealed), updated_at: now }).execute();
        await s.recordChange('ca', 'ca', 'upsert');
        return 1;
      }
      const res = await s.db.updateTable('ca_state')
        .set({ version: expectedVersion + 1, sealed: toJson(sealed), updated_at: now })
        .where('id', '=', 1).where('version', '=', expectedVersion)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) throw conflict('CA state changed concurrently', { expectedVersion });
      await s.recordChange('ca', 'ca', 'upsert');
      return expectedVersion + 1;
    });
  }
}
