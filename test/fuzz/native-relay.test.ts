// Hostile bytes at the native relay's TLS ports (ADR 0049, 0074): random streams and mutated
// real ClientHellos, with and without ALPN (bit flips, truncation, duplication, absurd record
// lengths), sent whole or in pieces, then closed or held, to an L4 port and to an HTTP port whose
// TLS ends on the relay. None may reach the app or the HTTP layer, none may crash the relay, and
// real peers must still be served afterwards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, createServer, type Server } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import fc from 'fast-check';
import { systemClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logging.js';
import { AuthorizerHolder } from '../../src/agent/proxy/authorizer.js';
import { DEFAULT_LIMITS } from '../../src/agent/proxy/limits.js';
import { LiveConnections } from '../../src/agent/proxy/live-connections.js';
import { TrustState } from '../../src/agent/proxy/trust.js';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { NativeL4 } from '../../src/agent/proxy/native/l4.js';
import { loadRelayAddon } from '../../src/agent/proxy/native/addon.js';
import { createTestCa, type TestCa } from '../unit/agent/support/pki.js';
import { mtlsConnect, roundTrip } from '../unit/agent/support/net.js';

const TD = 'spiffe://example.org';
const addon = loadRelayAddon();
const skip = addon.ok ? false : 'native relay not built';

let ca: TestCa;
let app: Server;
let appConnections = 0;
let plane: NativeL4 | undefined;
let live: LiveConnections;
let port = 0;
let httpPort = 0;
let handoffs = 0;
let clientHello: Buffer = Buffer.alloc(0);
let alpnHello: Buffer = Buffer.alloc(0);

/** The first flight of Node's TLS client, as the base for mutations. */
function captureHello(alpn?: string[]): Promise<Buffer> {
  return new Promise<Buffer>((resolve) => {
    const sink = createServer((s) => s.once('data', (b: Buffer) => {
      resolve(b);
      s.destroy();
      sink.close();
    }));
    sink.listen(0, '127.0.0.1', () => {
      const c = tlsConnect({ port: (sink.address() as { port: number }).port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: alpn });
      c.on('error', () => undefined);
    });
  });
}

before(async () => {
  if (!addon.ok) return;
  ca = createTestCa('fuzz-native');
  app = createServer((s) => {
    appConnections += 1;
    s.pipe(s);
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const trust = new TrustState(ca.material(ca.issue([`${TD}/orders`])));
  const allowAll = { version: 'v1', authorizeConnection: () => ({ allow: true, reference: 'all' }), authorizeRequest: () => ({ allow: true, reference: 'all' }) };
  const authorizers = new AuthorizerHolder(allowAll);
  live = new LiveConnections(authorizers, trust);
  plane = NativeL4.open('native', { trust, authorizers, live, metrics: new AgentMetrics(), clock: systemClock, events: { record: () => undefined }, limits: { ...DEFAULT_LIMITS, handshakeTimeoutMs: 500 } }, createLogger({ name: 'test', level: 'silent' }));
  port = plane!.listenInbound({ port: 0, host: '127.0.0.1', mode: 'STRICT', protocol: 'tcp', appHost: '127.0.0.1', appPort: (app.address() as { port: number }).port, appProtocol: 'http1' });
  // The HTTP layer's stand-in: counts what the relay hands over and closes it.
  httpPort = plane!.listenInboundHttp({ port: 0, host: '127.0.0.1', mode: 'STRICT', protocol: 'http', appHost: '127.0.0.1', appPort: 1, appProtocol: 'http1' }, {
    accept: (socket) => {
      handoffs += 1;
      socket.end('handed');
    },
    close: () => Promise.resolve(),
  });
  clientHello = await captureHello();
  alpnHello = await captureHello(['h2', 'http/1.1']);
});

after(async () => {
  if (!addon.ok) return;
  live.closeAll('shutdown');
  live.dispose();
  await plane?.close();
  app.close();
  ca.cleanup();
});

const hello = (): fc.Arbitrary<Buffer> => fc.boolean().map((alpn) => (alpn ? alpnHello : clientHello));
const mutated = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 4096 }).map((a) => Buffer.from(a)),
  fc.tuple(hello(), fc.nat(), fc.integer({ min: 0, max: 7 })).map(([h, at, bit]) => {
    const b = Buffer.from(h);
    b[at % b.length] = (b[at % b.length] as number) ^ (1 << bit);
    return b;
  }),
  fc.tuple(hello(), fc.nat()).map(([h, n]) => h.subarray(0, n % h.length)),
  fc.tuple(hello(), fc.integer({ min: 2, max: 4 })).map(([h, k]) => Buffer.concat(Array.from({ length: k }, () => h))),
  fc.tuple(hello(), fc.integer({ min: 0, max: 0xffff })).map(([h, len]) => Buffer.concat([Buffer.from([0x16, 0x03, 0x01, len >> 8, len & 0xff]), h.subarray(5)])),
  fc.tuple(hello(), fc.uint8Array({ minLength: 1, maxLength: 512 })).map(([h, a]) => Buffer.concat([h, Buffer.from(a)])),
);

function send(to: number, bytes: Buffer, pieces: number, hold: boolean): Promise<void> {
  return new Promise((resolve) => {
    const s = netConnect(to, '127.0.0.1');
    s.on('error', () => undefined);
    s.resume(); // read (and drop) the relay's alerts so its close is seen
    const done = (): void => {
      s.destroy();
      resolve();
    };
    s.once('close', done);
    s.once('connect', () => {
      const step = Math.max(1, Math.ceil(bytes.length / pieces));
      for (let i = 0; i < bytes.length; i += step) s.write(bytes.subarray(i, i + step));
      if (hold) setTimeout(done, 30);
      else s.end();
    });
    setTimeout(done, 2000);
  });
}

test('native relay: hostile bytes never reach the app or the HTTP layer nor stop the relay', { skip }, async () => {
  await fc.assert(fc.asyncProperty(mutated, fc.integer({ min: 1, max: 8 }), fc.boolean(), fc.boolean(), async (bytes, pieces, hold, http) => {
    await send(http ? httpPort : port, bytes, pieces, hold);
  }), { numRuns: 200 });
  assert.equal(appConnections, 0, 'no garbage reached the app');
  assert.equal(handoffs, 0, 'no garbage was handed to the HTTP layer');
  const peer = await mtlsConnect(port, ca.issue([`${TD}/web`]), ca.certPem, ['h2', 'http/1.1']);
  assert.equal(peer.alpnProtocol, false, 'an L4 port negotiates no ALPN');
  assert.equal((await roundTrip(peer, 'still here', 10)).data, 'still here');
  peer.destroy();
  assert.equal(appConnections, 1);
  const l7 = await mtlsConnect(httpPort, ca.issue([`${TD}/web`]), ca.certPem, ['h2', 'http/1.1']);
  assert.equal(l7.alpnProtocol, 'h2', 'the relay negotiated ALPN on the HTTP port');
  assert.equal((await roundTrip(l7, '', 6)).data, 'handed');
  l7.destroy();
  assert.equal(handoffs, 1);
});
