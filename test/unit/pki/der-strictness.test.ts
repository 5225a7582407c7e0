// Encoding rules the hand-written DER reader must enforce, each proven by a certificate that is
// validly signed but breaks exactly one rule (built with support/der-tree.ts). Each case was a
// divergence from OpenSSL / @peculiar/x509 found by test/fuzz/x509-differential.test.ts, where
// Ward read something other readers refuse or read differently; now Ward refuses it.
import 'reflect-metadata';
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, type KeyObject } from 'node:crypto';
import { createTrustBundle, type TrustBundle } from '../../../src/pki/bundle.js';
import { parseCertificate } from '../../../src/pki/certificate.js';
import { checkSvidCsr, createSvidCsr } from '../../../src/pki/csr.js';
import { PkiError } from '../../../src/pki/errors.js';
import { generateP256KeyPair } from '../../../src/pki/keys.js';
import { verifyX509Svid } from '../../../src/pki/svid-verify.js';
import { extensionNode, extensionValue, OIDHEX, resignWith, type Node } from './support/der-tree.js';
import { keyObjectOf, makeCa, makeLeaf, type TestCert } from './support/forge.js';

const at = Date.parse('2026-06-01T00:00:00Z');
const nb = new Date(at - 3_600_000);
const na = new Date(at + 3_600_000);
let root: TestCert;
let inter: TestCert;
let leaf: TestCert;
let dnsLeaf: TestCert;
let rootKey: KeyObject;
let interKey: KeyObject;
let bundle: TrustBundle;

before(async () => {
  root = await makeCa({ name: 'CN=Strict Root', notBefore: nb, notAfter: na });
  inter = await makeCa({ name: 'CN=Strict Inter', issuer: root, notBefore: nb, notAfter: na, pathLength: 0 });
  leaf = await makeLeaf({ issuer: inter, notBefore: nb, notAfter: na });
  dnsLeaf = await makeLeaf({ issuer: inter, notBefore: nb, notAfter: na, dns: ['api.test.example'] });
  rootKey = await keyObjectOf(root.keys);
  interKey = await keyObjectOf(inter.keys);
  bundle = createTrustBundle({ trustDomain: 'test.example', x509Authorities: [{ der: root.der }] });
});

const TBS = Object.freeze({ version: 0, serial: 1, issuer: 3, subject: 5, spki: 6 });

function rejects(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof PkiError && e.code === code, `expected ${code}`);
}

const verifyLeaf = (der: Buffer): unknown => verifyX509Svid([der, inter.der], bundle, { at });
const verifyInter = (der: Buffer): unknown => verifyX509Svid([leaf.der, der], bundle, { at });

test('control: the unedited chain verifies and re-signing without an edit changes nothing', () => {
  assert.equal((verifyLeaf(resignWith(leaf.der, interKey, () => undefined)) as { spiffeId: { toString(): string } }).spiffeId.toString(), 'spiffe://test.example/workload');
  verifyInter(resignWith(inter.der, rootKey, () => undefined));
});

describe('INTEGER', () => {
  test('a non-minimal version INTEGER (02 02 00 02) is refused, as OpenSSL refuses it', () => {
    const der = resignWith(leaf.der, interKey, (tbs) => {
      tbs.children![TBS.version]!.children![0]!.body = Buffer.from([0x00, 0x02]);
    });
    assert.throws(() => new X509Certificate(der));
    rejects(() => parseCertificate(der), 'ERR_CERT_MALFORMED');
  });

  test('a non-minimal pathLenConstraint is refused (OpenSSL marks the CA invalid)', () => {
    const der = resignWith(inter.der, rootKey, (tbs) => {
      extensionValue(extensionNode(tbs, OIDHEX.basicConstraints)).children![1]!.body = Buffer.from([0x00, 0x00]);
    });
    assert.equal(new X509Certificate(der).ca, false);
    rejects(() => verifyInter(der), 'ERR_CERT_MALFORMED');
  });

  test('a negative serial number is refused (RFC 5280 4.1.2.2)', () => {
    const der = resignWith(leaf.der, interKey, (tbs) => {
      tbs.children![TBS.serial]!.body = Buffer.from([0xff, 0x01]);
    });
    rejects(() => parseCertificate(der), 'ERR_CERT_MALFORMED');
  });
});

describe('BIT STRING', () => {
  test('keyCertSign carried only in padding bits does not make a signing CA (OpenSSL masks padding)', () => {
    // 03 02 03 04: three unused bits, and the keyCertSign bit (0x04) is one of them.
    const der = resignWith(inter.der, rootKey, (tbs) => {
      extensionValue(extensionNode(tbs, OIDHEX.keyUsage)).body = Buffer.from([0x03, 0x04]);
    });
    assert.equal(new X509Certificate(der).ca, false, 'OpenSSL does not see keyCertSign');
    rejects(() => verifyInter(der), 'ERR_CERT_MALFORMED');
  });
});

describe('Names', () => {
  test('an attribute without a value is refused', () => {
    const der = resignWith(leaf.der, interKey, (tbs) => {
      tbs.children![TBS.subject]!.children![0]!.children![0]!.children!.pop();
    });
    assert.throws(() => new X509Certificate(der));
    rejects(() => parseCertificate(der), 'ERR_CERT_MALFORMED');
  });

  test('a UTF8String that is not UTF-8 is refused', () => {
    const der = resignWith(leaf.der, interKey, (tbs) => {
      const value = tbs.children![TBS.subject]!.children![0]!.children![0]!.children![1]!;
      value.tag = 0x0c;
      value.body = Buffer.from([0x54, 0xff, 0x54]);
    });
    assert.throws(() => new X509Certificate(der));
    rejects(() => parseCertificate(der), 'ERR_CERT_MALFORMED');
  });

  test('an empty subject with a non-critical SAN is refused (RFC 5280 4.1.2.6; openssl -x509_strict error 88)', () => {
    const der = resignWith(leaf.der, interKey, (tbs) => {
      tbs.children![TBS.subject]!.children = [];
    });
    rejects(() => verifyLeaf(der), 'ERR_CERT_MALFORMED');
  });
});

describe('SubjectPublicKeyInfo', () => {
  test('a leaf whose key is on a curve nobody verifies (secp256k1) is refused even though its key is never used', () => {
    const der = resignWith(leaf.der, interKey, (tbs) => {
      tbs.children![TBS.spki]!.children![0]!.children![1]!.body = Buffer.from('2b8104000a', 'hex');
    });
    rejects(() => verifyLeaf(der), 'ERR_CERT_MALFORMED');
  });

  test('a SubjectPublicKeyInfo with a trailing field is refused, as OpenSSL refuses it', () => {
    const der = resignWith(leaf.der, interKey, (tbs) => {
      tbs.children![TBS.spki]!.children!.push({ tag: 0x05, body: Buffer.alloc(0) });
    });
    assert.throws(() => new X509Certificate(der));
    rejects(() => verifyLeaf(der), 'ERR_CERT_MALFORMED');
  });
});

describe('extensions', () => {
  test('a SAN holding a value that is not a GeneralName (NULL) is refused, not counted as "other"', () => {
    const der = resignWith(leaf.der, interKey, (tbs) => {
      extensionValue(extensionNode(tbs, OIDHEX.subjectAltName)).children!.unshift({ tag: 0x05, body: Buffer.alloc(0) });
    });
    rejects(() => verifyLeaf(der), 'ERR_CERT_MALFORMED');
  });

  test('a DNS SAN with a control character is refused', () => {
    const der = resignWith(dnsLeaf.der, interKey, (tbs) => {
      const dns = extensionValue(extensionNode(tbs, OIDHEX.subjectAltName)).children!.find((n: Node) => n.tag === 0x82)!;
      dns.body = Buffer.from('api.test.example\u0000.evil', 'latin1');
    });
    rejects(() => verifyLeaf(der), 'ERR_CERT_MALFORMED');
  });

  test('pathLenConstraint without cA is refused (RFC 5280 4.2.1.9)', () => {
    const der = resignWith(leaf.der, interKey, (tbs) => {
      extensionValue(extensionNode(tbs, OIDHEX.basicConstraints)).children = [{ tag: 0x02, body: Buffer.from([0]) }];
    });
    rejects(() => verifyLeaf(der), 'ERR_CERT_MALFORMED');
  });

  test('an authorityKeyIdentifier with a field that is not in its SEQUENCE is refused', () => {
    const der = resignWith(leaf.der, interKey, (tbs) => {
      extensionValue(extensionNode(tbs, OIDHEX.authorityKeyIdentifier)).children!.push({ tag: 0x02, body: Buffer.from([5]) });
    });
    rejects(() => verifyLeaf(der), 'ERR_CERT_MALFORMED');
  });

  test('a leaf whose authority key identifier names another key does not chain (OpenSSL: unable to get local issuer)', () => {
    const der = resignWith(leaf.der, interKey, (tbs) => {
      const keyId = extensionValue(extensionNode(tbs, OIDHEX.authorityKeyIdentifier)).children![0]!;
      keyId.body = Buffer.from(keyId.body!.map((b, i) => (i === 0 ? b ^ 1 : b)));
    });
    rejects(() => verifyLeaf(der), 'ERR_SVID_UNTRUSTED');
  });

  test('a leaf without an authority key identifier is refused (openssl -x509_strict error 85)', async () => {
    const bare = await makeLeaf({ issuer: inter, notBefore: nb, notAfter: na, authorityKeyId: false });
    rejects(() => verifyLeaf(bare.der), 'ERR_SVID_KEY_IDENTIFIER_MISSING');
  });
});

describe('CSR', () => {
  const ID = 'spiffe://example.org/web';
  const { privateKey } = generateP256KeyPair();
  const csr = createSvidCsr({ spiffeId: ID, privateKey }).der;
  const extensionsOf = (info: Node): Node[] => info.children![3]!.children![0]!.children![1]!.children![0]!.children!;

  test('control: the unedited CSR passes', () => {
    checkSvidCsr(resignWith(csr, privateKey, () => undefined), ID);
  });

  test('an extension with an explicit critical=FALSE is refused (DER: DEFAULT values are omitted)', () => {
    const der = resignWith(csr, privateKey, (info) => {
      extensionsOf(info)[0]!.children!.splice(1, 0, { tag: 0x01, body: Buffer.from([0x00]) });
    });
    rejects(() => checkSvidCsr(der, ID), 'ERR_CSR_MALFORMED');
  });

  test('an extension whose value is not one DER value is refused', () => {
    const der = resignWith(csr, privateKey, (info) => {
      extensionsOf(info).push({ tag: 0x30, children: [{ tag: 0x06, body: Buffer.from('551d0f', 'hex') }, { tag: 0x04, body: Buffer.from([0x03, 0x02]) }] });
    });
    rejects(() => checkSvidCsr(der, ID), 'ERR_CSR_MALFORMED');
  });

  test('a non-minimal version INTEGER is refused', () => {
    const der = resignWith(csr, privateKey, (info) => {
      info.children![0]!.body = Buffer.from([0x00, 0x00]);
    });
    rejects(() => checkSvidCsr(der, ID), 'ERR_CSR_MALFORMED');
  });
});
