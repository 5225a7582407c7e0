// Fuzz the L7 listener on the wire: random, mutated HTTP/1.1 requests over real mTLS to an
// agent whose policy allows only GET /public/*. The agent must never crash, and the app must
// never receive a request outside /public/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createTestCa, type TestCa, type TestSvid } from '../unit/agent/support/pki.js';
import { startHttpApp, mtlsConnect, roundTrip } from '../unit/agent/support/net.js';
import { startInbound, type InboundHarness } from '../unit/agent/support/inbound.js';
import { policyAuthorizer } from '../unit/agent/support/policy.js';

let ca: TestCa;
let web: TestSvid;
let app: Awaited<ReturnType<typeof startHttpApp>>;
let h: InboundHarness;

before(async () => {
  ca = createTestCa('fuzz');
  web = ca.issue(['spiffe://example.org/web']);
  app = await startHttpApp();
  h = await startInbound({
    material: ca.material(ca.issue(['spiffe://example.org/orders'])), appPort: app.port, protocol: 'http',
    authorizer: policyAuthorizer(`
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: p}
spec:
  ingress:
  - from: [{spiffeIds: ["spiffe://example.org/web"]}]
    to: [{methods: [GET], paths: ["/public/*"]}]
`),
    limits: { headersTimeoutMs: 300, requestTimeoutMs: 500 },
  });
});

after(async () => {
  await h.close();
  await app.close();
  ca.cleanup();
});

const piece = fc.constantFrom(
  'GET', 'POST', 'get', ' ', '  ', '/', '/public/', '/admin', '..', '%2e%2e', '%2f', '\\', '//', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0',
  '\r\n', '\n', '\r', 'Host: o', 'Content-Length: 5', 'Content-Length: -1', 'Content-Length: 5, 6', 'Transfer-Encoding: chunked',
  'Transfer-Encoding: xchunked', '0\r\n\r\n', 'hello', ':', '\t', '\u0000', 'X-Forwarded-Client-Cert: URI=spiffe://x/admin', '?a=/admin', '#frag', 'http://o/admin',
);

test('random request bytes never crash the agent nor reach the app outside /public/', async () => {
  await fc.assert(fc.asyncProperty(fc.array(piece, { minLength: 1, maxLength: 14 }), async (parts) => {
    const s = await mtlsConnect(h.port, web, ca.certPem);
    await roundTrip(s, parts.join(''), 1 << 16, 150);
    s.destroy();
  }), { numRuns: 150 });
  for (const seen of app.seen) {
    assert.ok(seen.url.startsWith('/public/'), `app saw ${seen.url}`);
    assert.equal(seen.method, 'GET');
    assert.ok(!String(seen.headers['x-forwarded-client-cert']).includes('admin'));
  }
  // still serving
  const s = await mtlsConnect(h.port, web, ca.certPem);
  const r = await roundTrip(s, 'GET /public/ok HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n', 1 << 16, 2000);
  assert.match(r.data, /^HTTP\/1\.1 200/);
});
