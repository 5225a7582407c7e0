// The native L4 data plane (ADR 0049) over real sockets and real TLS: inbound and outbound,
// decisions, rejections, revocation, rotation, backpressure with integrity, half-close, idle
// timeout, and interop with the Node data plane in both directions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect as netConnect, createServer, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { systemClock } from '../../../src/core/clock.js';
import { createLogger } from '../../../src/core/logging.js';
import { AuthorizerHolder, type Authorizer, type ConnectionContext, type Decision } from '../../../src/agent/proxy/authorizer.js';
import { DEFAULT_LIMITS, type ProxyLimits } from '../../../src/agent/proxy/limits.js';
import { LiveConnections } from '../../../src/agent/proxy/live-connections.js';
import { TrustState } from '../../../src/agent/proxy/trust.js';
import { AgentMetrics } from '../../../src/agent/metrics.js';
import type { AgentEvent, FlowEvent } from '../../../src/agent/events.js';
import { NativeL4 } from '../../../src/agent/proxy/native/l4.js';
import { loadRelayAddon } from '../../../src/agent/proxy/native/addon.js';
import { OutboundListener } from '../../../src/agent/proxy/outbound.js';
import { createTestCa, type TestCa, type TestSvid } from './support/pki.js';
import { startEchoApp, mtlsConnect, roundTrip, waitClose } from './support/net.js';
import { startInbound } from './support/inbound.js';

const TD = 'spiffe://example.org';
const addon = loadRelayAddon();
const skip = addon.ok ? false : `native relay not built: ${addon.ok ? '' : addon.reason}`;

/** Allows connections whose (direction, source or destination) is in the list. */
function allowList(allowed: string[], version = 'v1'): Authorizer {
  const decide = (ctx: ConnectionContext): Decision => {
    const who = ctx.direction === 'inbound' ? ctx.source.spiffeId : ctx.destination;
    return allowed.includes(who) ? { allow: true, reference: `test/${who}` } : { allow: false, reference: 'default-deny' };
  };
  return { version, authorizeConnection: decide, authorizeRequest: () => ({ allow: false, reference: 'default-deny' }) };
}

let ca: TestCa;
let otherCa: TestCa;
let orders: TestSvid;
let web: TestSvid;
let batch: TestSvid;
let app: Awaited<ReturnType<typeof startEchoApp>>;

before(async () => {
  ca = createTestCa('native');
  otherCa = createTestCa('native-other');
  orders = ca.issue([`${TD}/orders`]);
  web = ca.issue([`${TD}/web`]);
  batch = ca.issue([`${TD}/batch`]);
  app = await startEchoApp();
});

after(async () => {
  await app.close();
  ca.cleanup();
  otherCa.cleanup();
});

interface Plane {
  readonly plane: NativeL4;
  readonly trust: TrustState;
  readonly authorizers: AuthorizerHolder;
  readonly live: LiveConnections;
  readonly metrics: AgentMetrics;
  readonly events: AgentEvent[];
  close(): Promise<void>;
}

function openPlane(svid: TestSvid, authorizer: Authorizer, limits: Partial<ProxyLimits> = {}): Plane {
  const trust = new TrustState(ca.material(svid));
  const authorizers = new AuthorizerHolder(authorizer);
  const metrics = new AgentMetrics();
  const live = new LiveConnections(authorizers, trust, () => metrics.closedByPolicy.inc());
  const events: AgentEvent[] = [];
  const plane = NativeL4.open('native', { trust, authorizers, live, metrics, clock: systemClock, events: { record: (e) => void events.push(e) }, limits: { ...DEFAULT_LIMITS, ...limits } }, createLogger({ name: 'test', level: 'silent' }));
  assert.ok(plane);
  return {
    plane, trust, authorizers, live, metrics, events,
    async close() {
      live.closeAll('shutdown');
      live.dispose();
      await plane.close();
    },
  };
}

function inboundConfig(appPort: number): Parameters<NativeL4['listenInbound']>[0] {
  return { port: 0, host: '127.0.0.1', mode: 'STRICT', protocol: 'tcp', appHost: '127.0.0.1', appPort, appProtocol: 'http1' };
}

async function until<T>(fn: () => T | undefined, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const flows = (events: AgentEvent[]): FlowEvent[] => events.filter((e): e is FlowEvent => e.class === 'network_activity');

test('inbound: an allowed peer reaches the app through mTLS; the flow event has identity, policy and bytes', { skip }, async () => {
  const p = openPlane(orders, allowList([`${TD}/web`]));
  try {
    const port = p.plane.listenInbound(inboundConfig(app.port));
    const s = await mtlsConnect(port, web, ca.certPem);
    assert.equal((await roundTrip(s, 'hello', 5)).data, 'hello');
    s.end();
    await waitClose(s);
    const ev = await until(() => flows(p.events).find((e) => e.verdict === 'allowed'));
    assert.equal(ev.source, `${TD}/web`);
    assert.equal(ev.destination, `${TD}/orders`);
    assert.equal(ev.policy, `test/${TD}/web`);
    assert.equal(ev.bytesIn, 5);
    assert.equal(ev.bytesOut, 5);
    assert.equal(p.live.size, 0);
  } finally {
    await p.close();
  }
});

test('inbound: a peer the policy does not allow, a foreign CA, no certificate and TLS garbage never reach the app', { skip }, async () => {
  let appConnections = 0;
  const counting = createServer((s) => {
    appConnections += 1;
    s.pipe(s);
  });
  await new Promise<void>((r) => counting.listen(0, '127.0.0.1', r));
  const p = openPlane(orders, allowList([`${TD}/web`]));
  try {
    const port = p.plane.listenInbound(inboundConfig((counting.address() as { port: number }).port));
    const denied = await mtlsConnect(port, batch, ca.certPem).catch(() => undefined);
    if (denied) assert.equal((await roundTrip(denied, 'x', 1)).data, '');
    const ev = await until(() => flows(p.events).find((e) => e.verdict === 'denied'));
    assert.equal(ev.source, `${TD}/batch`);
    assert.equal(ev.reason, 'ERR_AGENT_CONNECTION_DENIED');

    const foreign = otherCa.issue([`${TD}/web`]);
    const f = await mtlsConnect(port, foreign, ca.certPem).catch(() => undefined);
    if (f) assert.equal((await roundTrip(f, 'x', 1)).data, '');
    const noCert = await new Promise<TLSSocket | undefined>((resolve) => {
      const s = tlsConnect({ port, host: '127.0.0.1', ca: ca.certPem, checkServerIdentity: () => undefined });
      s.once('secureConnect', () => resolve(s));
      s.once('error', () => resolve(undefined));
    });
    if (noCert) assert.equal((await roundTrip(noCert, 'x', 1)).data, '');
    const garbage = netConnect(port, '127.0.0.1');
    garbage.on('error', () => undefined);
    garbage.write(randomBytes(4096));
    assert.equal(await waitClose(garbage), true);
    assert.equal(appConnections, 0);
    // Still serving after all that.
    const ok = await mtlsConnect(port, web, ca.certPem);
    assert.equal((await roundTrip(ok, 'ping', 4)).data, 'ping');
    ok.destroy();
    assert.equal(appConnections, 1);
  } finally {
    await p.close();
    counting.close();
  }
});

test('inbound: revoking the peer closes its live connection; a policy change closes connections no longer allowed', { skip }, async () => {
  const p = openPlane(orders, allowList([`${TD}/web`, `${TD}/batch`]));
  try {
    const port = p.plane.listenInbound(inboundConfig(app.port));
    const a = await mtlsConnect(port, web, ca.certPem);
    assert.equal((await roundTrip(a, 'one', 3)).data, 'one');
    const b = await mtlsConnect(port, batch, ca.certPem);
    assert.equal((await roundTrip(b, 'two', 3)).data, 'two');
    await until(() => (p.live.size === 2 ? true : undefined));
    p.trust.setRevoked([web.serial]);
    assert.equal(await waitClose(a), true);
    p.authorizers.set(allowList([`${TD}/web`], 'v2'));
    assert.equal(await waitClose(b), true);
    await until(() => (p.plane.connections === 0 ? true : undefined));
  } finally {
    await p.close();
  }
});

test('inbound: 8 MiB each way with a slow reader arrives intact (backpressure), and half-close is passed on', { skip }, async () => {
  const p = openPlane(orders, allowList([`${TD}/web`]));
  try {
    const port = p.plane.listenInbound(inboundConfig(app.port));
    const s = await mtlsConnect(port, web, ca.certPem);
    const payload = randomBytes(8 * 1024 * 1024);
    const got: Buffer[] = [];
    let n = 0;
    s.on('data', (c: Buffer) => {
      got.push(c);
      n += c.length;
      // A slow reader: pause now and then so the relay's buffers fill.
      if (got.length % 64 === 0) {
        s.pause();
        setTimeout(() => s.resume(), 5);
      }
    });
    s.end(payload); // half-close after the payload: the echo app ends after echoing
    await new Promise<void>((resolve, reject) => {
      s.once('end', resolve);
      s.once('error', reject);
    });
    assert.equal(n, payload.length);
    assert.equal(createHash('sha256').update(Buffer.concat(got)).digest('hex'), createHash('sha256').update(payload).digest('hex'));
  } finally {
    await p.close();
  }
});

test('inbound: an idle connection is closed after the idle timeout', { skip }, async () => {
  const p = openPlane(orders, allowList([`${TD}/web`]), { idleTimeoutMs: 300 });
  try {
    const port = p.plane.listenInbound(inboundConfig(app.port));
    const s = await mtlsConnect(port, web, ca.certPem);
    assert.equal((await roundTrip(s, 'x', 1)).data, 'x');
    const t0 = Date.now();
    assert.equal(await waitClose(s, 3000), true);
    assert.ok(Date.now() - t0 >= 200, 'closed too early');
  } finally {
    await p.close();
  }
});

test('outbound: native origination to a Node inbound; the server must present an allowed SPIFFE ID; egress policy applies first', { skip }, async () => {
  // The server side is the Node data plane (interop), fronting the echo app as orders.
  const server = await startInbound({ material: ca.material(orders), authorizer: allowList([`${TD}/web`]), appPort: app.port });
  const p = openPlane(web, allowList(['orders', 'impostor']));
  try {
    const good = p.plane.listenOutbound({ name: 'orders', host: '127.0.0.1', port: server.port, allowedIds: [`${TD}/orders`] }, 0, '127.0.0.1');
    const c = netConnect(good, '127.0.0.1');
    assert.equal((await roundTrip(c, 'via native', 10)).data, 'via native');
    c.destroy();
    // Same server, but the service may only be served by `payments`: a valid SVID for another service is refused.
    const mitm = p.plane.listenOutbound({ name: 'impostor', host: '127.0.0.1', port: server.port, allowedIds: [`${TD}/payments`] }, 0, '127.0.0.1');
    const m = netConnect(mitm, '127.0.0.1');
    m.on('error', () => undefined);
    assert.equal((await roundTrip(m, 'secret', 6)).data, '');
    const rejected = await until(() => flows(p.events).find((e) => e.verdict === 'rejected'));
    assert.equal(rejected.reason, 'ERR_AGENT_PEER_UNEXPECTED');
    // Egress not allowed by policy: closed before connecting anywhere.
    const denied = p.plane.listenOutbound({ name: 'billing', host: '127.0.0.1', port: server.port, allowedIds: [`${TD}/orders`] }, 0, '127.0.0.1');
    const d = netConnect(denied, '127.0.0.1');
    d.on('error', () => undefined);
    assert.equal(await waitClose(d), true);
    const ev = await until(() => flows(p.events).find((e) => e.verdict === 'denied'));
    assert.equal(ev.destination, 'billing');
  } finally {
    await p.close();
    await server.close();
  }
});

test('interop: Node outbound to a native inbound, and SVID rotation applies to new handshakes only', { skip }, async () => {
  const p = openPlane(orders, allowList([`${TD}/web`]));
  const clientTrust = new TrustState(ca.material(web));
  const clientAuth = new AuthorizerHolder(allowList(['orders']));
  const clientMetrics = new AgentMetrics();
  const clientLive = new LiveConnections(clientAuth, clientTrust);
  try {
    const port = p.plane.listenInbound(inboundConfig(app.port));
    const out = new OutboundListener({ name: 'orders', host: '127.0.0.1', port, allowedIds: [`${TD}/orders`] }, 0, { trust: clientTrust, authorizers: clientAuth, live: clientLive, metrics: clientMetrics, events: { record: () => undefined }, clock: systemClock, limits: DEFAULT_LIMITS });
    const outPort = await out.listen();
    const first = netConnect(outPort, '127.0.0.1');
    assert.equal((await roundTrip(first, 'before', 6)).data, 'before');
    const serialBefore = (await peerSerial(port)).toLowerCase();
    const rotated = ca.issue([`${TD}/orders`]);
    p.trust.setMaterial(ca.material(rotated));
    const after = (await waitFor(async () => {
      const s = (await peerSerial(port)).toLowerCase();
      return s !== serialBefore ? s : undefined;
    })) as string;
    assert.equal(after.replace(/^0+/, ''), rotated.serial.toLowerCase().replace(/^0+/, ''));
    // The connection opened before the rotation still works.
    assert.equal((await roundTrip(first, 'still', 5)).data, 'still');
    first.destroy();
    await out.close();
  } finally {
    clientLive.closeAll('shutdown');
    clientLive.dispose();
    await p.close();
  }
});

async function waitFor<T>(fn: () => Promise<T | undefined>, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The serial number of the certificate a native inbound presents (a web client handshake). */
async function peerSerial(port: number): Promise<string> {
  const s: Socket = await mtlsConnect(port, web, ca.certPem);
  const serial = (s as TLSSocket).getPeerX509Certificate()?.serialNumber ?? '';
  s.destroy();
  return serial;
}

test('openListeners: eligible ports and upstreams go native (STRICT HTTP ports with their TLS on the relay, ADR 0074; app and upstream host names, ADR 0078); PERMISSIVE ports, dataPlane node and workers stay on Node', { skip }, async () => {
  const { openListeners } = await import('../../../src/agent/listeners.js');
  const trust = new TrustState(ca.material(orders));
  const authorizers = new AuthorizerHolder(allowList([`${TD}/web`]));
  const metrics = new AgentMetrics();
  const live = new LiveConnections(authorizers, trust);
  const deps = { trust, authorizers, live, metrics, clock: systemClock, events: { record: () => undefined }, limits: DEFAULT_LIMITS, jwt: undefined };
  const logger = createLogger({ name: 'test', level: 'silent' });
  const inbound = [
    inboundConfig(app.port),
    { ...inboundConfig(app.port), mode: 'PERMISSIVE' as const },
    { ...inboundConfig(app.port), protocol: 'http' as const },
    { ...inboundConfig(app.port), appHost: 'localhost' },
    { ...inboundConfig(app.port), protocol: 'http' as const, mode: 'PERMISSIVE' as const },
  ];
  const outbound = [
    { name: 'orders', host: '127.0.0.1', port: 1, allowedIds: [`${TD}/orders`], listenHost: '127.0.0.1', listenPort: 0 },
    { name: 'named', host: 'localhost', port: 1, allowedIds: [`${TD}/orders`], listenHost: '127.0.0.1', listenPort: 0 },
  ];
  const auto = await openListeners({ inbound, outbound, dataPlane: 'auto', workers: 1 }, deps, logger);
  try {
    assert.deepEqual(auto.planes, { inbound: ['native', 'node', 'native', 'native', 'node'], outbound: ['native', 'native'] });
    // The native inbound port really serves.
    const s = await mtlsConnect(auto.inbound[0] as number, web, ca.certPem);
    assert.equal((await roundTrip(s, 'native', 6)).data, 'native');
    s.destroy();
  } finally {
    for (const close of auto.closers.reverse()) await close();
  }
  for (const config of [{ dataPlane: 'node' as const, workers: 1 }, { dataPlane: 'auto' as const, workers: 2 }]) {
    const opened = await openListeners({ inbound: [inboundConfig(app.port)], outbound: [], ...config }, deps, logger);
    assert.deepEqual(opened.planes.inbound, ['node']);
    for (const close of opened.closers.reverse()) await close();
  }
  live.dispose();
});

test('inbound: a peer OpenSSL accepts but the SVID checks refuse (revoked serial) is rejected with the reason, before the app', { skip }, async () => {
  const p = openPlane(orders, allowList([`${TD}/web`, `${TD}/batch`]));
  try {
    p.trust.setRevoked([batch.serial]);
    const port = p.plane.listenInbound(inboundConfig(app.port));
    const s = await mtlsConnect(port, batch, ca.certPem).catch(() => undefined);
    if (s) assert.equal((await roundTrip(s, 'x', 1)).data, '');
    const ev = await until(() => flows(p.events).find((e) => e.verdict === 'rejected'));
    assert.equal(ev.reason, 'ERR_AGENT_PEER_REVOKED');
    assert.equal(ev.source, 'unauthenticated');
  } finally {
    await p.close();
  }
});

test('openListeners: a port already in use is ERR_AGENT_LISTEN naming it, on both data planes, and nothing stays open', { skip }, async () => {
  const { openListeners } = await import('../../../src/agent/listeners.js');
  const { isWardError } = await import('../../../src/core/errors.js');
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  const busyPort = (busy.address() as { port: number }).port;
  const trust = new TrustState(ca.material(orders));
  const authorizers = new AuthorizerHolder(allowList([`${TD}/web`]));
  const live = new LiveConnections(authorizers, trust);
  const deps = { trust, authorizers, live, metrics: new AgentMetrics(), clock: systemClock, events: { record: () => undefined }, limits: DEFAULT_LIMITS, jwt: undefined };
  const logger = createLogger({ name: 'test', level: 'silent' });
  try {
    for (const dataPlane of ['native', 'node'] as const) {
      const free = await openListeners({ inbound: [inboundConfig(app.port)], outbound: [], dataPlane, workers: 1 }, deps, logger);
      const freePort = free.inbound[0] as number;
      for (const close of free.closers.reverse()) await close();
      // The first port binds, the second is busy: the error names the busy one and the first is closed again.
      await assert.rejects(
        openListeners({ inbound: [{ ...inboundConfig(app.port), port: freePort }, { ...inboundConfig(app.port), port: busyPort }], outbound: [], dataPlane, workers: 1 }, deps, logger),
        (e: unknown) => isWardError(e) && e.code === 'ERR_AGENT_LISTEN' && e.details?.port === busyPort && e.details?.error === 'EADDRINUSE',
        dataPlane,
      );
      const again = createServer();
      await new Promise<void>((resolve, reject) => {
        again.once('error', reject);
        again.listen(freePort, '127.0.0.1', resolve);
      });
      again.close();
    }
  } finally {
    busy.close();
    live.dispose();
  }
});

test('host names on the relay (ADR 0078): an upstream and an app named `localhost` are resolved on the JavaScript side and reached through the relay; a name that does not resolve closes the connection with ERR_AGENT_UPSTREAM and the agent carries on', { skip }, async () => {
  const server = openPlane(orders, allowList([`${TD}/web`]));
  const client = openPlane(web, allowList(['orders', 'ghost']));
  try {
    // Inbound TCP whose app is `localhost`: the relay connects to the address resolved here.
    const inPort = server.plane.listenInbound({ ...inboundConfig(app.port), appHost: 'localhost' });
    // Outbound to `localhost:<inbound>`: same, on the egress allow.
    const outPort = client.plane.listenOutbound({ name: 'orders', host: 'localhost', port: inPort, allowedIds: [`${TD}/orders`] }, 0, '127.0.0.1');
    for (let i = 0; i < 3; i++) {
      const c = netConnect(outPort, '127.0.0.1');
      assert.equal((await roundTrip(c, `by name ${i}`, 9)).data, `by name ${i}`);
      c.destroy();
    }
    const ok = await until(() => flows(client.events).find((e) => e.verdict === 'allowed' && e.destination === 'orders'));
    assert.ok(ok.bytesOut > 0);
    // A name that does not resolve (RFC 2606 .invalid): closed before any byte, recorded, no crash.
    const ghost = client.plane.listenOutbound({ name: 'ghost', host: 'ghost.invalid', port: inPort, allowedIds: [`${TD}/orders`] }, 0, '127.0.0.1');
    const g = netConnect(ghost, '127.0.0.1');
    g.on('error', () => undefined);
    assert.equal((await roundTrip(g, 'hello?', 6, 3000)).data, '');
    const failed = await until(() => flows(client.events).find((e) => e.destination === 'ghost'));
    assert.equal(failed.verdict, 'rejected');
    assert.equal(failed.reason, 'ERR_AGENT_UPSTREAM');
    // Still serving by name afterwards.
    const again = netConnect(outPort, '127.0.0.1');
    assert.equal((await roundTrip(again, 'still', 5)).data, 'still');
    again.destroy();
  } finally {
    await client.close();
    await server.close();
  }
});

test('the addon\'s allow takes only an IP literal as a target (ERR_RELAY_ARG), so a host name can never reach the relay thread', { skip }, () => {
  if (!addon.ok) return;
  const engine = addon.addon.create(() => undefined, { handshakeTimeoutMs: 1000, connectTimeoutMs: 1000, idleTimeoutMs: 1000, decisionTimeoutMs: 1000, maxConnections: 10 });
  try {
    for (const bad of ['localhost', '127.0.0.1:80', '', 'x'.repeat(100), '1.2.3.4 ']) {
      assert.throws(() => addon.addon.allow(engine, 1, 1, bad), { code: 'ERR_RELAY_ARG' }, JSON.stringify(bad));
    }
    assert.throws(() => addon.addon.allow(engine, 1, 1, 42 as unknown as string), { code: 'ERR_RELAY_ARG' });
    // Literals are accepted (the id matches no connection: ignored).
    addon.addon.allow(engine, 1, 1, '127.0.0.1');
    addon.addon.allow(engine, 1, 1, '::1');
    addon.addon.allow(engine, 1, 1);
  } finally {
    addon.addon.destroy(engine);
  }
});
