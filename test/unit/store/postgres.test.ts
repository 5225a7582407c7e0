import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { openStore } from '../../../src/store/index.js';
import { storeContract, rejectsWith } from './contract.js';
import { postgresHarness, PG_BASE_URL } from './harness.js';

storeContract(postgresHarness);

test('postgres: a closed port is ERR_STORE_UNAVAILABLE, at once', async () => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  await rejectsWith(openStore(`postgres://postgres@127.0.0.1:${port}/test?connect_timeout=3`), 'ERR_STORE_UNAVAILABLE');
});

test('postgres: a server that accepts but never answers is ERR_STORE_UNAVAILABLE after connect_timeout, not a hang', { timeout: 10_000 }, async () => {
  const sockets = new Set<Socket>();
  const server = createServer((s) => { sockets.add(s); s.on('error', () => undefined); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  try {
    await rejectsWith(openStore(`postgres://postgres@127.0.0.1:${port}/test?connect_timeout=1`), 'ERR_STORE_UNAVAILABLE');
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('postgres: a database dying under an open store gives ERR_STORE_UNAVAILABLE, then recovers', { timeout: 15_000 }, async () => {
  // A TCP relay in front of PostgreSQL that we can cut.
  const target = new URL(PG_BASE_URL);
  const sockets = new Set<Socket>();
  let open = true;
  const { connect } = await import('node:net');
  const relay = createServer((client) => {
    if (!open) return client.destroy();
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const { port } = relay.address() as { port: number };
  const url = new URL(PG_BASE_URL);
  url.port = String(port);
  url.searchParams.set('schema', `ward_t_relay_${process.pid}`);
  url.searchParams.set('connect_timeout', '2');
  const store = await openStore(url.toString(), { poolSize: 2 });
  try {
    await store.ping();
    open = false;
    for (const s of sockets) s.destroy();
    await rejectsWith(store.policies.list(), 'ERR_STORE_UNAVAILABLE');
    await rejectsWith(store.transaction(async (tx) => { await tx.policies.put({ name: 'lost', yaml: '', parsed: {} }); }), 'ERR_STORE_UNAVAILABLE');
    await rejectsWith(store.onChange(() => undefined), 'ERR_STORE_UNAVAILABLE');
    open = true;
    let ok = false;
    for (let i = 0; i < 20 && !ok; i++) {
      try {
        await store.ping();
        ok = true;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.ok(ok, 'store did not recover after the database came back');
    await store.transaction(async (tx) => {
      await tx.policies.put({ name: 'x', yaml: '', parsed: {} });
    });
    assert.equal(await store.policies.get('lost'), null);
  } finally {
    await store.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => relay.close(() => r()));
    const pg = (await import('pg')).default;
    const c = new pg.Client({ connectionString: PG_BASE_URL });
    await c.connect();
    await c.query(`drop schema if exists ward_t_relay_${process.pid} cascade`);
    await c.end();
  }
});

test('postgres: the LISTEN connection comes back after the database drops it, and watchers resync', { timeout: 15_000 }, async () => {
  const h = await postgresHarness();
  try {
    const other = await h.reopen();
    const heard: number[] = [];
    await h.store.onChange((v) => heard.push(v));
    const pg = (await import('pg')).default;
    const admin = new pg.Client({ connectionString: PG_BASE_URL });
    await admin.connect();
    try {
      const killed = await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where query = 'LISTEN ward_changes' and pid <> pg_backend_pid()");
      assert.ok(killed.rowCount !== null && killed.rowCount >= 1);
    } finally {
      await admin.end();
    }
    // Written while the listener is down: the resync after reconnecting must report it.
    await other.policies.put({ name: 'during-outage', yaml: '', parsed: {} });
    const v1 = await other.changes.latest();
    for (let i = 0; i < 100 && !heard.includes(v1); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(heard.includes(v1), `resync not heard: ${heard.join(',')}`);
    await other.policies.put({ name: 'after', yaml: '', parsed: {} });
    const v2 = await other.changes.latest();
    for (let i = 0; i < 100 && !heard.includes(v2); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(heard.includes(v2), 'notifications did not resume');
  } finally {
    await h.cleanup();
  }
});

test('postgres: three replicas opening a fresh schema at once migrate it exactly once', { timeout: 20_000 }, async () => {
  const schema = `ward_t_race_${process.pid}`;
  const url = `${PG_BASE_URL}${PG_BASE_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  const stores = await Promise.all([1, 2, 3].map(() => openStore(url, { poolSize: 2 })));
  const pg = (await import('pg')).default;
  const c = new pg.Client({ connectionString: PG_BASE_URL });
  await c.connect();
  try {
    await stores[0]!.policies.put({ name: 'p', yaml: '', parsed: {} });
    assert.equal((await stores[2]!.policies.get('p'))?.version, 1);
    const rows = await c.query(`select name from ${schema}.ward_migrations`);
    assert.deepEqual(rows.rows.map((r: { name: string }) => r.name), ['0001_initial', '0002_attestation_state']);
  } finally {
    for (const s of stores) await s.close();
    await c.query(`drop schema if exists ${schema} cascade`);
    await c.end();
  }
});
