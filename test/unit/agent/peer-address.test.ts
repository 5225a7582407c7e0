// Address rules in the agent: `ipBlocks` / `notIpBlocks` and `source.ip` conditions see the
// caller's address on both data planes, for plaintext (PERMISSIVE) and authenticated peers, at
// L4 and per request. Callers connect from 127.0.0.1 and 127.0.0.2 (both loopback) to tell
// addresses apart with real sockets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { createTestCa, type TestCa, type TestSvid } from './support/pki.js';
import { roundTrip, startEchoApp, startHttpApp, waitClose } from './support/net.js';
import { startInbound } from './support/inbound.js';
import { docs, policyAuthorizer, PERMISSIVE_MTLS } from './support/policy.js';
import { AuthorizerHolder, type ConnectionContext } from '../../../src/agent/proxy/authorizer.js';
import { TrustState } from '../../../src/agent/proxy/trust.js';
import { LiveConnections } from '../../../src/agent/proxy/live-connections.js';
import { AgentMetrics } from '../../../src/agent/metrics.js';
import { DEFAULT_LIMITS } from '../../../src/agent/proxy/limits.js';
import { systemClock } from '../../../src/core/clock.js';
import { createLogger } from '../../../src/core/logging.js';
import { loadRelayAddon } from '../../../src/agent/proxy/native/addon.js';

const TD = 'spiffe://example.org';
let ca: TestCa;
let orders: TestSvid;
let web: TestSvid;
let echo: Awaited<ReturnType<typeof startEchoApp>>;
let http: Awaited<ReturnType<typeof startHttpApp>>;
const addon = loadRelayAddon();

before(async () => {
  ca = createTestCa('peer-address');
  orders = ca.issue([`${TD}/orders`]);
  web = ca.issue([`${TD}/web`]);
  echo = await startEchoApp();
  http = await startHttpApp();
});

after(async () => {
  await echo.close();
  await http.close();
  ca.cleanup();
});

const allow = (from: string, extra = ''): string => `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: by-address}
spec:
  subject: {spiffeIds: ["${TD}/orders"]}
  ingress:
    - from: [${from}]
${extra}`;

function plainFrom(localAddress: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port, localAddress });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function mtlsFrom(localAddress: string, port: number, svid: TestSvid): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port, localAddress });
    const s = tlsConnect({ socket, cert: svid.certPem, key: svid.keyPem, ca: ca.certPem, checkServerIdentity: () => undefined });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

async function echoes(s: Socket): Promise<boolean> {
  const r = await roundTrip(s, 'ping', 4, 1500);
  s.destroy();
  return r.data === 'ping';
}

test('the compiled set says whether any rule looks at addresses', () => {
  assert.equal(policyAuthorizer(allow(`{spiffeIds: ["${TD}/web"]}`)).compiled.usesPeerAddress, false);
  assert.equal(policyAuthorizer(allow(`{ipBlocks: ["10.0.0.0/8"]}`)).compiled.usesPeerAddress, true);
  assert.equal(policyAuthorizer(allow(`{notIpBlocks: ["10.0.0.0/8"]}`)).compiled.usesPeerAddress, true);
  assert.equal(policyAuthorizer(allow(`{spiffeIds: ["${TD}/web"]}`, '      when: [{key: source.ip, values: ["10.0.0.0/8"]}]')).compiled.usesPeerAddress, true);
});

test('PolicyAuthorizer: ipBlocks match the peer address for plaintext and authenticated peers; an IPv4-mapped IPv6 address counts as IPv4', () => {
  const a = policyAuthorizer(docs(allow(`{ipBlocks: ["127.0.0.2/32"]}`, `    - from: [{spiffeIds: ["${TD}/web"], ipBlocks: ["10.1.0.0/16"]}]`), PERMISSIVE_MTLS));
  const ctx = (source: ConnectionContext['source']): ConnectionContext => ({ direction: 'inbound', source, destination: `${TD}/orders`, port: 9000 });
  const plain = (address?: string): ConnectionContext['source'] => ({ spiffeId: 'unauthenticated', authenticated: false, attributes: {}, ...(address === undefined ? {} : { address }) });
  const webAt = (address?: string): ConnectionContext['source'] => ({ spiffeId: `${TD}/web`, authenticated: true, attributes: {}, ...(address === undefined ? {} : { address }) });
  assert.equal(a.authorizeConnection(ctx(plain('127.0.0.2'))).allow, true);
  assert.equal(a.authorizeConnection(ctx(plain('::ffff:127.0.0.2'))).allow, true);
  assert.equal(a.authorizeConnection(ctx(plain('127.0.0.1'))).allow, false);
  assert.equal(a.authorizeConnection(ctx(plain())).allow, false, 'no address: an ipBlocks rule cannot match');
  assert.equal(a.authorizeConnection(ctx(webAt('10.1.2.3'))).allow, true);
  assert.equal(a.authorizeConnection(ctx(webAt('10.2.2.3'))).allow, false, 'identity right, address wrong');
  assert.equal(a.authorizeConnection(ctx(webAt('not-an-ip'))).allow, false);
});

test('Node plane, PERMISSIVE tcp port: a plaintext caller is allowed from 127.0.0.2 by ipBlocks and refused from 127.0.0.1', async () => {
  const h = await startInbound({ material: ca.material(orders), authorizer: policyAuthorizer(docs(allow(`{unauthenticated: true, ipBlocks: ["127.0.0.2/32"]}`), PERMISSIVE_MTLS)), appPort: echo.port, mode: 'PERMISSIVE' });
  try {
    assert.equal(await echoes(await plainFrom('127.0.0.2', h.port)), true);
    // Plaintext is detected from the first bytes, so the refused caller speaks first.
    const refused = await plainFrom('127.0.0.1', h.port);
    const r = await roundTrip(refused, 'ping', 4, 2000);
    assert.deepEqual(r, { data: '', closed: true });
  } finally {
    await h.close();
  }
});

test('Node plane, STRICT HTTP port: an address rule decides per request (the connection is allowed by identity)', async () => {
  const policy = allow(`{spiffeIds: ["${TD}/web"]}`, `      to: [{paths: ["/public/*"]}]
    - from: [{spiffeIds: ["${TD}/web"], ipBlocks: ["127.0.0.2/32"]}]
      to: [{paths: ["/admin/*"]}]`);
  const h = await startInbound({ material: ca.material(orders), authorizer: policyAuthorizer(policy), appPort: http.port, protocol: 'http' });
  try {
    const get = async (from: string, path: string): Promise<string> => {
      const s = await mtlsFrom(from, h.port, web);
      const r = await roundTrip(s, `GET ${path} HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n`, 1 << 16, 2000);
      s.destroy();
      return r.data.slice(0, 12);
    };
    assert.equal(await get('127.0.0.1', '/public/x'), 'HTTP/1.1 200');
    assert.equal(await get('127.0.0.1', '/admin/x'), 'HTTP/1.1 403');
    assert.equal(await get('127.0.0.2', '/admin/x'), 'HTTP/1.1 200');
  } finally {
    await h.close();
  }
});

test('native plane, STRICT tcp port: the relay reports the caller address; ipBlocks allow 127.0.0.2 and refuse 127.0.0.1', { skip: addon.ok ? false : 'native relay not built' }, async () => {
  const { NativeL4 } = await import('../../../src/agent/proxy/native/l4.js');
  const trust = new TrustState(ca.material(orders));
  const authorizers = new AuthorizerHolder(policyAuthorizer(allow(`{spiffeIds: ["${TD}/web"], ipBlocks: ["127.0.0.2/32"]}`)));
  const metrics = new AgentMetrics();
  const live = new LiveConnections(authorizers, trust, () => metrics.closedByPolicy.inc());
  const plane = NativeL4.open('native', { trust, authorizers, live, metrics, clock: systemClock, events: { record: () => undefined }, limits: DEFAULT_LIMITS }, createLogger({ name: 'test', level: 'silent' }));
  assert.ok(plane);
  try {
    const port = plane.listenInbound({ port: 0, host: '127.0.0.1', mode: 'STRICT', protocol: 'tcp', appHost: '127.0.0.1', appPort: echo.port, appProtocol: 'http1' });
    assert.equal(await echoes(await mtlsFrom('127.0.0.2', port, web)), true);
    const refused = await mtlsFrom('127.0.0.1', port, web);
    assert.equal(await waitClose(refused), true);
  } finally {
    live.closeAll('shutdown');
    live.dispose();
    await plane.close();
  }
});
