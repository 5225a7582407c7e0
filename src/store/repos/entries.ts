/** Registration entries: a SPIFFE ID bound to selectors that must all match (SPIRE's model). */
import { randomUUID } from 'node:crypto';
import { isSpiffeId } from '../../events/types.js';
import type { EntriesTable } from '../database.js';
import type { Scope } from '../scope.js';
import { conflict, invalid, notFound, toJson } from './json.js';

export interface RegistrationEntry {
  readonly id: string;
  readonly spiffeId: string;
  /** SPIFFE ID of the agent (node) this entry is scoped to. */
  readonly parentId: string;
  /** `type:value` selectors, all of which must match; stored sorted. */
  readonly selectors: readonly string[];
  readonly ttlSeconds: number;
  readonly admin: boolean;
  readonly downstream: boolean;
  /** Increments on every update; pass it to `update` to detect concurrent edits. */
  readonly revision: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface EntryInput {
  readonly id?: string;
  readonly spiffeId: string;
  readonly parentId: string;
  readonly selectors: readonly string[];
  readonly ttlSeconds: number;
  readonly admin?: boolean;
  readonly downstream?: boolean;
}

const SELECTOR_RE = /^[a-z0-9_]+:.{1,1024}$/s;
const ID_RE = /^[A-Za-z0-9._-]{1,128}$/;

function checkInput(input: EntryInput): string[] {
  if (!isSpiffeId(input.spiffeId)) throw invalid('spiffeId', 'not a valid SPIFFE ID');
  if (!isSpiffeId(input.parentId)) throw invalid('parentId', 'not a valid SPIFFE ID');
  if (input.id !== undefined && !ID_RE.test(input.id)) throw invalid('id', 'expected 1-128 characters of [A-Za-z0-9._-]');
  if (!Array.isArray(input.selectors) || input.selectors.length === 0 || input.selectors.length > 64) throw invalid('selectors', 'expected 1 to 64 selectors');
  for (const sel of input.selectors) if (typeof sel !== 'string' || !SELECTOR_RE.test(sel)) throw invalid('selectors', 'each selector is type:value');
  if (!Number.isSafeInteger(input.ttlSeconds) || input.ttlSeconds < 1 || input.ttlSeconds > 31_536_000) throw invalid('ttlSeconds', 'expected 1 to 31536000');
  return [...new Set(input.selectors)].sort();
}

function toEntry(row: EntriesTable): RegistrationEntry {
  return {
    id: row.id,
    spiffeId: row.spiffe_id,
    parentId: row.parent_id,
    selectors: JSON.parse(row.selectors) as string[],
    ttlSeconds: Number(row.ttl_seconds),
    admin: Number(row.admin) === 1,
    downstream: Number(row.downstream) === 1,
    revision: Number(row.revision),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

export class EntryRepository {
  readonly #scope: Scope;
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  /** Creates an entry; ERR_STORE_CONFLICT if the id or the same (spiffeId, parentId, selectors) exists. */
  async create(input: EntryInput): Promise<RegistrationEntry> {
    const selectors = checkInput(input);
    return this.#scope.atomic(async (s) => {
      const row: EntriesTable = {
        id: input.id ?? randomUUID(),
        spiffe_id: input.spiffeId,
        parent_id: input.parentId,
        selectors: toJson(selectors),
        selectors_key: selectors.join('\n'),
        ttl_seconds: input.ttlSeconds,
        admin: input.admin ? 1 : 0,
        downstream: input.downstream ? 1 : 0,
        revision: 1,
        created_at: s.now,
        updated_at: s.now,
      };
      await s.db.insertInto('entries').values(row).execute();
      await s.recordChange('entry', row.id, 'upsert');
      return toEntry(row);
    });
  }

  async get(id: string): Promise<RegistrationEntry | null> {
    const row = await this.#scope.read((db) => db.selectFrom('entries').selectAll().where('id', '=', id).executeTakeFirst());
    return row ? toEntry(row) : null;
  }

  async list(filter: { parentId?: string; spiffeId?: string } = {}): Promise<RegistrationEntry[]> {
    const rows = await this.#scope.read((db) => {
      let q = db.selectFrom('entries').selectAll();
      if (filter.parentId !== undefined) q = q.where('parent_id', '=', filter.parentId);
      if (filter.spiffeId !== undefined) q = q.where('spiffe_id', '=', filter.spiffeId);
      return q.orderBy('created_at').orderBy('id').execute();
    });
    return rows.map(toEntry);
  }

  /** Replaces an entry's fields; `expectedRevision` guards against lost updates. */
  async update(id: string, input: Omit<EntryInput, 'id'>, expectedRevision?: number): Promise<RegistrationEntry> {
    const selectors = checkInput(input);
    return this.#scope.atomic(async (s) => {
      const prev = await s.db.selectFrom('entries').selectAll().where('id', '=', id).executeTakeFirst();
      if (!prev) throw notFound('entry', id);
      if (expectedRevision !== undefined && Number(prev.revision) !== expectedRevision) throw conflict('entry changed concurrently', { id, revision: Number(prev.revision) });
      const next: EntriesTable = {
        ...prev,
        spiffe_id: input.spiffeId,
        parent_id: input.parentId,
        selectors: toJson(selectors),
        selectors_key: selectors.join('\n'),
        ttl_seconds: input.ttlSeconds,
        admin: input.admin ? 1 : 0,
        downstream: input.downstream ? 1 : 0,
        revision: Number(prev.revision) + 1,
        updated_at: s.now,
      };
      const res = await s.db.updateTable('entries').set(next).where('id', '=', id).where('revision', '=', prev.revision).executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) throw conflict('entry changed concurrently', { id });
      await s.recordChange('entry', id, 'upsert');
      return toEntry(next);
    });
  }

  /** Deletes an entry and returns what it was (for the audit log). */
  async delete(id: string): Promise<RegistrationEntry> {
    return this.#scope.atomic(async (s) => {
      const prev = await s.db.selectFrom('entries').selectAll().where('id', '=', id).executeTakeFirst();
      if (!prev) throw notFound('entry', id);
      await s.db.deleteFrom('entries').where('id', '=', id).execute();
      await s.recordChange('entry', id, 'delete');
      return toEntry(prev);
    });
  }
}
