/**
 * The store: every repository the server needs over one Kysely instance, SQLite (embedded
 * default, WAL) or PostgreSQL (HA, several replicas), opened from a URL with the same schema
 * and migrations. `openStore` is the only entry point; it migrates before returning.
 *
 * @example
 * const store = await openStore('sqlite:///var/lib/ward/ward.db', { clock: systemClock });
 * await store.transaction(async (tx) => {
 *   const entry = await tx.entries.create({ ... });
 *   await tx.audit.append({ actor: 'admin', action: 'entry.create', resource: `entry/${entry.id}`, after: entry });
 * });
 */
import { EventEmitter } from 'node:events';
import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect, SqliteDriver, sql, type DatabaseConnection, type Driver, type SqliteDialectConfig } from 'kysely';
import pg from 'pg';
import { systemClock, type Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logging.js';
import type { Database } from './database.js';
import { StoreError } from './errors.js';
import { guard, toStoreError } from './map-error.js';
import { migrateToLatest, type Dialect } from './migrations.js';
import { NOTIFY_CHANNEL, Scope } from './scope.js';
import { parseStoreUrl, type StoreLocation } from './url.js';
import { AgentRepository, WorkloadRepository } from './repos/agents.js';
import { AttestationStateRepository } from './repos/attestation.js';
import { AttributeRepository } from './repos/attributes.js';
import { AuditRepository } from './repos/audit.js';
import { CaStateRepository } from './repos/ca-state.js';
import { ChangeRepository } from './repos/changes.js';
import { EntryRepository } from './repos/entries.js';
import { EventRepository } from './repos/events.js';
import { ImageRepository } from './repos/images.js';
import { PolicyRepository } from './repos/policies.js';
import { RevocationRepository } from './repos/revocations.js';
import { AdminTokenRepository, JoinTokenRepository } from './repos/tokens.js';

export interface StoreOptions {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** PostgreSQL pool size (default 10). */
  readonly poolSize?: number;
  /** Abort statements running longer than this (PostgreSQL; default 30 s). */
  readonly statementTimeoutMs?: number;
}

/** Every repository, bound to the root or to one transaction. */
export class Repositories {
  readonly ca: CaStateRepository;
  readonly entries: EntryRepository;
  readonly agents: AgentRepository;
  readonly workloads: WorkloadRepository;
  readonly attributes: AttributeRepository;
  readonly images: ImageRepository;
  readonly policies: PolicyRepository;
  readonly joinTokens: JoinTokenRepository;
  /** The attestors' one-time state (join tokens, replay records); see repos/attestation.ts. */
  readonly attestation: AttestationStateRepository;
  readonly adminTokens: AdminTokenRepository;
  readonly revocations: RevocationRepository;
  readonly audit: AuditRepository;
  readonly events: EventRepository;
  readonly changes: ChangeRepository;

  constructor(scope: Scope) {
    this.ca = new CaStateRepository(scope);
    this.entries = new EntryRepository(scope);
    this.agents = new AgentRepository(scope);
    this.workloads = new WorkloadRepository(scope);
    this.attributes = new AttributeRepository(scope);
    this.images = new ImageRepository(scope);
    this.policies = new PolicyRepository(scope);
    this.joinTokens = new JoinTokenRepository(scope);
    this.attestation = new AttestationStateRepository(scope);
    this.adminTokens = new AdminTokenRepository(scope);
    this.revocations = new RevocationRepository(scope);
    this.audit = new AuditRepository(scope);
    this.events = new EventRepository(scope);
    this.changes = new ChangeRepository(scope);
  }
}

/** Outcome of {@link Store.singleton}: whether this caller ran the job, and what it returned. */
export type SingletonRun<T> = { readonly ran: true; readonly result: T } | { readonly ran: false; readonly reason: 'locked' | 'recent' };

/** Called with the newest resource version after a change commits (on any replica, for PostgreSQL). */
export type ChangeListener = (latestVersion: number) => void;

export class Store extends Repositories {
  readonly dialect: Dialect;
  readonly #db: Kysely<Database>;
  readonly #scope: Scope;
  readonly #emitter: EventEmitter;
  readonly #logger: Logger;
  readonly #location: StoreLocation;
  #listener: pg.Client | null = null;
  #listenerStarting: Promise<void> | null = null;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #closed = false;

  /** @internal use {@link openStore} */
  constructor(db: Kysely<Database>, location: StoreLocation, clock: Clock, logger: Logger, sqlite?: BetterSqlite3.Database) {
    const emitter = new EventEmitter();
    const scope = new Scope(db, {
      dialect: location.dialect,
      clock,
      // SQLite has one writer (this process): fan out locally. PostgreSQL fans out through
      // LISTEN/NOTIFY so every replica, this one included, hears it the same way.
      committed: (v) => { if (location.dialect === 'sqlite') emitter.emit('change', v); },
      ...(sqlite ? { sqlite } : {}),
    }, null);
    super(scope);
    this.#emitter = emitter;
    this.#emitter.setMaxListeners(0);
    this.dialect = location.dialect;
    this.#db = db;
    this.#scope = scope;
    this.#logger = logger;
    this.#location = location;
  }

  /** Runs `fn` in one transaction: everything it writes commits together or not at all. */
  transaction<T>(fn: (tx: Repositories) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(closedError());
    return this.#scope.atomic((s) => fn(new Repositories(s)), true);
  }

  /**
   * Runs `fn` as a singleton job across every replica and process sharing the database: at most
   * one caller runs `job` at a time, and none runs it again within `minIntervalMs` of the last
   * run that committed (the last run time is kept in `store_meta`, so replicas ticking on their
   * own timers share one schedule). PostgreSQL: a transaction-level advisory lock taken with
   * `pg_try_advisory_xact_lock` (a replica that does not get it skips, never waits). SQLite:
   * the transaction's BEGIN IMMEDIATE write lock. Everything `fn` writes commits with the
   * last-run mark, or not at all.
   */
  singleton<T>(job: string, minIntervalMs: number, fn: (tx: Repositories) => Promise<T>): Promise<SingletonRun<T>> {
    if (this.#closed) return Promise.reject(closedError());
    if (!/^[a-z0-9._-]{1,64}$/.test(job)) return Promise.reject(new StoreError('ERR_STORE_INVALID', 'job: expected 1 to 64 of [a-z0-9._-]', { details: { field: 'job' } }));
    const shared = this.#scope.shared;
    const metaKey = `job.${job}.last_run`;
    return guard(() => this.#db.transaction().execute(async (trx): Promise<SingletonRun<T>> => {
      if (shared.dialect === 'postgres') {
        const got = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(hashtext(${`ward.job.${job}:`} || current_schema())) as locked`.execute(trx);
        if (got.rows[0]?.locked !== true) return { ran: false, reason: 'locked' };
      }
      const now = shared.clock.now();
      const last = await trx.selectFrom('store_meta').select('value').where('key', '=', metaKey).executeTakeFirst();
      if (last !== undefined && now - Number(last.value) < minIntervalMs) return { ran: false, reason: 'recent' };
      await trx.insertInto('store_meta').values({ key: metaKey, value: String(now) })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value: String(now) }))
        .execute();
      const result = await fn(new Repositories(new Scope(trx, shared, [])));
      return { ran: true, result };
    }));
  }

  /**
   * Subscribes to committed changes. For PostgreSQL the first subscriber starts a LISTEN
   * connection (reconnecting with a resync notification if it drops). Returns the unsubscribe.
   */
  async onChange(listener: ChangeListener): Promise<() => void> {
    if (this.#closed) throw closedError();
    this.#emitter.on('change', listener);
    if (this.#location.dialect === 'postgres') {
      try {
        await this.#startListener();
      } catch (e) {
        this.#emitter.off('change', listener);
        throw e;
      }
    }
    return () => { this.#emitter.off('change', listener); };
  }

  async #startListener(): Promise<void> {
    if (this.#listener) return;
    this.#listenerStarting ??= (async () => {
      const loc = this.#location as Extract<StoreLocation, { dialect: 'postgres' }>;
      const client = new pg.Client({ connectionString: loc.connectionString, connectionTimeoutMillis: loc.connectTimeoutMs });
      client.on('error', (err) => {
        this.#logger.warn({ err: { code: (err as { code?: string }).code } }, 'store: change listener lost its connection');
      });
      client.on('end', () => {
        if (this.#listener === client) this.#listener = null;
        if (!this.#closed) this.#scheduleReconnect();
      });
      client.on('notification', (msg) => {
        if (msg.channel !== NOTIFY_CHANNEL || !msg.payload) return;
        const sep = msg.payload.lastIndexOf(':');
        if (msg.payload.slice(0, sep) !== loc.schema) return;
        const version = Number(msg.payload.slice(sep + 1));
        if (Number.isSafeInteger(version)) this.#emitter.emit('change', version);
      });
      try {
        await client.connect();
        await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
      } catch (e) {
        client.removeAllListeners('end');
        await client.end().catch(() => undefined);
        throw toStoreError(e);
      }
      this.#listener = client;
    })().finally(() => { this.#listenerStarting = null; });
    await this.#listenerStarting;
  }

  #scheduleReconnect(): void {
    if (this.#reconnectTimer || this.#emitter.listenerCount('change') === 0) return;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      this.#startListener()
        .then(() => this.changes.latest())
        // Notifications sent while disconnected are lost: tell watchers to catch up from the log.
        .then((v) => this.#emitter.emit('change', v))
        .catch(() => this.#scheduleReconnect());
    }, 1000);
    this.#reconnectTimer.unref();
  }

  /** Fails with ERR_STORE_UNAVAILABLE when the database cannot answer (readiness probe). */
  async ping(): Promise<void> {
    if (this.#closed) throw closedError();
    await this.#scope.read((db) => sql`select 1`.execute(db));
  }

  /** Closes connections; every later call fails with ERR_STORE_UNAVAILABLE. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#emitter.removeAllListeners();
    const listener = this.#listener;
    this.#listener = null;
    if (listener) {
      listener.removeAllListeners('end');
      await listener.end().catch(() => undefined);
    }
    await this.#db.destroy();
  }
}

function closedError(): StoreError {
  return new StoreError('ERR_STORE_UNAVAILABLE', 'the store is closed');
}

// bigint (int8) columns come back from pg as strings by default; every int8 Ward stores is an
// epoch-ms time, a version or a sequence number, all below 2^53.
const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/**
 * SQLite transactions start with BEGIN IMMEDIATE: the write lock is taken up front, so two
 * processes sharing the file wait (busy_timeout) instead of failing on a lock upgrade mid-way.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class WardSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

async function connect(location: StoreLocation, options: StoreOptions): Promise<{ db: Kysely<Database>; sqlite?: BetterSqlite3.Database }> {
  if (location.dialect === 'sqlite') {
    let database: BetterSqlite3.Database;
    try {
      database = new BetterSqlite3(location.path, { timeout: 5000 });
      if (location.path !== ':memory:') database.pragma('journal_mode = WAL');
      database.pragma('synchronous = NORMAL');
      database.pragma('foreign_keys = ON');
    } catch (e) {
      throw toStoreError(e);
    }
    return { db: new Kysely<Database>({ dialect: new WardSqliteDialect({ database }) }), sqlite: database };
  }
  const pool = new pg.Pool({
    connectionString: location.connectionString,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: location.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: options.statementTimeoutMs ?? 30_000,
    options: `-c search_path=${location.schema}`,
    types: pgTypes,
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  const logger = options.logger ?? silentLogger;
  pool.on('error', (err) => logger.warn({ err: { code: (err as { code?: string }).code } }, 'store: idle connection lost'));
  // A connection dropping mid-query also emits 'error' on the client; the query itself fails
  // (and is mapped to ERR_STORE_UNAVAILABLE), so the event only needs a listener, not a crash.
  pool.on('connect', (client) => client.on('error', (err) => logger.warn({ err: { code: (err as { code?: string }).code } }, 'store: connection lost')));
  return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }) };
}

/**
 * Opens (and migrates) the store at `url`. Fails with ERR_STORE_UNAVAILABLE when the database
 * cannot be reached within the connect timeout, ERR_STORE_URL_INVALID for a bad URL, and
 * ERR_STORE_MIGRATION when the schema cannot be brought up to date.
 */
export async function openStore(url: string, options: StoreOptions = {}): Promise<Store> {
  const location = parseStoreUrl(url);
  const { db, sqlite } = await connect(location, options);
  try {
    await sql`select 1`.execute(db);
    try {
      await migrateToLatest(db, location.dialect, location.dialect === 'postgres' ? location.schema : null, () => (options.clock ?? systemClock).now());
    } catch (e) {
      const mapped = toStoreError(e);
      if (mapped.code === 'ERR_STORE_UNAVAILABLE' || mapped.code === 'ERR_STORE_MIGRATION') throw mapped;
      throw new StoreError('ERR_STORE_MIGRATION', 'the store schema could not be migrated', { cause: e });
    }
  } catch (e) {
    await db.destroy().catch(() => undefined);
    throw toStoreError(e);
  }
  return new Store(db, location, options.clock ?? systemClock, options.logger ?? silentLogger, sqlite);
}
