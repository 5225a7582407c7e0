// One test per X509-SVID rejection rule, each with a certificate built by @peculiar/x509 that
// breaks exactly that rule, next to a control leaf from the same CA that passes.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createTrustBundle, parseTrustBundle, type TrustBundle } from '../../../src/pki/bundle.js';
import { PkiError } from '../../../src/pki/errors.js';
import { verifyX509Svid } from '../../../src/pki/svid-verify.js';
import { KU, makeCa, makeLeaf, x509, type TestCert } from './support/forge.js';

const T0 = Date.UTC(2026, 5, 1);
const day = 86_400_000;
const nb = new Date(T0 - day);
const na = new Date(T0 + day);
let root: TestCert;
let inter: TestCert;
let bundle: TrustBundle;

before(async () => {
  root = await makeCa({ name: 'CN=Test Root', pathLength: 1, notBefore: new Date(T0 - 30 * day), notAfter: new Date(T0 + 30 * day) });
  inter = await makeCa({ name: 'CN=Test Intermediate', issuer: root, pathLength: 0, notBefore: new Date(T0 - 30 * day), notAfter: new Date(T0 + 30 * day) });
  bundle = createTrustBundle({ trustDomain: 'test.example', x509Authorities: [{ der: root.der }] });
});

function rejects(chain: (TestCert | Buffer)[], code: string, options: { at?: number; trustDomain?: string; bundle?: TrustBundle } = {}): void {
  assert.throws(
    () => verifyX509Svid(chain.map((c) => (Buffer.isBuffer(c) ? c : c.der)), options.bundle ?? bundle, { at: options.at ?? T0, ...(options.trustDomain ? { trustDomain: options.trustDomain } : {}) }),
    (e: unknown) => {
      assert.ok(e instanceof PkiError, `expected PkiError, got ${String(e)}`);
      assert.equal(e.code, code);
      return true;
    },
  );
}

test('control: a well-formed leaf from the test CA verifies, as DER, PEM and X509Certificate', async () => {
  const leaf = await makeLeaf({ issuer: inter, notBefore: nb, notAfter: na });
  const r = verifyX509Svid([leaf.der, inter.der], bundle, { at: T0 });
  assert.equal(r.spiffeId.toString(), 'spiffe://test.example/workload');
  assert.equal(r.notAfter, na.getTime());
  assert.equal(r.path.length, 3);
  assert.equal(verifyX509Svid(leaf.pem + inter.pem, bundle, { at: T0 }).spiffeId.path, '/workload');
  assert.equal(verifyX509Svid([new X509Certificate(leaf.der), new X509Certificate(inter.der)], bundle, { at: T0 }).spiffeId.trustDomain, 'test.example');
  // The leaf may carry DNS SANs next to its one URI SAN (X509-SVID section 2).
  const withDns = await makeLeaf({ issuer: inter, dns: ['web.local'], notBefore: nb, notAfter: na });
  assert.equal(verifyX509Svid([withDns.der, inter.der], bundle, { at: T0 }).spiffeId.path, '/workload');
});

test('leaf with the CA flag: ERR_SVID_LEAF_IS_CA', async () => {
  rejects([await makeLeaf({ issuer: inter, ca: true, notBefore: nb, notAfter: na }), inter], 'ERR_SVID_LEAF_IS_CA');
});

test('leaf with keyCertSign or cRLSign: ERR_SVID_LEAF_KEY_CERT_SIGN', async () => {
  rejects([await makeLeaf({ issuer: inter, keyUsage: KU.digitalSignature | KU.keyCertSign, notBefore: nb, notAfter: na }), inter], 'ERR_SVID_LEAF_KEY_CERT_SIGN');
  rejects([await makeLeaf({ issuer: inter, keyUsage: KU.digitalSignature | KU.cRLSign, notBefore: nb, notAfter: na }), inter], 'ERR_SVID_LEAF_KEY_CERT_SIGN');
});

test('leaf without digitalSignature, or without key usage: ERR_SVID_LEAF_NO_DIGITAL_SIGNATURE', async () => {
  rejects([await makeLeaf({ issuer: inter, keyUsage: KU.keyEncipherment, notBefore: nb, notAfter: na }), inter], 'ERR_SVID_LEAF_NO_DIGITAL_SIGNATURE');
  rejects([await makeLeaf({ issuer: inter, keyUsage: null, notBefore: nb, notAfter: na }), inter], 'ERR_SVID_LEAF_NO_DIGITAL_SIGNATURE');
});

test('zero or several URI SANs: ERR_SVID_URI_SAN_COUNT', async () => {
  rejects([await makeLeaf({ issuer: inter, uris: [], notBefore: nb, notAfter: na }), inter], 'ERR_SVID_URI_SAN_COUNT');
  rejects([await makeLeaf({ issuer: inter, uris: [], dns: ['only.dns'], notBefore: nb, notAfter: na }), inter], 'ERR_SVID_URI_SAN_COUNT');
  rejects([await makeLeaf({ issuer: inter, uris: ['spiffe://test.example/a', 'spiffe://test.example/b'], notBefore: nb, notAfter: na }), inter], 'ERR_SVID_URI_SAN_COUNT');
});

test('non-spiffe or invalid SPIFFE URI: ERR_SVID_URI_NOT_SPIFFE with the SPIFFE rule', async () => {
  rejects([await makeLeaf({ issuer: inter, uris: ['https://test.example/a'], notBefore: nb, notAfter: na }), inter], 'ERR_SVID_URI_NOT_SPIFFE');
  const bad = await makeLeaf({ issuer: inter, uris: ['spiffe://test.example/a/../b'], notBefore: nb, notAfter: na });
  try {
    verifyX509Svid([bad.der, inter.der], bundle, { at: T0 });
    assert.fail('accepted');
  } catch (e) {
    assert.ok(e instanceof PkiError && e.code === 'ERR_SVID_URI_NOT_SPIFFE');
    assert.equal(e.details?.spiffeCode, 'ERR_SPIFFE_ID_DOT_SEGMENT');
  }
});

test('chain not to the bundle: foreign CA, missing intermediate, forged signature: ERR_SVID_UNTRUSTED', async () => {
  const otherRoot = await makeCa({ name: 'CN=Test Root', pathLength: 1, notBefore: nb, notAfter: na });
  const otherInter = await makeCa({ name: 'CN=Test Intermediate', issuer: otherRoot, pathLength: 0, notBefore: nb, notAfter: na });
  // Same names as the trusted CA, different keys: only the signature check tells them apart.
  rejects([await makeLeaf({ issuer: otherInter, notBefore: nb, notAfter: na }), otherInter], 'ERR_SVID_UNTRUSTED');
  rejects([await makeLeaf({ issuer: otherInter, notBefore: nb, notAfter: na }), inter], 'ERR_SVID_UNTRUSTED');
  const good = await makeLeaf({ issuer: inter, notBefore: nb, notAfter: na });
  rejects([good], 'ERR_SVID_UNTRUSTED');
  const forged = Buffer.from(good.der);
  forged[forged.length - 5] = (forged[forged.length - 5] as number) ^ 0x01;
  rejects([forged, inter.der], 'ERR_SVID_UNTRUSTED');
  // A tampered TBS (the SPIFFE ID changed after signing) fails the signature too.
  const tampered = Buffer.from(good.der);
  const at = tampered.indexOf(Buffer.from('workload'));
  tampered.write('workloaX', at, 'latin1');
  rejects([tampered, inter.der], 'ERR_SVID_UNTRUSTED');
});

test('intermediate without CA flag: ERR_SVID_INTERMEDIATE_NOT_CA', async () => {
  const notCa = await makeCa({ name: 'CN=Not A CA', issuer: root, ca: false, notBefore: nb, notAfter: na });
  rejects([await makeLeaf({ issuer: notCa, notBefore: nb, notAfter: na }), notCa], 'ERR_SVID_INTERMEDIATE_NOT_CA');
});

test('intermediate without keyCertSign: ERR_SVID_INTERMEDIATE_NO_KEY_CERT_SIGN', async () => {
  const noSign = await makeCa({ name: 'CN=No KeyCertSign', issuer: root, keyUsage: KU.cRLSign | KU.digitalSignature, notBefore: nb, notAfter: na });
  rejects([await makeLeaf({ issuer: noSign, notBefore: nb, notAfter: na }), noSign], 'ERR_SVID_INTERMEDIATE_NO_KEY_CERT_SIGN');
  const noKu = await makeCa({ name: 'CN=No KeyUsage', issuer: root, keyUsage: 0, notBefore: nb, notAfter: na });
  rejects([await makeLeaf({ issuer: noKu, notBefore: nb, notAfter: na }), noKu], 'ERR_SVID_INTERMEDIATE_NO_KEY_CERT_SIGN');
});

test('path length constraint: ERR_SVID_PATH_LENGTH', async () => {
  const i2 = await makeCa({ name: 'CN=Second Intermediate', issuer: inter, notBefore: nb, notAfter: na });
  rejects([await makeLeaf({ issuer: i2, notBefore: nb, notAfter: na }), i2, inter], 'ERR_SVID_PATH_LENGTH');
});

test('expired and not yet valid, for the leaf and for a CA of the chain', async () => {
  const leaf = await makeLeaf({ issuer: inter, notBefore: nb, notAfter: na });
  rejects([leaf, inter], 'ERR_SVID_EXPIRED', { at: na.getTime() + 1000 });
  rejects([leaf, inter], 'ERR_SVID_NOT_YET_VALID', { at: nb.getTime() - 1000 });
  const oldInter = await makeCa({ name: 'CN=Old Intermediate', issuer: root, notBefore: new Date(T0 - 10 * day), notAfter: new Date(T0 - day) });
  rejects([await makeLeaf({ issuer: oldInter, notBefore: nb, notAfter: na }), oldInter], 'ERR_SVID_EXPIRED');
  // Boundaries are inclusive (RFC 5280 4.1.2.5).
  assert.ok(verifyX509Svid([leaf.der, inter.der], bundle, { at: na.getTime() }));
  assert.ok(verifyX509Svid([leaf.der, inter.der], bundle, { at: nb.getTime() }));
});

test('wrong trust domain, from the option or from the bundle: ERR_SVID_WRONG_TRUST_DOMAIN', async () => {
  const foreign = await makeLeaf({ issuer: inter, uris: ['spiffe://other.example/workload'], notBefore: nb, notAfter: na });
  rejects([foreign, inter], 'ERR_SVID_WRONG_TRUST_DOMAIN');
  const pemBundle = parseTrustBundle(root.pem);
  assert.equal(verifyX509Svid([foreign.der, inter.der], pemBundle, { at: T0 }).spiffeId.trustDomain, 'other.example');
  rejects([foreign, inter], 'ERR_SVID_WRONG_TRUST_DOMAIN', { bundle: pemBundle, trustDomain: 'test.example' });
});

test('unknown critical extension, on the leaf or a CA: ERR_SVID_UNKNOWN_CRITICAL_EXTENSION', async () => {
  const crit = new x509.Extension('1.3.6.1.4.1.99999.1', true, new Uint8Array([0x05, 0x00]));
  rejects([await makeLeaf({ issuer: inter, extra: [crit], notBefore: nb, notAfter: na }), inter], 'ERR_SVID_UNKNOWN_CRITICAL_EXTENSION');
  const critInter = await makeCa({ name: 'CN=Critical Intermediate', issuer: root, extra: [crit], notBefore: nb, notAfter: na });
  rejects([await makeLeaf({ issuer: critInter, notBefore: nb, notAfter: na }), critInter], 'ERR_SVID_UNKNOWN_CRITICAL_EXTENSION');
  // Unknown but non-critical extensions are fine.
  const nonCrit = new x509.Extension('1.3.6.1.4.1.99999.1', false, new Uint8Array([0x05, 0x00]));
  assert.ok(verifyX509Svid([(await makeLeaf({ issuer: inter, extra: [nonCrit], notBefore: nb, notAfter: na })).der, inter.der], bundle, { at: T0 }));
});

test('empty chain and malformed input', () => {
  rejects([], 'ERR_SVID_CHAIN_EMPTY');
  assert.throws(() => verifyX509Svid('', bundle, { at: T0 }), (e: unknown) => e instanceof PkiError && e.code === 'ERR_SVID_CHAIN_EMPTY');
  rejects([Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01])], 'ERR_CERT_MALFORMED');
  rejects([inter.der.subarray(0, inter.der.length - 1)], 'ERR_CERT_MALFORMED');
});

test('a chain longer than 8 is refused', async () => {
  const leaf = await makeLeaf({ issuer: inter, notBefore: nb, notAfter: na });
  rejects([leaf, ...Array.from({ length: 8 }, () => inter)], 'ERR_SVID_PATH_LENGTH');
});

test('a bundle without a trust domain: a root that names its trust domain (as Ward roots do) vouches only for IDs in it', async () => {
  const tdRoot = await makeCa({
    name: 'CN=TD Root', notBefore: new Date(T0 - 30 * day), notAfter: new Date(T0 + 30 * day),
    extra: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://test.example' }])],
  });
  const unnamed = createTrustBundle({ x509Authorities: [{ der: tdRoot.der }] });
  const own = await makeLeaf({ issuer: tdRoot, notBefore: nb, notAfter: na });
  assert.equal(verifyX509Svid([own.der], unnamed, { at: T0 }).spiffeId.toString(), 'spiffe://test.example/workload');
  const foreign = await makeLeaf({ issuer: tdRoot, notBefore: nb, notAfter: na, uris: ['spiffe://other.example/workload'] });
  rejects([foreign], 'ERR_SVID_WRONG_TRUST_DOMAIN', { bundle: unnamed });
  // A root that names no trust domain (an enterprise root) constrains nothing without one.
  const plain = createTrustBundle({ x509Authorities: [{ der: root.der }] });
  const other = await makeLeaf({ issuer: inter, notBefore: nb, notAfter: na, uris: ['spiffe://other.example/workload'] });
  assert.equal(verifyX509Svid([other.der, inter.der], plain, { at: T0 }).spiffeId.trustDomain, 'other.example');
});
