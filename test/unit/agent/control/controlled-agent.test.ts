// Two agents in control-plane mode (the real proxy layers, in this process) in front of two
// plain HTTP apps, against a real server: orders → payments over mTLS is allowed at L4 and L7 by
// Ward policies, other requests get a 403 with a Ward code, a scan denies the next request within
// a second, and SVID rotations under continuous traffic fail no request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../../../src/core/clock.js';
import { createLogger } from '../../../../src/core/logging.js';
import { parseAgentConfig } from '../../../../src/agent/config.js';
import { startControlledAgent, type ControlledAgent } from '../../../../src/agent/control/agent.js';
import { ORDERS, ORDERS_DIGEST, PAYMENTS, RestartableServer, TD, TRIVY_CRITICAL, entry, freePort, trivyClean, waitUntil } from './support.js';

const logger = createLogger({ name: 'test', level: 'silent' });

function call(port: number, method: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { connection: 'close' }, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('controlled agents: mTLS with Ward policies, L7 denials, scan-driven change, rotation under traffic', { timeout: 90_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-controlled-'));
  const srv = new RestartableServer(dir, await freePort());
  await srv.init();
  const agents: ControlledAgent[] = [];
  const apps: Server[] = [];
  t.after(async () => {
    for (const a of agents) await a.stop();
    for (const s of apps) s.close();
    srv.admin.close();
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const policy = {
    apiVersion: 'ward.dev/v1alpha1', kind: 'AccessPolicy', metadata: { name: 'payments-api' },
    spec: { subject: { spiffeIds: [PAYMENTS] }, action: 'ALLOW', ingress: [{ from: [{ spiffeIds: [ORDERS], selector: { matchExpressions: ['vuln.critical == 0'] } }], to: [{ methods: ['POST'], paths: ['/v1/charges'] }] }] },
  };
  await srv.admin.apply([entry('orders', ORDERS, 'vm-orders', 'orders'), entry('payments', PAYMENTS, 'vm-payments', 'payments'), policy]);
  await srv.admin.importScan(trivyClean());

  const app = createServer((req, res) => {
    res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ path: req.url, caller: req.headers['x-forwarded-client-cert'] ?? null }));
  });
  apps.push(app);
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as { port: number }).port;
  const payPort = await freePort();
  const outPort = await freePort();
  const base = { serverUrl: srv.agentUrl, serverBundlePem: srv.bundlePem(), trustDomain: TD };

  const payCfg = parseAgentConfig({ identity: { svid: 'x', key: 'x', bundle: 'x' }, policyDir: 'x', admin: 'off', inbound: [{ port: payPort, host: '127.0.0.1', appPort, protocol: 'http' }] }, dir);
  const jtPay = await srv.admin.createJoinToken({ attributes: { 'host.name': 'vm-payments' } });
  const pay = await startControlledAgent({ ...payCfg, spool: { dir: join(dir, 'spool-pay'), maxBytes: 1 << 20 } }, { ...base, attestor: { attestor: 'join_token', token: jtPay.token }, service: 'payments' }, { clock: systemClock, logger });
  agents.push(pay);
  const ordCfg = parseAgentConfig({ identity: { svid: 'x', key: 'x', bundle: 'x' }, policyDir: 'x', admin: 'off', outbound: [{ name: 'payments', listen: `127.0.0.1:${outPort}`, address: `127.0.0.1:${payPort}`, allowedIds: [PAYMENTS] }] }, dir);
  const jtOrd = await srv.admin.createJoinToken({ attributes: { 'host.name': 'vm-orders', 'image.digest': ORDERS_DIGEST } });
  const ord = await startControlledAgent({ ...ordCfg, spool: { dir: join(dir, 'spool-ord'), maxBytes: 1 << 20 } }, { ...base, attestor: { attestor: 'join_token', token: jtOrd.token }, service: 'orders' }, { clock: systemClock, logger });
  agents.push(ord);

  const ok = await call(outPort, 'POST', '/v1/charges');
  assert.equal(ok.status, 201);
  assert.match(ok.body, /URI=spiffe:\/\/ward\.test\/shop\/orders/, 'payments sees the verified caller');
  const denied = await call(outPort, 'GET', '/v1/charges');
  assert.equal(denied.status, 403);
  assert.match(denied.body, /ERR_AGENT_REQUEST_DENIED/);
  assert.doesNotMatch(denied.body, /payments-api|vuln/, 'no policy internals in a denial');

  // Rotation under continuous traffic: both agents renew their SVIDs several times; no request fails.
  let failures = 0;
  let done = 0;
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const r = await call(outPort, 'POST', '/v1/charges').catch(() => ({ status: 0, body: '' }));
      if (r.status === 201) done += 1;
      else failures += 1;
    }
  })();
  const serials = new Set<string>();
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 150));
    await pay.control.renewNow();
    await ord.control.renewNow();
    serials.add(pay.trust.material.certPem);
  }
  await new Promise((r) => setTimeout(r, 150));
  stop = true;
  await loop;
  assert.equal(serials.size, 3);
  assert.equal(failures, 0, `requests failed during rotation (${done} ok)`);
  assert.ok(done > 5);

  // A critical scan of the orders image: denied within a second (at orders' own egress first).
  const t0 = performance.now();
  await srv.admin.importScan(TRIVY_CRITICAL);
  const ms = await waitUntil(() => !ord.authorizers.current.authorizeConnection({ direction: 'outbound', source: { spiffeId: ORDERS, authenticated: true, attributes: {} }, destination: 'payments', port: outPort }).allow, 3000, 'orders denied');
  assert.ok(ms < 1000 && performance.now() - t0 < 2000, `applied after ${Math.round(ms)} ms`);
  const after = await call(outPort, 'POST', '/v1/charges').catch(() => ({ status: 0, body: 'connection closed' }));
  assert.notEqual(after.status, 201);
});
