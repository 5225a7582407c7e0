import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkSvidCsr, createSvidCsr } from '../../../src/pki/csr.js';
import { PkiError } from '../../../src/pki/errors.js';
import { generateP256KeyPair, privateKeyToPem, spkiOf } from '../../../src/pki/keys.js';
import { run, tempDir, x509, type CryptoKeyPair } from './support/forge.js';

const ID = 'spiffe://example.org/ns/prod/sa/api';

const code = (fn: () => unknown): string => {
  try {
    fn();
    return 'OK';
  } catch (e) {
    assert.ok(e instanceof PkiError, String(e));
    return e.code;
  }
};

test('createSvidCsr builds a CSR that @peculiar/x509 and openssl read, and checkSvidCsr accepts', async () => {
  const { privateKey, publicKey } = generateP256KeyPair();
  const csr = createSvidCsr({ spiffeId: ID, privateKey });
  const parsed = new x509.Pkcs10CertificateRequest(csr.pem);
  assert.equal(await parsed.verify(), true);
  const san = parsed.getExtension('2.5.29.17') as x509.SubjectAlternativeNameExtension | null;
  assert.deepEqual(san?.names.toJSON(), [{ type: 'url', value: ID }]);
  assert.equal(parsed.subject, '');
  const checked = checkSvidCsr(csr.pem, ID);
  assert.ok(checked.spki.equals(spkiOf(publicKey)));
  assert.equal(code(() => checkSvidCsr(csr.der, ID)), 'OK');
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, 'csr.pem'), csr.pem);
    const r = await run('openssl', ['req', '-in', join(t.dir, 'csr.pem'), '-verify', '-noout', '-text']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /verify OK/);
    assert.match(r.stdout, new RegExp(`URI:${ID}`));
  } finally {
    t.cleanup();
  }
});

test('an openssl-made CSR with the right URI SAN is accepted; with CN or DNS it is rejected', async () => {
  const t = tempDir();
  try {
    const key = join(t.dir, 'k.pem');
    writeFileSync(key, privateKeyToPem(generateP256KeyPair().privateKey));
    const make = async (subj: string, san: string): Promise<string> => {
      const r = await run('openssl', ['req', '-new', '-key', key, '-subj', subj, '-addext', `subjectAltName=${san}`]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    assert.equal(code(() => checkSvidCsr('', ID)), 'ERR_CSR_MALFORMED');
    const good = await make('/O=Acme', `URI:${ID}`);
    assert.equal(code(() => checkSvidCsr(good, ID)), 'OK');
    { const pem = await make('/CN=api', `URI:${ID}`); assert.equal(code(() => checkSvidCsr(pem, ID)), 'ERR_CSR_FORBIDDEN_NAME'); }
    { const pem = await make('/O=Acme', `URI:${ID},DNS:api.example.org`); assert.equal(code(() => checkSvidCsr(pem, ID)), 'ERR_CSR_FORBIDDEN_NAME'); }
    { const pem = await make('/O=Acme', `URI:${ID},IP:10.0.0.1`); assert.equal(code(() => checkSvidCsr(pem, ID)), 'ERR_CSR_FORBIDDEN_NAME'); }
    { const pem = await make('/O=Acme', `URI:${ID},email:a@example.org`); assert.equal(code(() => checkSvidCsr(pem, ID)), 'ERR_CSR_FORBIDDEN_NAME'); }
    { const pem = await make('/emailAddress=a@example.org', `URI:${ID}`); assert.equal(code(() => checkSvidCsr(pem, ID)), 'ERR_CSR_FORBIDDEN_NAME'); }
    { const pem = await make('/O=Acme', `URI:${ID},URI:spiffe://example.org/other`); assert.equal(code(() => checkSvidCsr(pem, ID)), 'ERR_CSR_SPIFFE_ID_MISMATCH'); }
    { const pem = await make('/O=Acme', 'URI:spiffe://example.org/other'); assert.equal(code(() => checkSvidCsr(pem, ID)), 'ERR_CSR_SPIFFE_ID_MISMATCH'); }
    { const pem = await make('/O=Acme', 'URI:spiffe://evil.org/ns/prod/sa/api'); assert.equal(code(() => checkSvidCsr(pem, ID)), 'ERR_CSR_SPIFFE_ID_MISMATCH'); }
  } finally {
    t.cleanup();
  }
});

test('a CSR whose signature does not verify is rejected', () => {
  const { privateKey } = generateP256KeyPair();
  const csr = createSvidCsr({ spiffeId: ID, privateKey });
  const bad = Buffer.from(csr.der);
  bad[bad.length - 3] = (bad[bad.length - 3] as number) ^ 0xff;
  assert.match(code(() => checkSvidCsr(bad, ID)), /ERR_CSR_SIGNATURE|ERR_CSR_MALFORMED/);
  // Flip a byte inside the signed info (in the URI): the signature must fail.
  const tampered = Buffer.from(csr.der);
  const at = tampered.indexOf(Buffer.from('prod'));
  tampered.write('pro0', at, 'latin1');
  assert.equal(code(() => checkSvidCsr(tampered, 'spiffe://example.org/ns/pro0/sa/api')), 'ERR_CSR_SIGNATURE');
});

test('a CSR without SAN, or with small RSA / unsupported keys, is rejected', async () => {
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const noSan = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'O=x', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } });
  assert.equal(code(() => checkSvidCsr(noSan.toString('pem'), ID)), 'ERR_CSR_SPIFFE_ID_MISMATCH');
  const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 });
  assert.throws(() => createSvidCsr({ spiffeId: ID, privateKey: rsa1024.privateKey }), (e: unknown) => e instanceof PkiError && e.code === 'ERR_KEY_INVALID');
  const rsa2048 = generateKeyPairSync('rsa', { modulusLength: 2048 });
  assert.equal(code(() => checkSvidCsr(createSvidCsr({ spiffeId: ID, privateKey: rsa2048.privateKey }).pem, ID)), 'OK');
  const ed = generateKeyPairSync('ed25519');
  assert.equal(code(() => checkSvidCsr(createSvidCsr({ spiffeId: ID, privateKey: ed.privateKey }).pem, ID)), 'OK');
});
