// h2c with prior knowledge on PERMISSIVE plaintext HTTP ports (detect.ts → HTTP/2 path as `unauthenticated`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { createServer, type Socket } from 'node:net';
import { createTestCa, type TestCa, type TestSvid } from './support/pki.js';
import { startHttpApp, plainConnect, roundTrip, waitClose } from './support/net.js';
import { assertGrpcThroughAgent, h2Request } from './support/h2.js';
import { startInbound } from './support/inbound.js';
import { allowFrom, docs, policyAuthorizer, PERMISSIVE_MTLS } from './support/policy.js';
import { detectProtocol, H2_PREFACE } from '../../../src/agent/proxy/detect.js';

const TD = 'spiffe://example.org';
let ca: TestCa;
let server: TestSvid;
let app: Awaited<ReturnType<typeof startHttpApp>>;

const policies = docs(PERMISSIVE_MTLS, `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: api}
spec:
  ingress:
  - from: [{unauthenticated: true}]
    to: [{paths: ["/public/*", /orders.Orders/Get]}]
`);

before(async () => {
  ca = createTestCa('h2c');
  server = ca.issue([`${TD}/orders`]);
  app = await startHttpApp();
});

after(async () => {
  await app.close();
  ca.cleanup();
});

function h2cSession(port: number): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = h2connect(`http://127.0.0.1:${port}`);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves with the first bytes the peer sends (or what it sent before closing). */
function firstBytes(socket: Socket, n: number, timeoutMs = 2000): Promise<Buffer> {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    const finish = (): void => {
      clearTimeout(timer);
      resolve(got);
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.length >= n) finish();
    });
    socket.once('close', finish);
  });
}

test('an h2c prior-knowledge caller on a PERMISSIVE port is served over HTTP/2 as `unauthenticated`', async () => {
  const ph = await startInbound({ material: ca.material(server), authorizer: policyAuthorizer(policies), appPort: app.port, protocol: 'http', mode: 'PERMISSIVE' });
  const session = await h2cSession(ph.port);
  try {
    const before = app.seen.length;
    const ok = await h2Request(session, { ':method': 'GET', ':path': '/public/h2c', 'x-forwarded-client-cert': 'By=x;URI=spiffe://example.org/admin', 'x_forwarded_client_cert': 'URI=spiffe://example.org/admin' });
    assert.equal(ok.headers[':status'], 200);
    assert.equal(ok.body, 'ok /public/h2c');
    assert.equal(app.seen.length, before + 1);
    const seen = app.seen.at(-1);
    assert.equal(seen?.headers['x-forwarded-client-cert'], undefined, 'forged identity stripped, none added for an unauthenticated caller');
    assert.equal(seen?.headers.x_forwarded_client_cert, undefined);
    const denied = await h2Request(session, { ':method': 'GET', ':path': '/private' });
    assert.equal(denied.headers[':status'], 403);
    assert.equal(denied.body, '{"code":"ERR_AGENT_REQUEST_DENIED"}');
    assert.equal(app.seen.length, before + 1, 'the denied request never reached the app');
    const ev = ph.events.find((e) => e.class === 'http_activity' && e.verdict === 'denied');
    assert.ok(ev && ev.class === 'http_activity');
    assert.equal(ev.source, 'unauthenticated');
    assert.equal(ev.path, '/private');
  } finally {
    session.close();
    await ph.close();
  }
});

test('gRPC over h2c prior knowledge reaches an h2c app; a denied call gets grpc-status 7', async () => {
  await assertGrpcThroughAgent(
    (appPort) => startInbound({ material: ca.material(server), authorizer: policyAuthorizer(policies), appPort, protocol: 'http', appProtocol: 'h2c', mode: 'PERMISSIVE' }),
    h2cSession,
    '/orders.Orders/Get', '/orders.Orders/Delete',
  );
});

test('a policy that does not admit `unauthenticated` closes an h2c caller before any HTTP/2 frame', async () => {
  // PERMISSIVE mTLS, so the plaintext caller is refused by the access policy (not by mTLS).
  const strictPolicy = policyAuthorizer(docs(PERMISSIVE_MTLS, allowFrom('p', [`${TD}/web`])));
  const ph = await startInbound({ material: ca.material(server), authorizer: strictPolicy, appPort: app.port, protocol: 'http', mode: 'PERMISSIVE' });
  try {
    const p = await plainConnect(ph.port);
    const reply = firstBytes(p, 9);
    p.write(H2_PREFACE);
    p.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])); // empty SETTINGS
    assert.equal((await reply).length, 0, 'no SETTINGS frame from the agent');
    assert.equal(await waitClose(p), true);
    const ev = ph.events.find((e) => e.class === 'network_activity' && e.verdict === 'denied');
    assert.ok(ev && ev.class === 'network_activity');
    assert.equal(ev.source, 'unauthenticated');
  } finally {
    await ph.close();
  }
});

test('the preface is recognised when it arrives a few bytes at a time; HTTP/1.1 methods starting with P stay HTTP/1.1', async () => {
  const ph = await startInbound({ material: ca.material(server), authorizer: policyAuthorizer(policies), appPort: app.port, protocol: 'http', mode: 'PERMISSIVE' });
  try {
    const p = await plainConnect(ph.port);
    const reply = firstBytes(p, 9);
    for (let i = 0; i < H2_PREFACE.length; i += 5) {
      p.write(H2_PREFACE.subarray(i, i + 5));
      await new Promise((r) => setTimeout(r, 5));
    }
    p.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]));
    const got = await reply;
    assert.ok(got.length >= 9, 'the agent answered');
    assert.equal(got[3], 0x04, 'its first frame is HTTP/2 SETTINGS');
    p.destroy();
    for (const method of ['POST', 'PUT', 'PATCH']) {
      const q = await plainConnect(ph.port);
      const r = await roundTrip(q, `${method} /public/p HTTP/1.1\r\nHost: o\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 1 << 16, 2000);
      assert.match(r.data, method === 'POST' ? /^HTTP\/1\.1 200/ : /^HTTP\/1\.1 (200|403)/, `${method}: ${r.data}`);
    }
  } finally {
    await ph.close();
  }
});

test('detectProtocol: TLS, preface, near-preface, and the preface only on HTTP ports', async () => {
  const srv = createServer({ pauseOnConnect: true });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  const detect = async (bytes: Buffer, h2c: boolean): Promise<{ detected: string | undefined; replay: Buffer }> => {
    const accepted = new Promise<Socket>((r) => srv.once('connection', r));
    const c = await plainConnect(port);
    c.write(bytes);
    const s = await accepted;
    s.resume();
    const detected = await detectProtocol(s, 300, { h2c });
    // Everything read while detecting is put back for the next layer.
    const replay = await new Promise<Buffer>((r) => {
      s.once('data', r);
      s.resume();
    });
    c.destroy();
    s.destroy();
    return { detected, replay };
  };
  try {
    assert.equal((await detect(Buffer.from([0x16, 3, 1]), true)).detected, 'tls');
    const pre = await detect(H2_PREFACE, true);
    assert.equal(pre.detected, 'h2c');
    assert.ok(pre.replay.equals(H2_PREFACE));
    assert.equal((await detect(H2_PREFACE, false)).detected, 'plaintext');
    assert.equal((await detect(Buffer.from('PRI * HTTP/1.1\r\n\r\n'), true)).detected, 'plaintext');
    const partial = await detect(H2_PREFACE.subarray(0, 10), true);
    assert.equal(partial.detected, 'plaintext', 'a peer stopping mid-preface is plaintext after the timeout');
    assert.ok(partial.replay.equals(H2_PREFACE.subarray(0, 10)));
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
});
