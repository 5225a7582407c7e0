import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, webcrypto } from 'node:crypto';
import { ManualClock } from '../../../src/core/clock.js';
import { bundleToPem } from '../../../src/pki/bundle.js';
import { CertificateAuthority } from '../../../src/pki/ca.js';
import { createSvidCsr } from '../../../src/pki/csr.js';
import { KeySealer } from '../../../src/pki/envelope.js';
import { PkiError } from '../../../src/pki/errors.js';
import { generateP256KeyPair } from '../../../src/pki/keys.js';
import { issueX509Svid } from '../../../src/pki/svid-issue.js';
import { verifyX509Svid } from '../../../src/pki/svid-verify.js';
import { certToPem } from '../../../src/pki/pem.js';
import { OIDHEX, resignWith } from './support/der-tree.js';
import { keyObjectOf, makeCa } from './support/forge.js';

const T0 = '2026-06-01T00:00:00Z';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const ID = 'spiffe://example.org/web';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
    return 'OK';
  } catch (e) {
    assert.ok(e instanceof PkiError, String(e));
    return e.code;
  }
};

function setup(caTtlMs = 30 * DAY) {
  const clock = new ManualClock(T0);
  const masterKey = randomBytes(32);
  const sealer = new KeySealer(masterKey);
  const ca = CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer, caTtlMs });
  const mint = (id = ID) => {
    const { privateKey } = generateP256KeyPair();
    return issueX509Svid({ ca, csr: createSvidCsr({ spiffeId: id, privateKey }).der, spiffeId: id, clock });
  };
  return { clock, masterKey, sealer, ca, mint };
}

test('a new CA has one active authority, a bundle with its root, sequence 1', () => {
  const { ca } = setup();
  const list = ca.authorities();
  assert.equal(list.length, 1);
  assert.equal(list[0]?.state, 'active');
  const bundle = ca.trustBundle();
  assert.equal(bundle.trustDomain, 'example.org');
  assert.equal(bundle.sequence, 1);
  assert.equal(bundle.x509Authorities.length, 1);
  assert.equal(bundle.jwtAuthorities.length, 1);
  const root = bundle.x509Authorities[0]!.cert;
  assert.ok(root.basicConstraints?.ca);
  assert.ok(root.issuer.equals(root.subject));
  assert.deepEqual(root.san.uris, ['spiffe://example.org']);
});

test('rotation: prepare publishes first, activate switches issuance, old leaves stay valid', () => {
  const { ca, clock, mint } = setup();
  const oldLeaf = mint();
  const first = ca.authorities()[0]!.id;
  clock.advance(HOUR);
  const prepared = ca.prepare(clock);
  assert.equal(prepared.state, 'prepared');
  assert.equal(ca.sequence, 2);
  assert.equal(ca.trustBundle().x509Authorities.length, 2, 'the new root is in the bundle before use');
  assert.equal(mint().authorityId, first, 'prepared authority does not issue yet');
  assert.equal(codeOf(() => ca.prepare(clock)), 'ERR_CA_ALREADY_PREPARED');
  ca.activate(clock);
  assert.equal(codeOf(() => ca.activate(clock)), 'ERR_CA_NOTHING_PREPARED');
  const newLeaf = mint();
  assert.equal(newLeaf.authorityId, prepared.id);
  const bundle = ca.trustBundle();
  assert.equal(bundle.x509Authorities.length, 2);
  assert.equal(verifyX509Svid(oldLeaf.chainDer, bundle, { at: clock.now() }).spiffeId.toString(), ID);
  assert.equal(verifyX509Svid(newLeaf.chainDer, bundle, { at: clock.now() }).spiffeId.toString(), ID);
  assert.deepEqual(ca.authorities().map((a) => a.state), ['retired', 'active']);
});

test('taint and revoke: only a retired authority can be tainted, only a tainted one revoked', () => {
  const { ca, clock, mint } = setup();
  const oldLeaf = mint();
  const first = ca.authorities()[0]!.id;
  assert.equal(codeOf(() => ca.taint(first, clock)), 'ERR_CA_TAINT_ACTIVE');
  assert.equal(codeOf(() => ca.revoke(first, clock)), 'ERR_CA_REVOKE_NOT_TAINTED');
  assert.equal(codeOf(() => ca.taint('nope', clock)), 'ERR_CA_AUTHORITY_UNKNOWN');
  ca.prepare(clock);
  const seq = ca.activate(clock) && ca.sequence;
  ca.taint(first, clock);
  assert.equal(ca.sequence, seq + 1);
  const tainted = ca.trustBundle();
  assert.equal(tainted.x509Authorities.length, 2);
  const v = verifyX509Svid(oldLeaf.chainDer, tainted, { at: clock.now() });
  assert.equal(v.tainted, true, 'verifier learns the peer must re-issue');
  ca.revoke(first, clock);
  assert.equal(ca.sequence, seq + 2);
  const after = ca.trustBundle();
  assert.equal(after.x509Authorities.length, 1);
  assert.equal(after.jwtAuthorities.length, 1);
  assert.throws(() => verifyX509Svid(oldLeaf.chainDer, after, { at: clock.now() }), (e: unknown) => e instanceof PkiError && e.code === 'ERR_SVID_UNTRUSTED');
  const json = JSON.stringify(ca.toJSON());
  const revoked = ca.toJSON().authorities.find((a) => a.id === first)!;
  assert.equal(revoked.state, 'revoked');
  assert.equal(revoked.intermediateKey, undefined, 'revoked keys are destroyed');
  assert.equal(revoked.rootKey, undefined);
  assert.ok(json.length > 0);
});

test('expired authorities are pruned from the bundle; issuance needs an unexpired active one', () => {
  const { ca, clock, mint } = setup(10 * DAY);
  clock.advance(DAY);
  ca.prepare(clock);
  ca.activate(clock);
  const seq = ca.sequence;
  clock.advance(9 * DAY + 1);
  assert.equal(ca.prune(clock).length, 1);
  assert.equal(ca.sequence, seq + 1);
  assert.equal(ca.trustBundle().x509Authorities.length, 1);
  const leaf = mint();
  assert.ok(leaf.notAfter <= Date.parse(ca.authorities()[0]!.notAfter), 'no leaf outlives its issuer');
  clock.advance(DAY);
  assert.equal(codeOf(() => mint()), 'ERR_CA_NO_ACTIVE_AUTHORITY');
});

test('state round-trips through JSON with every key sealed; a wrong master key is refused', () => {
  const { ca, clock, masterKey, mint } = setup();
  mint();
  const signerKey = ca.x509Signer(clock).key.export({ format: 'der', type: 'pkcs8' });
  const json = JSON.stringify(ca.toJSON());
  assert.ok(!json.includes('PRIVATE KEY'));
  assert.ok(!json.includes(signerKey.toString('base64').slice(40, 80)), 'no raw key bytes in the state');
  assert.ok(!json.includes(signerKey.toString('hex').slice(80, 160)));
  const loaded = CertificateAuthority.fromJSON(JSON.parse(json), new KeySealer(masterKey));
  const { privateKey } = generateP256KeyPair();
  const leaf = issueX509Svid({ ca: loaded, csr: createSvidCsr({ spiffeId: ID, privateKey }).pem, spiffeId: ID, clock });
  assert.equal(verifyX509Svid(leaf.chainPem, ca.trustBundle(), { at: clock.now() }).spiffeId.toString(), ID);
  assert.equal(codeOf(() => CertificateAuthority.fromJSON(JSON.parse(json), new KeySealer(randomBytes(32)))), 'ERR_MASTER_KEY_MISMATCH');
  for (const bad of [null, {}, { ...JSON.parse(json), format: 'x' }, { ...JSON.parse(json), authorities: 'x' }, { ...JSON.parse(json), trustDomain: 'BAD' }]) {
    assert.equal(codeOf(() => CertificateAuthority.fromJSON(bad, new KeySealer(masterKey))), 'ERR_CA_STATE_INVALID');
  }
  // An intermediate certificate swapped in ca.json no longer matches the sealed key: refused.
  const swapped = JSON.parse(json);
  swapped.authorities[0].intermediateCertPem = swapped.authorities[0].rootCertPem;
  const swappedCa = CertificateAuthority.fromJSON(swapped, new KeySealer(masterKey));
  assert.equal(codeOf(() => swappedCa.x509Signer(clock)), 'ERR_CA_STATE_INVALID');
  const twoActive = JSON.parse(json);
  twoActive.authorities.push({ ...twoActive.authorities[0], id: 'x' });
  assert.equal(codeOf(() => CertificateAuthority.fromJSON(twoActive, new KeySealer(masterKey))), 'ERR_CA_STATE_INVALID');
});

test('write access to the state without the master key cannot add a trust anchor or a JWT key to the bundle', async () => {
  const { ca, clock, masterKey } = setup();
  ca.prepare(clock);
  ca.activate(clock);
  const state = ca.toJSON();
  const retired = state.authorities.find((a) => a.state === 'retired')!;
  // The attacker's own root, put in place of a retired authority's (its sealed boxes are kept:
  // the master key id matches, and a retired authority's keys are never opened for issuance).
  const rogue = await makeCa({ name: 'CN=Rogue Root', notBefore: new Date(clock.now() - HOUR), notAfter: new Date(clock.now() + DAY) });
  const withRogueRoot = structuredClone(state);
  withRogueRoot.authorities.find((a) => a.id === retired.id)!.rootCertPem = rogue.pem;
  assert.equal(codeOf(() => CertificateAuthority.fromJSON(withRogueRoot, new KeySealer(masterKey))), 'ERR_CA_STATE_INVALID');
  // A rogue JWT key in place of a retired authority's published JWK.
  const withRogueJwk = structuredClone(state);
  withRogueJwk.authorities.find((a) => a.id === retired.id)!.jwtPublicJwk = generateP256KeyPair().publicKey.export({ format: 'jwk' });
  assert.equal(codeOf(() => CertificateAuthority.fromJSON(withRogueJwk, new KeySealer(masterKey))), 'ERR_CA_STATE_INVALID');
  // A whole rogue authority record whose boxes are copied from a real one: its slot (AAD) differs.
  const withRogueRecord = structuredClone(state);
  withRogueRecord.authorities.push({ ...structuredClone(retired), id: 'ffffffffffffffff', rootCertPem: rogue.pem });
  assert.equal(codeOf(() => CertificateAuthority.fromJSON(withRogueRecord, new KeySealer(masterKey))), 'ERR_KEY_SEALED_INVALID');
  // The untouched state still loads.
  assert.equal(CertificateAuthority.fromJSON(structuredClone(state), new KeySealer(masterKey)).trustBundle().x509Authorities.length, 2);
});

test('upstream mode: the intermediate chains under an enterprise CA; its root is the anchor', async () => {
  const clock = new ManualClock(T0);
  const now = clock.now();
  const upstream = await makeCa({ name: 'CN=Enterprise Root,O=Acme', pathLength: 2, notBefore: new Date(now - DAY), notAfter: new Date(now + 90 * DAY) });
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(await webcrypto.subtle.exportKey('pkcs8', upstream.keys.privateKey)).toString('base64')}\n-----END PRIVATE KEY-----\n`;
  const sealer = new KeySealer(randomBytes(32));
  const ca = CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer, caTtlMs: 365 * DAY, upstream: { certPem: upstream.pem, keyPem } });
  const bundle = ca.trustBundle();
  assert.equal(bundle.x509Authorities.length, 1);
  assert.ok(bundle.x509Authorities[0]!.cert.der.equals(upstream.der));
  assert.ok(!JSON.stringify(ca.toJSON()).includes('PRIVATE KEY'));
  const { privateKey } = generateP256KeyPair();
  const leaf = issueX509Svid({ ca, csr: createSvidCsr({ spiffeId: ID, privateKey }).pem, spiffeId: ID, clock });
  assert.ok(leaf.notAfter <= now + 90 * DAY);
  assert.equal(verifyX509Svid(leaf.chainDer, bundle, { at: now }).path.length, 3);
  const first = ca.authorities()[0]!.id;
  ca.prepare(clock);
  ca.activate(clock);
  assert.equal(ca.trustBundle().x509Authorities.length, 1, 'authorities share the upstream anchor');
  ca.taint(first, clock);
  assert.equal(codeOf(() => ca.revoke(first, clock)), 'ERR_CA_REVOKE_UPSTREAM');
  const notCa = await makeCa({ name: 'CN=Not CA', ca: false, notBefore: new Date(now - DAY), notAfter: new Date(now + DAY) });
  assert.equal(codeOf(() => CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer, upstream: { certPem: notCa.pem, keyPem } })), 'ERR_CA_UPSTREAM_INVALID');
  const other = await makeCa({ name: 'CN=Other', pathLength: 2, notBefore: new Date(now - DAY), notAfter: new Date(now + DAY) });
  assert.equal(codeOf(() => CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer, upstream: { certPem: other.pem, keyPem } })), 'ERR_CA_UPSTREAM_INVALID', 'key must match the certificate');
  assert.equal(codeOf(() => CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer, upstream: { certPem: 'junk', keyPem } })), 'ERR_CA_UPSTREAM_INVALID');
  // An upstream without a subject key identifier would make every chain fail strict verification
  // (ERR_SVID_KEY_IDENTIFIER_MISSING, openssl -x509_strict error 86): refused when configured.
  const upstreamKey = await keyObjectOf(upstream.keys);
  const noSki = resignWith(upstream.der, upstreamKey, (tbs) => {
    const exts = tbs.children!.find((c) => c.tag === 0xa3)!.children![0]!;
    exts.children = exts.children!.filter((e) => e.children![0]!.body!.toString('hex') !== OIDHEX.subjectKeyIdentifier);
  });
  assert.equal(codeOf(() => CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer, upstream: { certPem: certToPem(noSki), keyPem } })), 'ERR_CA_UPSTREAM_INVALID');
  assert.ok(bundleToPem(bundle).startsWith('-----BEGIN CERTIFICATE-----'));
});

test('upstream mode under an enterprise issuing CA: the chain carries it, the bundle holds the enterprise root', async () => {
  const clock = new ManualClock(T0);
  const now = clock.now();
  const entRoot = await makeCa({ name: 'CN=Enterprise Root', pathLength: 3, notBefore: new Date(now - DAY), notAfter: new Date(now + 900 * DAY) });
  const entIssuing = await makeCa({ name: 'CN=Enterprise Issuing CA', issuer: entRoot, pathLength: 1, notBefore: new Date(now - DAY), notAfter: new Date(now + 400 * DAY) });
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(await webcrypto.subtle.exportKey('pkcs8', entIssuing.keys.privateKey)).toString('base64')}\n-----END PRIVATE KEY-----\n`;
  const ca = CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer: new KeySealer(randomBytes(32)), upstream: { certPem: entIssuing.pem + entRoot.pem, keyPem } });
  const bundle = ca.trustBundle();
  assert.equal(bundle.x509Authorities.length, 1);
  assert.ok(bundle.x509Authorities[0]!.cert.der.equals(entRoot.der), 'anchor is the self-signed enterprise root');
  const { privateKey } = generateP256KeyPair();
  const leaf = issueX509Svid({ ca, csr: createSvidCsr({ spiffeId: ID, privateKey }).pem, spiffeId: ID, clock });
  assert.equal(leaf.chainDer.length, 3, 'leaf, Ward intermediate, enterprise issuing CA (root left out)');
  assert.ok(leaf.chainDer[2]!.equals(entIssuing.der));
  assert.ok(leaf.notAfter <= now + 400 * DAY);
  assert.equal(verifyX509Svid(leaf.chainDer, bundle, { at: now }).path.length, 4);
  // Without the enterprise issuing CA in the presented chain, the leaf does not verify.
  assert.throws(() => verifyX509Svid(leaf.chainDer.slice(0, 2), bundle, { at: now }), (e: unknown) => e instanceof PkiError && e.code === 'ERR_SVID_UNTRUSTED');
  const tight = await makeCa({ name: 'CN=Tight Issuing CA', issuer: entRoot, pathLength: 0, notBefore: new Date(now - DAY), notAfter: new Date(now + 400 * DAY) });
  const tightKey = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(await webcrypto.subtle.exportKey('pkcs8', tight.keys.privateKey)).toString('base64')}\n-----END PRIVATE KEY-----\n`;
  assert.equal(codeOf(() => CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer: new KeySealer(randomBytes(32)), upstream: { certPem: tight.pem, keyPem: tightKey } })), 'ERR_CA_UPSTREAM_INVALID', 'pathLen 0 leaves no room for our intermediate');
});
