/** The change log read side: what changed after a resource version, for the watch stream. */
import type { ChangeKind, Scope } from '../scope.js';
import { invalid } from './json.js';

export interface Change {
  readonly version: number;
  readonly kind: ChangeKind;
  readonly resourceId: string;
  readonly op: 'upsert' | 'delete';
  readonly at: number;
}

export interface ChangesSince {
  readonly changes: readonly Change[];
  /** The newest version in the log (resume from here when `changes` is empty). */
  readonly latest: number;
  /**
   * True when changes after the requested version were pruned: the watcher must do a full
   * resync (re-list everything) and continue from `latest`.
   */
  readonly compacted: boolean;
}

export class ChangeRepository {
  readonly #scope: Scope;
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  async latest(): Promise<number> {
    const row = await this.#scope.read((db) => db.selectFrom('change_log').select((eb) => eb.fn.max('version').as('m')).executeTakeFirst());
    const fromLog = row?.m === null || row?.m === undefined ? 0 : Number(row.m);
    return Math.max(fromLog, await this.#compactedThrough());
  }

  async #compactedThrough(): Promise<number> {
    const row = await this.#scope.read((db) => db.selectFrom('store_meta').select('value').where('key', '=', 'change_log.compacted_through').executeTakeFirst());
    return row ? Number(row.value) : 0;
  }

  /** Changes with version > `after`, oldest first, at most `limit`. */
  async since(after: number, limit = 1000): Promise<ChangesSince> {
    if (!Number.isSafeInteger(after) || after < 0) throw invalid('after', 'expected a non-negative integer');
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) throw invalid('limit', 'expected 1 to 10000');
    return this.#scope.snapshot(async (s) => {
      const repo = new ChangeRepository(s);
      const compactedThrough = await repo.#compactedThrough();
      const latest = await repo.latest();
      if (after < compactedThrough) return { changes: [], latest, compacted: true };
      const rows = await s.db.selectFrom('change_log').selectAll().where('version', '>', after).orderBy('version').limit(limit).execute();
      return {
        changes: rows.map((r) => ({ version: Number(r.version), kind: r.kind as ChangeKind, resourceId: r.resource_id, op: r.op as 'upsert' | 'delete', at: Number(r.at) })),
        latest,
        compacted: false,
      };
    });
  }

  /**
   * Drops log rows recorded before `cutoff` (ms since epoch), always keeping the newest one so
   * `latest()` never moves backwards. Watchers further behind than the cutoff get `compacted`
   * and resync in full, which is correct; only slower. Returns how many rows went.
   */
  async pruneOlderThan(cutoff: number): Promise<number> {
    if (!Number.isSafeInteger(cutoff)) throw invalid('cutoff', 'expected an integer time in ms');
    return this.#scope.atomic(async (s) => {
      const newest = await s.db.selectFrom('change_log').select((eb) => eb.fn.max('version').as('m')).executeTakeFirst();
      const old = await s.db.selectFrom('change_log').select((eb) => eb.fn.max('version').as('m')).where('at', '<', cutoff).executeTakeFirst();
      if (old?.m === null || old?.m === undefined) return 0;
      const through = Math.min(Number(old.m), Number(newest?.m ?? 0) - 1);
      if (through < 1) return 0;
      return new ChangeRepository(s).prune(through);
    });
  }

  /** Drops log rows up to and including `through`; watchers behind it get `compacted`. */
  async prune(through: number): Promise<number> {
    return this.#scope.atomic(async (s) => {
      const res = await s.db.deleteFrom('change_log').where('version', '<=', through).executeTakeFirst();
      const current = await new ChangeRepository(s).#compactedThrough();
      if (through > current) {
        await s.db.insertInto('store_meta').values({ key: 'change_log.compacted_through', value: String(through) })
          .onConflict((oc) => oc.column('key').doUpdateSet({ value: String(through) }))
          .execute();
      }
      return Number(res.numDeletedRows);
    });
  }
}
