// The lean HTTP/1.1 path (ADR 0043) over real mTLS and real app sockets: keep-alive and
// pipelining, request bodies, every response framing, hop-by-hop hygiene, fallback to llhttp
// for framing it does not handle, and failures answered as 502 without internals.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { createTestCa, type TestCa, type TestSvid } from './support/pki.js';
import { startHttpApp, mtlsConnect, roundTrip, waitClose } from './support/net.js';
import { startInbound, type InboundHarness } from './support/inbound.js';
import { allowFrom, policyAuthorizer } from './support/policy.js';

const TD = 'spiffe://example.org';
let ca: TestCa;
let web: TestSvid;
let app: Awaited<ReturnType<typeof startHttpApp>>;
let appConnections = 0;
let h: InboundHarness;
let raw: { server: Server; port: number; sockets: Set<Socket> };
let rawH: InboundHarness;

const policies = allowFrom('api', [`${TD}/web`], '{paths: ["/public/*"]}');

/** Canned raw responses by path, for framings a Node app would not produce on demand. */
const CANNED: Record<string, string> = {
  '/public/length': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\nConnection: X-Secret\r\nX-Secret: s\r\n\r\nhello',
  '/public/head': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n',
  '/public/nocontent': 'HTTP/1.1 204 No Content\r\n\r\n',
  '/public/chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n',
  '/public/close': 'HTTP/1.1 200 OK\r\n\r\nuntil-close',
  '/public/interim': 'HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/public/garbage': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n',
  '/public/bad-chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
};

before(async () => {
  ca = createTestCa('lean');
  web = ca.issue([`${TD}/web`]);
  app = await startHttpApp();
  app.server.on('connection', () => (appConnections += 1));
  h = await startInbound({ material: ca.material(ca.issue([`${TD}/orders`])), authorizer: policyAuthorizer(policies), appPort: app.port, protocol: 'http', limits: { headersTimeoutMs: 500, requestTimeoutMs: 1000 } });
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    let got = '';
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end === -1) return;
      const path = got.slice(got.indexOf(' ') + 1, got.indexOf(' ', got.indexOf(' ') + 1));
      got = got.slice(end + 4);
      s.write(CANNED[path] ?? 'HTTP/1.1 500 X\r\nContent-Length: 0\r\n\r\n');
      if (path === '/public/close') s.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  raw = { server, port: (server.address() as { port: number }).port, sockets };
  rawH = await startInbound({ material: ca.material(ca.issue([`${TD}/orders`])), authorizer: policyAuthorizer(policies), appPort: raw.port, protocol: 'http' });
});

after(async () => {
  await h.close();
  await rawH.close();
  await app.close();
  for (const s of raw.sockets) s.destroy();
  await new Promise((r) => raw.server.close(r));
  ca.cleanup();
});

const statuses = (text: string): number[] => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

test('keep-alive and pipelined requests are answered in order over pooled app connections', async () => {
  const seen = app.seen.length;
  const connsBefore = appConnections;
  const s = await mtlsConnect(h.port, web, ca.certPem);
  for (let i = 0; i < 3; i++) {
    const r = await roundTrip(s, `GET /public/k${i} HTTP/1.1\r\nHost: o\r\n\r\n`, 1, 2000);
    assert.equal(statuses(r.data)[0], 200);
    await new Promise((r) => setTimeout(r, 20));
  }
  const pipelined = 'GET /public/p1 HTTP/1.1\r\nHost: o\r\n\r\nGET /private HTTP/1.1\r\nHost: o\r\n\r\nGET /public/p2 HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n';
  const r = await roundTrip(s, pipelined, 1 << 20, 2000);
  assert.deepEqual(statuses(r.data), [200, 403, 200]);
  assert.ok(r.data.indexOf('ok /public/p1') < r.data.indexOf('ERR_AGENT_REQUEST_DENIED'));
  assert.ok(r.data.indexOf('ERR_AGENT_REQUEST_DENIED') < r.data.indexOf('ok /public/p2'));
  assert.equal(r.closed, true, 'Connection: close is honoured');
  assert.deepEqual(app.seen.slice(seen).map((x) => x.url), ['/public/k0', '/public/k1', '/public/k2', '/public/p1', '/public/p2']);
  assert.ok(appConnections - connsBefore <= 2, `app connections reused (${appConnections - connsBefore} opened)`);
});

test('request bodies reach the app: Content-Length split across writes, chunked and HTTP/1.0 via llhttp', async () => {
  const seen = app.seen.length;
  const s = await mtlsConnect(h.port, web, ca.certPem);
  s.write('POST /public/b HTTP/1.1\r\nHost: o\r\nContent-Length: 11\r\n\r\nhel');
  await new Promise((r) => setTimeout(r, 30));
  const r = await roundTrip(s, 'lo world', 1, 2000);
  assert.equal(statuses(r.data)[0], 200);
  const c = await roundTrip(s, 'POST /public/c HTTP/1.1\r\nHost: o\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n', 1 << 20, 2000);
  assert.equal(statuses(c.data)[0], 200);
  s.destroy();
  const s10 = await mtlsConnect(h.port, web, ca.certPem);
  const old = await roundTrip(s10, 'GET /public/old HTTP/1.0\r\nHost: o\r\n\r\n', 1 << 20, 2000);
  assert.equal(statuses(old.data)[0] ?? Number(/^HTTP\/1\.0 (\d+)/.exec(old.data)?.[1]), 200);
  s10.destroy();
  assert.deepEqual(app.seen.slice(seen).map((x) => [x.method, x.url, x.body]), [['POST', '/public/b', 'hello world'], ['POST', '/public/c', 'abc'], ['GET', '/public/old', '']]);
});

test('a denied request with a body is answered and the connection closed; the body never reaches the app', async () => {
  const seen = app.seen.length;
  const s = await mtlsConnect(h.port, web, ca.certPem);
  const r = await roundTrip(s, 'POST /private HTTP/1.1\r\nHost: o\r\nContent-Length: 30\r\n\r\nGET /public/x HTTP/1.1\r\nHost: o', 1 << 20, 2000);
  assert.deepEqual(statuses(r.data), [403]);
  assert.equal(r.closed, true);
  assert.equal(app.seen.length, seen);
});

test('hop-by-hop headers listed in Connection are dropped both ways', async () => {
  const seen = app.seen.length;
  const s = await mtlsConnect(h.port, web, ca.certPem);
  await roundTrip(s, 'GET /public/h HTTP/1.1\r\nHost: o\r\nConnection: X-Private\r\nX-Private: p\r\nKeep-Alive: 5\r\nX-Kept: k\r\n\r\n', 1, 2000);
  s.destroy();
  const got = app.seen[seen]?.headers;
  assert.equal(got?.['x-private'], undefined);
  assert.equal(got?.['keep-alive'], undefined);
  assert.equal(got?.['x-kept'], 'k');
  const t = await mtlsConnect(rawH.port, web, ca.certPem);
  const r = await roundTrip(t, 'GET /public/length HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n', 1 << 20, 2000);
  assert.ok(r.data.endsWith('\r\n\r\nhello'), r.data);
  assert.ok(!/x-secret|keep-alive/i.test(r.data), r.data);
});

test('every response framing is relayed: length, HEAD, 204, chunked with trailers, 1xx, until close', async () => {
  const s = await mtlsConnect(rawH.port, web, ca.certPem);
  const seq = async (req: string): Promise<string> => (await roundTrip(s, req, 1 << 20, 300)).data;
  assert.match(await seq('GET /public/length HTTP/1.1\r\nHost: o\r\n\r\n'), /\r\n\r\nhello$/);
  assert.match(await seq('HEAD /public/head HTTP/1.1\r\nHost: o\r\n\r\n'), /^HTTP\/1\.1 200 OK\r\nContent-Length: 5\r\n\r\n$/);
  assert.match(await seq('GET /public/nocontent HTTP/1.1\r\nHost: o\r\n\r\n'), /^HTTP\/1\.1 204 No Content\r\n\r\n$/);
  assert.match(await seq('GET /public/chunked HTTP/1.1\r\nHost: o\r\n\r\n'), /\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n$/);
  assert.match(await seq('GET /public/interim HTTP/1.1\r\nHost: o\r\n\r\n'), /^HTTP\/1\.1 103 Early Hints\r\nLink: <\/s\.css>\r\n\r\nHTTP\/1\.1 200 OK\r\nContent-Length: 2\r\n\r\nok$/);
  const r = await roundTrip(s, 'GET /public/close HTTP/1.1\r\nHost: o\r\n\r\n', 1 << 20, 2000);
  assert.match(r.data, /^HTTP\/1\.1 200 OK\r\nconnection: close\r\n\r\nuntil-close$/);
  assert.equal(r.closed, true, 'a close-delimited response closes the caller too');
});

test('a malformed app response or an unreachable app is a 502 with only a Ward code', async () => {
  for (const path of ['/public/garbage']) {
    const s = await mtlsConnect(rawH.port, web, ca.certPem);
    const r = await roundTrip(s, `GET ${path} HTTP/1.1\r\nHost: o\r\n\r\n`, 1 << 20, 2000);
    assert.deepEqual(statuses(r.data), [502], path);
    assert.ok(r.data.endsWith('{"code":"ERR_AGENT_UPSTREAM"}'));
  }
  const s = await mtlsConnect(rawH.port, web, ca.certPem);
  const cut = await roundTrip(s, 'GET /public/bad-chunk HTTP/1.1\r\nHost: o\r\n\r\n', 1 << 20, 2000);
  assert.equal(cut.closed, true, 'bad framing after the head cuts the connection');
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const port = (dead.address() as { port: number }).port;
  await new Promise((r) => dead.close(r));
  const down = await startInbound({ material: ca.material(ca.issue([`${TD}/orders`])), authorizer: policyAuthorizer(policies), appPort: port, protocol: 'http' });
  try {
    const t = await mtlsConnect(down.port, web, ca.certPem);
    const r = await roundTrip(t, 'GET /public/x HTTP/1.1\r\nHost: o\r\n\r\n', 1 << 20, 2000);
    assert.deepEqual(statuses(r.data), [502]);
    assert.ok(r.data.endsWith('{"code":"ERR_AGENT_UPSTREAM"}'));
    assert.equal(await waitClose(t, 2000), true);
  } finally {
    await down.close();
  }
});

test('a slow request body is cut by the request timeout', async () => {
  const s = await mtlsConnect(h.port, web, ca.certPem);
  s.write('POST /public/slow HTTP/1.1\r\nHost: o\r\nContent-Length: 100\r\n\r\nabc');
  assert.equal(await waitClose(s, 4000), true);
});

test('half-close between keep-alive requests: the connection ends at once (not after the idle timeout); a request the Node server serves (HTTP/1.0, chunked) is still answered after the caller half-closes', async () => {
  const seen = app.seen.length;
  const s = await mtlsConnect(h.port, web, ca.certPem);
  s.on('error', () => undefined);
  const first = await roundTrip(s, 'GET /public/ka HTTP/1.1\r\nHost: o\r\n\r\n', 1, 2000);
  assert.deepEqual(statuses(first.data), [200]);
  await new Promise((r) => setTimeout(r, 20));
  const started = Date.now();
  s.end();
  assert.equal(await waitClose(s, 2000), true, 'closed after the half-close');
  assert.ok(Date.now() - started < 1000, `closed after ${Date.now() - started} ms`);
  // The llhttp path (HTTP/1.0, Transfer-Encoding): the request sent in full before the FIN is answered.
  for (const req of ['GET /public/old-half HTTP/1.0\r\nHost: o\r\n\r\n', 'POST /public/chunked-half HTTP/1.1\r\nHost: o\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n']) {
    const t = await mtlsConnect(h.port, web, ca.certPem);
    t.on('error', () => undefined);
    const got = roundTrip(t, '', 1 << 20, 3000);
    t.end(req);
    const r = await got;
    assert.match(r.data, /^HTTP\/1\.[01] 200 /, `got ${JSON.stringify(r.data.slice(0, 60))}`);
    assert.equal(r.closed, true);
  }
  assert.deepEqual(app.seen.slice(seen).map((x) => [x.url, x.body]), [['/public/ka', ''], ['/public/old-half', ''], ['/public/chunked-half', 'abc']]);
});
