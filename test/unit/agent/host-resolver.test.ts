// HostResolver (ADR 0078): host names for the native relay. The system resolver for what it
// answers here (localhost, an RFC 2606 .invalid name); a scripted lookup for the cache's
// behaviour over time: rotation, background refresh, one query per burst, fail-static,
// negative caching.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { HostResolver, type LookupAll } from '../../../src/agent/proxy/native/resolver.js';
import { isWardError } from '../../../src/core/errors.js';

const clockAt = (t: { now: number }) => ({ now: () => t.now });

/** A lookup answering from `table` (host → addresses or an errno code), counting calls, async like dns.lookup. */
function scripted(table: Map<string, readonly string[] | string>): { lookup: LookupAll; calls: string[] } {
  const calls: string[] = [];
  const lookup: LookupAll = (host, cb) => {
    calls.push(host);
    setImmediate(() => {
      const v = table.get(host) ?? 'ENOTFOUND';
      if (typeof v === 'string') cb(Object.assign(new Error(v), { code: v }), []);
      else cb(null, v.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 })));
    });
  };
  return { lookup, calls };
}

test('the system resolver: localhost resolves (from /etc/hosts), an IP literal is itself without a query, .invalid fails with ERR_AGENT_UPSTREAM', async () => {
  const r = new HostResolver({ clock: { now: () => Date.now() } });
  assert.equal(r.resolve('10.1.2.3'), '10.1.2.3');
  assert.equal(r.resolve('::1'), '::1');
  assert.equal(r.lookups, 0);
  const first = r.resolve('localhost');
  assert.ok(first instanceof Promise, 'the first connection waits for the lookup');
  assert.match(await first, /^(127\.0\.0\.1|::1)$/);
  assert.equal(typeof r.resolve('localhost'), 'string', 'then it is cached');
  await assert.rejects(Promise.resolve(r.resolve('nothing-here.invalid')), (e: unknown) => isWardError(e) && e.code === 'ERR_AGENT_UPSTREAM' && e.details?.host === 'nothing-here.invalid');
});

test('rotation over every address, one query for a burst, background refresh once stale, rotation reset when the set changes', async () => {
  const t = { now: 0 };
  const table = new Map<string, readonly string[] | string>([['orders.svc', ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.1']]]);
  const { lookup, calls } = scripted(table);
  const r = new HostResolver({ clock: clockAt(t), lookup, refreshMs: 5000 });
  const burst = await Promise.all(Array.from({ length: 6 }, () => r.resolve('orders.svc')));
  assert.equal(calls.length, 1, 'six connections, one query');
  assert.deepEqual([...burst].sort(), ['10.0.0.1', '10.0.0.1', '10.0.0.2', '10.0.0.2', '10.0.0.3', '10.0.0.3'], 'duplicates dropped, spread evenly');
  t.now = 4999;
  assert.equal(typeof r.resolve('orders.svc'), 'string');
  assert.equal(calls.length, 1, 'fresh: no query');
  table.set('orders.svc', ['10.0.0.9']);
  t.now = 5000;
  const stale = r.resolve('orders.svc');
  assert.equal(typeof stale, 'string', 'stale answers at once');
  assert.notEqual(stale, '10.0.0.9');
  assert.equal(calls.length, 2, 'and refreshes in the background');
  await new Promise((res) => setImmediate(res));
  assert.equal(r.resolve('orders.svc'), '10.0.0.9');
  assert.equal(r.resolve('orders.svc'), '10.0.0.9');
});

test('fail-static: a failed re-resolution keeps the last good addresses and retries each period; a name that never resolved is refused, re-queried only after a second', async () => {
  const t = { now: 0 };
  const table = new Map<string, readonly string[] | string>([['db.svc', ['10.0.0.5']]]);
  const { lookup, calls } = scripted(table);
  const r = new HostResolver({ clock: clockAt(t), lookup, refreshMs: 5000 });
  assert.equal(await r.resolve('db.svc'), '10.0.0.5');
  table.set('db.svc', 'EAI_AGAIN');
  t.now = 6000;
  assert.equal(r.resolve('db.svc'), '10.0.0.5');
  await new Promise((res) => setImmediate(res));
  assert.equal(r.resolve('db.svc'), '10.0.0.5', 'DNS down: the last good address stays');
  assert.equal(calls.length, 2);
  t.now = 11_000;
  r.resolve('db.svc');
  assert.equal(calls.length, 3, 'retried once per period');

  const ghost = (): Promise<string> => Promise.resolve(r.resolve('ghost.svc'));
  await assert.rejects(ghost(), { code: 'ERR_AGENT_UPSTREAM' });
  const before = calls.length;
  t.now += 500;
  await assert.rejects(ghost(), { code: 'ERR_AGENT_UPSTREAM' });
  assert.equal(calls.length, before, 'a recent failure is answered without a query');
  t.now += 600;
  table.set('ghost.svc', ['10.0.0.7']);
  assert.equal(await ghost(), '10.0.0.7', 'after a second it is asked again');
});
