/**
 * bench/store: server-side event ingest (decodeBatch of the wire text + events.append of 100-event batches, de-duplicated by
 * UNIQUE(agent_id, seq)) in events/s, printed as a ratio to the raw driver inserting the same
 * rows in the same transaction shape (better-sqlite3 prepared statement / pg multi-row INSERT),
 * measured side by side in alternating slices so both see the same machine load. Also join-token
 * consumes/s. SQLite (WAL file) and PostgreSQL (127.0.0.1:5432/test, throwaway schema). Three
 * rounds; medians.
 *
 *   node --import tsx bench/store/ingest.bench.ts [--seconds 2]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { ManualClock } from '../../src/core/clock.js';
import { createEvent, decodeBatch, type WardEvent } from '../../src/events/index.js';
import { newSecretToken, openStore, type Store } from '../../src/store/index.js';

const secondsArg = process.argv.indexOf('--seconds');
const SECONDS = secondsArg > 0 ? Number(process.argv[secondsArg + 1]) : 2;
const PG_URL = process.env['WARD_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const BATCH = 100;
const clock = new ManualClock('2026-03-01T00:00:00Z');

function event(i: number): WardEvent {
  return createEvent({
    class_uid: 4002, activity_id: 3, severity_id: 1,
    workload: { spiffe_id: `spiffe://bench.dev/ns/shop/sa/svc-${i % 50}` },
    decision: { policy: 'shop/api', rule: 'get', action: 'allow', mode: 'enforce' },
    src_endpoint: { spiffe_id: 'spiffe://bench.dev/ns/shop/sa/web', port: 40000 + (i % 1000) },
    dst_endpoint: { port: 8080 },
    http_request: { http_method: 'GET', url: { path: `/orders/${i}`, path_template: '/orders/{id}' }, version: 'HTTP/1.1' },
    http_response: { code: 200, latency: 3 },
  }, clock);
}
const TEMPLATE = Array.from({ length: BATCH }, (_, i) => event(i));
const TEMPLATE_JSON = TEMPLATE.map((e) => JSON.stringify(e));
/** The wire form an agent sends (built by concatenation: the agent's encoding is not measured). */
const wireBatch = (agentId: string, seqBase: number): string =>
  `{"agentId":${JSON.stringify(agentId)},"batch":[${TEMPLATE_JSON.map((e, i) => `{"seq":${seqBase + i},"event":${e}}`).join(',')}]}`;

interface Target {
  name: string;
  store: Store;
  raw(agent: string, seqBase: number, events: readonly WardEvent[]): Promise<void>;
  close(): Promise<void>;
}

async function sqliteTarget(): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'ward-bench-'));
  const store = await openStore(`sqlite://${join(dir, 'ward.db')}`, { clock });
  const db = new BetterSqlite3(join(dir, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('create table events (id integer primary key autoincrement, agent_id text not null, seq bigint not null, class_uid integer not null, spiffe_id text not null, time bigint not null, severity_id integer not null, event text not null, received_at bigint not null, unique(agent_id, seq))');
  const ins = db.prepare('insert into events (agent_id, seq, class_uid, spiffe_id, time, severity_id, event, received_at) values (?,?,?,?,?,?,?,?) on conflict do nothing');
  const tx = db.transaction((agent: string, base: number, evs: readonly WardEvent[]) => {
    evs.forEach((e, i) => ins.run(agent, base + i, e.class_uid, e.workload.spiffe_id, e.time, e.severity_id, JSON.stringify(e), 0));
  });
  return {
    name: 'sqlite', store,
    raw: async (agent, base, evs) => { tx(agent, base, evs); },
    close: async () => { await store.close(); db.close(); rmSync(dir, { recursive: true, force: true }); },
  };
}

async function postgresTarget(): Promise<Target> {
  const schema = `ward_bench_${process.pid}`;
  const store = await openStore(`${PG_URL}?schema=${schema}`, { clock });
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`create schema ${schema}_raw`);
  await client.query(`create table ${schema}_raw.events (id bigserial primary key, agent_id text not null, seq bigint not null, class_uid integer not null, spiffe_id text not null, time bigint not null, severity_id integer not null, event text not null, received_at bigint not null, unique(agent_id, seq))`);
  return {
    name: 'postgres', store,
    async raw(agent, base, evs) {
      const params: unknown[] = [];
      const rows = evs.map((e, i) => {
        params.push(agent, base + i, e.class_uid, e.workload.spiffe_id, e.time, e.severity_id, JSON.stringify(e), 0);
        const o = i * 8;
        return `($${o + 1},$${o + 2},$${o + 3},$${o + 4},$${o + 5},$${o + 6},$${o + 7},$${o + 8})`;
      });
      await client.query('begin');
      await client.query(`insert into ${schema}_raw.events (agent_id, seq, class_uid, spiffe_id, time, severity_id, event, received_at) values ${rows.join(',')} on conflict do nothing`, params);
      await client.query('commit');
    },
    async close() {
      await store.close();
      await client.query(`drop schema ${schema} cascade`);
      await client.query(`drop schema ${schema}_raw cascade`);
      await client.end();
    },
  };
}

/** Alternating slices of `a` and `b`; returns ops/s of each over its own slices. */
async function sideBySide(a: () => Promise<number>, b: () => Promise<number>): Promise<[number, number]> {
  const slices = 8;
  const sliceMs = (SECONDS * 1000) / slices;
  const ops = [0, 0];
  const time = [0, 0];
  for (let s = 0; s < slices; s++) {
    for (const [k, fn] of [[0, a], [1, b]] as const) {
      const start = performance.now();
      while (performance.now() - start < sliceMs) ops[k]! += await fn();
      time[k]! += performance.now() - start;
    }
  }
  return [(ops[0]! / time[0]!) * 1000, (ops[1]! / time[1]!) * 1000];
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

for (const make of [sqliteTarget, postgresTarget]) {
  const t = await make();
  let seqWard = 0;
  let seqRaw = 0;
  const ingest: Array<[number, number]> = [];
  const tokens: number[] = [];
  for (let round = 0; round < 3; round++) {
    ingest.push(await sideBySide(
      async () => {
        const batch = decodeBatch(wireBatch('agent-1', seqWard));
        await t.store.events.append(batch.agentId, batch.batch);
        seqWard += BATCH;
        return BATCH;
      },
      async () => {
        await t.raw('agent-1', seqRaw, TEMPLATE);
        seqRaw += BATCH;
        return BATCH;
      },
    ));
    const ts = Array.from({ length: 300 }, () => newSecretToken());
    for (const token of ts) await t.store.joinTokens.create({ token, ttlMs: 600_000 });
    const start = performance.now();
    for (const token of ts) await t.store.joinTokens.consume(token, 'bench');
    tokens.push((ts.length / (performance.now() - start)) * 1000);
  }
  const ward = median(ingest.map((x) => x[0]));
  const raw = median(ingest.map((x) => x[1]));
  const ratio = median(ingest.map((x) => x[0] / x[1]));
  console.log(`${t.name}: ingest ${Math.round(ward)} events/s via store (decode+append) vs ${Math.round(raw)} events/s raw driver; ratio ${ratio.toFixed(2)} (median of 3; rounds ${ingest.map((x) => (x[0] / x[1]).toFixed(2)).join(', ')})`);
  console.log(`${t.name}: join-token consume ${Math.round(median(tokens))}/s (median of 3; ${tokens.map(Math.round).join(', ')})`);
  await t.close();
}
