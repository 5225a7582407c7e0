// The agent's own node SVID expiring while the server is down, against a real `ward server`
// (SQLite, real TLS). The server and the agent share a clock that lags real time while the SVIDs
// are issued, so the server's minimum 1-minute agent SVID TTL runs out seconds later, by that
// clock and by TLS alike, once the lag is taken back.
// - k8s_psat (projected token from the fake Kubernetes API): the agent notices the expiry by
//   itself, keeps serving (fail-static), attests again with fresh evidence when the server is
//   back, as the same agent, and resumes the watch and SVID issuance.
// - join token (single use): the agent reports ERR_CONTROL_JOIN_TOKEN_SPENT (log, /readyz,
//   metric) instead of replaying the token, keeps serving with its workload SVID, and fails
//   closed when that expires.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../../../../src/core/logging.js';
import { parseAgentConfig } from '../../../../src/agent/config.js';
import { startControlledAgent } from '../../../../src/agent/control/agent.js';
import { ControlPlane } from '../../../../src/agent/control/controller.js';
import { PolicyAuthorizer } from '../../../../src/agent/policy-authorizer.js';
import { AuthorizerHolder } from '../../../../src/agent/proxy/authorizer.js';
import { TrustState } from '../../../../src/agent/proxy/trust.js';
import { examplePod } from '../../../fakes/kubernetes-api/server.js';
import { TempDir } from '../../../fakes/pki.js';
import { SkewClock, httpGet } from './liveness-support.js';
import { ORDERS, RestartableServer, TD, entry, fakeKube, freePort, paymentsPolicy, waitUntil } from './support.js';

const logger = createLogger({ name: 'test', level: (process.env.WARD_TEST_LOG ?? 'silent') as 'silent' });
/** How far the shared clock lags while SVIDs are issued: a 60 s agent SVID then has 8 s of real life left. */
const LAG_MS = 52_000;

async function attestCount(srv: RestartableServer, agentId: string): Promise<number> {
  const audit = await srv.admin.listAudit({ limit: 1000 });
  return audit.items.filter((r) => r.action === 'agent.attest' && r.resource === `agent/${agentId}` && r.outcome === 'ok').length;
}

test('k8s_psat: the agent SVID expires while the server is down → the agent re-attests when it is back and resumes', { timeout: 60_000 }, async (t) => {
  const dir = new TempDir();
  t.after(() => dir.remove());
  const { api, k8sPsat } = await fakeKube(t, dir);
  const clock = new SkewClock();
  clock.lag = LAG_MS;
  const srv = new RestartableServer(dir.path, await freePort(), {
    agentSvidTtl: '1m', watchHeartbeat: '1s',
    attestors: { k8s_psat: k8sPsat },
  }, clock);
  await srv.init();
  t.after(async () => {
    srv.admin.close();
    await srv.stop();
  });
  await srv.admin.apply([{ apiVersion: 'ward.dev/v1alpha1', kind: 'RegistrationEntry', metadata: { name: 'orders' }, spec: { spiffeId: ORDERS, parentId: '*', nodeSelectors: ['k8s_psat:cluster:prod', 'k8s_psat:sa:orders'], selectors: ['ward:service:orders'] } }, paymentsPolicy]);
  const pod = api.addPod(examplePod({ namespace: 'shop', name: 'orders-5f7d8-abcde', serviceAccount: 'orders', labels: { app: 'orders' } }));
  const tokenPath = join(dir.path, 'token');
  writeFileSync(tokenPath, await api.mintToken(pod, { issuedAt: Date.now() - 60_000, expiresAt: Date.now() + 3_600_000 }));

  const cp = await ControlPlane.connect({ serverUrl: srv.agentUrl, serverBundlePem: srv.bundlePem(), trustDomain: TD, clock, logger, random: () => 0, maxBackoffMs: 300, watchIdleTimeoutMs: 3000, attestor: { attestor: 'k8s_psat', cluster: 'prod', tokenPath }, service: 'orders' });
  t.after(() => cp.stop());
  const trust = new TrustState(cp.material);
  const holder = new AuthorizerHolder();
  cp.attach(trust, holder);
  // Registering the workload pushes its attributes: wait for them, then the state is settled.
  await waitUntil(() => cp.state.workloads.has(ORDERS), 3000, 'the workload\'s own attributes');
  const policy = holder.current;
  assert.ok(policy instanceof PolicyAuthorizer);
  const agentId = cp.session.agentId;
  const firstExpiry = cp.status().agentSvidExpiresAt;
  const workloadCert = trust.material.certPem;

  // Server down; the lag is taken back: the agent SVID has seconds left, by every clock.
  await srv.stop();
  clock.lag = 0;
  assert.ok(firstExpiry - Date.now() < 9000 && firstExpiry > Date.now(), `agent SVID expires in ${firstExpiry - Date.now()} ms`);
  await waitUntil(() => !cp.status().connected, 5000, 'the agent notices the server is gone');
  assert.equal(cp.status().agentIdentity, 'valid', 'still valid: nothing to do yet');
  await waitUntil(() => cp.status().agentIdentity === 'reattesting', 15_000, 'the agent notices its expired SVID by itself');
  assert.ok(Date.now() >= firstExpiry);
  // Fail-static meanwhile: the workload SVID is valid, the last policy decides.
  assert.equal(cp.status().failedClosed, false);
  assert.equal(holder.current, policy);
  assert.equal(trust.material.certPem, workloadCert);
  assert.equal(cp.notReady(), 'control_plane_unreachable');

  // The kubelet has rotated the projected token meanwhile; the server is back.
  writeFileSync(tokenPath, await api.mintToken(pod, { issuedAt: Date.now(), expiresAt: Date.now() + 3_600_000 }));
  await srv.start();
  await waitUntil(() => cp.status().reattestations === 1 && cp.status().connected, 15_000, 'the agent attests again and reconnects');
  assert.equal(cp.session.agentId, agentId, 'the same agent');
  assert.equal(cp.status().agentIdentity, 'valid');
  assert.ok(cp.status().agentSvidExpiresAt > Date.now() + 50_000, 'a fresh agent SVID');
  assert.equal(cp.notReady(), undefined);
  assert.equal(await attestCount(srv, agentId), 2, 'the server saw a second attestation of the same agent');
  // The new node SVID is accepted for workload SVIDs and the watch resumed: a policy change arrives.
  await cp.renewNow();
  assert.notEqual(trust.material.certPem, workloadCert);
  const rv = cp.status().resourceVersion ?? 0;
  await srv.admin.apply([{ ...paymentsPolicy, spec: { ...paymentsPolicy.spec, ingress: [] } }]);
  await waitUntil(() => (cp.status().resourceVersion ?? 0) > rv && holder.current !== policy, 3000, 'a policy applied after the outage reaches the agent');
});

test('join token: the agent SVID expires while the server is down → ERR_CONTROL_JOIN_TOKEN_SPENT, serving until the workload SVID expires, then fail closed', { timeout: 60_000 }, async (t) => {
  const dir = new TempDir();
  t.after(() => dir.remove());
  const clock = new SkewClock();
  clock.lag = LAG_MS;
  const srv = new RestartableServer(dir.path, await freePort(), { agentSvidTtl: '1m', watchHeartbeat: '1s' }, clock);
  await srv.init();
  t.after(async () => {
    srv.admin.close();
    await srv.stop();
  });
  // The workload SVID lives a minute longer than the agent SVID.
  await srv.admin.apply([entry('orders', ORDERS, 'vm-orders', 'orders', '2m'), paymentsPolicy]);
  const jt = await srv.admin.createJoinToken({ attributes: { 'host.name': 'vm-orders' } });
  const lines: string[] = [];
  const captured = createLogger({ name: 'agent', level: 'info', destination: { write: (line: string) => lines.push(line) } });
  const proxy = parseAgentConfig({ admin: { listen: '127.0.0.1:0' }, inbound: [{ port: await freePort(), host: '127.0.0.1', appPort: await freePort(), protocol: 'http' }] }, dir.path, 'control');
  const agent = await startControlledAgent(
    { ...proxy, spool: { dir: join(dir.path, 'spool'), maxBytes: 1 << 20 } },
    { serverUrl: srv.agentUrl, serverBundlePem: srv.bundlePem(), trustDomain: TD, attestor: { attestor: 'join_token', token: jt.token }, service: 'orders', random: () => 0, maxBackoffMs: 300 },
    { clock, logger: captured },
  );
  t.after(() => agent.stop());
  const cp = agent.control;
  const admin = agent.ports.admin as number;
  await waitUntil(() => cp.state.workloads.has(ORDERS), 3000, 'the workload\'s own attributes');
  const policy = agent.authorizers.current;
  assert.ok(policy instanceof PolicyAuthorizer);
  const workloadCert = agent.trust.material.certPem;
  const agentId = cp.session.agentId;

  await srv.stop();
  clock.lag = 0;
  await waitUntil(() => cp.status().agentIdentity === 'join_token_spent', 15_000, 'the agent notices its expired SVID by itself');
  assert.ok(Date.now() >= cp.status().agentSvidExpiresAt);
  const log = lines.map((l) => JSON.parse(l) as { level: number; code?: string; agentId?: string; msg: string }).find((l) => l.code === 'ERR_CONTROL_JOIN_TOKEN_SPENT');
  assert.ok(log !== undefined, 'logged with its stable code');
  assert.equal(log.level, 50);
  assert.equal(log.agentId, agentId);
  assert.match(log.msg, /new --join-token/);
  assert.ok(!lines.some((l) => l.includes(jt.token)), 'the token is never logged');
  const ready = await httpGet(admin, '/readyz');
  assert.equal(ready.status, 503);
  assert.match(ready.body, /not ready: join_token_spent/);
  assert.match((await httpGet(admin, '/metrics')).body, /^ward_agent_control_join_token_spent 1$/m);
  // Still serving: the workload SVID is valid and the last policy decides.
  assert.equal(cp.status().failedClosed, false);
  assert.equal(agent.authorizers.current, policy);
  assert.equal(agent.trust.material.certPem, workloadCert);

  // The server is back: the agent does not replay its spent token, nor hammer the server.
  await srv.start();
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(cp.status().agentIdentity, 'join_token_spent');
  assert.equal(cp.status().connected, false);
  assert.equal(await attestCount(srv, agentId), 1, 'no second attestation attempt');

  // The workload SVID's lifetime runs out: fail closed, by the agent's own expiry check.
  clock.lag = -61_000;
  await waitUntil(() => cp.status().failedClosed, 3000, 'fail closed once the workload SVID expires');
  assert.equal(agent.authorizers.current.version, 'deny-all');
  assert.match((await httpGet(admin, '/readyz')).body, /not ready: failed_closed/);
  assert.match((await httpGet(admin, '/metrics')).body, /^ward_agent_control_failed_closed 1$/m);
});
