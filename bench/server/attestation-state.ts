/**
 * bench/server/attestation-state: what persisting the attestors' one-time state costs. Issues
 * and redeems N join-token credentials (put + redeem + a replayed redeem each, plus one
 * consumeOnce) through the store's `attestation` repository on SQLite (WAL file) and PostgreSQL
 * (127.0.0.1:5432/test, a scratch schema), 16 operations in flight, against the in-memory
 * `MemoryAttestationState` doing the same in the same run (the baseline). Prints ops/s and the
 * ratio per round, and the median of 3 rounds.
 *
 *   node --import tsx bench/server/attestation-state.ts [--n 2000]
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { systemClock } from '../../src/core/clock.js';
import type { AttestationState } from '../../src/platforms/attestor.js';
import { MemoryAttestationState } from '../../src/platforms/state.js';
import { openStore } from '../../src/store/index.js';

const nArg = process.argv.indexOf('--n');
const N = nArg > 0 ? Number(process.argv[nArg + 1]) : 2000;
const IN_FLIGHT = 16;
const PG_BASE = process.env['WARD_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

async function workload(state: AttestationState): Promise<number> {
  const keys = Array.from({ length: N }, () => createHash('sha256').update(randomBytes(32)).digest('hex'));
  const now = Date.now();
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < keys.length) {
      const key = keys[next++] as string;
      await state.putCredential('join_token', key, { expiresAt: now + 600_000, data: { 'host.name': 'h', '@hash': key } });
      const r = await state.redeemCredential('join_token', key, now);
      if (r.outcome !== 'redeemed') throw new Error('bench: not redeemed');
      if ((await state.redeemCredential('join_token', key, now)).outcome !== 'used') throw new Error('bench: replay not refused');
      if (!(await state.consumeOnce('aws_iid', key, now + 600_000))) throw new Error('bench: consumeOnce');
    }
  }));
  return (N * 4) / ((performance.now() - t0) / 1000);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');

const dir = mkdtempSync(join(tmpdir(), 'ward-bench-att-'));
const schema = `ward_bench_att_${process.pid}`;
const sqlite = await openStore(`sqlite://${join(dir, 'ward.db')}`, { clock: systemClock });
const postgres = await openStore(`${PG_BASE}?schema=${schema}`, { clock: systemClock, poolSize: 8 });
try {
  const rows: Record<string, { mem: number[]; sql: number[] }> = { sqlite: { mem: [], sql: [] }, postgres: { mem: [], sql: [] } };
  for (let round = 1; round <= 3; round++) {
    for (const [name, store] of [['sqlite', sqlite], ['postgres', postgres]] as const) {
      const mem = await workload(new MemoryAttestationState());
      const sql = await workload(store.attestation);
      rows[name]!.mem.push(mem);
      rows[name]!.sql.push(sql);
      console.log(`round ${round} ${name.padEnd(8)} store ${fmt(sql)} ops/s, memory ${fmt(mem)} ops/s, store/memory ${(sql / mem).toFixed(4)}`);
    }
  }
  for (const [name, r] of Object.entries(rows)) {
    const ratios = r.sql.map((s, i) => s / (r.mem[i] as number));
    console.log(`median ${name.padEnd(8)} store ${fmt(median(r.sql))} ops/s (${fmt(median(r.sql) / 4)} tokens issued+redeemed+replayed+consumed /s), memory ${fmt(median(r.mem))} ops/s, ratio ${median(ratios).toFixed(4)}`);
  }
} finally {
  await sqlite.close();
  await postgres.close();
  rmSync(dir, { recursive: true, force: true });
  const c = new pg.Client({ connectionString: PG_BASE });
  await c.connect();
  await c.query(`drop schema if exists ${schema} cascade`);
  await c.end();
}
