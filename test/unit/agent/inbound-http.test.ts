// Inbound L7: per-request API policy, identity header, path normalisation, hostile HTTP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { generateKeyPair, exportJWK, SignJWT } from 'jose';
import { createTestCa, type TestCa, type TestSvid } from './support/pki.js';
import { startHttpApp, mtlsConnect, roundTrip, waitClose, plainConnect } from './support/net.js';
import { assertGrpcThroughAgent, h2Request } from './support/h2.js';
import { startInbound, type InboundHarness } from './support/inbound.js';
import { docs, policyAuthorizer, PERMISSIVE_MTLS } from './support/policy.js';
import type { PolicyAuthorizer } from '../../../src/agent/policy-authorizer.js';
import { createJwtVerifier } from '../../../src/agent/proxy/http/jwt.js';
import { ManualClock } from '../../../src/core/clock.js';

const TD = 'spiffe://example.org';
let ca: TestCa;
let server: TestSvid;
let web: TestSvid;
let batch: TestSvid;
let app: Awaited<ReturnType<typeof startHttpApp>>;
let h: InboundHarness;

/** The API policy for callers `caller` (web by default) plus a DENY of the admin paths. */
const policies = (caller = `${TD}/web`): string => `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: api}
spec:
  action: ALLOW
  ingress:
  - from: [{spiffeIds: ["${caller}"]}]
    to: [{methods: [GET, POST], paths: ["/public/*", /public]}]
  - from: [{spiffeIds: ["${caller}"], requestPrincipals: ["https://issuer.example/*"]}]
    to: [{methods: [GET], paths: [/me]}]
  - from: [{spiffeIds: ["${caller}"]}]
    to: [{paths: [/orders.Orders/Get]}]
---
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: block}
spec:
  action: DENY
  ingress:
  - to: [{paths: ["/public/admin*"]}]
`;

before(async () => {
  ca = createTestCa('l7');
  server = ca.issue([`${TD}/orders`]);
  web = ca.issue([`${TD}/web`]);
  batch = ca.issue([`${TD}/batch`]);
  app = await startHttpApp();
  h = await startInbound({
    material: ca.material(server), authorizer: policyAuthorizer(policies()), appPort: app.port, protocol: 'http',
    limits: { headersTimeoutMs: 500, requestTimeoutMs: 2000, maxHeaderBytes: 8192 },
  });
});

after(async () => {
  await h.close();
  await app.close();
  ca.cleanup();
});

/** Sends one raw HTTP/1.1 request over mTLS and returns the raw response text. */
async function raw(request: string, svid: TestSvid = web): Promise<string> {
  const s = await mtlsConnect(h.port, svid, ca.certPem);
  const r = await roundTrip(s, request, 1 << 20, 2000);
  s.destroy();
  return r.data;
}

const status = (response: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);

test('an allowed request reaches the app with the verified identity; forged identity headers are stripped', async () => {
  const before = app.seen.length;
  const res = await raw('GET /public/a?x=1 HTTP/1.1\r\nHost: orders\r\nX-Forwarded-Client-Cert: By=x;URI=spiffe://example.org/admin\r\nConnection: close\r\n\r\n');
  assert.equal(status(res), 200);
  assert.ok(res.includes('\r\n\r\n10\r\nok /public/a?x=1\r\n0'), res);
  const seen = app.seen[before];
  assert.ok(seen);
  assert.equal(seen.url, '/public/a?x=1');
  const xfcc = seen.headers['x-forwarded-client-cert'];
  assert.equal(typeof xfcc, 'string');
  assert.match(xfcc as string, new RegExp(`^By=${TD}/orders;Hash=[0-9a-f]{64};URI=${TD}/web$`));
});

test('a denied request answers 403 with only a Ward code and never reaches the app', async () => {
  const before = app.seen.length;
  for (const req of ['GET /private HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n', 'DELETE /public/a HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n', 'GET /public/admin HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n']) {
    const res = await raw(req);
    assert.equal(status(res), 403, req);
    assert.ok(res.endsWith('{"code":"ERR_AGENT_REQUEST_DENIED"}'), res);
    assert.ok(!/default-deny|api\/|block\//.test(res), 'no policy internals in a deny');
  }
  assert.equal(app.seen.length, before);
});

test('path tricks are normalised before policy, or rejected', async () => {
  const before = app.seen.length;
  const cases: [string, number][] = [
    ['/public/../public/admin', 403],
    ['/public/%2e%2e/public/admin', 403],
    ['/public/%2E%2E/private', 403],
    ['/public/x/../../private', 403],
    ['//public//admin', 403],
    ['/public/admin/', 403],
    ['/public/./admin', 403],
    ['/public%2Fadmin', 400],
    ['/public%2fadmin', 400],
    ['/public/%5cadmin', 400],
    ['/public\\admin', 400],
    ['/public/%zz', 400],
    ['/..', 400],
    ['/public/%00', 400],
    ['http://orders/public/admin', 400],
    ['*', 400],
  ];
  for (const [path, want] of cases) {
    const res = await raw(`GET ${path} HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n`);
    assert.equal(status(res), want, `${path} -> ${res.split('\r\n')[0]}`);
  }
  assert.equal(app.seen.length, before, 'none of the tricks reached the app');
  const ok = await raw('GET /public//b/./c/../d HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n');
  assert.equal(status(ok), 200);
  assert.equal(app.seen.at(-1)?.url, '/public/b/d', 'the app receives the path policy saw');
});

test('request smuggling is rejected: CL+TE, duplicate Content-Length, bad Transfer-Encoding', async () => {
  const before = app.seen.length;
  const smuggles = [
    'POST /public/a HTTP/1.1\r\nHost: o\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /private HTTP/1.1\r\nHost: o\r\n\r\n',
    'POST /public/a HTTP/1.1\r\nHost: o\r\nContent-Length: 5\r\nContent-Length: 44\r\n\r\nhelloGET /private HTTP/1.1\r\nHost: o\r\n\r\n',
    'POST /public/a HTTP/1.1\r\nHost: o\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello',
    'POST /public/a HTTP/1.1\r\nHost: o\r\nTransfer-Encoding: gzip, chunked, identity\r\n\r\n0\r\n\r\n',
    'POST /public/a HTTP/1.1\r\nHost: o\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
    'GET /public/a HTTP/1.1\r\nHost: o\r\nX-Bad\u0000: y\r\n\r\n',
    'GET /public/a HTTP/1.1\nHost: o\n\n',
    'GET /public/a HTTP/1.1\r\n\r\n',
  ];
  for (const req of smuggles) {
    const res = await raw(req);
    assert.equal(status(res), 400, JSON.stringify(req));
    assert.ok(!res.includes('ok /private'));
  }
  assert.equal(app.seen.length, before);
});

test('oversized headers answer 431; a slow client is cut by the headers timeout', async () => {
  const big = await raw(`GET /public/a HTTP/1.1\r\nHost: o\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  assert.equal(status(big), 431);
  const many = await raw(`GET /public/a HTTP/1.1\r\nHost: o\r\n${Array.from({ length: 2000 }, (_, i) => `X-${i}: v`).join('\r\n')}\r\n\r\n`);
  assert.ok([400, 431].includes(status(many)));
  const s = await mtlsConnect(h.port, web, ca.certPem);
  s.write('GET /public/a HTTP/1.1\r\nHost: o\r\n');
  const closed = await waitClose(s, 5000);
  assert.equal(closed, true, 'slow-loris connection must be closed');
});

test('an end-user JWT is validated against the JWKS: signature, exp, iss, aud', async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const other = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
  const clock = new ManualClock('2026-06-01T00:00:00Z');
  const now = Math.floor(clock.now() / 1000);
  const jh = await startInbound({
    material: ca.material(server), authorizer: policyAuthorizer(policies()), appPort: app.port, protocol: 'http',
    jwt: createJwtVerifier({ issuer: 'https://issuer.example', audiences: ['orders'], jwks: { keys: [jwk] } }, clock),
  });
  try {
    const sign = (claims: Record<string, unknown>, key = privateKey, kid = 'k1'): Promise<string> =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid }).sign(key);
    const good = await sign({ iss: 'https://issuer.example', sub: 'alice', aud: 'orders', exp: now + 60 });
    const call = async (token: string | undefined): Promise<number> => {
      const s = await mtlsConnect(jh.port, web, ca.certPem);
      const r = await roundTrip(s, `GET /me HTTP/1.1\r\nHost: o\r\n${token === undefined ? '' : `Authorization: Bearer ${token}\r\n`}Connection: close\r\n\r\n`, 1 << 16, 2000);
      s.destroy();
      return status(r.data);
    };
    assert.equal(await call(good), 200);
    assert.equal(await call(undefined), 403, 'rule requires a request principal');
    assert.equal(await call(await sign({ iss: 'https://issuer.example', sub: 'alice', aud: 'orders', exp: now - 1 })), 401, 'expired');
    assert.equal(await call(await sign({ iss: 'https://evil.example', sub: 'alice', aud: 'orders', exp: now + 60 })), 401, 'issuer');
    assert.equal(await call(await sign({ iss: 'https://issuer.example', sub: 'alice', aud: 'billing', exp: now + 60 })), 401, 'audience');
    assert.equal(await call(await sign({ iss: 'https://issuer.example', sub: 'alice', aud: 'orders', exp: now + 60 }, other.privateKey)), 401, 'signature');
    assert.equal(await call(await sign({ iss: 'https://issuer.example', sub: 'alice', aud: 'orders' })), 401, 'no exp');
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: 'https://issuer.example', sub: 'a', aud: 'orders', exp: now + 60 })).toString('base64url')}.`;
    assert.equal(await call(unsigned), 401, 'alg none');
    assert.equal(await call('garbage'), 401);
    clock.advance(120_000);
    assert.equal(await call(good), 401, 'expires by the injected clock');
  } finally {
    await jh.close();
  }
});

test('a policy change denies the next request on a live L7 connection', async () => {
  const s = await mtlsConnect(h.port, web, ca.certPem);
  const first = await roundTrip(s, 'GET /public/a HTTP/1.1\r\nHost: o\r\n\r\n', 'ok /public/a'.length + 100, 1000);
  assert.equal(status(first.data), 200);
  h.authorizers.set(policyAuthorizer(policies(`${TD}/batch`), 'v2', { httpPorts: [h.port] }));
  const second = await roundTrip(s, 'GET /public/a HTTP/1.1\r\nHost: o\r\n\r\n', 40, 2000);
  assert.equal(status(second.data), 403);
  assert.ok(second.data.includes('ERR_AGENT_CONNECTION_DENIED'));
  assert.equal(await waitClose(s), true);
  h.authorizers.set(policyAuthorizer(policies(), 'v3', { httpPorts: [h.port] }));
  assert.equal(status(await raw('GET /public/a HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n')), 200);
  assert.equal(status(await raw('GET /public/a HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n', batch)), 0, 'batch is refused at connect');
});

function h2Session(port: number, svid: TestSvid): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = h2connect(`https://127.0.0.1:${port}`, { cert: svid.certPem, key: svid.keyPem, ca: ca.certPem, checkServerIdentity: () => undefined });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

test('HTTP/2 requests are authorized per request like HTTP/1.1', async () => {
  const session = await h2Session(h.port, web);
  try {
    const ok = await h2Request(session, { ':method': 'GET', ':path': '/public/h2', 'x-forwarded-client-cert': 'forged' });
    assert.equal(ok.headers[':status'], 200);
    assert.equal(ok.body, 'ok /public/h2');
    assert.match(String(app.seen.at(-1)?.headers['x-forwarded-client-cert']), /URI=spiffe:\/\/example\.org\/web$/);
    const denied = await h2Request(session, { ':method': 'GET', ':path': '/public/%2e%2e/private' });
    assert.equal(denied.headers[':status'], 403);
    assert.equal(denied.body, '{"code":"ERR_AGENT_REQUEST_DENIED"}');
  } finally {
    session.close();
  }
});

test('gRPC over HTTP/2 reaches an h2c app with trailers; denied calls get grpc-status 7', async () => {
  await assertGrpcThroughAgent(
    (appPort) => startInbound({ material: ca.material(server), authorizer: policyAuthorizer(policies()), appPort, protocol: 'http', appProtocol: 'h2c' }),
    (port) => h2Session(port, web),
    '/orders.Orders/Get', '/orders.Orders/Delete',
  );
});

test('plaintext to an mTLS HTTP port gets no HTTP answer', async () => {
  const p = await plainConnect(h.port);
  const r = await roundTrip(p, 'GET /public/a HTTP/1.1\r\nHost: o\r\n\r\n', 1, 2000);
  assert.ok(!r.data.startsWith('HTTP/1.1 200'));
  p.destroy();
});

/** PERMISSIVE mTLS, and `/public/*` open to plaintext callers and to web. */
const permissivePublic = (): PolicyAuthorizer => policyAuthorizer(docs(PERMISSIVE_MTLS, `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: p}
spec:
  ingress:
  - from: [{unauthenticated: true}, {spiffeIds: ["${TD}/web"]}]
    to: [{paths: ["/public/*"]}]
`));

test('a PERMISSIVE HTTP port serves plaintext callers as `unauthenticated`, without an identity header', async () => {
  const authz = permissivePublic();
  const ph = await startInbound({ material: ca.material(server), authorizer: authz, appPort: app.port, protocol: 'http', mode: 'PERMISSIVE' });
  try {
    const before = app.seen.length;
    const p = await plainConnect(ph.port);
    const r = await roundTrip(p, 'GET /public/plain HTTP/1.1\r\nHost: o\r\nX-Forwarded-Client-Cert: URI=spiffe://example.org/web\r\nConnection: close\r\n\r\n', 1 << 16, 2000);
    assert.equal(status(r.data), 200);
    assert.equal(app.seen.length, before + 1);
    assert.equal(app.seen.at(-1)?.headers['x-forwarded-client-cert'], undefined, 'a forged header from a plaintext caller is stripped, none added');
    const p2 = await plainConnect(ph.port);
    const denied = await roundTrip(p2, 'GET /private HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n', 1 << 16, 2000);
    assert.equal(status(denied.data), 403);
    // mTLS callers on the same port still get their verified identity
    const s = await mtlsConnect(ph.port, web, ca.certPem);
    const m = await roundTrip(s, 'GET /public/tls HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n', 1 << 16, 2000);
    assert.equal(status(m.data), 200);
    assert.match(String(app.seen.at(-1)?.headers['x-forwarded-client-cert']), /URI=spiffe:\/\/example\.org\/web$/);
  } finally {
    await ph.close();
  }
});

test('revoking the caller\'s certificate denies the next request on its live L7 connection', async () => {
  const caller = ca.issue([`${TD}/web`]);
  const s = await mtlsConnect(h.port, caller, ca.certPem);
  try {
    assert.equal(status((await roundTrip(s, 'GET /public/a HTTP/1.1\r\nHost: o\r\n\r\n', 'ok /public/a'.length + 100, 1000)).data), 200);
    h.trust.setRevoked([caller.serial]);
    const next = await roundTrip(s, 'GET /public/a HTTP/1.1\r\nHost: o\r\n\r\n', 40, 2000);
    assert.equal(status(next.data), 403);
    assert.ok(next.data.includes('ERR_AGENT_PEER_REVOKED'));
    assert.equal(await waitClose(s), true);
    assert.equal(status(await raw('GET /public/a HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n')), 200, 'other callers are unaffected');
  } finally {
    h.trust.setRevoked([]);
    s.destroy();
  }
});

test('half-close: a PERMISSIVE port answers plaintext and mTLS callers that half-close after their request; a request decided asynchronously (end-user JWT, allowed or 401) is answered after the caller\'s EOF, then the connection closes', async () => {
  const authz = permissivePublic();
  const ph = await startInbound({ material: ca.material(server), authorizer: authz, appPort: app.port, protocol: 'http', mode: 'PERMISSIVE' });
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
  const clock = new ManualClock('2026-06-01T00:00:00Z');
  const jh = await startInbound({
    material: ca.material(server), authorizer: policyAuthorizer(policies()), appPort: app.port, protocol: 'http',
    jwt: createJwtVerifier({ issuer: 'https://issuer.example', audiences: ['orders'], jwks: { keys: [jwk] } }, clock),
  });
  /** Sends `data`, half-closes, and collects the answer until the agent closes. */
  const halfClose = async (s: Awaited<ReturnType<typeof plainConnect>>, data: string): Promise<{ data: string; closed: boolean }> => {
    s.on('error', () => undefined);
    const got = roundTrip(s, '', 1 << 20, 3000);
    s.end(data);
    return got;
  };
  try {
    const plain = await halfClose(await plainConnect(ph.port), 'GET /public/plain-half HTTP/1.1\r\nHost: o\r\n\r\n');
    assert.equal(status(plain.data), 200, `got ${JSON.stringify(plain.data.slice(0, 60))}`);
    assert.equal(plain.closed, true);
    const tls = await halfClose(await mtlsConnect(ph.port, web, ca.certPem), 'GET /public/tls-half HTTP/1.1\r\nHost: o\r\n\r\n');
    assert.equal(status(tls.data), 200);
    assert.equal(tls.closed, true);
    const token = await new SignJWT({ iss: 'https://issuer.example', sub: 'alice', aud: 'orders', exp: Math.floor(clock.now() / 1000) + 60 }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(privateKey);
    const allowed = await halfClose(await mtlsConnect(jh.port, web, ca.certPem), `GET /me HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    assert.equal(status(allowed.data), 200);
    assert.equal(allowed.closed, true);
    const invalid = await halfClose(await mtlsConnect(jh.port, web, ca.certPem), 'GET /me HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer garbage\r\n\r\n');
    assert.equal(status(invalid.data), 401);
    assert.equal(invalid.closed, true);
    assert.deepEqual(app.seen.slice(-3).map((x) => x.url), ['/public/plain-half', '/public/tls-half', '/me']);
  } finally {
    await ph.close();
    await jh.close();
  }
});
