/** Policy documents: the YAML as applied (for display and diff) and its parsed form, versioned per name. */
import type { PoliciesTable } from '../database.js';
import type { Scope } from '../scope.js';
import { conflict, invalid, notFound, toJson } from './json.js';

export interface StoredPolicy {
  readonly name: string;
  readonly yaml: string;
  /** The policy engine's parsed document (JSON). */
  readonly parsed: unknown;
  /** 1 on create, +1 on every update. */
  readonly version: number;
  readonly updatedAt: number;
}

const NAME_RE = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(\/[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?)?$/;
const MAX_YAML = 1024 * 1024;

function toPolicy(r: PoliciesTable): StoredPolicy {
  return { name: r.name, yaml: r.yaml, parsed: JSON.parse(r.parsed) as unknown, version: Number(r.version), updatedAt: Number(r.updated_at) };
}

export class PolicyRepository {
  readonly #scope: Scope;
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  /**
   * Creates or replaces a policy. With `expectedVersion` (0 = must not exist) a concurrent apply
   * is detected as ERR_STORE_CONFLICT instead of silently overwritten.
   */
  async put(policy: { name: string; yaml: string; parsed: unknown }, expectedVersion?: number): Promise<StoredPolicy> {
    if (typeof policy.name !== 'string' || !NAME_RE.test(policy.name)) throw invalid('name', 'expected a DNS-1123 name, optionally namespace/name');
    if (typeof policy.yaml !== 'string' || policy.yaml.length > MAX_YAML) throw invalid('yaml', 'expected at most 1 MiB of text');
    return this.#scope.atomic(async (s) => {
      const prev = await s.db.selectFrom('policies').select('version').where('name', '=', policy.name).executeTakeFirst();
      const prevVersion = prev ? Number(prev.version) : 0;
      if (expectedVersion !== undefined && expectedVersion !== prevVersion) throw conflict('policy changed concurrently', { name: policy.name, version: prevVersion });
      const row: PoliciesTable = { name: policy.name, yaml: policy.yaml, parsed: toJson(policy.parsed), version: prevVersion + 1, updated_at: s.now };
      if (prev) await s.db.updateTable('policies').set(row).where('name', '=', policy.name).execute();
      else await s.db.insertInto('policies').values(row).execute();
      await s.recordChange('policy', policy.name, 'upsert');
      return toPolicy(row);
    });
  }

  async get(name: string): Promise<StoredPolicy | null> {
    const r = await this.#scope.read((db) => db.selectFrom('policies').selectAll().where('name', '=', name).executeTakeFirst());
    return r ? toPolicy(r) : null;
  }

  async list(): Promise<StoredPolicy[]> {
    return (await this.#scope.read((db) => db.selectFrom('policies').selectAll().orderBy('name').execute())).map(toPolicy);
  }

  async delete(name: string): Promise<StoredPolicy> {
    return this.#scope.atomic(async (s) => {
      const prev = await s.db.selectFrom('policies').selectAll().where('name', '=', name).executeTakeFirst();
      if (!prev) throw notFound('policy', name);
      await s.db.deleteFrom('policies').where('name', '=', name).execute();
      await s.recordChange('policy', name, 'delete');
      return toPolicy(prev);
    });
  }
}
