// STRICT HTTP ports with their TLS on the relay thread (ADR 0074): the relay does the mTLS
// handshake and ALPN, TypeScript verifies the peer and decides, and the plaintext reaches the
// HTTP layer over a socketpair. Real sockets, real TLS, the real HTTP layer and app.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { createTestCa, type TestCa, type TestSvid } from './support/pki.js';
import { mtlsConnect, roundTrip, startHttpApp, waitClose } from './support/net.js';
import { openHttpPort, type L7Port } from './support/l7-port.js';
import { loadRelayAddon } from '../../../src/agent/proxy/native/addon.js';

const TD = 'spiffe://example.org';
const load = loadRelayAddon();
const skip = load.ok ? false : `native relay not built: ${load.ok ? '' : load.reason}`;
let ca: TestCa;
let orders: TestSvid;
let web: TestSvid;
let batch: TestSvid;
let app: Awaited<ReturnType<typeof startHttpApp>>;

const POLICY = `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: orders-api}
spec:
  subject: {spiffeIds: ["${TD}/orders"]}
  ingress:
    - from: [{spiffeIds: ["${TD}/web"]}]
      to: [{methods: [GET], paths: ["/public/*"]}]
`;

before(async () => {
  ca = createTestCa('native-l7');
  orders = ca.issue([`${TD}/orders`]);
  web = ca.issue([`${TD}/web`]);
  batch = ca.issue([`${TD}/batch`]);
  app = await startHttpApp();
});

after(async () => {
  await app.close();
  ca.cleanup();
});

const openL7 = (): Promise<L7Port> => openHttpPort({ material: ca.material(orders), policy: POLICY, appPort: app.port });

const request = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: orders\r\n${extra}\r\n`;

test('HTTP/1.1 on the relay-terminated port: allowed with the verified identity header (forged copies stripped), denied with 403 and the Ward code, events recorded', { skip }, async () => {
  const h = await openL7();
  try {
    assert.deepEqual(h.planes, ['native']);
    const s = await mtlsConnect(h.port, web, ca.certPem);
    const ok = await roundTrip(s, request('/public/a', 'X-Forwarded-Client-Cert: URI=spiffe://example.org/admin\r\n'), 1 << 16, 3000);
    assert.match(ok.data, /^HTTP\/1\.1 200 /);
    const seen = app.seen.at(-1);
    assert.equal(seen?.url, '/public/a');
    assert.match(String(seen?.headers['x-forwarded-client-cert']), new RegExp(`^By=${TD}/orders;Hash=[0-9a-f]{64};URI=${TD}/web$`));
    // Same keep-alive connection, a path the policy does not allow.
    const denied = await roundTrip(s, request('/admin', 'Connection: close\r\n'), 1 << 16, 3000);
    assert.match(denied.data, /^HTTP\/1\.1 403 /);
    assert.match(denied.data, /ERR_AGENT_REQUEST_DENIED/);
    s.destroy();
    const http = h.events.filter((e) => e.class === 'http_activity');
    assert.deepEqual(http.map((e) => e.class === 'http_activity' && [e.status, e.verdict]), [[200, 'allowed'], [403, 'denied']]);
    await waitClose(s);
    const flow = await (async () => {
      for (let i = 0; i < 100; i++) {
        const f = h.events.find((e) => e.class === 'network_activity');
        if (f !== undefined) return f;
        await new Promise((r) => setTimeout(r, 10));
      }
      return undefined;
    })();
    assert.ok(flow && flow.class === 'network_activity' && flow.verdict === 'allowed' && flow.source === `${TD}/web` && flow.bytesIn > 0);
  } finally {
    await h.close();
  }
});

test('a peer no rule admits is refused at the handshake stage, and a foreign CA never gets through', { skip }, async () => {
  const h = await openL7();
  try {
    const s = await mtlsConnect(h.port, batch, ca.certPem).catch(() => undefined);
    if (s !== undefined) {
      const r = await roundTrip(s, request('/public/a'), 1 << 16, 2000);
      assert.equal(r.data, '', 'no HTTP answer: the connection is closed before the HTTP layer');
      s.destroy();
    }
    const other = createTestCa('native-l7-other');
    try {
      const f = await mtlsConnect(h.port, other.issue([`${TD}/web`]), ca.certPem).catch(() => undefined);
      if (f !== undefined) assert.equal(await waitClose(f), true);
    } finally {
      other.cleanup();
    }
    assert.equal(app.seen.filter((x) => x.url === '/public/a' && x.headers['x-forwarded-client-cert']?.includes('batch')).length, 0);
  } finally {
    await h.close();
  }
});

test('HTTP/2 by ALPN on the relay-terminated port: the relay negotiates h2 and the HTTP layer speaks it', { skip }, async () => {
  const h = await openL7();
  try {
    const session = h2connect(`https://127.0.0.1:${h.port}`, { cert: web.certPem, key: web.keyPem, ca: ca.certPem, checkServerIdentity: () => undefined });
    const get = (path: string): Promise<number> => new Promise((resolve, reject) => {
      const req = session.request({ ':path': path, ':method': 'GET' });
      req.on('response', (headers) => resolve(Number(headers[':status'])));
      req.on('error', reject);
      req.resume();
      req.end();
    });
    assert.equal(await get('/public/h2'), 200);
    assert.equal(await get('/admin'), 403);
    assert.equal(session.alpnProtocol, 'h2');
    session.close();
  } finally {
    await h.close();
  }
});

test('revoking the caller denies the next request on an open keep-alive connection', { skip }, async () => {
  const h = await openL7();
  try {
    const s = await mtlsConnect(h.port, web, ca.certPem);
    assert.match((await roundTrip(s, request('/public/1'), 1 << 16, 3000)).data, /^HTTP\/1\.1 200 /);
    h.trust.setRevoked([web.serial]);
    const r = await roundTrip(s, request('/public/2'), 1 << 16, 3000);
    assert.ok(r.data === '' || /^HTTP\/1\.1 403 /.test(r.data), `denied or closed, got ${JSON.stringify(r.data.slice(0, 40))}`);
    s.destroy();
  } finally {
    h.trust.setRevoked([]);
    await h.close();
  }
});

test('connection churn: 150 connections one after another, each served; afterwards no live connection and no descriptor is left', { skip }, async () => {
  const h = await openL7();
  const fds = (): number => readdirSync('/proc/self/fd').length;
  try {
    const warm = await mtlsConnect(h.port, web, ca.certPem);
    await roundTrip(warm, request('/public/w', 'Connection: close\r\n'), 1 << 16, 3000);
    warm.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const before = fds();
    for (let i = 0; i < 150; i++) {
      const s = await mtlsConnect(h.port, web, ca.certPem);
      const r = await roundTrip(s, request(`/public/${i}`, 'Connection: close\r\n'), 1 << 16, 3000);
      assert.match(r.data, /^HTTP\/1\.1 200 /, `request ${i}`);
      s.destroy();
    }
    for (let i = 0; i < 200 && (h.live.size > 0 || fds() > before + 2); i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(h.live.size, 0, 'every connection left the live registry');
    assert.ok(fds() <= before + 2, `descriptors: ${before} before, ${fds()} after`);
  } finally {
    await h.close();
  }
});
