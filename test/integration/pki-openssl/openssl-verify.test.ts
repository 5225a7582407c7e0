// Interop with a TLS stack nobody here wrote: `openssl verify` accepts Ward leaves against the
// exported bundle, through a whole CA rotation, and rejects them once their authority is revoked.
// Ward in turn rejects invalid certificates that openssl itself built.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManualClock } from '../../../src/core/clock.js';
import { bundleToPem } from '../../../src/pki/bundle.js';
import { CertificateAuthority } from '../../../src/pki/ca.js';
import { createSvidCsr } from '../../../src/pki/csr.js';
import { KeySealer } from '../../../src/pki/envelope.js';
import { PkiError } from '../../../src/pki/errors.js';
import { generateP256KeyPair } from '../../../src/pki/keys.js';
import { certToPem } from '../../../src/pki/pem.js';
import { issueX509Svid, type IssuedX509Svid } from '../../../src/pki/svid-issue.js';
import { verifyX509Svid } from '../../../src/pki/svid-verify.js';
import { parseTrustBundle } from '../../../src/pki/bundle.js';
import { runCli } from '../../helpers/cli.js';
import { run, tempDir } from '../../unit/pki/support/forge.js';

const clock = new ManualClock('2026-06-01T00:00:00Z');
const attime = String(Math.floor(clock.now() / 1000) + 60);
let t: ReturnType<typeof tempDir>;
before(() => (t = tempDir('ward-openssl-')));
after(() => t.cleanup());

function write(name: string, text: string): string {
  const p = join(t.dir, name);
  writeFileSync(p, text);
  return p;
}

function mint(ca: CertificateAuthority, id = 'spiffe://example.org/web'): IssuedX509Svid {
  const { privateKey } = generateP256KeyPair();
  return issueX509Svid({ ca, csr: createSvidCsr({ spiffeId: id, privateKey }).pem, spiffeId: id, clock });
}

async function opensslVerify(bundlePem: string, svid: IssuedX509Svid, extra: string[] = []): Promise<{ ok: boolean; out: string }> {
  const tag = randomBytes(4).toString('hex');
  const bundle = write(`bundle-${tag}.pem`, bundlePem);
  const untrusted = write(`inter-${tag}.pem`, svid.chainDer.slice(1).map((d) => certToPem(d)).join(''));
  const leaf = write(`leaf-${tag}.pem`, svid.certPem);
  const r = await run('openssl', ['verify', '-attime', attime, '-x509_strict', ...extra, '-CAfile', bundle, '-untrusted', untrusted, leaf]);
  return { ok: r.code === 0 && /: OK\s*$/.test(r.stdout), out: r.stdout + r.stderr };
}

test('openssl verify accepts Ward leaves for server and client auth', async () => {
  const ca = CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer: new KeySealer(randomBytes(32)) });
  const svid = mint(ca);
  for (const purpose of ['sslserver', 'sslclient']) {
    const r = await opensslVerify(bundleToPem(ca.trustBundle()), svid, ['-purpose', purpose]);
    assert.ok(r.ok, r.out);
  }
  // ...and refuses them after they expire (control: openssl is really checking).
  const late = await run('openssl', ['verify', '-attime', String(Math.floor(svid.notAfter / 1000) + 10), '-CAfile', write('b-late.pem', bundleToPem(ca.trustBundle())), '-untrusted', write('i-late.pem', certToPem(svid.chainDer[1]!)), write('l-late.pem', svid.certPem)]);
  assert.notEqual(late.code, 0);
  assert.match(late.stdout + late.stderr, /expired/);
});

test('openssl verify across a CA rotation: prepare, activate, taint, revoke', async () => {
  const ca = CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer: new KeySealer(randomBytes(32)) });
  const first = ca.authorities()[0]!.id;
  const oldLeaf = mint(ca);
  ca.prepare(clock);
  const afterPrepare = bundleToPem(ca.trustBundle());
  assert.ok((await opensslVerify(afterPrepare, oldLeaf)).ok, 'old leaf valid against the bundle that already holds the next root');
  ca.activate(clock);
  const newLeaf = mint(ca);
  assert.notEqual(newLeaf.authorityId, oldLeaf.authorityId);
  // A peer that fetched the bundle at prepare time already trusts leaves of the new authority.
  assert.ok((await opensslVerify(afterPrepare, newLeaf)).ok, 'new leaf valid against the bundle published at prepare');
  const overlap = bundleToPem(ca.trustBundle());
  assert.ok((await opensslVerify(overlap, oldLeaf)).ok);
  assert.ok((await opensslVerify(overlap, newLeaf)).ok);
  ca.taint(first, clock);
  assert.ok((await opensslVerify(bundleToPem(ca.trustBundle()), oldLeaf)).ok, 'tainted is still trusted');
  ca.revoke(first, clock);
  const revoked = bundleToPem(ca.trustBundle());
  const r = await opensslVerify(revoked, oldLeaf);
  assert.ok(!r.ok, 'old leaf refused once its authority is revoked');
  assert.match(r.out, /unable to get (local )?issuer certificate/);
  assert.ok((await opensslVerify(revoked, newLeaf)).ok);
});

test('openssl verify refuses a leaf from another trust domain\'s CA', async () => {
  const ours = CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer: new KeySealer(randomBytes(32)) });
  const theirs = CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer: new KeySealer(randomBytes(32)) });
  const r = await opensslVerify(bundleToPem(ours.trustBundle()), mint(theirs));
  assert.ok(!r.ok, r.out);
});

test('upstream mode with an RSA enterprise root made by openssl: leaves verify against that root', async () => {
  const key = join(t.dir, 'ent.key');
  const cert = join(t.dir, 'ent.pem');
  const cfg = write('ent.cnf', '[req]\ndistinguished_name=dn\n[dn]\n[v3]\nbasicConstraints=critical,CA:TRUE,pathlen:2\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n');
  const gen = await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '3650', '-subj', '/O=Acme/CN=Acme Enterprise Root', '-config', cfg, '-extensions', 'v3', '-set_serial', '1']);
  assert.equal(gen.code, 0, gen.stderr);
  // openssl's root is valid from real now; use a clock at real now for this CA.
  const now = new ManualClock(Date.now());
  const dir = join(t.dir, 'upca');
  const env = { WARD_MASTER_KEY: randomBytes(32).toString('base64') };
  const init = await runCli(['ca', 'init', '--dir', dir, '--trust-domain', 'example.org', '--upstream-cert', cert, '--upstream-key', key], { clock: now, env });
  assert.equal(init.code, 0, init.stderr);
  assert.ok(!readFileSync(join(dir, 'ca.json'), 'utf8').includes('PRIVATE KEY'), 'upstream key stored sealed');
  assert.equal(readFileSync(join(dir, 'bundle.pem'), 'utf8'), readFileSync(cert, 'utf8').replace(/\r/g, ''));
  const mintR = await runCli(['svid', 'mint', '--dir', dir, '--spiffe-id', 'spiffe://example.org/web', '--out-cert', join(t.dir, 'up.pem'), '--out-key', join(t.dir, 'up.key')], { clock: now, env });
  assert.equal(mintR.code, 0, mintR.stderr);
  const chain = readFileSync(join(t.dir, 'up.pem'), 'utf8');
  const blocks = chain.split(/(?=-----BEGIN CERTIFICATE-----)/);
  const v = await run('openssl', ['verify', '-x509_strict', '-CAfile', cert, '-untrusted', write('up-inter.pem', blocks[1]!), write('up-leaf.pem', blocks[0]!)]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
});

test('Ward rejects invalid leaves that openssl built, each with its rule code', async () => {
  const cfg = write('bad.cnf', [
    '[req]', 'distinguished_name=dn', '[dn]',
    '[ca]', 'basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash',
    '[good]', 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'subjectAltName=URI:spiffe://example.org/web',
    '[leafca]', 'basicConstraints=critical,CA:TRUE', 'keyUsage=critical,digitalSignature', 'subjectAltName=URI:spiffe://example.org/web',
    '[certsign]', 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyCertSign', 'subjectAltName=URI:spiffe://example.org/web',
    '[nodigsig]', 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,keyEncipherment', 'subjectAltName=URI:spiffe://example.org/web',
    '[nouri]', 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'subjectAltName=DNS:web.example.org',
    '[twouri]', 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'subjectAltName=URI:spiffe://example.org/a,URI:spiffe://example.org/b',
    '[https]', 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'subjectAltName=URI:https://example.org/web',
    '[foreign]', 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'subjectAltName=URI:spiffe://other.org/web',
    '',
  ].join('\n'));
  const caKey = join(t.dir, 'tca.key');
  const caCert = join(t.dir, 'tca.pem');
  assert.equal((await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caCert, '-days', '2', '-subj', '/CN=openssl test root', '-config', cfg, '-extensions', 'ca'])).code, 0);
  const bundle = parseTrustBundle(readFileSync(caCert, 'utf8'), { trustDomain: 'example.org' });
  // One fixed instant inside every certificate's validity (openssl stamps notBefore with the wall clock).
  const at = Date.now() + 5 * 60_000;
  const expectations: [string, string][] = [
    ['good', 'OK'], ['leafca', 'ERR_SVID_LEAF_IS_CA'], ['certsign', 'ERR_SVID_LEAF_KEY_CERT_SIGN'], ['nodigsig', 'ERR_SVID_LEAF_NO_DIGITAL_SIGNATURE'],
    ['nouri', 'ERR_SVID_URI_SAN_COUNT'], ['twouri', 'ERR_SVID_URI_SAN_COUNT'], ['https', 'ERR_SVID_URI_NOT_SPIFFE'], ['foreign', 'ERR_SVID_WRONG_TRUST_DOMAIN'],
  ];
  for (const [ext, expected] of expectations) {
    const key = join(t.dir, `${ext}.key`);
    const csr = join(t.dir, `${ext}.csr`);
    const out = join(t.dir, `${ext}.pem`);
    assert.equal((await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', '/O=t', '-config', cfg])).code, 0);
    const sign = await run('openssl', ['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial', '-days', '1', '-out', out, '-extfile', cfg, '-extensions', ext]);
    assert.equal(sign.code, 0, sign.stderr);
    let got = 'OK';
    try {
      verifyX509Svid(readFileSync(out, 'utf8'), bundle, { at });
    } catch (e) {
      assert.ok(e instanceof PkiError, String(e));
      got = e.code;
    }
    assert.equal(got, expected, ext);
  }
});
