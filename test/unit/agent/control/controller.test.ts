// The agent's control-plane client against a real `ward server` (SQLite, real TLS): attest with a
// join token, sync the watch stream, a workload SVID by CSR (key kept local) verified by
// TrustState, policies + peer attributes driving the policy authorizer (a scan flips a decision
// within a second), a forced renewal hot-swapped, a revocation, fail-static across a server
// restart with resumption, and spooled events counted at the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { ManualClock, systemClock } from '../../../../src/core/clock.js';
import { createLogger } from '../../../../src/core/logging.js';
import { ControlPlane } from '../../../../src/agent/control/controller.js';
import { ControlError } from '../../../../src/agent/control/errors.js';
import { PolicyAuthorizer } from '../../../../src/agent/policy-authorizer.js';
import { AuthorizerHolder, type ConnectionContext } from '../../../../src/agent/proxy/authorizer.js';
import { TrustState } from '../../../../src/agent/proxy/trust.js';
import { EventSpool } from '../../../../src/agent/spool/spool.js';
import { AgentMetrics } from '../../../../src/agent/metrics.js';
import { ORDERS, ORDERS_DIGEST, PAYMENTS, RestartableServer, TD, TRIVY_CRITICAL, entry, freePort, paymentsPolicy, trivyClean, waitUntil } from './support.js';

const logger = createLogger({ name: 'test', level: (process.env.WARD_TEST_LOG ?? 'silent') as 'silent' });

test('control plane: attest, sync, SVID, policy + attributes, renewal, fail-static restart, events', { timeout: 90_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-control-'));
  const srv = new RestartableServer(dir, await freePort());
  await srv.init();
  const cleanup: (() => Promise<void> | void)[] = [];
  t.after(async () => {
    for (const c of cleanup.reverse()) await c();
    srv.admin.close();
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  await srv.admin.apply([entry('orders', ORDERS, 'vm-orders', 'orders'), entry('payments', PAYMENTS, 'vm-payments', 'payments'), paymentsPolicy]);
  const jt = await srv.admin.createJoinToken({ attributes: { 'host.name': 'vm-orders', 'image.digest': ORDERS_DIGEST } });

  const base = { serverUrl: srv.agentUrl, serverBundlePem: srv.bundlePem(), trustDomain: TD, clock: systemClock, logger, maxBackoffMs: 400 };
  // A service no entry names: refused with a code, after attesting.
  const jtOther = await srv.admin.createJoinToken({ attributes: { 'host.name': 'vm-orders' } });
  await assert.rejects(ControlPlane.connect({ ...base, attestor: { attestor: 'join_token', token: jtOther.token }, service: 'ledger' }), (e: unknown) => e instanceof ControlError && e.code === 'ERR_CONTROL_NO_ENTRY');
  // A replayed token: refused with the server's code.
  await assert.rejects(ControlPlane.connect({ ...base, attestor: { attestor: 'join_token', token: jtOther.token }, service: 'orders' }), (e: unknown) => e instanceof ControlError && e.code === 'ERR_CONTROL_ATTEST' && e.details?.code === 'ERR_ATTEST_REPLAYED');

  const outbound = new Map([['payments', { spiffeId: PAYMENTS, port: 8443, http: true }]]);
  const cp = await ControlPlane.connect({ ...base, attestor: { attestor: 'join_token', token: jt.token }, service: 'orders', authorizerOptions: { outbound } });
  cleanup.push(() => cp.stop());
  assert.equal(cp.spiffeId, ORDERS);
  assert.match(cp.session.agentId, /^spiffe:\/\/ward\.test\/ward\/agent\/join_token\/[0-9a-f]{32}$/);
  writeFileSync(join(dir, 'svid.pem'), cp.material.certPem);
  writeFileSync(join(dir, 'ca.pem'), cp.material.bundlePem);
  assert.match(execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), '-untrusted', join(dir, 'svid.pem'), '-purpose', 'sslserver', join(dir, 'svid.pem')], { encoding: 'utf8' }), /OK/, 'OpenSSL: the SVID chains to the pushed bundle');

  const trust = new TrustState(cp.material);
  const holder = new AuthorizerHolder();
  cp.attach(trust, holder);
  assert.ok(holder.current instanceof PolicyAuthorizer);
  const toPayments: ConnectionContext = { direction: 'outbound', source: { spiffeId: ORDERS, authenticated: true, attributes: {} }, destination: 'payments', port: 15001 };
  // No scan yet: `vuln.critical == 0` cannot hold for an unscanned caller → denied.
  assert.equal(holder.current.authorizeConnection(toPayments).allow, false);

  // A clean scan, then a critical one: each reaches the authorizer within a second.
  await srv.admin.importScan(trivyClean());
  const clean = await waitUntil(() => holder.current.authorizeConnection(toPayments).allow, 3000, 'clean scan allows orders → payments');
  assert.ok(clean < 1000, `clean scan applied after ${Math.round(clean)} ms`);
  await srv.admin.importScan(TRIVY_CRITICAL);
  const crit = await waitUntil(() => !holder.current.authorizeConnection(toPayments).allow, 3000, 'critical scan denies orders → payments');
  assert.ok(crit < 1000, `critical scan applied after ${Math.round(crit)} ms`);
  await srv.admin.importScan(trivyClean());
  await waitUntil(() => holder.current.authorizeConnection(toPayments).allow, 3000, 'fixed again');

  // Renewal: a new key and certificate swapped into TrustState, listeners told.
  const swaps: string[] = [];
  trust.onChange((what) => swaps.push(what));
  const beforeCert = trust.material.certPem;
  const beforeKey = trust.material.keyPem;
  await cp.renewNow();
  assert.notEqual(trust.material.certPem, beforeCert);
  assert.notEqual(trust.material.keyPem, beforeKey, 'a fresh key per SVID');
  assert.equal(trust.spiffeId, ORDERS);
  assert.deepEqual(swaps, ['material']);

  // Events through a real spool: shipped to the ingest endpoint, stored once.
  const spoolDir = join(dir, 'spool');
  const spool = await EventSpool.open({ dir: spoolDir, agentId: 'orders', sink: cp.eventSink(), maxBytes: 1 << 20, metrics: new AgentMetrics() });
  cleanup.push(() => spool.close());
  spool.start();
  for (let i = 0; i < 5; i++) spool.record({ class: 'http_activity', time: Date.now(), source: ORDERS, destination: PAYMENTS, port: 8443, method: 'POST', path: '/v1/charges', status: 200, verdict: 'allowed', policy: 'payments-api/ingress[0]', latencyMs: 3 });
  const store = srv.server!.context.store;
  const agentId = cp.session.agentId;
  const count = async () => (await store.events.list({ agentId, limit: 1000 })).length;
  for (let i = 0; i < 300 && (await count()) < 5; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(await count(), 5);

  // Server down: fail-static (same authorizer, same decisions, events spooled); back up at the
  // same address: the watch resumes from its version and a policy change arrives; spooled
  // events are replayed.
  const rv = cp.status().resourceVersion;
  const authzBefore = holder.current;
  await srv.stop();
  await waitUntil(() => !cp.status().connected, 5000, 'the agent notices the server is gone');
  spool.record({ class: 'network_activity', time: Date.now(), direction: 'outbound', source: ORDERS, destination: 'payments', port: 15001, verdict: 'allowed', policy: 'payments-api/ingress[0]', bytesIn: 10, bytesOut: 20, durationMs: 5 });
  spool.record({ class: 'network_activity', time: Date.now(), direction: 'inbound', source: 'unauthenticated', destination: ORDERS, port: 8443, verdict: 'rejected', policy: 'none', reason: 'ERR_AGENT_PEER_UNVERIFIED', bytesIn: 0, bytesOut: 0, durationMs: 0 });
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(holder.current, authzBefore, 'fail-static: the last good authorizer stays');
  assert.equal(holder.current.authorizeConnection(toPayments).allow, true);
  await srv.start();
  await waitUntil(() => cp.status().connected, 10_000, 'the watch reconnects');
  assert.ok(cp.status().reconnects >= 1);
  await srv.admin.apply([{ ...paymentsPolicy, spec: { ...paymentsPolicy.spec, ingress: [] } }]);
  await waitUntil(() => !holder.current.authorizeConnection(toPayments).allow, 3000, 'a policy applied after the restart reaches the agent');
  assert.ok((cp.status().resourceVersion ?? 0) > (rv ?? 0));
  const store2 = srv.server!.context.store;
  for (let i = 0; i < 300 && (await store2.events.list({ agentId, limit: 1000 })).length < 7; i++) await new Promise((r) => setTimeout(r, 20));
  const stored = await store2.events.list({ agentId, limit: 1000 });
  assert.equal(stored.length, 7, 'every event stored exactly once after the outage');

  // Revocation of this agent: the server cuts it off (its SVIDs are revoked) → it fails closed.
  await srv.admin.revokeAgent(agentId);
  await waitUntil(() => cp.status().failedClosed, 3000, 'fail closed once its SVID is revoked');
  assert.equal(holder.current.version, 'deny-all');
});

test('control plane: an SVID that expires while the server is down fails closed; a new one serves again', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-control-'));
  const srv = new RestartableServer(dir, await freePort());
  await srv.init();
  const clock = new ManualClock(Date.now());
  const stops: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const s of stops) await s();
    srv.admin.close();
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await srv.admin.apply([entry('orders', ORDERS, 'vm-orders', 'orders', '1m'), paymentsPolicy]);
  const jt = await srv.admin.createJoinToken({ attributes: { 'host.name': 'vm-orders' } });
  const cp = await ControlPlane.connect({ serverUrl: srv.agentUrl, serverBundlePem: srv.bundlePem(), trustDomain: TD, clock, logger, maxBackoffMs: 400, attestor: { attestor: 'join_token', token: jt.token }, service: 'orders' });
  stops.push(() => cp.stop());
  const trust = new TrustState(cp.material);
  const holder = new AuthorizerHolder();
  cp.attach(trust, holder);
  const policy = holder.current;
  assert.ok(policy instanceof PolicyAuthorizer);

  await srv.stop();
  cp.checkExpiry();
  assert.equal(cp.status().failedClosed, false, 'still valid: fail-static, not closed');
  clock.advance(30_000);
  cp.checkExpiry();
  assert.equal(holder.current, policy);
  clock.advance(31_000); // past the 1-minute lifetime
  cp.checkExpiry();
  assert.equal(cp.status().failedClosed, true);
  assert.equal(holder.current.version, 'deny-all');
  assert.equal(holder.current.authorizeConnection({ direction: 'inbound', source: { spiffeId: PAYMENTS, authenticated: true, attributes: {} }, destination: ORDERS, port: 8443 }).allow, false);

  await srv.start();
  clock.set(Date.now());
  await cp.renewNow();
  assert.equal(cp.status().failedClosed, false);
  assert.ok(holder.current instanceof PolicyAuthorizer, 'a fresh SVID restores the last good policy');
});
