// Inbound L4: mTLS peer checks, PERMISSIVE sniffing, network authorization, live changes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TLSSocket } from 'node:tls';
import { createTestCa, type TestCa, type TestSvid } from './support/pki.js';
import { startEchoApp, startReplyOnEofApp, mtlsConnect, plainConnect, roundTrip, waitClose } from './support/net.js';
import { startInbound, type InboundHarness } from './support/inbound.js';
import type { PolicyAuthorizer } from '../../../src/agent/policy-authorizer.js';
import { allowFrom, docs, policyAuthorizer, PERMISSIVE_MTLS } from './support/policy.js';

const TD = 'spiffe://example.org';
let ca: TestCa;
let otherCa: TestCa;
let server: TestSvid;
let web: TestSvid;
let batch: TestSvid;
let app: Awaited<ReturnType<typeof startEchoApp>>;

const allowWeb = (): PolicyAuthorizer => policyAuthorizer(allowFrom('p', [`${TD}/web`]));

before(async () => {
  ca = createTestCa('l4');
  otherCa = createTestCa('other');
  server = ca.issue([`${TD}/orders`]);
  web = ca.issue([`${TD}/web`]);
  batch = ca.issue([`${TD}/batch`]);
  app = await startEchoApp();
});

after(async () => {
  await app.close();
  ca.cleanup();
  otherCa.cleanup();
});

async function withInbound(opts: Partial<Parameters<typeof startInbound>[0]>, fn: (h: InboundHarness) => Promise<void>): Promise<void> {
  const h = await startInbound({ material: ca.material(server), authorizer: allowWeb(), appPort: app.port, ...opts });
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

test('an allowed peer reaches the app through mTLS; the flow event names it', async () => {
  await withInbound({}, async (h) => {
    const s = await mtlsConnect(h.port, web, ca.certPem);
    const r = await roundTrip(s, 'hello', 5);
    assert.equal(r.data, 'hello');
    s.destroy();
    await waitClose(s);
    for (let i = 0; i < 50 && h.events.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    const ev = h.events.find((e) => e.class === 'network_activity');
    assert.ok(ev && ev.class === 'network_activity');
    assert.equal(ev.source, `${TD}/web`);
    assert.equal(ev.destination, `${TD}/orders`);
    assert.equal(ev.verdict, 'allowed');
    assert.equal(ev.policy, 'p/ingress[0]');
  });
});

test('a peer the policy does not allow is closed before any byte reaches the app', async () => {
  await withInbound({}, async (h) => {
    const s = await mtlsConnect(h.port, batch, ca.certPem).catch(() => undefined);
    if (s !== undefined) {
      const r = await roundTrip(s, 'hello', 5);
      assert.equal(r.data, '');
      assert.equal(r.closed, true);
    }
    const denied = h.events.find((e) => e.class === 'network_activity' && e.verdict === 'denied');
    assert.ok(denied);
    assert.equal(denied.policy, 'default-deny');
  });
});

test('a certificate from another CA, no certificate, and plaintext are all rejected on a STRICT port', async () => {
  await withInbound({}, async (h) => {
    const foreign = otherCa.issue([`${TD}/web`]);
    const s1 = await mtlsConnect(h.port, foreign, ca.certPem).catch(() => undefined);
    if (s1) assert.equal((await roundTrip(s1, 'x', 1)).data, '');
    const s2 = await new Promise<TLSSocket | undefined>((resolve) => {
      import('node:tls').then(({ connect }) => {
        const s = connect({ host: '127.0.0.1', port: h.port, ca: ca.certPem, checkServerIdentity: () => undefined });
        s.once('secureConnect', () => resolve(s));
        s.once('error', () => resolve(undefined));
      });
    });
    if (s2) assert.equal((await roundTrip(s2, 'x', 1)).data, '');
    const p = await plainConnect(h.port);
    const r = await roundTrip(p, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 1);
    assert.ok(!r.data.includes('GET'), 'plaintext must never be echoed by the app');
    assert.equal(await waitClose(p), true);
    const allowed = (await h.metrics.connections.get()).values.filter((v) => v.labels.verdict === 'allowed');
    assert.equal(allowed.reduce((a, v) => a + v.value, 0), 0);
  });
});

test('TLS garbage closes the connection without crashing the listener', async () => {
  await withInbound({ mode: 'PERMISSIVE', limits: { handshakeTimeoutMs: 300 } }, async (h) => {
    for (const junk of [Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 0, 1, 2, 3]), Buffer.from([0x16, 0x03, 0x03, 0x00, 0x05, 1, 1, 1, 1, 1]), Buffer.alloc(3000, 0x16)]) {
      const p = await plainConnect(h.port);
      p.write(junk);
      assert.equal(await waitClose(p), true);
    }
    const s = await mtlsConnect(h.port, web, ca.certPem);
    assert.equal((await roundTrip(s, 'still-alive', 11)).data, 'still-alive');
    s.destroy();
  });
});

test('a certificate with two URI SANs, a non-SPIFFE URI, or a CA flag is rejected', async () => {
  await withInbound({}, async (h) => {
    for (const bad of [ca.issue([`${TD}/web`, `${TD}/admin`]), ca.issue(['https://example.org/web']), ca.issue([`${TD}/web/../admin`]), ca.issue([`${TD}/web`], { ca: true })]) {
      const s = await mtlsConnect(h.port, bad, ca.certPem).catch(() => undefined);
      if (s) {
        const r = await roundTrip(s, 'x', 1);
        assert.equal(r.data, '');
        assert.equal(r.closed, true);
      }
    }
    const failures = (await h.metrics.handshakeFailures.get()).values.reduce((a, v) => a + v.value, 0);
    assert.ok(failures >= 3, `expected handshake failures, got ${failures}`);
  });
});

test('PERMISSIVE ports accept plaintext as `unauthenticated` only when policy allows it', async () => {
  const legacy = `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: p}
spec:
  ingress:
  - from: [{unauthenticated: true}]
`;
  const authz = policyAuthorizer(docs(PERMISSIVE_MTLS, legacy));
  await withInbound({ mode: 'PERMISSIVE', authorizer: authz }, async (h) => {
    const p = await plainConnect(h.port);
    assert.equal((await roundTrip(p, 'plain', 5)).data, 'plain');
    p.destroy();
    h.authorizers.set(policyAuthorizer(docs(PERMISSIVE_MTLS, allowFrom('p', [`${TD}/web`])), 'v2'));
    const p2 = await plainConnect(h.port);
    const r = await roundTrip(p2, 'plain', 5);
    assert.equal(r.data, '');
    assert.equal(r.closed, true);
    const denied = h.events.find((e) => e.class === 'network_activity' && e.verdict === 'denied');
    assert.equal(denied?.policy, 'default-deny', 'denied by the access policy, not by mTLS');
  });
});

test('a policy change closes live L4 connections no longer allowed, and keeps the others', async () => {
  const both = policyAuthorizer(allowFrom('p', [`${TD}/web`, `${TD}/batch`]));
  await withInbound({ authorizer: both }, async (h) => {
    const w = await mtlsConnect(h.port, web, ca.certPem);
    const b = await mtlsConnect(h.port, batch, ca.certPem);
    assert.equal((await roundTrip(w, 'w1', 2)).data, 'w1');
    assert.equal((await roundTrip(b, 'b1', 2)).data, 'b1');
    h.authorizers.set(policyAuthorizer(allowFrom('p', [`${TD}/web`]), 'v2'));
    assert.equal(await waitClose(b), true, 'batch connection must be closed');
    assert.equal((await roundTrip(w, 'w2', 2)).data, 'w2');
    const closed = (await h.metrics.closedByPolicy.get()).values[0]?.value;
    assert.equal(closed, 1);
    w.destroy();
  });
});

test('revoking a peer certificate closes its live connection and refuses new ones', async () => {
  await withInbound({}, async (h) => {
    const w = await mtlsConnect(h.port, web, ca.certPem);
    assert.equal((await roundTrip(w, 'a', 1)).data, 'a');
    h.trust.setRevoked([web.serial.toLowerCase()]);
    assert.equal(await waitClose(w), true);
    const again = await mtlsConnect(h.port, web, ca.certPem).catch(() => undefined);
    if (again) assert.equal((await roundTrip(again, 'a', 1)).closed, true);
  });
});

test('an SVID rotation keeps live connections; a bundle that no longer trusts the peer closes them', async () => {
  await withInbound({}, async (h) => {
    const w = await mtlsConnect(h.port, web, ca.certPem);
    assert.equal((await roundTrip(w, 'a', 1)).data, 'a');
    h.trust.setMaterial(ca.material(ca.issue([`${TD}/orders`])));
    assert.equal((await roundTrip(w, 'b', 1)).data, 'b', 'same bundle: the connection lives on');
    // New bundle trusts both CAs: still fine. Then only the other CA: the web peer goes.
    const next = otherCa.issue([`${TD}/orders`]);
    h.trust.setMaterial({ certPem: next.certPem, keyPem: next.keyPem, bundlePem: ca.certPem + otherCa.certPem });
    assert.equal((await roundTrip(w, 'c', 1)).data, 'c');
    h.trust.setMaterial({ certPem: next.certPem, keyPem: next.keyPem, bundlePem: otherCa.certPem });
    assert.equal(await waitClose(w), true);
    // and new handshakes from the old CA's peers fail
    const again = await mtlsConnect(h.port, web, otherCa.certPem).catch(() => undefined);
    if (again) assert.equal((await roundTrip(again, 'x', 1)).closed, true);
  });
});

test('a listener configured as port 0 is decided on its bound port: a policy naming that port admits the peer, the flow event names it', async () => {
  const onPort = (port: number, version: string): PolicyAuthorizer => policyAuthorizer(`
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: bound}
spec:
  ingress:
  - from: [{spiffeIds: ["${TD}/web"]}]
    to: [{ports: [${port}]}]
`, version);
  await withInbound({}, async (h) => {
    assert.notEqual(h.port, 0);
    // Another port only: denied (the port condition is really checked).
    h.authorizers.set(onPort(h.port === 65535 ? 1024 : h.port + 1, 'other'));
    const refused = await mtlsConnect(h.port, web, ca.certPem).catch(() => undefined);
    if (refused) assert.equal((await roundTrip(refused, 'x', 1)).closed, true);
    h.authorizers.set(onPort(h.port, 'bound'));
    const s = await mtlsConnect(h.port, web, ca.certPem);
    assert.equal((await roundTrip(s, 'hello', 5)).data, 'hello');
    s.destroy();
    await waitClose(s);
    for (let i = 0; i < 50 && !h.events.some((e) => e.class === 'network_activity' && e.verdict === 'allowed'); i++) await new Promise((res) => setTimeout(res, 20));
    const allowed = h.events.find((e) => e.class === 'network_activity' && e.verdict === 'allowed');
    assert.ok(allowed && allowed.class === 'network_activity');
    assert.equal(allowed.port, h.port);
    assert.equal(allowed.policy, 'bound/ingress[0]');
    const denied = h.events.find((e) => e.class === 'network_activity' && e.verdict === 'denied');
    assert.ok(denied && denied.class === 'network_activity');
    assert.equal(denied.port, h.port);
    assert.equal(denied.policy, 'default-deny');
  });
});

test('half-close passes through (Node plane): a caller that shuts its write side after sending still gets the app\'s answer, which the app sends only on EOF', async () => {
  const replyOnEof = await startReplyOnEofApp();
  try {
    await withInbound({ appPort: replyOnEof.port }, async (h) => {
      const s = await mtlsConnect(h.port, web, ca.certPem);
      s.on('error', () => undefined);
      const got = roundTrip(s, 'hello world', 'got 11'.length, 3000);
      s.end();
      assert.equal((await got).data, 'got 11');
      assert.equal(await waitClose(s, 3000), true, 'then the connection closes');
    });
  } finally {
    replyOnEof.close();
  }
});
