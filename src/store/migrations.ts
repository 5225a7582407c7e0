/**
 * The schema, as an ordered list of migrations shared by both dialects. Only the few places
 * where SQLite and PostgreSQL differ (auto-increment keys, the append-only trigger) branch on the
 * dialect. Migrations are append-only: never edit a published one, add the next.
 */
import { sql, type Kysely, type Migration } from 'kysely';
import { StoreError } from './errors.js';

export type Dialect = 'sqlite' | 'postgres';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations run against the schema as it was, not as typed today
type AnyDb = Kysely<any>;

function serialKey(dialect: Dialect): 'integer' | 'bigserial' {
  return dialect === 'sqlite' ? 'integer' : 'bigserial';
}

async function appendOnly(db: AnyDb, dialect: Dialect, table: string): Promise<void> {
  if (dialect === 'sqlite') {
    for (const op of ['UPDATE', 'DELETE']) {
      await sql.raw(`CREATE TRIGGER ${table}_no_${op.toLowerCase()} BEFORE ${op} ON ${table} BEGIN SELECT RAISE(ABORT, '${table} is append-only'); END`).execute(db);
    }
  } else {
    await sql.raw(`CREATE FUNCTION ${table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '${table} is append-only'; END $$`).execute(db);
    await sql.raw(`CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${table}_append_only()`).execute(db);
  }
}

function initial(dialect: Dialect): Migration {
  return {
    async up(db: AnyDb): Promise<void> {
      const s = db.schema;
      const autoId = (name: string) => (t: ReturnType<typeof s.createTable>) =>
        dialect === 'sqlite'
          ? t.addColumn(name, 'integer', (c) => c.primaryKey().autoIncrement())
          : t.addColumn(name, serialKey(dialect), (c) => c.primaryKey());

      await s.createTable('store_meta')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();

      await s.createTable('ca_state')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('version', 'bigint', (c) => c.notNull())
        .addColumn('sealed', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();

      await s.createTable('entries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('spiffe_id', 'text', (c) => c.notNull())
        .addColumn('parent_id', 'text', (c) => c.notNull())
        .addColumn('selectors', 'text', (c) => c.notNull())
        .addColumn('selectors_key', 'text', (c) => c.notNull())
        .addColumn('ttl_seconds', 'integer', (c) => c.notNull())
        .addColumn('admin', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('downstream', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('revision', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('entries_identity_unique', ['spiffe_id', 'parent_id', 'selectors_key'])
        .execute();
      await s.createIndex('entries_parent_idx').on('entries').column('parent_id').execute();

      await s.createTable('agents')
        .addColumn('agent_id', 'text', (c) => c.primaryKey())
        .addColumn('spiffe_id', 'text', (c) => c.notNull())
        .addColumn('attestation_type', 'text', (c) => c.notNull())
        .addColumn('selectors', 'text', (c) => c.notNull())
        .addColumn('first_seen', 'bigint', (c) => c.notNull())
        .addColumn('last_seen', 'bigint', (c) => c.notNull())
        .addColumn('revoked', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();

      await s.createTable('svids')
        .addColumn('serial', 'text', (c) => c.primaryKey())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('spiffe_id', 'text', (c) => c.notNull())
        .addColumn('issued_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await s.createIndex('svids_agent_idx').on('svids').column('agent_id').execute();

      await s.createTable('workloads')
        .addColumn('spiffe_id', 'text', (c) => c.primaryKey())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('image_digest', 'text')
        .addColumn('first_seen', 'bigint', (c) => c.notNull())
        .addColumn('last_seen', 'bigint', (c) => c.notNull())
        .execute();
      await s.createIndex('workloads_image_idx').on('workloads').column('image_digest').execute();

      await s.createTable('attributes')
        .addColumn('spiffe_id', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('observed_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('attributes_pk', ['spiffe_id', 'source', 'key'])
        .execute();

      await s.createTable('image_scans')
        .addColumn('image_digest', 'text', (c) => c.notNull())
        .addColumn('scanner', 'text', (c) => c.notNull())
        .addColumn('attributes', 'text', (c) => c.notNull())
        .addColumn('summary', 'text', (c) => c.notNull())
        .addColumn('imported_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('image_scans_pk', ['image_digest', 'scanner'])
        .execute();

      await s.createTable('provenance')
        .addColumn('image_digest', 'text', (c) => c.primaryKey())
        .addColumn('attributes', 'text', (c) => c.notNull())
        .addColumn('statement', 'text', (c) => c.notNull())
        .addColumn('verified', 'integer', (c) => c.notNull())
        .addColumn('imported_at', 'bigint', (c) => c.notNull())
        .execute();

      await s.createTable('policies')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('yaml', 'text', (c) => c.notNull())
        .addColumn('parsed', 'text', (c) => c.notNull())
        .addColumn('version', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();

      await s.createTable('join_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('spiffe_id', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .addColumn('used_by', 'text')
        .execute();

      await s.createTable('admin_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .addColumn('revoked', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();

      await s.createTable('revocations')
        .addColumn('serial', 'text', (c) => c.primaryKey())
        .addColumn('spiffe_id', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();

      await autoId('id')(s.createTable('audit_log'))
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('resource', 'text', (c) => c.notNull())
        .addColumn('before', 'text')
        .addColumn('after', 'text')
        .execute();
      await appendOnly(db, dialect, 'audit_log');

      await autoId('id')(s.createTable('events'))
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('class_uid', 'integer', (c) => c.notNull())
        .addColumn('spiffe_id', 'text', (c) => c.notNull())
        .addColumn('time', 'bigint', (c) => c.notNull())
        .addColumn('severity_id', 'integer', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('received_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('events_agent_seq_unique', ['agent_id', 'seq'])
        .execute();
      await s.createIndex('events_spiffe_time_idx').on('events').columns(['spiffe_id', 'time']).execute();

      await autoId('version')(s.createTable('change_log'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('resource_id', 'text', (c) => c.notNull())
        .addColumn('op', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .execute();
    },
    async down(): Promise<void> {
      throw new Error('Ward migrations are forward-only');
    },
  };
}

/** 0002: the attestors' one-time state (ADR 0051), shared by every replica and kept across restarts. */
function attestationState(): Migration {
  return {
    async up(db: AnyDb): Promise<void> {
      const s = db.schema;
      await s.createTable('attestation_credentials')
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('key_hash', 'text', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .addPrimaryKeyConstraint('attestation_credentials_pk', ['kind', 'key_hash'])
        .execute();
      await s.createIndex('attestation_credentials_expiry_idx').on('attestation_credentials').column('expires_at').execute();
      await s.createTable('attestation_consumed')
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('consumed_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('attestation_consumed_pk', ['kind', 'key'])
        .execute();
      await s.createIndex('attestation_consumed_expiry_idx').on('attestation_consumed').column('expires_at').execute();
    },
    async down(): Promise<void> {
      throw new Error('Ward migrations are forward-only');
    },
  };
}

/** Migration name -> migration, in order. Names sort lexically in apply order. */
export function migrations(dialect: Dialect): Record<string, Migration> {
  return { '0001_initial': initial(dialect), '0002_attestation_state': attestationState() };
}

/**
 * Applies pending migrations in one transaction (DDL is transactional in both databases), with
 * concurrent openers serialized: PostgreSQL by an advisory lock on the schema name, SQLite by
 * BEGIN IMMEDIATE. Ward keeps its own small bookkeeping table instead of Kysely's Migrator,
 * whose existence checks introspect every schema of the database and fail when another
 * installation drops its schema at the same moment. A database that has a migration this code
 * does not know was migrated by a newer Ward: ERR_STORE_MIGRATION.
 */
export async function migrateToLatest(db: AnyDb, dialect: Dialect, schema: string | null, now: () => number): Promise<string[]> {
  const all = migrations(dialect);
  const names = Object.keys(all).sort();
  return db.transaction().execute(async (trx) => {
    if (dialect === 'postgres' && schema !== null) {
      await sql`select pg_advisory_xact_lock(hashtext(${`ward.migrate:${schema}`}))`.execute(trx);
      if (schema !== 'public') await sql.raw(`create schema if not exists "${schema}"`).execute(trx);
    }
    await sql`create table if not exists ward_migrations (name text primary key, applied_at bigint not null)`.execute(trx);
    const applied = new Set((await sql<{ name: string }>`select name from ward_migrations`.execute(trx)).rows.map((r) => r.name));
    const unknown = [...applied].filter((n) => !names.includes(n));
    if (unknown.length > 0) {
      throw new StoreError('ERR_STORE_MIGRATION', 'the database was migrated by a newer Ward', { details: { unknown } });
    }
    const done: string[] = [];
    for (const name of names) {
      if (applied.has(name)) continue;
      await (all[name] as Migration).up(trx);
      await sql`insert into ward_migrations (name, applied_at) values (${name}, ${now()})`.execute(trx);
      done.push(name);
    }
    return done;
  });
}
