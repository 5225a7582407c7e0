// Two `ward server` replicas on one PostgreSQL schema: a change committed through one replica
// reaches an agent watching the other within a second (LISTEN/NOTIFY, then the change log), and
// both replicas serve the same registry and the same CA.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WardClient } from '../../../src/api/client.js';
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

  // The agent joins through replica B (join tokens are per process for now) and watches B.
  const jt = await adminB.createJoinToken({ attributes: { 'host.name': 'vm-b' } });
  const agent = new ScriptedAgent(b);
  t.after(() => agent.close());
  await agent.attest(jt.token);
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
