// The store contract: every test here runs against every dialect (sqlite.test.ts, postgres.test.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { StoreError, newSecretToken, type Store } from '../../../src/store/index.js';
import type { SequencedEvent } from '../../../src/events/index.js';
import type { AttributeSet } from '../../../src/identity/attributes.js';
import { sampleEvents } from '../events/fixtures.js';
import type { Harness, HarnessFactory } from './harness.js';

const TD = 'spiffe://prod.example';
const NODE = `${TD}/ward/agent/node-1`;
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const OTHER_DIGEST = `sha256:${'cd'.repeat(32)}`;

export async function rejectsWith(p: Promise<unknown>, code: string): Promise<StoreError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof StoreError, `expected StoreError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

function attrs(source: string, at: number, values: Record<string, string | number | boolean | string[]>): AttributeSet {
  return Object.fromEntries(Object.entries(values).map(([k, value]) => [k, { value, source, observedAt: at }]));
}

export function storeContract(factory: HarnessFactory): void {
  const withStore = (fn: (h: Harness, store: Store) => Promise<void>) => async () => {
    const h = await factory();
    try {
      await fn(h, h.store);
    } finally {
      await h.cleanup();
    }
  };

  describe('migrations', () => {
    test('opening again on a migrated database keeps the data', withStore(async (h, store) => {
      await store.policies.put({ name: 'p1', yaml: 'kind: X', parsed: { kind: 'X' } });
      const again = await h.reopen();
      assert.equal((await again.policies.get('p1'))?.version, 1);
    }));
  });

  describe('migrations (newer schema)', () => {
    test('a database migrated by a newer Ward is refused with ERR_STORE_MIGRATION', withStore(async (h) => {
      await h.raw("insert into ward_migrations (name, applied_at) values ('9999_from_the_future', 1900000000000)");
      await rejectsWith(h.reopen(), 'ERR_STORE_MIGRATION');
    }));
  });

  describe('CA state', () => {
    test('compare-and-swap on version', withStore(async (_h, store) => {
      assert.equal(await store.ca.get(), null);
      assert.equal(await store.ca.put({ alg: 'ES256', sealed: 'AAA' }, null), 1);
      await rejectsWith(store.ca.put({ other: true }, null), 'ERR_STORE_CONFLICT');
      assert.equal(await store.ca.put({ alg: 'ES256', sealed: 'BBB' }, 1), 2);
      await rejectsWith(store.ca.put({ stale: true }, 1), 'ERR_STORE_CONFLICT');
      const got = await store.ca.get();
      assert.deepEqual(got?.sealed, { alg: 'ES256', sealed: 'BBB' });
      assert.equal(got?.version, 2);
    }));
  });

  describe('registration entries', () => {
    const input = { spiffeId: `${TD}/ns/shop/sa/orders`, parentId: NODE, selectors: ['k8s:sa:orders', 'k8s:ns:shop'], ttlSeconds: 3600 };

    test('create, get, list, update with revision, delete', withStore(async (_h, store) => {
      const e = await store.entries.create(input);
      assert.deepEqual(e.selectors, ['k8s:ns:shop', 'k8s:sa:orders']);
      assert.equal(e.revision, 1);
      assert.deepEqual(await store.entries.get(e.id), e);
      await store.entries.create({ ...input, spiffeId: `${TD}/ns/shop/sa/payments`, selectors: ['k8s:sa:payments'] });
      assert.equal((await store.entries.list({ parentId: NODE })).length, 2);
      assert.equal((await store.entries.list({ spiffeId: input.spiffeId })).length, 1);
      const u = await store.entries.update(e.id, { ...input, ttlSeconds: 600, admin: true }, 1);
      assert.equal(u.revision, 2);
      assert.equal(u.ttlSeconds, 600);
      assert.equal(u.admin, true);
      await rejectsWith(store.entries.update(e.id, input, 1), 'ERR_STORE_CONFLICT');
      const removed = await store.entries.delete(e.id);
      assert.equal(removed.revision, 2);
      assert.equal(await store.entries.get(e.id), null);
      await rejectsWith(store.entries.delete(e.id), 'ERR_STORE_NOT_FOUND');
      await rejectsWith(store.entries.update('nope', input), 'ERR_STORE_NOT_FOUND');
    }));

    test('the same identity, parent and selectors cannot be registered twice', withStore(async (_h, store) => {
      await store.entries.create(input);
      await rejectsWith(store.entries.create({ ...input, selectors: [...input.selectors].reverse() }), 'ERR_STORE_CONFLICT');
      await rejectsWith(store.entries.create({ ...input, id: 'fixed-id', selectors: ['k8s:sa:other'] }).then(() => store.entries.create({ ...input, id: 'fixed-id', selectors: ['k8s:sa:x'] })), 'ERR_STORE_CONFLICT');
    }));

    test('invalid input is refused before touching the database', withStore(async (_h, store) => {
      await rejectsWith(store.entries.create({ ...input, spiffeId: 'spiffe://Bad/x' }), 'ERR_STORE_INVALID');
      await rejectsWith(store.entries.create({ ...input, selectors: [] }), 'ERR_STORE_INVALID');
      await rejectsWith(store.entries.create({ ...input, selectors: ['noseparator'] }), 'ERR_STORE_INVALID');
      await rejectsWith(store.entries.create({ ...input, ttlSeconds: 0 }), 'ERR_STORE_INVALID');
      assert.deepEqual(await store.entries.list(), []);
    }));
  });

  describe('agents, SVIDs and workloads', () => {
    test('revoking an agent revokes its live SVIDs in one transaction', withStore(async (h, store) => {
      const a = await store.agents.upsert({ agentId: 'node-1', spiffeId: NODE, attestationType: 'join_token', selectors: ['join_token:abc'] });
      assert.equal(a.revoked, false);
      const now = h.clock.now();
      await store.agents.recordSvid({ serial: 'A1', agentId: 'node-1', spiffeId: `${TD}/ns/shop/sa/orders`, expiresAt: now + 3_600_000 });
      await store.agents.recordSvid({ serial: 'b2', agentId: 'node-1', spiffeId: `${TD}/ns/shop/sa/orders`, expiresAt: now - 1 });
      assert.equal((await store.agents.svids('node-1')).length, 2);
      h.clock.advance(1000);
      await store.agents.touch('node-1');
      assert.equal((await store.agents.get('node-1'))?.lastSeen, now + 1000);
      assert.deepEqual(await store.agents.revoke('node-1', 'node compromised'), ['a1']);
      assert.equal(await store.revocations.isRevoked('A1'), true);
      assert.equal(await store.revocations.isRevoked('b2'), false);
      // re-attestation keeps the revoked flag: the server must refuse it
      const again = await store.agents.upsert({ agentId: 'node-1', spiffeId: NODE, attestationType: 'join_token', selectors: [] });
      assert.equal(again.revoked, true);
      assert.equal(again.firstSeen, now);
      await rejectsWith(store.agents.revoke('ghost', 'x'), 'ERR_STORE_NOT_FOUND');
      await rejectsWith(store.agents.touch('ghost'), 'ERR_STORE_NOT_FOUND');
      assert.deepEqual((await store.agents.list()).map((x) => x.agentId), ['node-1']);
    }));

    test('workloads are found by image digest and deleted with their attributes', withStore(async (h, store) => {
      const w = await store.workloads.upsert({ spiffeId: `${TD}/ns/shop/sa/orders`, agentId: 'node-1', imageDigest: DIGEST });
      await store.workloads.upsert({ spiffeId: `${TD}/ns/shop/sa/orders-canary`, agentId: 'node-2', imageDigest: DIGEST });
      await store.workloads.upsert({ spiffeId: `${TD}/ns/shop/sa/web`, agentId: 'node-1', imageDigest: OTHER_DIGEST });
      assert.equal(w.imageDigest, DIGEST);
      assert.equal((await store.workloads.list({ imageDigest: DIGEST })).length, 2);
      assert.equal((await store.workloads.list({ agentId: 'node-1' })).length, 2);
      await store.attributes.replaceForSource(w.spiffeId, 'attestor:k8s_psat', attrs('attestor:k8s_psat', h.clock.now(), { 'k8s.namespace': 'shop' }));
      await store.workloads.delete(w.spiffeId);
      assert.equal(await store.workloads.get(w.spiffeId), null);
      assert.deepEqual(await store.attributes.own(w.spiffeId), {});
      await rejectsWith(store.workloads.upsert({ spiffeId: w.spiffeId, agentId: 'n', imageDigest: 'latest' }), 'ERR_STORE_INVALID');
    }));
  });

  describe('attributes', () => {
    const wl = `${TD}/ns/shop/sa/orders`;

    test('replaceForSource replaces one source and leaves the others', withStore(async (h, store) => {
      const t = h.clock.now();
      await store.attributes.replaceForSource(wl, 'attestor:k8s_psat', attrs('attestor:k8s_psat', t, { 'k8s.namespace': 'shop', 'k8s.label.app': 'orders', 'k8s.sa': 'orders' }));
      await store.attributes.replaceForSource(wl, 'entry', attrs('entry', t, { 'team.owner': 'payments' }));
      await store.attributes.replaceForSource(wl, 'attestor:k8s_psat', attrs('attestor:k8s_psat', t + 1, { 'k8s.namespace': 'shop', 'k8s.sa': 'orders-v2' }));
      const own = await store.attributes.own(wl);
      assert.deepEqual(Object.keys(own).sort(), ['k8s.namespace', 'k8s.sa', 'team.owner']);
      assert.equal(own['k8s.sa']?.value, 'orders-v2');
      assert.equal(own['k8s.sa']?.observedAt, t + 1);
      assert.equal(own['team.owner']?.source, 'entry');
      await store.attributes.replaceForSource(wl, 'entry', {});
      assert.equal((await store.attributes.own(wl))['team.owner'], undefined);
    }));

    test('a failed transaction leaves the previous attributes whole', withStore(async (h, store) => {
      const t = h.clock.now();
      await store.attributes.replaceForSource(wl, 'scan:x', attrs('scan:x', t, { 'vuln.critical': 1, 'vuln.high': 2 }));
      const before = (await store.changes.since(0)).latest;
      const boom = new Error('boom after two writes');
      await assert.rejects(store.transaction(async (tx) => {
        await tx.attributes.replaceForSource(wl, 'scan:x', attrs('scan:x', t + 5, { 'vuln.critical': 0 }));
        await tx.entries.create({ spiffeId: wl, parentId: NODE, selectors: ['a:b'], ttlSeconds: 60 });
        throw boom;
      }), (e: unknown) => e === boom);
      const own = await store.attributes.own(wl);
      assert.equal(own['vuln.critical']?.value, 1);
      assert.equal(own['vuln.high']?.value, 2);
      assert.deepEqual(await store.entries.list(), []);
      assert.equal((await store.changes.since(0)).latest, before);
    }));

    test('invalid attribute sets are refused', withStore(async (h, store) => {
      const t = h.clock.now();
      for (const bad of [
        attrs('scan:x', t, { 'NoNamespace': 1 }),
        attrs('other', t, { 'vuln.high': 1 }),
        { 'vuln.high': { value: Number.NaN, source: 'scan:x', observedAt: t } },
        { 'vuln.high': { value: { nested: true } as unknown as string, source: 'scan:x', observedAt: t } },
      ]) {
        await rejectsWith(store.attributes.replaceForSource(wl, 'scan:x', bad), 'ERR_STORE_INVALID');
      }
    }));

    test('image scans and provenance apply to every workload of the image; a new scan updates all', withStore(async (h, store) => {
      const a = `${TD}/ns/shop/sa/orders`;
      const b = `${TD}/ns/shop/sa/orders-canary`;
      await store.workloads.upsert({ spiffeId: a, agentId: 'n1', imageDigest: DIGEST });
      await store.workloads.upsert({ spiffeId: b, agentId: 'n2', imageDigest: DIGEST });
      await store.workloads.upsert({ spiffeId: `${TD}/other`, agentId: 'n2', imageDigest: OTHER_DIGEST });
      await store.attributes.replaceForSource(a, 'attestor:k8s_psat', attrs('attestor:k8s_psat', h.clock.now(), { 'k8s.namespace': 'shop' }));
      h.clock.advance(10);
      await store.images.putScan({ imageDigest: DIGEST, scanner: 'trivy', attributes: attrs('scan:trivy', h.clock.now(), { 'vuln.critical': 2, 'vuln.cves': ['CVE-2024-3094'] }), summary: { total: 2 } });
      await store.images.putProvenance({ imageDigest: DIGEST, attributes: attrs('provenance:slsa', h.clock.now(), { 'build.verified': true, 'build.repo': 'https://github.com/acme/orders' }), statement: { _type: 'https://in-toto.io/Statement/v1' }, verified: true });
      const docA = await store.attributes.forWorkload(a);
      assert.equal(docA['vuln.critical']?.value, 2);
      assert.deepEqual(docA['vuln.cves']?.value, ['CVE-2024-3094']);
      assert.equal(docA['build.verified']?.value, true);
      assert.equal(docA['k8s.namespace']?.value, 'shop');
      h.clock.advance(10);
      await store.images.putScan({ imageDigest: DIGEST, scanner: 'trivy', attributes: attrs('scan:trivy', h.clock.now(), { 'vuln.critical': 0, 'vuln.cves': [] }) });
      for (const w of [a, b]) assert.equal((await store.attributes.forWorkload(w))['vuln.critical']?.value, 0, w);
      assert.equal((await store.attributes.forWorkload(`${TD}/other`))['vuln.critical'], undefined);
      assert.equal((await store.images.scans(DIGEST)).length, 1);
      assert.equal((await store.images.provenance(DIGEST))?.verified, true);
      assert.equal(await store.images.provenance(OTHER_DIGEST), null);
    }));
  });

  describe('policies', () => {
    test('versions increase per name; expectedVersion detects concurrent applies', withStore(async (_h, store) => {
      const p1 = await store.policies.put({ name: 'shop/orders', yaml: 'a: 1', parsed: { a: 1 } }, 0);
      assert.equal(p1.version, 1);
      await rejectsWith(store.policies.put({ name: 'shop/orders', yaml: 'a: 2', parsed: { a: 2 } }, 0), 'ERR_STORE_CONFLICT');
      const p2 = await store.policies.put({ name: 'shop/orders', yaml: 'a: 2', parsed: { a: 2 } }, 1);
      assert.equal(p2.version, 2);
      assert.deepEqual((await store.policies.get('shop/orders'))?.parsed, { a: 2 });
      assert.equal((await store.policies.list()).length, 1);
      assert.equal((await store.policies.delete('shop/orders')).version, 2);
      await rejectsWith(store.policies.delete('shop/orders'), 'ERR_STORE_NOT_FOUND');
      await rejectsWith(store.policies.put({ name: 'Bad Name', yaml: '', parsed: {} }), 'ERR_STORE_INVALID');
    }));
  });

  describe('tokens', () => {
    test('join tokens are stored hashed and consumed once', withStore(async (h, store) => {
      const token = newSecretToken();
      const { expiresAt } = await store.joinTokens.create({ token, ttlMs: 600_000, spiffeId: NODE });
      assert.equal(expiresAt, h.clock.now() + 600_000);
      const rows = await h.raw('select token_hash from join_tokens');
      assert.deepEqual(rows.map((r) => r['token_hash']), [createHash('sha256').update(token).digest('hex')]);
      const dump = JSON.stringify(await h.raw('select * from join_tokens'));
      assert.ok(!dump.includes(token), 'plaintext token stored');
      const won = await store.joinTokens.consume(token, 'node-1');
      assert.equal(won?.spiffeId, NODE);
      assert.equal(won?.usedBy, 'node-1');
      assert.equal(await store.joinTokens.consume(token, 'node-2'), null);
      assert.equal(await store.joinTokens.consume(newSecretToken(), 'node-2'), null);
      assert.equal(await store.joinTokens.consume('short', 'node-2'), null);
    }));

    test('an expired join token cannot be consumed', withStore(async (h, store) => {
      const token = newSecretToken();
      await store.joinTokens.create({ token, ttlMs: 1000 });
      h.clock.advance(1000);
      assert.equal(await store.joinTokens.consume(token, 'late'), null);
      assert.equal(await store.joinTokens.pruneExpired(), 1);
    }));

    test('concurrent consumers on two connections: exactly one wins', withStore(async (h, store) => {
      const other = await h.peer();
      for (let round = 0; round < 5; round++) {
        const token = newSecretToken();
        await store.joinTokens.create({ token, ttlMs: 600_000 });
        const results = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? store : other).joinTokens.consume(token, `agent-${i}`)));
        const winners = results.filter((r) => r !== null);
        assert.equal(winners.length, 1, `round ${round}: ${winners.length} winners`);
        const stored = await h.raw('select used_by from join_tokens where used_by is not null');
        assert.ok(stored.some((r) => r['used_by'] === winners[0]?.usedBy));
      }
    }));

    test('admin tokens: roles, verify, expiry, revoke, unique names', withStore(async (h, store) => {
      const t1 = newSecretToken();
      const t2 = newSecretToken();
      await store.adminTokens.create({ token: t1, name: 'bootstrap', role: 'admin' });
      await store.adminTokens.create({ token: t2, name: 'ci', role: 'operator', expiresAt: h.clock.now() + 1000 });
      assert.equal((await store.adminTokens.verify(t1))?.role, 'admin');
      assert.equal((await store.adminTokens.verify(t2))?.name, 'ci');
      assert.equal(await store.adminTokens.verify(newSecretToken()), null);
      h.clock.advance(1000);
      assert.equal(await store.adminTokens.verify(t2), null);
      await store.adminTokens.revoke('bootstrap');
      assert.equal(await store.adminTokens.verify(t1), null);
      await rejectsWith(store.adminTokens.create({ token: newSecretToken(), name: 'ci', role: 'viewer' }), 'ERR_STORE_CONFLICT');
      await rejectsWith(store.adminTokens.create({ token: newSecretToken(), name: 'x', role: 'root' as never }), 'ERR_STORE_INVALID');
      assert.deepEqual((await store.adminTokens.list()).map((t) => [t.name, t.revoked]), [['bootstrap', true], ['ci', false]]);
      assert.ok(!JSON.stringify(await h.raw('select * from admin_tokens')).includes(t1));
    }));
  });

  describe('revocations', () => {
    test('idempotent add, active list, prune after expiry', withStore(async (h, store) => {
      const now = h.clock.now();
      assert.equal(await store.revocations.add({ serial: 'DEAD01', spiffeId: NODE, reason: 'key leak', expiresAt: now + 1000 }), true);
      assert.equal(await store.revocations.add({ serial: 'dead01', spiffeId: NODE, reason: 'again', expiresAt: now + 1000 }), false);
      await store.revocations.add({ serial: 'beef', spiffeId: NODE, reason: 'x', expiresAt: now + 5000 });
      assert.deepEqual((await store.revocations.listActive()).map((r) => [r.serial, r.reason]), [['beef', 'x'], ['dead01', 'key leak']]);
      h.clock.advance(1000);
      assert.deepEqual((await store.revocations.listActive()).map((r) => r.serial), ['beef']);
      assert.equal(await store.revocations.pruneExpired(), 1);
      await rejectsWith(store.revocations.add({ serial: 'xyz', spiffeId: NODE, reason: 'r', expiresAt: 0 }), 'ERR_STORE_INVALID');
    }));
  });

  describe('audit log', () => {
    test('append and list in order; the database refuses updates and deletes', withStore(async (h, store) => {
      const id1 = await store.audit.append({ actor: 'bootstrap', action: 'policy.apply', resource: 'policy/a', after: { v: 1 } });
      h.clock.advance(5);
      const id2 = await store.audit.append({ actor: 'ci', action: 'policy.apply', resource: 'policy/a', before: { v: 1 }, after: { v: 2 } });
      assert.ok(id2 > id1);
      const all = await store.audit.list();
      assert.deepEqual(all.map((r) => [r.actor, r.before, r.after]), [['bootstrap', null, { v: 1 }], ['ci', { v: 1 }, { v: 2 }]]);
      assert.equal(all[1]?.at, all[0]!.at + 5);
      assert.deepEqual((await store.audit.list({ afterId: id1 })).map((r) => r.id), [id2]);
      assert.deepEqual((await store.audit.list({ actor: 'ci' })).map((r) => r.id), [id2]);
      await assert.rejects(h.raw("update audit_log set actor = 'mallory'"), /append-only/);
      await assert.rejects(h.raw('delete from audit_log'), /append-only/);
      assert.equal((await store.audit.list()).length, 2);
      assert.equal('update' in store.audit || 'delete' in store.audit, false);
    }));
  });

  describe('events', () => {
    const batch = (from: number, n: number): SequencedEvent[] => sampleEvents().slice(0, n).map((event, i) => ({ seq: from + i, event }));

    test('a retried batch is stored once; overlapping batches store only the new ones', withStore(async (_h, store) => {
      assert.deepEqual(await store.events.append('agent-1', batch(1, 4)), { inserted: [1, 2, 3, 4], duplicates: [] });
      assert.deepEqual(await store.events.append('agent-1', batch(1, 4)), { inserted: [], duplicates: [1, 2, 3, 4] });
      assert.deepEqual(await store.events.append('agent-1', batch(3, 4)), { inserted: [5, 6], duplicates: [3, 4] });
      assert.deepEqual(await store.events.append('agent-2', batch(1, 2)), { inserted: [1, 2], duplicates: [] });
      assert.equal(await store.events.lastSeq('agent-1'), 6);
      assert.equal(await store.events.lastSeq('nobody'), -1);
      const stored = await store.events.list({ agentId: 'agent-1', limit: 100 });
      assert.equal(stored.length, 6);
      assert.deepEqual(stored.find((e) => e.seq === 1)?.event, sampleEvents()[0]);
      assert.equal((await store.events.list({ classUid: 4002 })).length, 2);
    }));

    test('concurrent retries of the same batch from two connections store it once', withStore(async (h, store) => {
      const other = await h.peer();
      const b = batch(100, 6);
      const results = await Promise.all([store, other, store, other].map((s) => s.events.append('agent-9', b)));
      assert.equal(results.reduce((n, r) => n + r.inserted.length, 0), 6);
      assert.equal((await store.events.list({ agentId: 'agent-9' })).length, 6);
    }));
  });

  describe('change log and notifications', () => {
    test('every change gets a strictly increasing version; since() resumes; pruning forces a resync', withStore(async (_h, store) => {
      await store.policies.put({ name: 'a', yaml: '', parsed: {} });
      const e = await store.entries.create({ spiffeId: `${TD}/x`, parentId: NODE, selectors: ['a:b'], ttlSeconds: 60 });
      await store.entries.delete(e.id);
      const { changes, latest } = await store.changes.since(0);
      assert.deepEqual(changes.map((c) => [c.kind, c.op]), [['policy', 'upsert'], ['entry', 'upsert'], ['entry', 'delete']]);
      assert.equal(latest, changes.at(-1)?.version);
      for (let i = 1; i < changes.length; i++) assert.ok(changes[i]!.version > changes[i - 1]!.version);
      const after = await store.changes.since(changes[0]!.version);
      assert.equal(after.changes.length, 2);
      assert.equal(await store.changes.prune(changes[1]!.version), 2);
      assert.equal((await store.changes.since(0)).compacted, true);
      const tail = await store.changes.since(changes[1]!.version);
      assert.equal(tail.compacted, false);
      assert.deepEqual(tail.changes.map((c) => c.version), [changes[2]!.version]);
      assert.equal(await store.changes.latest(), latest);
    }));

    test('concurrent writers from two replicas: versions commit in order, nothing is skipped', withStore(async (h, store) => {
      const other = await h.peer();
      const seen: number[] = [];
      let cursor = 0;
      // One watcher polling while writers run: it must see every version exactly once, in order.
      let chain = Promise.resolve();
      const poll = () => {
        chain = chain.then(async () => {
          const r = await store.changes.since(cursor);
          for (const c of r.changes) {
            seen.push(c.version);
            cursor = c.version;
          }
        });
        return chain;
      };
      await Promise.all(Array.from({ length: 30 }, async (_, i) => {
        await (i % 2 ? store : other).policies.put({ name: `p${i}`, yaml: '', parsed: { i } });
        await poll();
      }));
      await poll();
      assert.equal(seen.length, 30);
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!);
    }));

    test('a slow transaction holding an earlier version is never skipped by a watcher', withStore(async (h, store) => {
      const other = await h.peer();
      let cursor = 0;
      const seen: string[] = [];
      const poll = async () => {
        for (const c of (await store.changes.since(cursor)).changes) {
          seen.push(c.resourceId);
          cursor = c.version;
        }
      };
      let started!: () => void;
      const inside = new Promise<void>((r) => { started = r; });
      const slow = store.transaction(async (tx) => {
        await tx.policies.put({ name: 'slow', yaml: '', parsed: {} });
        started();
        await new Promise((r) => setTimeout(r, 300));
      });
      await inside;
      // Without commit-ordered versions, 'fast' would commit a later version first and the
      // watcher would move its cursor past 'slow' before 'slow' is visible.
      await other.policies.put({ name: 'fast', yaml: '', parsed: {} });
      await poll();
      await slow;
      await poll();
      assert.deepEqual(seen.sort(), ['fast', 'slow']);
    }));

    test('onChange fires after commit (on other replicas too), never for a rolled-back transaction', withStore(async (h, store) => {
      const other = await h.peer();
      const heard: number[] = [];
      const heardOther: number[] = [];
      const off = await store.onChange((v) => heard.push(v));
      await other.onChange((v) => heardOther.push(v));
      const waitFor = async (arr: number[], v: number) => {
        for (let i = 0; i < 200 && !arr.includes(v); i++) await new Promise((r) => setTimeout(r, 10));
        assert.ok(arr.includes(v), `version ${v} not heard (heard ${arr.join(',')})`);
      };
      const p = await store.policies.put({ name: 'live', yaml: '', parsed: {} });
      const v1 = (await store.changes.since(0)).latest;
      assert.equal(p.version, 1);
      await waitFor(heard, v1);
      if (h.name === 'postgres') await waitFor(heardOther, v1);
      await assert.rejects(store.transaction(async (tx) => {
        await tx.policies.put({ name: 'ghost', yaml: '', parsed: {} });
        throw new Error('rollback');
      }));
      const v2 = (await other.policies.put({ name: 'live2', yaml: '', parsed: {} })).version;
      assert.equal(v2, 1);
      const latest = (await store.changes.since(0)).latest;
      if (h.name === 'postgres') await waitFor(heard, latest);
      assert.equal((await store.policies.get('ghost')), null);
      assert.equal((await store.changes.since(0)).changes.some((c) => c.resourceId === 'ghost'), false);
      off();
    }));
  });

  describe('unavailability', () => {
    test('a closed store fails every call with ERR_STORE_UNAVAILABLE', withStore(async (h) => {
      const s = await h.reopen();
      await s.close();
      await rejectsWith(s.policies.list(), 'ERR_STORE_UNAVAILABLE');
      await rejectsWith(s.ping(), 'ERR_STORE_UNAVAILABLE');
      await rejectsWith(s.transaction(async () => undefined), 'ERR_STORE_UNAVAILABLE');
      await rejectsWith(s.onChange(() => undefined), 'ERR_STORE_UNAVAILABLE');
    }));
  });

  describe('attestation state (AttestationState, ADR 0051)', () => {
    const KIND = 'join_token';
    const hash = (label: string) => createHash('sha256').update(label).digest('hex');

    test('put then redeem once: redeemed with its data, then used; unknown stays unknown', withStore(async (h, store) => {
      const key = hash('t1');
      const expiresAt = h.clock.now() + 600_000;
      await store.attestation.putCredential(KIND, key, { expiresAt, data: { 'host.name': 'vm-1', '@hash': key } });
      const first = await store.attestation.redeemCredential(KIND, key, h.clock.now());
      assert.deepEqual(first, { outcome: 'redeemed', record: { expiresAt, data: { 'host.name': 'vm-1', '@hash': key } } });
      assert.ok(first.outcome === 'redeemed' && Object.isFrozen(first.record) && Object.isFrozen(first.record.data));
      const again = await store.attestation.redeemCredential(KIND, key, h.clock.now());
      assert.equal(again.outcome, 'used');
      assert.ok(again.outcome === 'used' && again.record.data['host.name'] === 'vm-1');
      assert.deepEqual(await store.attestation.redeemCredential(KIND, hash('never'), h.clock.now()), { outcome: 'unknown' });
      // The kind is part of the key: the same hash under another kind is a different credential.
      assert.deepEqual(await store.attestation.redeemCredential('x509pop', key, h.clock.now()), { outcome: 'unknown' });
      const rows = await h.raw('select used_at from attestation_credentials');
      assert.deepEqual(rows.map((r) => Number(r['used_at'])), [h.clock.now()]);
    }));

    test('a duplicate put is ERR_STORE_CONFLICT and leaves the first record intact', withStore(async (h, store) => {
      const key = hash('dup');
      await store.attestation.putCredential(KIND, key, { expiresAt: h.clock.now() + 1000, data: { a: '1' } });
      await rejectsWith(store.attestation.putCredential(KIND, key, { expiresAt: h.clock.now() + 9000, data: { a: '2' } }), 'ERR_STORE_CONFLICT');
      const got = await store.attestation.redeemCredential(KIND, key, h.clock.now());
      assert.ok(got.outcome === 'redeemed');
      assert.deepEqual(got.record, { expiresAt: h.clock.now() + 1000, data: { a: '1' } });
    }));

    test('bad input is ERR_STORE_INVALID, not a query', withStore(async (h, store) => {
      await rejectsWith(store.attestation.putCredential('', hash('x'), { expiresAt: 1, data: {} }), 'ERR_STORE_INVALID');
      await rejectsWith(store.attestation.putCredential(KIND, 'k'.repeat(513), { expiresAt: 1, data: {} }), 'ERR_STORE_INVALID');
      await rejectsWith(store.attestation.putCredential(KIND, hash('x'), { expiresAt: 1.5, data: {} }), 'ERR_STORE_INVALID');
      await rejectsWith(store.attestation.putCredential(KIND, hash('x'), { expiresAt: 1, data: { n: 1 as unknown as string } }), 'ERR_STORE_INVALID');
      await rejectsWith(store.attestation.consumeOnce(KIND, '', h.clock.now()), 'ERR_STORE_INVALID');
      await rejectsWith(store.attestation.redeemCredential(KIND, hash('x'), Number.NaN), 'ERR_STORE_INVALID');
      assert.deepEqual(await h.raw('select kind from attestation_credentials'), []);
    }));

    test('an expired credential is still redeemed once (the caller judges expiry), then used', withStore(async (h, store) => {
      const key = hash('late');
      await store.attestation.putCredential(KIND, key, { expiresAt: h.clock.now() + 1000, data: {} });
      h.clock.advance(5000);
      const late = await store.attestation.redeemCredential(KIND, key, h.clock.now());
      assert.ok(late.outcome === 'redeemed' && late.record.expiresAt < h.clock.now());
      assert.equal((await store.attestation.redeemCredential(KIND, key, h.clock.now())).outcome, 'used');
    }));

    test('consumeOnce: true the first time only, per kind', withStore(async (h, store) => {
      const exp = h.clock.now() + 60_000;
      assert.equal(await store.attestation.consumeOnce('aws_iid', 'i-0abc', exp), true);
      assert.equal(await store.attestation.consumeOnce('aws_iid', 'i-0abc', exp), false);
      assert.equal(await store.attestation.consumeOnce('aws_iid', 'i-0abc', exp + 1), false);
      assert.equal(await store.attestation.consumeOnce('x509pop', 'i-0abc', exp), true);
      // A replay record past its expiry but not yet pruned still refuses (fail closed).
      h.clock.advance(120_000);
      assert.equal(await store.attestation.consumeOnce('aws_iid', 'i-0abc', h.clock.now() + 60_000), false);
    }));

    test('state survives reopening the store (a server restart) and is shared with another replica', withStore(async (h, store) => {
      const key = hash('restart');
      await store.attestation.putCredential(KIND, key, { expiresAt: h.clock.now() + 600_000, data: { 'host.name': 'vm-r' } });
      assert.equal(await store.attestation.consumeOnce('aws_iid', 'i-restart', h.clock.now() + 600_000), true);
      await store.close();
      const reopened = await h.reopen();
      const got = await reopened.attestation.redeemCredential(KIND, key, h.clock.now());
      assert.ok(got.outcome === 'redeemed' && got.record.data['host.name'] === 'vm-r');
      assert.equal(await reopened.attestation.consumeOnce('aws_iid', 'i-restart', h.clock.now() + 600_000), false);
      const third = await h.reopen();
      assert.equal((await third.attestation.redeemCredential(KIND, key, h.clock.now())).outcome, 'used');
    }));

    test('concurrent redeemers and consumers on two connections: exactly one wins each race', withStore(async (h, store) => {
      const other = await h.peer();
      for (let round = 0; round < 5; round++) {
        const key = hash(`race-${round}`);
        await store.attestation.putCredential(KIND, key, { expiresAt: h.clock.now() + 600_000, data: { round: String(round) } });
        const redeemed = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? store : other).attestation.redeemCredential(KIND, key, h.clock.now())));
        assert.equal(redeemed.filter((r) => r.outcome === 'redeemed').length, 1, `round ${round}: redeemed`);
        assert.equal(redeemed.filter((r) => r.outcome === 'used').length, 11, `round ${round}: used`);
        const consumed = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? store : other).attestation.consumeOnce('aws_iid', `i-${round}`, h.clock.now() + 1000)));
        assert.equal(consumed.filter(Boolean).length, 1, `round ${round}: consumeOnce`);
      }
    }));

    test('pruneExpired drops only expired records; a pruned credential is unknown', withStore(async (h, store) => {
      const now = h.clock.now();
      await store.attestation.putCredential(KIND, hash('old'), { expiresAt: now + 1000, data: {} });
      await store.attestation.putCredential(KIND, hash('new'), { expiresAt: now + 10_000, data: {} });
      await store.attestation.consumeOnce('aws_iid', 'i-old', now + 1000);
      await store.attestation.consumeOnce('aws_iid', 'i-new', now + 10_000);
      h.clock.advance(1001);
      assert.deepEqual(await store.attestation.pruneExpired(), { credentials: 1, consumed: 1 });
      assert.deepEqual(await store.attestation.redeemCredential(KIND, hash('old'), h.clock.now()), { outcome: 'unknown' });
      assert.equal((await store.attestation.redeemCredential(KIND, hash('new'), h.clock.now())).outcome, 'redeemed');
      assert.equal(await store.attestation.consumeOnce('aws_iid', 'i-new', now + 10_000), false);
      assert.deepEqual(await store.attestation.pruneExpired(), { credentials: 0, consumed: 0 });
    }));

    test('no secret is stored: only the keys and data the attestor hands over', withStore(async (h, store) => {
      const secret = newSecretToken();
      await store.attestation.putCredential(KIND, hash(secret), { expiresAt: h.clock.now() + 1000, data: { '@hash': hash(secret) } });
      const dump = JSON.stringify(await h.raw('select * from attestation_credentials'));
      assert.ok(!dump.includes(secret));
    }));
  });

  describe('maintenance', () => {
    // peer(): another replica on PostgreSQL; on SQLite the same store (one process per file,
    // ADR 0032; the cross-process case is in sqlite-multiprocess.test.ts).
    test('singleton: one run per interval across replicas; the last-run mark is shared', withStore(async (h, store) => {
      const other = await h.peer();
      let runs = 0;
      const job = async () => { runs++; return runs; };
      const [a, b] = await Promise.all([store.singleton('prune', 60_000, job), other.singleton('prune', 60_000, job)]);
      assert.equal([a, b].filter((r) => r.ran).length, 1);
      assert.equal(runs, 1);
      assert.deepEqual(await other.singleton('prune', 60_000, job), { ran: false, reason: 'recent' });
      h.clock.advance(60_000);
      assert.deepEqual(await other.singleton('prune', 60_000, job), { ran: true, result: 2 });
      // Another job name has its own schedule.
      assert.equal((await store.singleton('other-job', 60_000, job)).ran, true);
      await rejectsWith(store.singleton('Bad Name', 1, job), 'ERR_STORE_INVALID');
    }));

    test('singleton: a replica that finds the job running skips instead of waiting (postgres) or runs after it (sqlite)', withStore(async (h, store) => {
      const other = await h.peer();
      let release!: () => void;
      const gate = new Promise<void>((r) => { release = r; });
      let entered!: () => void;
      const inside = new Promise<void>((r) => { entered = r; });
      const first = store.singleton('prune', 0, async () => { entered(); await gate; return 'first'; });
      await inside;
      const second = other.singleton('prune', 0, async () => 'second');
      if (h.name === 'postgres') {
        assert.deepEqual(await second, { ran: false, reason: 'locked' });
        release();
        assert.deepEqual(await first, { ran: true, result: 'first' });
      } else {
        // One writer per SQLite file: the second waits for the write lock, then runs.
        setTimeout(release, 50);
        assert.deepEqual(await first, { ran: true, result: 'first' });
        assert.deepEqual(await second, { ran: true, result: 'second' });
      }
    }));

    test('singleton: a failing job rolls back its writes and its last-run mark', withStore(async (h, store) => {
      await assert.rejects(store.singleton('prune', 60_000, async (tx) => {
        await tx.attestation.putCredential('join_token', 'k'.repeat(64), { expiresAt: h.clock.now() + 1, data: {} });
        throw new Error('boom');
      }));
      assert.deepEqual(await h.raw('select kind from attestation_credentials'), []);
      assert.equal((await store.singleton('prune', 60_000, async () => 'ok')).ran, true);
    }));

    test('change log: pruneOlderThan drops old rows but always keeps the newest', withStore(async (h, store) => {
      await store.policies.put({ name: 'a', yaml: '', parsed: {} });
      await store.policies.put({ name: 'b', yaml: '', parsed: {} });
      h.clock.advance(10_000);
      await store.policies.put({ name: 'c', yaml: '', parsed: {} });
      const latest = await store.changes.latest();
      assert.equal(await store.changes.pruneOlderThan(h.clock.now() - 5000), 2);
      assert.deepEqual((await store.changes.since(latest - 1)).changes.map((c) => c.version), [latest]);
      assert.equal((await store.changes.since(0)).compacted, true);
      h.clock.advance(10_000);
      assert.equal(await store.changes.pruneOlderThan(h.clock.now()), 0, 'the newest row stays');
      assert.equal(await store.changes.latest(), latest);
    }));
  });
}
