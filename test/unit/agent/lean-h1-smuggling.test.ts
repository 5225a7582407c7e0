// Adversarial checks of the lean HTTP/1.1 path (ADR 0043): a caller must not be able to make
// the app see a request the policy never decided (smuggling through hop-by-hop lists), nor
// pass a forged identity header in a spelling the app folds onto the real one, nor have a
// non-idempotent request replayed behind its back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { createTestCa, type TestCa, type TestSvid } from './support/pki.js';
import { startHttpApp, mtlsConnect, roundTrip } from './support/net.js';
import { startInbound, type InboundHarness } from './support/inbound.js';
import { allowFrom, policyAuthorizer } from './support/policy.js';
import type { ConnectionContext, RequestContext } from '../../../src/agent/proxy/authorizer.js';

const TD = 'spiffe://example.org';
let ca: TestCa;
let web: TestSvid;
let mobile: TestSvid;
let app: Awaited<ReturnType<typeof startHttpApp>>;
let h: InboundHarness;
let raw: { server: Server; port: number; sockets: Set<Socket>; heads: string[] };
let rawH: InboundHarness;
let slowH: InboundHarness;

const policies = allowFrom('api', [`${TD}/web`, `${TD}/mobile`], '{paths: ["/public/*"]}');

/** App answers that try to split the caller's response stream. */
const SPLIT: Record<string, string> = {
  '/public/split-cr': 'HTTP/1.1 200 OK\r\nX-A: a\rHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/public/split-lf': 'HTTP/1.1 200 OK\r\nX-A: a\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n',
  '/public/split-fold': 'HTTP/1.1 200 OK\r\nX-A: a\r\n Content-Length: 0\r\nContent-Length: 2\r\n\r\nok',
  '/public/split-nul': 'HTTP/1.1 200 OK\r\nX-A: a\u0000b\r\nContent-Length: 2\r\n\r\nok',
  '/public/split-reason': 'HTTP/1.1 200 OK\rInjected: 1\r\nContent-Length: 2\r\n\r\nok',
  '/public/split-dup-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\nok',
  '/public/split-te': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
};

before(async () => {
  ca = createTestCa('smuggle');
  web = ca.issue([`${TD}/web`]);
  mobile = ca.issue([`${TD}/mobile`]);
  app = await startHttpApp();
  h = await startInbound({ material: ca.material(ca.issue([`${TD}/orders`])), authorizer: policyAuthorizer(policies), appPort: app.port, protocol: 'http' });
  // An app that answers with a canned response per request head and, for `/public/respond-then-close`,
  // closes the connection without answering (as an app restarting would).
  const sockets = new Set<Socket>();
  const heads: string[] = [];
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    let got = '';
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      for (let end = got.indexOf('\r\n\r\n'); end !== -1; end = got.indexOf('\r\n\r\n')) {
        const head = got.slice(0, end + 4);
        got = got.slice(end + 4);
        heads.push(head);
        const path = head.slice(head.indexOf(' ') + 1, head.indexOf(' ', head.indexOf(' ') + 1));
        if (path === '/public/vanish') {
          s.destroy();
          return;
        }
        const who = /\r\nx-forwarded-client-cert: [^\r]*URI=([^\r;]*)\r\n/i.exec(head)?.[1] ?? 'none';
        const split = SPLIT[path];
        if (split !== undefined) {
          s.write(split);
          continue;
        }
        const res = path.startsWith('/public/who')
          ? `HTTP/1.1 200 OK\r\nContent-Length: ${who.length + path.length + 1}\r\n\r\n${who} ${path}`
          : path === '/public/big'
          ? `HTTP/1.1 200 OK\r\nContent-Length: ${48 * 1024}\r\n\r\n${'b'.repeat(48 * 1024)}`
          : path === '/public/conn-cl'
          ? 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: content-length\r\n\r\nhello'
          : path === '/public/conn-te'
            ? 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: Transfer-Encoding\r\n\r\n3\r\nabc\r\n0\r\n\r\n'
            : 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
        s.write(res);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  raw = { server, port: (server.address() as { port: number }).port, sockets, heads };
  rawH = await startInbound({ material: ca.material(ca.issue([`${TD}/orders`])), authorizer: policyAuthorizer(policies), appPort: raw.port, protocol: 'http' });
  slowH = await startInbound({ material: ca.material(ca.issue([`${TD}/orders`])), authorizer: policyAuthorizer(policies), appPort: raw.port, protocol: 'http', limits: { headersTimeoutMs: 300 } });
});

after(async () => {
  await h.close();
  await rawH.close();
  await slowH.close();
  await app.close();
  for (const s of raw.sockets) s.destroy();
  await new Promise((r) => raw.server.close(r));
  ca.cleanup();
});

test('Connection: content-length cannot strip the framing and smuggle the body as a second request', async () => {
  const smuggled = 'GET /admin/secret HTTP/1.1\r\nHost: o\r\nx-forwarded-client-cert: By=x;URI=spiffe://example.org/admin\r\n\r\n';
  const seen = app.seen.length;
  const s = await mtlsConnect(h.port, web, ca.certPem);
  const r = await roundTrip(s, `POST /public/form HTTP/1.1\r\nHost: o\r\nContent-Length: ${smuggled.length}\r\nConnection: content-length\r\n\r\n${smuggled}`, 10_000, 600);
  s.destroy();
  const urls = app.seen.slice(seen).map((x) => x.url);
  assert.ok(!urls.includes('/admin/secret'), `the app served a request policy never saw: ${urls.join(', ')}`);
  assert.deepEqual(urls, ['/public/form']);
  assert.equal(app.seen.at(-1)?.body, smuggled);
  assert.equal(r.data.match(/HTTP\/1\.1 \d{3}/g)?.length, 1);
});

test('a Connection-listed Content-Length or Transfer-Encoding in a response keeps the caller framing', async () => {
  const s = await mtlsConnect(rawH.port, web, ca.certPem);
  const a = await roundTrip(s, 'GET /public/conn-cl HTTP/1.1\r\nHost: o\r\n\r\n', 10_000, 300);
  assert.match(a.data, /\r\ncontent-length: 5\r\n/i);
  const b = await roundTrip(s, 'GET /public/conn-te HTTP/1.1\r\nHost: o\r\n\r\n', 10_000, 300);
  assert.match(b.data, /\r\ntransfer-encoding: chunked\r\n/i);
  s.destroy();
});

test('a forged identity header is stripped in every spelling the app may fold onto the real one', async () => {
  const seen = raw.heads.length;
  const s = await mtlsConnect(rawH.port, web, ca.certPem);
  await roundTrip(s, 'GET /public/x HTTP/1.1\r\nHost: o\r\nX_Forwarded_Client_Cert: By=x;URI=spiffe://example.org/admin\r\nx-forwarded_client-cert: URI=spiffe://example.org/admin\r\nX-Forwarded-Client-Cert: URI=spiffe://example.org/admin\r\n\r\n', 40, 1500);
  s.destroy();
  const head = raw.heads[seen] ?? '';
  const identityLines = head.split('\r\n').filter((l) => /^x[-_]forwarded[-_]client[-_]cert:/i.test(l));
  assert.equal(identityLines.length, 1, head);
  assert.match(identityLines[0] as string, /URI=spiffe:\/\/example\.org\/web$/);
});

test('the Node fallback path strips the underscore spelling too', async () => {
  const seen = raw.heads.length;
  const s = await mtlsConnect(rawH.port, web, ca.certPem);
  // Transfer-Encoding sends the request through llhttp.
  await roundTrip(s, 'POST /public/y HTTP/1.1\r\nHost: o\r\nTransfer-Encoding: chunked\r\nX_Forwarded_Client_Cert: URI=spiffe://example.org/admin\r\n\r\n0\r\n\r\n', 40, 1500);
  s.destroy();
  const head = raw.heads[seen] ?? '';
  assert.ok(head.length > 0);
  const identityLines = head.split('\r\n').filter((l) => /^x[-_]forwarded[-_]client[-_]cert:/i.test(l));
  assert.equal(identityLines.length, 1, head);
  assert.match(identityLines[0] as string, /URI=spiffe:\/\/example\.org\/web$/);
});

test('a caller that pipelines requests without reading the answers is not buffered without bound', async () => {
  // Hundreds of pipelined requests for a 48 KiB answer each; the caller never reads. The agent
  // must stop taking requests once its answers back up (kernel buffers hold a few MiB at most),
  // not fetch and buffer every answer in memory.
  const n = 600;
  const before = raw.heads.length;
  const s = await mtlsConnect(rawH.port, web, ca.certPem);
  s.pause();
  s.write('GET /public/big HTTP/1.1\r\nHost: o\r\n\r\n'.repeat(n));
  let last = -1;
  for (let i = 0; i < 40 && raw.heads.length !== last; i++) {
    last = raw.heads.length;
    await new Promise((r) => setTimeout(r, 100));
  }
  const served = raw.heads.length - before;
  s.destroy();
  assert.ok(served < n / 2, `${served} of ${n} answers (${(served * 48) >> 10} MiB) fetched while the caller read nothing`);
});

test('a non-idempotent request is never replayed when a reused app connection drops', async () => {
  const s = await mtlsConnect(rawH.port, web, ca.certPem);
  // Warm the pool so the next request goes out on a reused connection.
  await roundTrip(s, 'GET /public/warm HTTP/1.1\r\nHost: o\r\n\r\n', 40, 1000);
  const before = raw.heads.length;
  const r = await roundTrip(s, 'POST /public/vanish HTTP/1.1\r\nHost: o\r\nContent-Length: 0\r\n\r\n', 1 << 20, 1500);
  s.destroy();
  assert.match(r.data, /^HTTP\/1\.1 502 /);
  assert.equal(raw.heads.slice(before).filter((x) => x.startsWith('POST /public/vanish ')).length, 1, 'the app got the POST twice');
  // An idempotent request is retried once on a fresh connection (the idle-close race).
  const t = await mtlsConnect(rawH.port, web, ca.certPem);
  await roundTrip(t, 'GET /public/warm HTTP/1.1\r\nHost: o\r\n\r\n', 40, 1000);
  const mark = raw.heads.length;
  await roundTrip(t, 'GET /public/vanish HTTP/1.1\r\nHost: o\r\n\r\n', 1 << 20, 1500);
  t.destroy();
  assert.equal(raw.heads.slice(mark).filter((x) => x.startsWith('GET /public/vanish ')).length, 2);
});

test('pooled app connections never mix callers: each request carries its caller, each answer goes back to it', async () => {
  const callers = [[web, `${TD}/web`], [mobile, `${TD}/mobile`]] as const;
  const sockets = await Promise.all(callers.map(([svid]) => mtlsConnect(rawH.port, svid, ca.certPem)));
  const before = raw.heads.length;
  await Promise.all(callers.map(async ([, id], c) => {
    const s = sockets[c] as Awaited<ReturnType<typeof mtlsConnect>>;
    for (let i = 0; i < 15; i++) {
      const path = `/public/who-${c}-${i}`;
      // Every other request pipelines two, and every caller sends a forged identity.
      const req = `GET ${path} HTTP/1.1\r\nHost: o\r\nX-Forwarded-Client-Cert: URI=${TD}/admin\r\n\r\n`;
      const r = await roundTrip(s, i % 2 === 0 ? req : req + req, (i % 2 === 0 ? 1 : 2) * (40 + id.length + path.length), 1500);
      const bodies = [...r.data.matchAll(/\r\n\r\n([^ ]*) (\/public\/[^H]*?)(?=HTTP|$)/g)].map((m) => [m[1], m[2]]);
      assert.deepEqual(bodies, Array(i % 2 === 0 ? 1 : 2).fill([id, path]), r.data);
    }
  }));
  for (const s of sockets) s.destroy();
  for (const head of raw.heads.slice(before)) {
    const c = /^GET \/public\/who-(\d)/.exec(head)?.[1];
    assert.ok(c !== undefined, head);
    const ids = head.split('\r\n').filter((l) => /^x[-_]forwarded[-_]client[-_]cert:/i.test(l));
    assert.equal(ids.length, 1, head);
    assert.ok((ids[0] as string).endsWith(`URI=${callers[Number(c)]?.[1]}`), head);
  }
});

test('a caller disconnecting mid-answer never leaves that answer for the next caller', async () => {
  const a = await mtlsConnect(rawH.port, web, ca.certPem);
  await roundTrip(a, 'GET /public/big HTTP/1.1\r\nHost: o\r\n\r\n', 100, 1000);
  a.destroy();
  const b = await mtlsConnect(rawH.port, mobile, ca.certPem);
  const r = await roundTrip(b, 'GET /public/who-b HTTP/1.1\r\nHost: o\r\n\r\n', 1 << 20, 400);
  b.destroy();
  assert.match(r.data, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nspiffe:\/\/example\.org\/mobile \/public\/who-b$/);
});

/** Writes `text` in `size`-byte writes (separate TLS records), `gapMs` apart, until the socket closes. */
async function trickle(s: Awaited<ReturnType<typeof mtlsConnect>>, text: string, size: number, gapMs: number): Promise<string> {
  let got = '';
  let closed = false;
  s.on('data', (c: Buffer) => (got += c.toString('latin1')));
  s.once('close', () => (closed = true));
  for (let i = 0; i < text.length && !closed; i += size) {
    s.write(text.slice(i, i + size));
    await new Promise((r) => setTimeout(r, gapMs));
  }
  for (let i = 0; i < 40 && !closed; i++) await new Promise((r) => setTimeout(r, 50));
  s.destroy();
  return got;
}

test('slow-loris: a head trickled a byte at a time is cut by the headers timeout, also on a kept-alive connection', async () => {
  const before = raw.heads.length;
  const s = await mtlsConnect(slowH.port, web, ca.certPem);
  const got = await trickle(s, `GET /public/a HTTP/1.1\r\nHost: o\r\nX-Pad: ${'p'.repeat(200)}\r\n\r\n`, 1, 20);
  assert.match(got, /^HTTP\/1\.1 408 /);
  // Trickled in full the head takes ~5 s: had activity re-armed the timeout it would have been forwarded.
  const k = await mtlsConnect(slowH.port, web, ca.certPem);
  const first = await roundTrip(k, 'GET /public/k HTTP/1.1\r\nHost: o\r\n\r\n', 40, 1000);
  assert.match(first.data, /^HTTP\/1\.1 200 /);
  const second = await trickle(k, `GET /public/a HTTP/1.1\r\nHost: o\r\nX-Pad: ${'p'.repeat(200)}\r\n\r\n`, 1, 20);
  assert.match(second, /^HTTP\/1\.1 408 /);
  assert.deepEqual(raw.heads.slice(before).map((x) => x.split(' ')[1]), ['/public/k']);
});

test('an oversized head split across many TLS records is refused with 431 and never forwarded', async () => {
  const before = raw.heads.length;
  const s = await mtlsConnect(rawH.port, web, ca.certPem);
  const got = await trickle(s, `GET /public/a HTTP/1.1\r\nHost: o\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 700, 0);
  assert.match(got, /^HTTP\/1\.1 431 /);
  assert.equal(raw.heads.length, before);
});

test('an authorizer that throws fails closed on both HTTP/1.1 paths, and the agent keeps serving', async () => {
  let inner = policyAuthorizer(policies);
  const throwing = {
    version: 'throws',
    authorizeConnection: (ctx: ConnectionContext) => inner.authorizeConnection(ctx),
    authorizeRequest: (ctx: RequestContext) => {
      if (ctx.path === '/public/boom') throw new Error('policy engine bug');
      return inner.authorizeRequest(ctx);
    },
  };
  const th = await startInbound({ material: ca.material(ca.issue([`${TD}/orders`])), authorizer: throwing, appPort: raw.port, protocol: 'http' });
  inner = inner.withOptions({ httpPorts: [th.port] }); // the port is HTTP, as the agent tells its authorizer
  try {
    const before = raw.heads.length;
    for (const req of ['GET /public/boom HTTP/1.1\r\nHost: o\r\n\r\n', 'POST /public/boom HTTP/1.1\r\nHost: o\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n']) {
      const s = await mtlsConnect(th.port, web, ca.certPem);
      const r = await roundTrip(s, req, 1 << 20, 1500);
      s.destroy();
      assert.match(r.data, /^HTTP\/1\.1 403 [^]*\{"code":"ERR_AGENT_REQUEST_DENIED"\}$/);
      assert.ok(!/^HTTP\/1\.1 200 /.test(r.data));
    }
    assert.equal(raw.heads.length, before);
    const s = await mtlsConnect(th.port, web, ca.certPem);
    const ok = await roundTrip(s, 'GET /public/fine HTTP/1.1\r\nHost: o\r\n\r\n', 40, 1500);
    s.destroy();
    assert.match(ok.data, /^HTTP\/1\.1 200 /);
  } finally {
    await th.close();
  }
});

test('an app answer that would split or reframe the caller stream is a 502, never relayed', async () => {
  for (const path of Object.keys(SPLIT)) {
    const s = await mtlsConnect(rawH.port, web, ca.certPem);
    const r = await roundTrip(s, `GET ${path} HTTP/1.1\r\nHost: o\r\n\r\n`, 1 << 20, 1500);
    s.destroy();
    assert.match(r.data, /^HTTP\/1\.1 502 Bad Gateway\r\n[^]*\r\n\r\n\{"code":"ERR_AGENT_UPSTREAM"\}$/, path);
  }
});

test('absolute-form targets and encoded or dotted paths: the app receives exactly the path that was authorised', async () => {
  const cases: Array<[string, string | null]> = [
    ['http://o/public/a', null],
    ['http://evil/private', null],
    ['*', null],
    ['/public/%2F../private', null],
    ['/public/..%5Cprivate', null],
    ['/public\\..\\private', null],
    ['/public/../private', null],
    ['/public/%2e%2e/private', null],
    ['//public//a/./b/%2E%2e/c?q=/../x', '/public/a/c?q=/../x'],
    ['/public/%61%2d%7e%25%3B', '/public/a-~%25%3B'],
  ];
  for (const [target, forwarded] of cases) {
    const before = raw.heads.length;
    const s = await mtlsConnect(rawH.port, web, ca.certPem);
    const r = await roundTrip(s, `GET ${target} HTTP/1.1\r\nHost: o\r\n\r\n`, 1 << 20, 800);
    s.destroy();
    const seen = raw.heads.slice(before).map((x) => x.split(' ')[1]);
    if (forwarded === null) {
      assert.match(r.data, /^HTTP\/1\.1 (400|403) /, target);
      assert.deepEqual(seen, [], target);
    } else {
      assert.match(r.data, /^HTTP\/1\.1 200 /, target);
      assert.deepEqual(seen, [forwarded], target);
    }
  }
});
