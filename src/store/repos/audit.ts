/**
 * The append-only audit log. This repository has no update or delete, and a database trigger
 * rejects UPDATE and DELETE on the table, so not even a bug elsewhere can rewrite history.
 */
import type { Scope } from '../scope.js';
import { fromJson, invalid, requireString, toJson } from './json.js';

export interface AuditRecord {
  readonly id: number;
  readonly at: number;
  /** Who: admin token name, `cert:<spiffe-id>`, `agent:<id>`, `system`. */
  readonly actor: string;
  /** What: `entry.create`, `policy.apply`, `token.create`, `attest.reject`, ... */
  readonly action: string;
  /** Which resource: `entry/<id>`, `policy/<name>`, ... */
  readonly resource: string;
  readonly before: unknown;
  readonly after: unknown;
}

export interface AuditInput {
  readonly actor: string;
  readonly action: string;
  readonly resource: string;
  readonly before?: unknown;
  readonly after?: unknown;
}

export class AuditRepository {
  readonly #scope: Scope;
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  /** Appends a record (use inside the transaction that made the change). Returns its id. */
  async append(input: AuditInput): Promise<number> {
    requireString('actor', input.actor, 512);
    requireString('action', input.action, 128);
    requireString('resource', input.resource, 1024);
    const row = await this.#scope.read((db) => db.insertInto('audit_log').values({
      at: this.#scope.now,
      actor: input.actor,
      action: input.action,
      resource: input.resource,
      before: input.before === undefined ? null : toJson(input.before),
      after: input.after === undefined ? null : toJson(input.after),
    }).returning('id').executeTakeFirstOrThrow());
    return Number(row.id);
  }

  /** Records in id order, after `afterId`, optionally filtered. */
  async list(q: { afterId?: number; limit?: number; resource?: string; actor?: string } = {}): Promise<AuditRecord[]> {
    const limit = q.limit ?? 100;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) throw invalid('limit', 'expected 1 to 10000');
    const rows = await this.#scope.read((db) => {
      let sel = db.selectFrom('audit_log').selectAll().where('id', '>', q.afterId ?? 0);
      if (q.resource !== undefined) sel = sel.where('resource', '=', q.resource);
      if (q.actor !== undefined) sel = sel.where('actor', '=', q.actor);
      return sel.orderBy('id').limit(limit).execute();
    });
    return rows.map((r) => ({ id: Number(r.id), at: Number(r.at), actor: r.actor, action: r.action, resource: r.resource, before: fromJson(r.before), after: fromJson(r.after) }));
  }
}
