// Full X509-SVID verification of the peer in the agent's handshakes (trust.ts / peer-identity.ts):
// each rule with certificates built here, the stable reason (metric label + event), the cache.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestCa, type TestCa, type TestSvid } from './support/pki.js';
import { mtlsConnect, roundTrip, startEchoApp } from './support/net.js';
import { ManualClock } from '../../../src/core/clock.js';
import { AuthorizerHolder } from '../../../src/agent/proxy/authorizer.js';
import { InboundListener } from '../../../src/agent/proxy/inbound.js';
import { DEFAULT_LIMITS } from '../../../src/agent/proxy/limits.js';
import { LiveConnections } from '../../../src/agent/proxy/live-connections.js';
import { TrustState } from '../../../src/agent/proxy/trust.js';
import { PeerVerifier } from '../../../src/agent/proxy/peer-identity.js';
import { allowFrom, policyAuthorizer } from './support/policy.js';
import { AgentMetrics } from '../../../src/agent/metrics.js';
import type { AgentEvent } from '../../../src/agent/events.js';
import { parseTrustBundle } from '../../../src/pki/index.js';

const TD = 'spiffe://example.org';
let ca: TestCa;
let server: TestSvid;
let web: TestSvid;
let app: Awaited<ReturnType<typeof startEchoApp>>;
let h: Harness;
// A minute ahead of the wall clock: certificates made during the run are already valid at it.
const clock = new ManualClock(Date.now() + 60_000);
let n = 0;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: ca.dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A leaf with exactly the extensions given (one per line of an openssl extfile), signed by the
 * test CA or by `issuer` (a CA made by {@link intermediate}); its PEM carries `issuer` after it.
 */
function leaf(ext: readonly string[], issuer?: { certPath: string; keyPath: string; certPem: string }): TestSvid {
  n += 1;
  const base = `peer${n}`;
  const serial = `6${randomBytes(8).toString('hex')}`.toUpperCase();
  writeFileSync(join(ca.dir, `${base}.ext`), `${ext.join('\n')}\n`);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', '/O=ward-test']);
  openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', issuer?.certPath ?? ca.certPath, '-CAkey', issuer?.keyPath ?? ca.keyPath, '-set_serial', `0x${serial}`, '-days', '1', '-out', `${base}.crt`, '-extfile', `${base}.ext`]);
  const certPem = readFileSync(join(ca.dir, `${base}.crt`), 'utf8') + (issuer?.certPem ?? '');
  return { certPem, keyPem: readFileSync(join(ca.dir, `${base}.key`), 'utf8'), certPath: join(ca.dir, `${base}.crt`), keyPath: join(ca.dir, `${base}.key`), serial };
}

const SVID = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth,clientAuth'];
const svid = (uri: string, ...override: string[]): TestSvid => {
  const names = new Set(override.map((l) => l.split('=')[0]));
  return leaf([`subjectAltName=URI:${uri}`, ...SVID.filter((l) => !names.has(l.split('=')[0])), ...override].filter((l) => !l.endsWith('=')));
};

function intermediate(ext = 'keyUsage=critical,keyCertSign,cRLSign'): { certPath: string; keyPath: string; certPem: string } {
  const made = leaf(['basicConstraints=critical,CA:TRUE', ext]);
  return { certPath: made.certPath, keyPath: made.keyPath, certPem: made.certPem };
}

before(async () => {
  ca = createTestCa('peer-svid');
  server = ca.issue([`${TD}/orders`]);
  web = ca.issue([`${TD}/web`]);
  app = await startEchoApp();
  h = await start();
});

after(async () => {
  await h.close();
  await app.close();
  ca.cleanup();
});

interface Harness {
  port: number;
  trust: TrustState;
  metrics: AgentMetrics;
  events: AgentEvent[];
  close(): Promise<void>;
}

/** An mTLS TCP inbound port whose trust and deps share the test's manual clock. */
async function start(): Promise<Harness> {
  const trust = new TrustState(ca.material(server), clock);
  const authorizers = new AuthorizerHolder(policyAuthorizer(allowFrom('p', ['*'])));
  const metrics = new AgentMetrics();
  const live = new LiveConnections(authorizers, trust);
  const events: AgentEvent[] = [];
  const listener = new InboundListener(
    { port: 0, host: '127.0.0.1', mode: 'STRICT', protocol: 'tcp', appHost: '127.0.0.1', appPort: app.port, appProtocol: 'http1' },
    { trust, authorizers, live, metrics, clock, events: { record: (e) => void events.push(e) }, limits: DEFAULT_LIMITS, jwt: undefined },
  );
  const port = await listener.listen();
  return { port, trust, metrics, events, close: async () => {
    live.closeAll('shutdown');
    live.dispose();
    await listener.close();
  } };
}

/** Connects with `peer`; true when its bytes reached the app and came back. */
async function reaches(h: Harness, peer: TestSvid): Promise<boolean> {
  const s = await mtlsConnect(h.port, peer, ca.certPem).catch(() => undefined);
  if (s === undefined) return false;
  const r = await roundTrip(s, 'x', 1, 1500);
  s.destroy();
  return r.data === 'x';
}

async function failures(h: Harness, reason: string): Promise<number> {
  return (await h.metrics.handshakeFailures.get()).values.find((v) => v.labels.direction === 'inbound' && v.labels.reason === reason)?.value ?? 0;
}


test('a conforming SVID passes; each broken X509-SVID rule that OpenSSL lets through is rejected with its reason (metric and event)', async () => {
  assert.equal(await reaches(h, web), true);
  const cases: [string, TestSvid, string][] = [
    ['no key usage', svid(`${TD}/web`, 'keyUsage='), 'ERR_AGENT_PEER_NOT_SVID'],
    ['keyAgreement only (no digitalSignature)', svid(`${TD}/web`, 'keyUsage=critical,keyAgreement'), 'ERR_AGENT_PEER_NOT_SVID'],
    ['keyCertSign on a leaf', svid(`${TD}/web`, 'keyUsage=critical,digitalSignature,keyCertSign'), 'ERR_AGENT_PEER_NOT_SVID'],
    ['cRLSign on a leaf', svid(`${TD}/web`, 'keyUsage=critical,digitalSignature,cRLSign'), 'ERR_AGENT_PEER_NOT_SVID'],
    ['CA flag on the leaf', svid(`${TD}/web`, 'basicConstraints=critical,CA:TRUE'), 'ERR_AGENT_PEER_NOT_SVID'],
    ['no authority key identifier', svid(`${TD}/web`, 'authorityKeyIdentifier=none', 'subjectKeyIdentifier=none'), 'ERR_AGENT_PEER_NOT_SVID'],
    ['another trust domain', svid('spiffe://other.org/web'), 'ERR_AGENT_PEER_WRONG_TRUST_DOMAIN'],
    ['two URI SANs', svid(`${TD}/web,URI:${TD}/admin`), 'ERR_AGENT_PEER_ID_INVALID'],
    ['a URI that is not a SPIFFE ID', svid('https://example.org/web'), 'ERR_AGENT_PEER_ID_INVALID'],
    ['a SPIFFE ID with a dot segment', svid(`${TD}/web/../admin`), 'ERR_AGENT_PEER_ID_INVALID'],
  ];
  for (const [what, peer, reason] of cases) {
    const before = await failures(h, reason);
    assert.equal(await reaches(h, peer), false, `${what}: must not reach the app`);
    assert.equal(await failures(h, reason), before + 1, `${what}: counted as ${reason}`);
    const ev = h.events.at(-1);
    assert.ok(ev?.class === 'network_activity' && ev.verdict === 'rejected', what);
    assert.equal(ev.reason, reason, what);
  }
});

test('validity is judged at the agent clock: expired and not-yet-valid peers are rejected, also from the cache', async () => {
  const peer = svid(`${TD}/web`);
  assert.equal(await reaches(h, peer), true, 'valid now, and now cached');
  const now = clock.now();
  try {
    clock.set(now + 3 * 86_400_000);
    const before = await failures(h, 'ERR_AGENT_PEER_EXPIRED');
    assert.equal(await reaches(h, peer), false, 'the cached entry is re-checked for time');
    assert.equal(await reaches(h, svid(`${TD}/web`)), false, 'an uncached one too');
    clock.set(now - 86_400_000);
    assert.equal(await reaches(h, svid(`${TD}/web`)), false, 'not yet valid');
    assert.equal(await failures(h, 'ERR_AGENT_PEER_EXPIRED'), before + 3);
  } finally {
    clock.set(now);
  }
  assert.equal(await reaches(h, peer), true);
});

test('an SVID issued by an intermediate the peer presents passes; one whose intermediate cannot sign is refused', async () => {
  const inter = intermediate();
  const peer = leaf([`subjectAltName=URI:${TD}/web`, ...SVID], inter);
  assert.equal(await reaches(h, peer), true);
  // Outbound (checkServerIdentity) has the leaf from raw DER only: the chain comes as the legacy object.
  const pems = peer.certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const [leafCert, interCert] = pems.map((p) => new X509Certificate(p));
  const legacy = { raw: leafCert!.raw, issuerCertificate: { raw: interCert!.raw, issuerCertificate: { raw: new X509Certificate(ca.certPem).raw } } };
  const fresh = new TrustState(ca.material(server), clock);
  assert.equal(fresh.checkPeer(leafCert, legacy).ok, true);
  assert.deepEqual(new TrustState(ca.material(server), clock).checkPeer(leafCert), { ok: false, reason: 'ERR_AGENT_PEER_UNVERIFIED', rule: 'ERR_SVID_UNTRUSTED' }, 'without the chain the leaf does not reach the bundle');
  assert.equal(fresh.checkPeer(leafCert, { raw: new X509Certificate(web.certPem).raw }).ok, false, 'a chain for another leaf is refused');
  // Leaf-only callers (outbound without the chain, the native relay) get the path from known intermediates:
  const sibling = new X509Certificate(leaf([`subjectAltName=URI:${TD}/batch`, ...SVID], inter).certPem);
  assert.equal(fresh.checkPeer(sibling).ok, true, 'learned from the chain verified above');
  const own = leaf([`subjectAltName=URI:${TD}/orders`, ...SVID], inter);
  assert.equal(new TrustState(ca.material(own), clock).checkPeer(sibling).ok, true, 'from the agent\'s own SVID chain');
  const weak = leaf([`subjectAltName=URI:${TD}/web`, ...SVID], intermediate('keyUsage=critical,digitalSignature'));
  assert.equal(await reaches(h, weak), false);
});

test('rules OpenSSL already enforces are enforced again by the verifier (unknown critical extension)', () => {
  const peer = svid(`${TD}/web`, '1.3.6.1.4.1.99999.1=critical,ASN1:UTF8String:x');
  const trust = new TrustState(ca.material(server), clock);
  assert.deepEqual(trust.checkPeer(new X509Certificate(peer.certPem)), { ok: false, reason: 'ERR_AGENT_PEER_NOT_SVID', rule: 'ERR_SVID_UNKNOWN_CRITICAL_EXTENSION' });
  assert.deepEqual(trust.checkPeer(undefined), { ok: false, reason: 'ERR_AGENT_PEER_UNVERIFIED', rule: 'ERR_SVID_CHAIN_EMPTY' });
  const foreign = createTestCa('foreign');
  try {
    assert.equal(trust.checkPeer(new X509Certificate(foreign.issue([`${TD}/web`]).certPem)).ok, false);
  } finally {
    foreign.cleanup();
  }
});

test('the verification is cached per certificate, cleared by a revocation or bundle change, and bounded', async () => {
  const trust = new TrustState(ca.material(server), clock);
  const peer = new X509Certificate(svid(`${TD}/web`).certPem);
  const first = trust.checkPeer(peer);
  assert.equal(first.ok, true);
  assert.equal(trust.verifiedPeers, 1);
  assert.equal(trust.checkPeer(peer), first, 'a hit returns the cached verdict');
  trust.setRevoked([first.ok ? first.serial : '']);
  assert.equal(trust.verifiedPeers, 0);
  assert.deepEqual(trust.checkPeer(peer), { ok: false, reason: 'ERR_AGENT_PEER_REVOKED' });
  trust.setRevoked([]);
  assert.equal(trust.checkPeer(peer).ok, true);
  const other = createTestCa('rotated');
  try {
    trust.setMaterial(other.material(other.issue([`${TD}/orders`])));
    assert.equal(trust.verifiedPeers, 0);
    assert.equal(trust.checkPeer(peer).ok, false, 'the new bundle does not trust the old CA');
  } finally {
    other.cleanup();
  }
  const bounded = new PeerVerifier(parseTrustBundle(ca.certPem, { trustDomain: 'example.org' }), 'example.org', 2);
  for (let i = 0; i < 3; i++) assert.equal(bounded.verify(new X509Certificate(svid(`${TD}/w${i}`).certPem), undefined, new Set(), clock.now()).ok, true);
  assert.equal(bounded.size, 2);
});

test('DER alone is verified (no X509Certificate needed), and every connection of a peer shares one copied chain, not its own handshake buffers', () => {
  const trust = new TrustState(ca.material(server), clock);
  const pem = svid(`${TD}/web`).certPem;
  const der = new X509Certificate(pem).raw;
  // Two handshakes of the same peer: separate buffers, as the relay's events deliver them.
  const first = Buffer.concat([Buffer.alloc(16), der]).subarray(16);
  const second = Buffer.from(der);
  const a = trust.checkPeer({ raw: first });
  const b = trust.checkPeer({ raw: second });
  assert.ok(a.ok && b.ok);
  if (!a.ok || !b.ok) return;
  assert.equal(a.fingerprint256, new X509Certificate(pem).fingerprint256, 'the same fingerprint form as X509Certificate');
  assert.ok(a.chain !== undefined);
  assert.equal(b.chain, a.chain, 'one chain object for every connection of the peer');
  assert.ok(a.chain.raw.equals(der));
  assert.notEqual(a.chain.raw.buffer, first.buffer, 'a copy: the first handshake\'s buffer is not kept alive');
  assert.notEqual(a.chain.raw.buffer, second.buffer);
  assert.equal(a.chain.raw.buffer.byteLength, der.length, 'its own memory, not a slice of the shared pool');
  // The shared chain re-verifies (what a bundle change does for live connections).
  assert.equal(trust.checkPeer(a.chain, a.chain).ok, true);
});

test('a revoked peer is refused at the handshake even when its verification was cached', async () => {
  const peer = svid(`${TD}/web`);
  assert.equal(await reaches(h, peer), true);
  const before = await failures(h, 'ERR_AGENT_PEER_REVOKED');
  h.trust.setRevoked([peer.serial]);
  try {
    assert.equal(await reaches(h, peer), false);
    assert.equal(await failures(h, 'ERR_AGENT_PEER_REVOKED'), before + 1);
  } finally {
    h.trust.setRevoked([]);
  }
});

test('a bundle change keeps live peers issued by an intermediate the new bundle still anchors, and closes those it no longer anchors (both data planes)', async () => {
  const { NativeL4 } = await import('../../../src/agent/proxy/native/l4.js');
  const { loadRelayAddon } = await import('../../../src/agent/proxy/native/addon.js');
  const { createLogger } = await import('../../../src/core/logging.js');
  const { waitClose } = await import('./support/net.js');
  const inter = intermediate();
  const peer = leaf([`subjectAltName=URI:${TD}/web`, ...SVID], inter);
  const other = createTestCa('peer-svid-other');
  try {
    for (const plane of loadRelayAddon().ok ? ['node', 'native'] as const : ['node'] as const) {
      const trust = new TrustState(ca.material(server), clock);
      const authorizers = new AuthorizerHolder(policyAuthorizer(allowFrom('p', ['*'])));
      const live = new LiveConnections(authorizers, trust);
      const deps = { trust, authorizers, live, metrics: new AgentMetrics(), clock, events: { record: () => undefined }, limits: DEFAULT_LIMITS, jwt: undefined };
      const config = { port: 0, host: '127.0.0.1', mode: 'STRICT' as const, protocol: 'tcp' as const, appHost: '127.0.0.1', appPort: app.port, appProtocol: 'http1' as const };
      let port: number;
      let close: () => Promise<void>;
      if (plane === 'native') {
        const native = NativeL4.open('native', deps, createLogger({ name: 'test', level: 'silent' }))!;
        port = native.listenInbound(config);
        close = () => native.close();
      } else {
        const listener = new InboundListener(config, deps);
        port = await listener.listen();
        close = () => listener.close();
      }
      try {
        const s = await mtlsConnect(port, peer, ca.certPem);
        assert.equal((await roundTrip(s, 'a', 1)).data, 'a', plane);
        // The bundle gains an unrelated authority: the root still anchors the peer's chain.
        trust.setMaterial(ca.material(server, `${ca.certPem}${other.certPem}`));
        assert.equal((await roundTrip(s, 'b', 1)).data, 'b', `${plane}: still connected after a bundle change that keeps its anchor`);
        // The bundle loses the peer's root: the connection is closed.
        trust.setMaterial({ ...ca.material(server), bundlePem: other.certPem });
        assert.equal(await waitClose(s), true, `${plane}: closed once the bundle no longer anchors it`);
      } finally {
        live.closeAll('shutdown');
        live.dispose();
        await close();
      }
    }
  } finally {
    other.cleanup();
  }
});
