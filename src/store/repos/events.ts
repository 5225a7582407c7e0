/**
 * Stored events. UNIQUE(agent_id, seq) makes ingest idempotent: an agent that retries a batch
 * (because the acknowledgement was lost) stores nothing twice.
 */
import type { Statement } from 'better-sqlite3';
import type { SequencedEvent, WardEvent } from '../../events/index.js';
import type { Scope } from '../scope.js';
import { invalid, requireString } from './json.js';

export interface StoredEvent {
  readonly agentId: string;
  readonly seq: number;
  readonly receivedAt: number;
  readonly event: WardEvent;
}

export interface AppendResult {
  /** Sequence numbers stored by this call. */
  readonly inserted: readonly number[];
  /** Sequence numbers already stored earlier (a retry). */
  readonly duplicates: readonly number[];
}

const CHUNK = 200;
const INSERT_SQL = 'insert into events (agent_id, seq, class_uid, spiffe_id, time, severity_id, event, received_at) values (?, ?, ?, ?, ?, ?, ?, ?) on conflict (agent_id, seq) do nothing';
const prepared = new WeakMap<object, Statement>();

export class EventRepository {
  readonly #scope: Scope;
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  /** Stores a decoded batch (see `decodeBatch`) in one transaction. */
  async append(agentId: string, batch: readonly SequencedEvent[]): Promise<AppendResult> {
    requireString('agentId', agentId, 2048);
    return this.#scope.atomic(async (s) => {
      const inserted: number[] = [];
      const sqlite = s.shared.sqlite;
      if (sqlite) {
        let stmt = prepared.get(sqlite);
        if (!stmt) prepared.set(sqlite, (stmt = sqlite.prepare(INSERT_SQL)));
        for (const { seq, event } of batch) {
          const r = stmt.run(agentId, seq, event.class_uid, event.workload.spiffe_id, event.time, event.severity_id, JSON.stringify(event), s.now);
          if (r.changes === 1) inserted.push(seq);
        }
      }
      for (let i = 0; !sqlite && i < batch.length; i += CHUNK) {
        const rows = batch.slice(i, i + CHUNK).map(({ seq, event }) => ({
          agent_id: agentId, seq, class_uid: event.class_uid, spiffe_id: event.workload.spiffe_id,
          time: event.time, severity_id: event.severity_id, event: JSON.stringify(event), received_at: s.now,
        }));
        if (rows.length === 0) continue;
        const out = await s.db.insertInto('events').values(rows)
          .onConflict((oc) => oc.columns(['agent_id', 'seq']).doNothing())
          .returning('seq')
          .execute();
        for (const r of out) inserted.push(Number(r.seq));
      }
      const got = new Set(inserted);
      return { inserted: inserted.sort((a, b) => a - b), duplicates: batch.map((b) => b.seq).filter((seq) => !got.has(seq)) };
    });
  }

  /** The highest sequence number stored for an agent (-1 when none), so an agent can resume. */
  async lastSeq(agentId: string): Promise<number> {
    const row = await this.#scope.read((db) => db.selectFrom('events').select((eb) => eb.fn.max('seq').as('m')).where('agent_id', '=', agentId).executeTakeFirst());
    return row?.m === null || row?.m === undefined ? -1 : Number(row.m);
  }

  async list(q: { agentId?: string; spiffeId?: string; classUid?: number; sinceTime?: number; limit?: number } = {}): Promise<StoredEvent[]> {
    const limit = q.limit ?? 100;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) throw invalid('limit', 'expected 1 to 10000');
    const rows = await this.#scope.read((db) => {
      let sel = db.selectFrom('events').selectAll();
      if (q.agentId !== undefined) sel = sel.where('agent_id', '=', q.agentId);
      if (q.spiffeId !== undefined) sel = sel.where('spiffe_id', '=', q.spiffeId);
      if (q.classUid !== undefined) sel = sel.where('class_uid', '=', q.classUid);
      if (q.sinceTime !== undefined) sel = sel.where('time', '>=', q.sinceTime);
      return sel.orderBy('time').orderBy('id').limit(limit).execute();
    });
    return rows.map((r) => ({ agentId: r.agent_id, seq: Number(r.seq), receivedAt: Number(r.received_at), event: JSON.parse(r.event) as WardEvent }));
  }

  /** Deletes events older than `beforeTime` (retention); returns how many. */
  async pruneBefore(beforeTime: number): Promise<number> {
    const res = await this.#scope.read((db) => db.deleteFrom('events').where('time', '<', beforeTime).executeTakeFirst());
    return Number(res.numDeletedRows);
  }
}
