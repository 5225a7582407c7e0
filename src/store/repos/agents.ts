/** Attested agents (nodes), the SVIDs issued to them, and the workloads they serve. */
import { isSpiffeId } from '../../events/types.js';
import type { AgentsTable, WorkloadsTable } from '../database.js';
import type { Scope } from '../scope.js';
import { invalid, notFound, requireString, toJson } from './json.js';

export interface AgentRecord {
  readonly agentId: string;
  readonly spiffeId: string;
  /** The node attestor that admitted it: `join_token`, `k8s_psat`, `aws_iid`, ... */
  readonly attestationType: string;
  readonly selectors: readonly string[];
  readonly firstSeen: number;
  readonly lastSeen: number;
  /** A revoked agent is refused on re-attestation and its SVIDs are in the revocation list. */
  readonly revoked: boolean;
}

export interface SvidRecord {
  readonly serial: string;
  readonly agentId: string;
  readonly spiffeId: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

export interface WorkloadRecord {
  readonly spiffeId: string;
  readonly agentId: string;
  readonly imageDigest: string | null;
  readonly firstSeen: number;
  readonly lastSeen: number;
}

const SERIAL_RE = /^[0-9a-fA-F]{1,64}$/;
export const IMAGE_DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,128}$/;

function toAgent(row: AgentsTable): AgentRecord {
  return {
    agentId: row.agent_id,
    spiffeId: row.spiffe_id,
    attestationType: row.attestation_type,
    selectors: JSON.parse(row.selectors) as string[],
    firstSeen: Number(row.first_seen),
    lastSeen: Number(row.last_seen),
    revoked: Number(row.revoked) === 1,
  };
}

function toWorkload(row: WorkloadsTable): WorkloadRecord {
  return { spiffeId: row.spiffe_id, agentId: row.agent_id, imageDigest: row.image_digest, firstSeen: Number(row.first_seen), lastSeen: Number(row.last_seen) };
}

export class AgentRepository {
  readonly #scope: Scope;
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  /**
   * Records an attestation: creates the agent or refreshes its identity and selectors. The
   * revoked flag is kept as it was: the server must refuse a revoked agent (check `revoked`).
   */
  async upsert(input: { agentId: string; spiffeId: string; attestationType: string; selectors: readonly string[] }): Promise<AgentRecord> {
    requireString('agentId', input.agentId, 256);
    requireString('attestationType', input.attestationType, 64);
    if (!isSpiffeId(input.spiffeId)) throw invalid('spiffeId', 'not a valid SPIFFE ID');
    return this.#scope.atomic(async (s) => {
      const prev = await s.db.selectFrom('agents').selectAll().where('agent_id', '=', input.agentId).executeTakeFirst();
      const row: AgentsTable = {
        agent_id: input.agentId,
        spiffe_id: input.spiffeId,
        attestation_type: input.attestationType,
        selectors: toJson([...input.selectors].sort()),
        first_seen: prev ? Number(prev.first_seen) : s.now,
        last_seen: s.now,
        revoked: prev ? Number(prev.revoked) : 0,
      };
      if (prev) await s.db.updateTable('agents').set(row).where('agent_id', '=', input.agentId).execute();
      else await s.db.insertInto('agents').values(row).execute();
      await s.recordChange('agent', input.agentId, 'upsert');
      return toAgent(row);
    });
  }

  async get(agentId: string): Promise<AgentRecord | null> {
    const row = await this.#scope.read((db) => db.selectFrom('agents').selectAll().where('agent_id', '=', agentId).executeTakeFirst());
    return row ? toAgent(row) : null;
  }

  async list(): Promise<AgentRecord[]> {
    return (await this.#scope.read((db) => db.selectFrom('agents').selectAll().orderBy('agent_id').execute())).map(toAgent);
  }

  /** Marks the agent alive now (no change-log entry: liveness is not pushed to agents). */
  async touch(agentId: string): Promise<void> {
    const res = await this.#scope.read((db) => db.updateTable('agents').set({ last_seen: this.#scope.now }).where('agent_id', '=', agentId).executeTakeFirst());
    if (Number(res.numUpdatedRows) !== 1) throw notFound('agent', agentId);
  }

  /** Remembers an issued SVID so revoking the agent can revoke it. */
  async recordSvid(svid: { serial: string; agentId: string; spiffeId: string; expiresAt: number }): Promise<void> {
    if (!SERIAL_RE.test(svid.serial)) throw invalid('serial', 'expected a hex serial number');
    if (!isSpiffeId(svid.spiffeId)) throw invalid('spiffeId', 'not a valid SPIFFE ID');
    await this.#scope.read((db) => db.insertInto('svids').values({
      serial: svid.serial.toLowerCase(), agent_id: svid.agentId, spiffe_id: svid.spiffeId, issued_at: this.#scope.now, expires_at: svid.expiresAt,
    }).execute());
  }

  async svids(agentId: string): Promise<SvidRecord[]> {
    const rows = await this.#scope.read((db) => db.selectFrom('svids').selectAll().where('agent_id', '=', agentId).orderBy('issued_at').orderBy('serial').execute());
    return rows.map((r) => ({ serial: r.serial, agentId: r.agent_id, spiffeId: r.spiffe_id, issuedAt: Number(r.issued_at), expiresAt: Number(r.expires_at) }));
  }

  /**
   * Revokes an agent: sets the flag and revokes every unexpired SVID it was issued, in one
   * transaction. Returns the serials revoked.
   */
  async revoke(agentId: string, reason: string): Promise<string[]> {
    return this.#scope.atomic(async (s) => {
      const res = await s.db.updateTable('agents').set({ revoked: 1 }).where('agent_id', '=', agentId).executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) throw notFound('agent', agentId);
      const live = await s.db.selectFrom('svids').selectAll().where('agent_id', '=', agentId).where('expires_at', '>', s.now).execute();
      for (const svid of live) {
        await s.db.insertInto('revocations')
          .values({ serial: svid.serial, spiffe_id: svid.spiffe_id, reason, revoked_at: s.now, expires_at: Number(svid.expires_at) })
          .onConflict((oc) => oc.column('serial').doNothing())
          .execute();
      }
      await s.recordChange('agent', agentId, 'upsert');
      if (live.length > 0) await s.recordChange('revocation', agentId, 'upsert');
      return live.map((v) => v.serial);
    });
  }
}

export class WorkloadRepository {
  readonly #scope: Scope;
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  /** Records a workload served by an agent (at attestation), with its image digest if known. */
  async upsert(input: { spiffeId: string; agentId: string; imageDigest?: string | null }): Promise<WorkloadRecord> {
    if (!isSpiffeId(input.spiffeId)) throw invalid('spiffeId', 'not a valid SPIFFE ID');
    requireString('agentId', input.agentId, 256);
    const digest = input.imageDigest ?? null;
    if (digest !== null && !IMAGE_DIGEST_RE.test(digest)) throw invalid('imageDigest', 'expected algorithm:hex');
    return this.#scope.atomic(async (s) => {
      const prev = await s.db.selectFrom('workloads').selectAll().where('spiffe_id', '=', input.spiffeId).executeTakeFirst();
      const row: WorkloadsTable = { spiffe_id: input.spiffeId, agent_id: input.agentId, image_digest: digest, first_seen: prev ? Number(prev.first_seen) : s.now, last_seen: s.now };
      if (prev) await s.db.updateTable('workloads').set(row).where('spiffe_id', '=', input.spiffeId).execute();
      else await s.db.insertInto('workloads').values(row).execute();
      if (!prev || prev.image_digest !== digest || prev.agent_id !== input.agentId) await s.recordChange('workload', input.spiffeId, 'upsert');
      return toWorkload(row);
    });
  }

  async get(spiffeId: string): Promise<WorkloadRecord | null> {
    const row = await this.#scope.read((db) => db.selectFrom('workloads').selectAll().where('spiffe_id', '=', spiffeId).executeTakeFirst());
    return row ? toWorkload(row) : null;
  }

  async list(filter: { agentId?: string; imageDigest?: string } = {}): Promise<WorkloadRecord[]> {
    const rows = await this.#scope.read((db) => {
      let q = db.selectFrom('workloads').selectAll();
      if (filter.agentId !== undefined) q = q.where('agent_id', '=', filter.agentId);
      if (filter.imageDigest !== undefined) q = q.where('image_digest', '=', filter.imageDigest);
      return q.orderBy('spiffe_id').execute();
    });
    return rows.map(toWorkload);
  }

  /** Removes a workload and its own attributes in one transaction. */
  async delete(spiffeId: string): Promise<WorkloadRecord> {
    return this.#scope.atomic(async (s) => {
      const prev = await s.db.selectFrom('workloads').selectAll().where('spiffe_id', '=', spiffeId).executeTakeFirst();
      if (!prev) throw notFound('workload', spiffeId);
      await s.db.deleteFrom('attributes').where('spiffe_id', '=', spiffeId).execute();
      await s.db.deleteFrom('workloads').where('spiffe_id', '=', spiffeId).execute();
      await s.recordChange('workload', spiffeId, 'delete');
      return toWorkload(prev);
    });
  }
}
