// Upgrade / WebSocket pass-through on inbound HTTP ports: decided as a request, 101 relayed, then spliced.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import { createTestCa, type TestCa, type TestSvid } from './support/pki.js';
import { mtlsConnect, plainConnect, waitClose } from './support/net.js';
import { startInbound, type InboundHarness } from './support/inbound.js';
import type { PolicyAuthorizer } from '../../../src/agent/policy-authorizer.js';
import { docs, policyAuthorizer, PERMISSIVE_MTLS } from './support/policy.js';

const TD = 'spiffe://example.org';
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
let ca: TestCa;
let server: TestSvid;
let web: TestSvid;
let app: { port: number; seen: { url: string; headers: IncomingHttpHeaders }[]; server: HttpServer; close(): Promise<void> };

const policies = `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: api}
spec:
  ingress:
  - from: [{spiffeIds: ["${TD}/web"]}, {unauthenticated: true}]
    to: [{methods: [GET], paths: ["/ws/*"]}]
`;
const authz = (): PolicyAuthorizer => policyAuthorizer(policies);

/** A masked (client) or unmasked (server) WebSocket text frame, payload < 126 bytes. */
function frame(text: string, masked: boolean): Buffer {
  const payload = Buffer.from(text);
  if (!masked) return Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
  const mask = Buffer.from([1, 2, 3, 4]);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((b, i) => b ^ (mask[i % 4] as number))]);
}

/** Decodes one frame at the start of `buf`, or undefined if incomplete. */
function readFrame(buf: Buffer): { text: string; rest: Buffer } | undefined {
  if (buf.length < 2) return undefined;
  const masked = ((buf[1] as number) & 0x80) !== 0;
  const len = (buf[1] as number) & 0x7f;
  const start = masked ? 6 : 2;
  if (buf.length < start + len) return undefined;
  const payload = Buffer.from(buf.subarray(start, start + len));
  if (masked) for (let i = 0; i < len; i++) payload[i] = (payload[i] as number) ^ (buf[2 + (i % 4)] as number);
  return { text: payload.toString(), rest: buf.subarray(start + len) };
}

/** The app: a WebSocket echo server (greets, then echoes each frame as `echo:<text>`), or refuses on /ws/refuse*. */
async function startWsApp(): Promise<typeof app> {
  const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
  const srv = createHttpServer((_req, res) => res.end('not an upgrade'));
  srv.on('upgrade', (req, socket: Socket) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    if (req.url === '/ws/refuse') {
      socket.end('HTTP/1.1 426 Upgrade Required\r\ncontent-type: text/plain\r\ncontent-length: 7\r\n\r\nrefused');
      return;
    }
    if (req.url === '/ws/refuse-chunked') {
      // keep-alive, chunked: the agent must find the end itself and close the caller's connection
      socket.write('HTTP/1.1 403 Forbidden\r\ntransfer-encoding: chunked\r\n\r\n5\r\nnope!\r\n0\r\n\r\n');
      return;
    }
    const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}${WS_GUID}`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.write(frame('hello', false));
    let buf: Buffer = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (let f = readFrame(buf); f !== undefined; f = readFrame(buf)) {
        buf = f.rest;
        socket.write(frame(`echo:${f.text}`, false));
      }
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as { port: number }).port,
    seen,
    server: srv,
    close: () => new Promise<void>((r) => {
      srv.closeAllConnections();
      srv.close(() => r());
    }),
  };
}

/** A client-side reader: the response head, then frames. */
class Reader {
  #buf: Buffer = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  closed = false;
  constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, c]);
      this.#wake();
    });
    socket.once('close', () => {
      this.closed = true;
      this.#wake();
    });
  }
  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
  async #until<T>(take: () => T | undefined, timeoutMs = 2000): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = take();
      if (v !== undefined || this.closed || Date.now() > deadline) return v;
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }
  head(): Promise<string | undefined> {
    return this.#until(() => {
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end === -1) return undefined;
      const h = this.#buf.subarray(0, end + 4).toString('latin1');
      this.#buf = this.#buf.subarray(end + 4);
      return h;
    });
  }
  frame(): Promise<string | undefined> {
    return this.#until(() => {
      const f = readFrame(this.#buf);
      if (f === undefined) return undefined;
      this.#buf = f.rest;
      return f.text;
    });
  }
  /** Everything until the peer closes. */
  async rest(): Promise<string> {
    await this.#until(() => undefined, 3000);
    return this.#buf.toString('latin1');
  }
}

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const upgradeRequest = (path: string, extra = ''): string =>
  `GET ${path} HTTP/1.1\r\nHost: orders\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

before(async () => {
  ca = createTestCa('upgrade');
  server = ca.issue([`${TD}/orders`]);
  web = ca.issue([`${TD}/web`]);
  app = await startWsApp();
});

after(async () => {
  await app.close();
  ca.cleanup();
});

async function withInbound(opts: Partial<Parameters<typeof startInbound>[0]>, fn: (h: InboundHarness) => Promise<void>): Promise<void> {
  const h = await startInbound({ material: ca.material(server), authorizer: authz(), appPort: app.port, protocol: 'http', ...opts });
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

test('an allowed WebSocket upgrade is relayed (101) and frames flow both ways; forged identity is replaced by the verified one', async () => {
  await withInbound({}, async (h) => {
    const caller = ca.issue([`${TD}/web`]);
    const s = await mtlsConnect(h.port, caller, ca.certPem);
    const r = new Reader(s);
    s.write(upgradeRequest('/ws/chat?room=1', 'X-Forwarded-Client-Cert: By=x;URI=spiffe://example.org/admin\r\nX_Forwarded_Client_Cert: URI=spiffe://example.org/admin\r\n'));
    const head = await r.head();
    assert.match(head ?? '', /^HTTP\/1\.1 101 /);
    assert.match(head ?? '', /\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
    assert.match(head ?? '', /\r\nupgrade: websocket\r\n/i);
    assert.equal(await r.frame(), 'hello', 'app → caller');
    s.write(frame('ping', true));
    assert.equal(await r.frame(), 'echo:ping', 'caller → app → caller');
    s.write(Buffer.concat([frame('a', true), frame('b', true)]));
    assert.equal(await r.frame(), 'echo:a');
    assert.equal(await r.frame(), 'echo:b');
    const seen = app.seen.at(-1);
    assert.equal(seen?.url, '/ws/chat?room=1');
    assert.match(String(seen?.headers['x-forwarded-client-cert']), new RegExp(`^By=${TD}/orders;Hash=[0-9a-f]{64};URI=${TD}/web$`));
    assert.equal(seen?.headers.x_forwarded_client_cert, undefined);
    assert.equal(seen?.headers.upgrade, 'websocket');
    const ev = h.events.find((e) => e.class === 'http_activity' && e.status === 101);
    assert.ok(ev && ev.class === 'http_activity');
    assert.equal(ev.verdict, 'allowed');
    assert.equal(ev.path, '/ws/chat');
    // A live connection: revoking the caller closes it (no request will come to re-check).
    assert.equal(h.live.size, 1);
    h.trust.setRevoked([caller.serial]);
    assert.equal(await waitClose(s), true, 'revocation closes the upgraded connection');
  });
});

test('a policy change that denies the upgraded request closes the live upgraded connection', async () => {
  await withInbound({}, async (h) => {
    const s = await mtlsConnect(h.port, web, ca.certPem);
    const r = new Reader(s);
    s.write(upgradeRequest('/ws/live'));
    assert.match((await r.head()) ?? '', /^HTTP\/1\.1 101 /);
    assert.equal(await r.frame(), 'hello');
    // Still allowed at L4 (any peer may connect), no longer allowed for GET /ws/live.
    h.authorizers.set(policyAuthorizer(`
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: api}
spec:
  ingress:
  - from: [{spiffeIds: ["${TD}/web"]}]
    to: [{paths: [/other]}]
`, 'v2', { httpPorts: [h.port] }));
    assert.equal(await waitClose(s), true);
  });
});

test('a denied upgrade answers 403 with the Ward code, closes, and never reaches the app', async () => {
  await withInbound({}, async (h) => {
    const before = app.seen.length;
    const s = await mtlsConnect(h.port, web, ca.certPem);
    const r = new Reader(s);
    s.write(upgradeRequest('/admin/ws'));
    const text = await r.rest();
    assert.match(text, /^HTTP\/1\.1 403 /);
    assert.ok(text.endsWith('{"code":"ERR_AGENT_REQUEST_DENIED"}'), text);
    assert.equal(r.closed, true);
    assert.equal(app.seen.length, before);
    const ev = h.events.find((e) => e.class === 'http_activity' && e.verdict === 'denied');
    assert.ok(ev && ev.class === 'http_activity');
    assert.equal(ev.reason, 'ERR_AGENT_REQUEST_DENIED');
  });
});

test('an upgrade with a body or to h2c is refused (400) and never reaches the app', async () => {
  await withInbound({}, async (h) => {
    const before = app.seen.length;
    for (const req of [
      upgradeRequest('/ws/body', 'Content-Length: 5\r\n') + 'hello',
      'GET /ws/h2 HTTP/1.1\r\nHost: orders\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n',
    ]) {
      const s = await mtlsConnect(h.port, web, ca.certPem);
      const r = new Reader(s);
      s.write(req);
      const text = await r.rest();
      assert.match(text, /^HTTP\/1\.1 400 /, req);
      assert.ok(text.endsWith('{"code":"ERR_AGENT_BAD_REQUEST"}'), text);
    }
    assert.equal(app.seen.length, before);
  });
});

test('an app that refuses the upgrade has its answer relayed, then the connection closes', async () => {
  await withInbound({}, async (h) => {
    for (const [path, status, body] of [['/ws/refuse', 426, 'refused'], ['/ws/refuse-chunked', 403, 'nope!']] as const) {
      const s = await mtlsConnect(h.port, web, ca.certPem);
      const r = new Reader(s);
      s.write(upgradeRequest(path));
      const head = await r.head();
      assert.match(head ?? '', new RegExp(`^HTTP/1\\.1 ${status} `));
      assert.match(head ?? '', /\r\nconnection: close\r\n/i);
      assert.doesNotMatch(head ?? '', /transfer-encoding/i, 'the body is relayed de-chunked, delimited by the close');
      assert.equal(await r.rest(), body);
      assert.equal(r.closed, true, `${path}: closed after the answer`);
    }
  });
});

test('a plaintext caller upgrades on a PERMISSIVE port as `unauthenticated`: forged identity stripped, none added', async () => {
  await withInbound({ mode: 'PERMISSIVE', authorizer: policyAuthorizer(docs(PERMISSIVE_MTLS, policies)) }, async (h) => {
    const p = await plainConnect(h.port);
    const r = new Reader(p);
    p.write(upgradeRequest('/ws/plain', 'X-Forwarded-Client-Cert: By=x;URI=spiffe://example.org/web\r\n'));
    assert.match((await r.head()) ?? '', /^HTTP\/1\.1 101 /);
    assert.equal(await r.frame(), 'hello');
    p.write(frame('plain', true));
    assert.equal(await r.frame(), 'echo:plain');
    assert.equal(app.seen.at(-1)?.headers['x-forwarded-client-cert'], undefined);
    p.destroy();
  });
});

test('an upgraded connection that goes idle is closed by the idle timeout', async () => {
  await withInbound({ limits: { idleTimeoutMs: 300 } }, async (h) => {
    const s = await mtlsConnect(h.port, web, ca.certPem);
    const r = new Reader(s);
    s.write(upgradeRequest('/ws/idle'));
    assert.match((await r.head()) ?? '', /^HTTP\/1\.1 101 /);
    assert.equal(await r.frame(), 'hello');
    const t0 = Date.now();
    assert.equal(await waitClose(s, 3000), true);
    assert.ok(Date.now() - t0 >= 250, 'not before the idle timeout');
  });
});

test('an upgrade allowed with an end-user JWT is closed when the token expires (counted as a policy closure); without a token nothing is timed', async () => {
  const { generateKeyPair, exportJWK, SignJWT } = await import('jose');
  const { createJwtVerifier } = await import('../../../src/agent/proxy/http/jwt.js');
  const { systemClock } = await import('../../../src/core/clock.js');
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
  const jwt = createJwtVerifier({ issuer: 'https://issuer.example', audiences: ['orders'], jwks: { keys: [jwk] } }, systemClock);
  const exp = Math.floor(Date.now() / 1000) + 2;
  const token = await new SignJWT({ iss: 'https://issuer.example', sub: 'alice', aud: 'orders', exp }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(privateKey);
  await withInbound({ jwt }, async (h) => {
    const s = await mtlsConnect(h.port, web, ca.certPem);
    const r = new Reader(s);
    s.write(upgradeRequest('/ws/token', `Authorization: Bearer ${token}\r\n`));
    assert.match((await r.head()) ?? '', /^HTTP\/1\.1 101 /);
    assert.equal(await r.frame(), 'hello');
    // One without a token on the same port: it must outlive the token's connection.
    const plain = await mtlsConnect(h.port, web, ca.certPem);
    const pr = new Reader(plain);
    plain.write(upgradeRequest('/ws/plain'));
    assert.match((await pr.head()) ?? '', /^HTTP\/1\.1 101 /);
    assert.equal(await pr.frame(), 'hello');
    const closedAt = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the upgraded connection outlived its token')), exp * 1000 - Date.now() + 4000);
      s.once('close', () => {
        clearTimeout(timer);
        resolve(Date.now());
      });
    });
    assert.ok(closedAt >= exp * 1000 - 50, `closed at the token's exp, not before (${closedAt - exp * 1000} ms)`);
    assert.ok(closedAt <= exp * 1000 + 2000, 'closed soon after exp');
    assert.equal((await h.metrics.closedByPolicy.get()).values[0]?.value, 1);
    assert.equal(plain.destroyed, false, 'the upgrade without a token is still open');
    plain.write(frame('still', true));
    assert.equal(await pr.frame(), 'echo:still');
    plain.destroy();
  });
});
