// Outbound: upstream listeners originate mTLS, check the server's SPIFFE ID, apply egress policy;
// the HTTP proxy mode (CONNECT and absolute-form) does the same.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { createTestCa, type TestCa, type TestSvid } from './support/pki.js';
import { startEchoApp, startReplyOnEofApp, startHttpApp, plainConnect, roundTrip, waitClose } from './support/net.js';
import { startInbound, type InboundHarness } from './support/inbound.js';
import type { PolicyAuthorizer } from '../../../src/agent/policy-authorizer.js';
import { allowFrom, policyAuthorizer } from './support/policy.js';
import { AuthorizerHolder } from '../../../src/agent/proxy/authorizer.js';
import { TrustState } from '../../../src/agent/proxy/trust.js';
import { LiveConnections } from '../../../src/agent/proxy/live-connections.js';
import { AgentMetrics } from '../../../src/agent/metrics.js';
import { DEFAULT_LIMITS } from '../../../src/agent/proxy/limits.js';
import { OutboundListener, type OutboundDeps } from '../../../src/agent/proxy/outbound.js';
import { HttpProxyListener } from '../../../src/agent/proxy/http-proxy.js';
import { systemClock } from '../../../src/core/clock.js';
import type { AgentEvent } from '../../../src/agent/events.js';

const TD = 'spiffe://example.org';
let ca: TestCa;
let web: TestSvid;
let ordersSvid: TestSvid;
let echo: Awaited<ReturnType<typeof startEchoApp>>;
let httpApp: Awaited<ReturnType<typeof startHttpApp>>;
let ordersTcp: InboundHarness;
let ordersHttp: InboundHarness;
let impostor: InboundHarness;

const inboundPolicy = policyAuthorizer(allowFrom('in', [`${TD}/web`]));
let egressVersion = 0;
/**
 * web's egress allowed to the named services only. Service `x` is `${TD}/x` (as an agent derives
 * it from an upstream's allowed IDs, `outboundTargets`); `orders` and `billing` are known upstreams.
 */
const egress = (services: string[]): PolicyAuthorizer => policyAuthorizer(`
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: out}
spec:
  subject: {spiffeIds: ["${TD}/web"]}
  egress:
  - to: [{spiffeIds: ${JSON.stringify(services.map((s) => `${TD}/${s}`))}}]
`, `e${++egressVersion}`, {
  outbound: new Map(['orders', 'billing'].map((name) => [name, { spiffeId: `${TD}/${name}`, port: 443, http: false }])),
});

before(async () => {
  ca = createTestCa('out');
  web = ca.issue([`${TD}/web`]);
  ordersSvid = ca.issue([`${TD}/orders`]);
  echo = await startEchoApp();
  httpApp = await startHttpApp();
  ordersTcp = await startInbound({ material: ca.material(ordersSvid), authorizer: inboundPolicy, appPort: echo.port });
  ordersHttp = await startInbound({ material: ca.material(ordersSvid), authorizer: inboundPolicy, appPort: httpApp.port, protocol: 'http' });
  // A peer with a valid SVID for another service, standing where `orders` should be.
  impostor = await startInbound({ material: ca.material(ca.issue([`${TD}/billing`])), authorizer: inboundPolicy, appPort: echo.port });
});

after(async () => {
  await Promise.all([ordersTcp.close(), ordersHttp.close(), impostor.close()]);
  await echo.close();
  await httpApp.close();
  ca.cleanup();
});

function outboundDeps(authorizer: PolicyAuthorizer): OutboundDeps & { events: { record(e: AgentEvent): void }; seen: AgentEvent[] } {
  const trust = new TrustState(ca.material(web));
  const authorizers = new AuthorizerHolder(authorizer);
  const seen: AgentEvent[] = [];
  return { trust, authorizers, live: new LiveConnections(authorizers, trust), metrics: new AgentMetrics(), clock: systemClock, limits: DEFAULT_LIMITS, events: { record: (e) => void seen.push(e) }, seen };
}

test('the app talks plaintext to loopback; the agent originates mTLS to the service', async () => {
  const deps = outboundDeps(egress(['orders']));
  const out = new OutboundListener({ name: 'orders', host: '127.0.0.1', port: ordersTcp.port, allowedIds: [`${TD}/orders`] }, 0, deps);
  await out.listen();
  try {
    const s = await plainConnect(out.port);
    assert.equal((await roundTrip(s, 'ping', 4)).data, 'ping');
    s.destroy();
    await waitClose(s);
    // the server side saw web's SVID (its flow event is recorded when the tunnel closes)
    for (let i = 0; i < 100 && !ordersTcp.events.some((e) => e.class === 'network_activity' && e.source === `${TD}/web`); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(ordersTcp.events.some((e) => e.class === 'network_activity' && e.source === `${TD}/web` && e.verdict === 'allowed'));
  } finally {
    await out.close();
  }
});

test('a server presenting another service\'s valid SVID is refused (no MITM)', async () => {
  const deps = outboundDeps(egress(['orders']));
  const out = new OutboundListener({ name: 'orders', host: '127.0.0.1', port: impostor.port, allowedIds: [`${TD}/orders`] }, 0, deps);
  await out.listen();
  try {
    const s = await plainConnect(out.port);
    const r = await roundTrip(s, 'secret', 6);
    assert.equal(r.data, '');
    assert.equal(r.closed, true);
    const ev = deps.seen.find((e) => e.class === 'network_activity' && e.verdict === 'rejected');
    assert.equal(ev?.class === 'network_activity' ? ev.reason : undefined, 'ERR_AGENT_PEER_UNEXPECTED');
  } finally {
    await out.close();
  }
});

test('egress policy applies before connecting, and a change closes live tunnels', async () => {
  const deps = outboundDeps(egress(['billing']));
  const out = new OutboundListener({ name: 'orders', host: '127.0.0.1', port: ordersTcp.port, allowedIds: [`${TD}/orders`] }, 0, deps);
  await out.listen();
  try {
    const before = ordersTcp.events.length;
    const s = await plainConnect(out.port);
    assert.equal((await roundTrip(s, 'x', 1)).closed, true);
    assert.equal(ordersTcp.events.length, before, 'no connection was attempted');
    deps.authorizers.set(egress(['orders']));
    const s2 = await plainConnect(out.port);
    assert.equal((await roundTrip(s2, 'y', 1)).data, 'y');
    deps.authorizers.set(egress(['billing']));
    assert.equal(await waitClose(s2), true);
  } finally {
    await out.close();
  }
});

test('HTTP proxy mode: CONNECT tunnels to a known service; unknown services are refused', async () => {
  const deps = outboundDeps(egress(['orders']));
  const proxy = new HttpProxyListener([{ name: 'orders', host: '127.0.0.1', port: ordersTcp.port, allowedIds: [`${TD}/orders`] }], 0, deps);
  await proxy.listen();
  try {
    const s = connect(proxy.port, '127.0.0.1');
    const r = await roundTrip(s, 'CONNECT orders:443 HTTP/1.1\r\nHost: orders:443\r\n\r\n', 39);
    assert.match(r.data, /^HTTP\/1\.1 200/);
    assert.equal((await roundTrip(s, 'tunnel', 6)).data, 'tunnel');
    s.destroy();
    const u = connect(proxy.port, '127.0.0.1');
    const r2 = await roundTrip(u, 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n', 1000);
    assert.match(r2.data, /^HTTP\/1\.1 403/);
    assert.ok(r2.data.includes('ERR_AGENT_CONNECTION_DENIED'));
  } finally {
    await proxy.close();
  }
});

test('HTTP proxy mode: absolute-form requests are forwarded over mTLS', async () => {
  const deps = outboundDeps(egress(['orders']));
  const proxy = new HttpProxyListener([{ name: 'orders', host: '127.0.0.1', port: ordersHttp.port, allowedIds: [`${TD}/orders`] }], 0, deps);
  await proxy.listen();
  const get = (url: string): Promise<{ status: number; body: string }> => new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: proxy.port, path: url, method: 'GET', headers: { host: new URL(url).host } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
  try {
    const ok = await get('http://orders/hello?a=b');
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'ok /hello?a=b');
    assert.match(String(httpApp.seen.at(-1)?.headers['x-forwarded-client-cert']), /URI=spiffe:\/\/example\.org\/web$/);
    assert.equal((await get('http://billing/x')).status, 403);
  } finally {
    await proxy.close();
  }
});

test('half-close passes through both Node-plane hops: the app shuts its write side after its request and still gets the answer the server app sends only on EOF', async () => {
  const replyOnEof = await startReplyOnEofApp();
  const server = await startInbound({ material: ca.material(ordersSvid), authorizer: inboundPolicy, appPort: replyOnEof.port });
  const out = new OutboundListener({ name: 'orders', host: '127.0.0.1', port: server.port, allowedIds: [`${TD}/orders`] }, 0, outboundDeps(egress(['orders'])));
  await out.listen();
  try {
    const s = await plainConnect(out.port);
    s.on('error', () => undefined);
    const got = roundTrip(s, 'request body', 'got 12'.length, 3000);
    s.end();
    assert.equal((await got).data, 'got 12');
    assert.equal(await waitClose(s, 3000), true);
  } finally {
    await out.close();
    await server.close();
    replyOnEof.close();
  }
});
