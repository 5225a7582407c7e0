import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, type webcrypto } from 'node:crypto';
import { ManualClock } from '../../../src/core/clock.js';
import { CertificateAuthority } from '../../../src/pki/ca.js';
import { createSvidCsr } from '../../../src/pki/csr.js';
import { KeySealer } from '../../../src/pki/envelope.js';
import { PkiError } from '../../../src/pki/errors.js';
import { generateP256KeyPair } from '../../../src/pki/keys.js';
import { issueX509Svid, SVID_BACKDATE_MS } from '../../../src/pki/svid-issue.js';
import { x509 } from './support/forge.js';

const clock = new ManualClock('2026-06-01T00:00:00Z');
const ca = CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer: new KeySealer(randomBytes(32)) });
const ID = 'spiffe://example.org/ns/prod/sa/api';
const { privateKey } = generateP256KeyPair();
const csr = createSvidCsr({ spiffeId: ID, privateKey }).pem;

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
    return 'OK';
  } catch (e) {
    assert.ok(e instanceof PkiError, String(e));
    return e.code;
  }
};

test('the leaf has exactly the X509-SVID profile, checked by @peculiar/x509', async () => {
  const svid = issueX509Svid({ ca, csr, spiffeId: ID, clock });
  const cert = new x509.X509Certificate(svid.certDer);
  const ext = (oid: string) => cert.extensions.find((e) => e.type === oid);
  const bc = ext('2.5.29.19') as x509.BasicConstraintsExtension;
  assert.equal(bc.ca, false);
  assert.equal(bc.critical, true);
  const ku = ext('2.5.29.15') as x509.KeyUsagesExtension;
  assert.equal(ku.critical, true);
  assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature, 'digitalSignature only: no keyCertSign/cRLSign');
  const eku = ext('2.5.29.37') as x509.ExtendedKeyUsageExtension;
  assert.deepEqual([...eku.usages].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  const san = ext('2.5.29.17') as x509.SubjectAlternativeNameExtension;
  assert.deepEqual(san.names.toJSON(), [{ type: 'url', value: ID }]);
  assert.ok(ext('2.5.29.14') && ext('2.5.29.35'));
  assert.ok(!cert.subject.includes('CN='));
  assert.equal(cert.notAfter.getTime() - cert.notBefore.getTime(), 3_600_000 + SVID_BACKDATE_MS, 'default TTL 1h (+ backdating)');
  assert.equal(cert.notAfter.getTime(), clock.now() + 3_600_000);
  const inter = new x509.X509Certificate(svid.chainDer[1]!);
  assert.equal(await cert.verify({ publicKey: inter.publicKey, date: new Date(clock.now()) }), true, 'library verifies Ward\'s signature');
  assert.equal(cert.issuer, inter.subject);
  assert.equal(svid.chainPem, svid.certPem + `-----BEGIN CERTIFICATE-----\n${inter.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`);
  assert.equal((cert.publicKey.algorithm as webcrypto.EcKeyAlgorithm).namedCurve, 'P-256');
});

test('serials are unique and positive across many issues', () => {
  const serials = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const s = issueX509Svid({ ca, csr, spiffeId: ID, clock }).serialHex;
    assert.ok(parseInt(s.slice(0, 2), 16) < 0x80 && s.length === 32);
    serials.add(s);
  }
  assert.equal(serials.size, 2000);
});

test('TTL: custom, capped by the maximum, rejected when invalid', () => {
  assert.equal(issueX509Svid({ ca, csr, spiffeId: ID, clock, ttlMs: 600_000 }).notAfter, clock.now() + 600_000);
  assert.equal(codeOf(() => issueX509Svid({ ca, csr, spiffeId: ID, clock, ttlMs: 0 })), 'ERR_SVID_TTL_INVALID');
  assert.equal(codeOf(() => issueX509Svid({ ca, csr, spiffeId: ID, clock, ttlMs: 25 * 3_600_000 })), 'ERR_SVID_TTL_INVALID');
  assert.equal(codeOf(() => issueX509Svid({ ca, csr, spiffeId: ID, clock, ttlMs: Number.NaN })), 'ERR_SVID_TTL_INVALID');
});

test('the CSR must ask for exactly the authorised ID, in the CA\'s trust domain', () => {
  assert.equal(codeOf(() => issueX509Svid({ ca, csr, spiffeId: 'spiffe://example.org/other', clock })), 'ERR_CSR_SPIFFE_ID_MISMATCH');
  const foreign = createSvidCsr({ spiffeId: 'spiffe://evil.org/x', privateKey }).pem;
  assert.equal(codeOf(() => issueX509Svid({ ca, csr: foreign, spiffeId: 'spiffe://evil.org/x', clock })), 'ERR_SVID_WRONG_TRUST_DOMAIN');
  assert.equal(codeOf(() => issueX509Svid({ ca, csr: 'garbage', spiffeId: ID, clock })), 'ERR_CSR_MALFORMED');
});
