// Opens a fresh store per test for each dialect, plus raw SQL access to check what is stored.
// SQLite: a WAL file in a temp dir. PostgreSQL: a unique schema at 127.0.0.1:5432/test
// (WARD_TEST_PG_URL overrides), dropped afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { ManualClock } from '../../../src/core/clock.js';
import { openStore, type Store } from '../../../src/store/index.js';

export const PG_BASE_URL = process.env['WARD_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface Harness {
  readonly name: 'sqlite' | 'postgres';
  readonly url: string;
  readonly clock: ManualClock;
  readonly store: Store;
  /** Opens another store on the same database (another replica/process). */
  reopen(): Promise<Store>;
  /**
   * A second writer for concurrency tests: another replica (PostgreSQL), or the same store for
   * SQLite, where one server process owns the file and concurrency is between async callers.
   */
  peer(): Promise<Store>;
  /** Runs raw SQL against the same database, bypassing the repositories. */
  raw(sql: string, params?: unknown[]): Promise<Array<Record<string, unknown>>>;
  cleanup(): Promise<void>;
}

export type HarnessFactory = () => Promise<Harness>;

export const sqliteHarness: HarnessFactory = async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-store-'));
  const url = `sqlite://${join(dir, 'ward.db')}`;
  const clock = new ManualClock('2026-03-01T00:00:00Z');
  const store = await openStore(url, { clock });
  const opened: Store[] = [store];
  return {
    name: 'sqlite', url, clock, store,
    async reopen() {
      const s = await openStore(url, { clock });
      opened.push(s);
      return s;
    },
    peer: async () => store,
    async raw(sql, params = []) {
      const db = new BetterSqlite3(join(dir, 'ward.db'), { timeout: 2000 });
      try {
        const stmt = db.prepare(sql);
        return stmt.reader ? (stmt.all(...params) as Array<Record<string, unknown>>) : (stmt.run(...params), []);
      } finally {
        db.close();
      }
    },
    async cleanup() {
      for (const s of opened) await s.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

export const postgresHarness: HarnessFactory = async () => {
  const schema = `ward_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  const url = `${PG_BASE_URL}${PG_BASE_URL.includes('?') ? '&' : '?'}schema=${schema}&connect_timeout=5`;
  const clock = new ManualClock('2026-03-01T00:00:00Z');
  const store = await openStore(url, { clock, poolSize: 4 });
  const opened: Store[] = [store];
  const rawClient = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: PG_BASE_URL, connectionTimeoutMillis: 5000 });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  const reopen = async (): Promise<Store> => {
    const s = await openStore(url, { clock, poolSize: 4 });
    opened.push(s);
    return s;
  };
  return {
    name: 'postgres', url, clock, store, reopen,
    peer: reopen,
    raw(sql, params = []) {
      return rawClient(async (c) => {
        await c.query(`set search_path = ${schema}`);
        let i = 0;
        return (await c.query(sql.replace(/\?/g, () => `$${++i}`), params)).rows as Array<Record<string, unknown>>;
      });
    },
    async cleanup() {
      for (const s of opened) await s.close().catch(() => undefined);
      await rawClient((c) => c.query(`drop schema if exists ${schema} cascade`));
    },
  };
};
