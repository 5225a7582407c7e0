/**
 * A scope is where repository methods run: the root database, or one open transaction.
 * `atomic` runs a unit of work in the current transaction or opens one, so every multi-row
 * change commits whole or not at all. On PostgreSQL every write transaction first takes a
 * per-schema advisory lock: writes (and so change-log versions) commit in version order, which
 * is what lets a watcher resume from "everything after version N" without missing a change.
 */
import type { Database as SqliteDatabase } from 'better-sqlite3';
import { sql, type Kysely } from 'kysely';
import type { Clock } from '../core/clock.js';
import type { Database } from './database.js';
import type { Dialect } from './migrations.js';
import { guard, toStoreError } from './map-error.js';

export interface ScopeShared {
  readonly dialect: Dialect;
  readonly clock: Clock;
  /** Called after a transaction that recorded changes commits (local fan-out for SQLite). */
  readonly committed: (latestVersion: number) => void;
  /**
   * The SQLite connection itself, for the one hot path (event ingest) where a cached prepared
   * statement beats building a 900-parameter query per batch. It is the same single connection
   * Kysely uses, so statements run inside the current Kysely transaction.
   */
  readonly sqlite?: SqliteDatabase;
}

export class Scope {
  readonly db: Kysely<Database>;
  readonly shared: ScopeShared;
  /** Versions recorded in this transaction; null at the root. */
  readonly pending: number[] | null;

  constructor(db: Kysely<Database>, shared: ScopeShared, pending: number[] | null) {
    this.db = db;
    this.shared = shared;
    this.pending = pending;
  }

  get now(): number {
    return this.shared.clock.now();
  }

  /**
   * Runs `fn` inside a transaction (the current one if any). Repository code maps every error
   * it raises; with `callerCode` (Store.transaction) errors the caller's function throws itself
   * propagate unchanged, since repository calls inside it are already mapped.
   */
  atomic<T>(fn: (scope: Scope) => Promise<T>, callerCode = false): Promise<T> {
    if (this.pending !== null) return guard(() => fn(this));
    return (async () => {
      const pending: number[] = [];
      let thrown: { error: unknown } | null = null;
      let out: T;
      try {
        out = await this.db.transaction().execute(async (trx) => {
          if (this.shared.dialect === 'postgres') {
            await sql`select pg_advisory_xact_lock(hashtext('ward.writes:' || current_schema()))`.execute(trx);
          }
          try {
            return await fn(new Scope(trx, this.shared, pending));
          } catch (error) {
            thrown = { error };
            throw error;
          }
        });
      } catch (e) {
        if (callerCode && thrown !== null && (thrown as { error: unknown }).error === e) throw e;
        throw toStoreError(e);
      }
      if (pending.length > 0) this.shared.committed(Math.max(...pending));
      return out;
    })();
  }

  /**
   * Runs several reads against one consistent snapshot (PostgreSQL: REPEATABLE READ; SQLite:
   * one transaction), without taking the write lock.
   */
  snapshot<T>(fn: (scope: Scope) => Promise<T>): Promise<T> {
    if (this.pending !== null) return guard(() => fn(this));
    return guard(() => {
      const tx = this.shared.dialect === 'postgres' ? this.db.transaction().setIsolationLevel('repeatable read') : this.db.transaction();
      return tx.execute((trx) => fn(new Scope(trx, this.shared, [])));
    });
  }

  /** Reads outside a transaction still map errors. */
  read<T>(fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
    return guard(() => fn(this.db));
  }

  /** Appends to the change log (inside a transaction) and returns the new resource version. */
  async recordChange(kind: ChangeKind, resourceId: string, op: 'upsert' | 'delete'): Promise<number> {
    if (this.pending === null) throw new Error('recordChange outside a transaction');
    const row = await this.db.insertInto('change_log')
      .values({ kind, resource_id: resourceId, op, at: this.now })
      .returning('version')
      .executeTakeFirstOrThrow();
    const version = Number(row.version);
    if (this.shared.dialect === 'postgres') {
      // The channel is database-wide; the payload names the schema so replicas of other
      // Ward installations sharing the database ignore it. Delivered at commit, never before.
      await sql`select pg_notify(${NOTIFY_CHANNEL}, current_schema() || ':' || ${`${version}`})`.execute(this.db);
    }
    this.pending.push(version);
    return version;
  }
}

/** What changed: the watch stream maps kinds to what each agent must refetch. */
export type ChangeKind = 'ca' | 'entry' | 'agent' | 'workload' | 'attributes' | 'image' | 'policy' | 'revocation';

/** PostgreSQL LISTEN/NOTIFY channel for change fan-out to replicas. */
export const NOTIFY_CHANNEL = 'ward_changes';
