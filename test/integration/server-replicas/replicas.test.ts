// Two `ward server` replicas on one PostgreSQL schema: a change committed through one replica
// reaches an agent watching the other within a second (LISTEN/NOTIFY, then the change log), and
// both replicas serve the same registry, the same CA and the same attestation state (a join
// token issued by one replica is redeemed through the other, once).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WardClient } from '../../../src/api/client.js';
import { ServerReplyError } from '../../../src/api/errors.js';
import type { WatchMessage } from '../../../src/api/types.js';
import { parseServerConfig } from '../../../src/server/config.js';
import { startServer } from '../../../src/server/server.js';
import { ScriptedAgent, TRUST_DOMAIN, opensslVerify, startTestServer } from '../server-lifecycle/harness.js';

test('postgres: a policy applied on replica A reaches an agent watching replica B within a second', { timeout: 60_000 }, async (t) => {
  const a = await startTestServer('postgres');
  t.after(() => a.cleanup());
  const configB = parseServerConfig({ dataDir: a.dir, store: a.storeUrl, trustDomain: TRUST_DOMAIN, adminListen: '127.0.0.1:0', agentListen: '127.0.0.1:0' });
  const b = await startServer({ config: configB });
  t.after(() => b.close());
  assert.deepEqual(b.bundle, a.server.bundle, 'one CA, shared through the store');
  const adminB = new WardClient({ baseUrl: b.adminUrl, token: a.bootstrapToken });
  t.after(() => adminB.close());

  // The token is issued by replica A; the agent joins through replica B and watches B.
  const jt = await a.admin.createJoinToken({ attributes: { 'host.name': 'vm-b' } });
  const agent = new ScriptedAgent(b);
  t.after(() => agent.close());
  await agent.attest(jt.token);
  // Replaying it through A is a replay, not an unknown token: the state is shared.
  const replay = new ScriptedAgent(a.server);
  t.after(() => replay.close());
  await assert.rejects(replay.attest(jt.token), (e: unknown) => e instanceof ServerReplyError && e.status === 401 && e.code === 'ERR_ATTEST_REPLAYED');
  await a.admin.apply([{ apiVersion: 'ward.dev/v1alpha1', kind: 'RegistrationEntry', metadata: { name: 'web' }, spec: { spiffeId: `spiffe://${TRUST_DOMAIN}/shop/web`, parentId: '*', nodeSelectors: ['join_token:host-name:vm-b'] } }]);
  const watch = agent.watch();
  t.after(() => watch.stop());
  const isEntries = (m: WatchMessage): m is Extract<WatchMessage, { type: 'entries' }> => m.type === 'entries' && m.entries.length === 1;
  await watch.waitFor(isEntries, 5000);
  const svid = await agent.workloadSvid(`spiffe://${TRUST_DOMAIN}/shop/web`);
  assert.match(opensslVerify(a.dir, a.server.bundle, svid.svid.certChain), /OK/);

  const from = watch.messages.length;
  const t0 = performance.now();
  await a.admin.apply([{ apiVersion: 'ward.dev/v1alpha1', kind: 'AccessPolicy', metadata: { name: 'web-egress' }, spec: { subject: { spiffeIds: [`spiffe://${TRUST_DOMAIN}/shop/web`] }, egress: [{ to: [{ spiffeIds: [`spiffe://${TRUST_DOMAIN}/shop/orders`] }] }] } }]);
  const got = await watch.waitFor((m): m is Extract<WatchMessage, { type: 'policies' }> => m.type === 'policies' && m.policies.some((p) => p.name === 'web-egress'), 5000, from);
  assert.ok(got.at - t0 < 1000, `reached the other replica's agent after ${Math.round(got.at - t0)}ms`);

  // Both replicas answer reads from the same registry.
  assert.deepEqual((await adminB.listPolicies()).items.map((p) => p.name), ['web-egress']);
  assert.deepEqual((await a.admin.listWorkloads()).items.map((w) => w.spiffeId), [`spiffe://${TRUST_DOMAIN}/shop/web`]);
  assert.deepEqual((await a.admin.listAgents()).items.map((x) => x.agentId), [agent.agentId]);
});

test('postgres: replicas racing on one join token let exactly one agent in', { timeout: 60_000 }, async (t) => {
  const a = await startTestServer('postgres');
  t.after(() => a.cleanup());
  const configB = parseServerConfig({ dataDir: a.dir, store: a.storeUrl, trustDomain: TRUST_DOMAIN, adminListen: '127.0.0.1:0', agentListen: '127.0.0.1:0' });
  const b = await startServer({ config: configB });
  t.after(() => b.close());
  const jt = await a.admin.createJoinToken({});
  const agents = Array.from({ length: 6 }, (_, i) => new ScriptedAgent(i % 2 === 0 ? a.server : b));
  t.after(() => { for (const x of agents) x.close(); });
  const outcomes = await Promise.allSettled(agents.map((x) => x.attest(jt.token)));
  assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
  for (const o of outcomes) {
    if (o.status === 'rejected') assert.ok(o.reason instanceof ServerReplyError && o.reason.code === 'ERR_ATTEST_REPLAYED', String(o.reason));
  }
  assert.equal((await a.admin.listAgents()).items.length, 1);

  // The maintenance job is a singleton: of two replicas ticking at once, one prunes.
  const ticks = await Promise.all([a.server.maintenance.runOnce(), b.maintenance.runOnce()]);
  assert.equal(ticks.filter((r) => r.ran).length, 1, JSON.stringify(ticks));
});
