// Differential fuzzing of Ward's hand-written DER certificate/CSR reader (src/pki/der.ts,
// certificate.ts, csr.ts) against two parsers nobody here wrote: OpenSSL (node:crypto
// X509Certificate, `openssl verify -x509_strict`) and @peculiar/x509. Inputs are valid
// certificates and CSRs mutated at the DER-tree level (non-minimal lengths, BOOLEAN values,
// INTEGER padding/sign, BIT STRING unused bits, UTCTime/GeneralizedTime, extra/missing/duplicate
// fields, retagging, byte flips) and then RE-SIGNED with the real issuer key, so the signature
// is valid and only the encoding decides. The rule is fail-closed agreement: whenever Ward
// accepts, the references must accept too and read the same SANs, basicConstraints, key usage,
// EKU, validity and signature validity. Ward may be stricter; it may never be laxer.
import 'reflect-metadata';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { ManualClock } from '../../src/core/clock.js';
import { bundleToPem } from '../../src/pki/bundle.js';
import { CertificateAuthority } from '../../src/pki/ca.js';
import { parseCertificate, publicKeyOf, verifySignature, type ParsedCertificate } from '../../src/pki/certificate.js';
import { checkSvidCsr, createSvidCsr } from '../../src/pki/csr.js';
import { KeySealer } from '../../src/pki/envelope.js';
import { PkiError } from '../../src/pki/errors.js';
import { generateP256KeyPair } from '../../src/pki/keys.js';
import { certToPem } from '../../src/pki/pem.js';
import { issueX509Svid } from '../../src/pki/svid-issue.js';
import { verifyX509Svid } from '../../src/pki/svid-verify.js';
import { KU, keyObjectOf, makeCa, makeLeaf, run, tempDir, x509 } from '../unit/pki/support/forge.js';
import { allNodes, clone, encode, isOneTlv, parseTree, type Node } from '../unit/pki/support/der-tree.js';

// ------------------------------------------------------------------ DER-level mutations

/** One DER-level mutation, chosen by `kind`, applied to the node picked by `pick`. */
function mutate(root: Node, kind: number, pick: number, r: number): string {
  const nodes = allNodes(root).slice(1);
  const n = nodes[pick % nodes.length]!;
  const flatten = (): void => {
    n.body = encode({ ...n, tag: 0 }).subarray(2); // content bytes (child encodings) as a primitive
    delete n.children;
    delete n.prefix;
  };
  switch (kind) {
    case 0: n.longLength = true; return 'non-minimal length';
    case 1: { // BOOLEAN values
      const b = nodes.filter((x) => x.tag === 0x01);
      const t = b.length ? b[pick % b.length]! : n;
      t.tag = 0x01;
      t.children = undefined;
      t.body = Buffer.from([[0x00, 0x01, 0x7f, 0xfe][r % 4]!]);
      return 'boolean value';
    }
    case 2: { // INTEGER: leading zero, negative, zero
      const ints = nodes.filter((x) => x.tag === 0x02);
      const t = ints[pick % Math.max(1, ints.length)] ?? n;
      if (!t.body) return 'noop';
      t.body = [Buffer.concat([Buffer.from([0]), t.body]), Buffer.from([0xff, ...t.body]), Buffer.from([0x00]), Buffer.from([0x80 | (t.body[0]! & 0x7f), ...t.body.subarray(1)]), Buffer.concat([Buffer.from([0x01]), randomBytes(21)])][r % 5]!;
      return 'integer encoding';
    }
    case 3: { // BIT STRING unused bits / padding bits
      const bs = nodes.filter((x) => x.tag === 0x03 && x.body);
      const t = bs[pick % Math.max(1, bs.length)];
      if (!t?.body) return 'noop';
      const body = Buffer.from(t.body);
      if (r % 2 === 0) body[0] = r % 9;
      else if (body.length > 1) body[body.length - 1] = body[body.length - 1]! | (1 << Math.min(body[0]!, 7)) - 1 | 1;
      t.body = body;
      return 'bit string unused bits';
    }
    case 4: { // times
      const times = nodes.filter((x) => x.tag === 0x17 || x.tag === 0x18);
      const t = times[pick % Math.max(1, times.length)];
      if (!t?.body) return 'noop';
      const s = t.body.toString('latin1');
      const variants = t.tag === 0x17
        ? [[0x18, `${Number(s.slice(0, 2)) < 50 ? '20' : '19'}${s}`], [0x18, `${Number(s.slice(0, 2)) < 50 ? '19' : '20'}${s}`], [0x17, s.replace('Z', '+0000')], [0x17, `${s.slice(0, 10)}Z`], [0x17, s.replace('Z', '.5Z')], [0x17, `${s.slice(0, 6)}240000Z`]]
        : [[0x17, s.slice(2)], [0x18, s.replace('Z', '.0Z')], [0x18, s.replace('Z', '')]];
      const [tag, text] = variants[r % variants.length]!;
      t.tag = tag as number;
      t.body = Buffer.from(text as string, 'latin1');
      return 'time encoding';
    }
    case 5: { // extra child
      if (!n.children) return 'noop';
      const extra = [Buffer.from([0x05, 0x00]), Buffer.from([0x02, 0x01, 0x05]), Buffer.from([0x01, 0x01, 0xff]), Buffer.from([0x30, 0x00])][r % 4]!;
      n.children.splice(r % (n.children.length + 1), 0, parseTree(extra)[0]!);
      return 'extra child';
    }
    case 6: if (!n.children || n.children.length === 0) return 'noop'; n.children.splice(r % n.children.length, 1); return 'missing child';
    case 7: if (!n.children || n.children.length === 0) return 'noop'; { const i = r % n.children.length; n.children.splice(i, 0, clone(n.children[i]!)); } return 'duplicate child';
    case 8: {
      const tags = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x16, 0x30, 0x31, 0x80, 0x81, 0x82, 0x86, 0x87, 0xa0, 0xa3];
      const tag = tags[r % tags.length]!;
      if (n.children && (tag & 0x20) === 0) flatten();
      else if (!n.children && (tag & 0x20)) {
        if (!isOneTlv(n.body!)) return 'noop';
        n.children = parseTree(n.body!);
        delete n.body;
      }
      n.tag = tag;
      return 'retag';
    }
    default: { // byte flip in a primitive body
      if (!n.body || n.body.length === 0) return 'noop';
      n.body[r % n.body.length] ^= 1 << (r % 8);
      return 'byte flip';
    }
  }
}

// ------------------------------------------------------------------ fixtures

const clock = new ManualClock('2026-06-01T00:00:00Z');
const at = clock.now();
const ca = CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer: new KeySealer(randomBytes(32)) });
const signer = ca.x509Signer(clock);
const bundle = ca.trustBundle();
const ID = 'spiffe://example.org/ns/prod/sa/api';
const requester = generateP256KeyPair();
const csr = createSvidCsr({ spiffeId: ID, privateKey: requester.privateKey });
const wardLeaf = issueX509Svid({ ca, csr: csr.der, spiffeId: ID, clock }).certDer;

interface Seed { readonly der: Buffer; readonly issuerKey: KeyObject; readonly issuerSpki: Buffer }
const seeds: Seed[] = [];
let t: ReturnType<typeof tempDir>;

before(async () => {
  t = tempDir('ward-x509-diff-');
  seeds.push({ der: wardLeaf, issuerKey: signer.key, issuerSpki: signer.cert.spki });
  // Certificates made by a library Ward's issuer does not use, with the fields varied.
  const nb = new Date(at - 3_600_000);
  const na = new Date(at + 3_600_000);
  const root = await makeCa({ name: 'CN=Diff Root', notBefore: nb, notAfter: new Date('2051-01-01T00:00:00Z'), pathLength: 1 });
  const rootKey = await keyObjectOf(root.keys);
  const rootSpki = parseCertificate(root.der).spki;
  const inter = await makeCa({ name: 'CN=Diff Inter', issuer: root, notBefore: nb, notAfter: na, pathLength: 0, keyUsage: KU.keyCertSign });
  const interKey = await keyObjectOf(inter.keys);
  const interSpki = parseCertificate(inter.der).spki;
  seeds.push({ der: inter.der, issuerKey: rootKey, issuerSpki: rootSpki });
  const leafA = await makeLeaf({ issuer: inter, notBefore: nb, notAfter: na, dns: ['api.example.org'], keyUsage: KU.digitalSignature | KU.keyEncipherment });
  seeds.push({ der: leafA.der, issuerKey: interKey, issuerSpki: interSpki });
  const leafB = await makeLeaf({ issuer: inter, notBefore: new Date('1999-01-01T00:00:00Z'), notAfter: new Date('2060-01-01T00:00:00Z'), keyUsage: KU.digitalSignature | KU.decipherOnly });
  seeds.push({ der: leafB.der, issuerKey: interKey, issuerSpki: interSpki });
});
after(() => t.cleanup());

// ------------------------------------------------------------------ reference readings

const KU_FLAGS = [KU.digitalSignature, KU.nonRepudiation, KU.keyEncipherment, KU.dataEncipherment, KU.keyAgreement, KU.keyCertSign, KU.cRLSign, KU.encipherOnly];

/** Ward's first key-usage byte as @peculiar/x509 flags. */
function wardKuFlags(ku: number): number {
  let flags = 0;
  for (let bit = 0; bit < 8; bit++) if (ku & (0x80 >> bit)) flags |= KU_FLAGS[bit]!;
  return flags;
}

/** Asserts every reference reads `der` as Ward did. Returns a short diff or undefined. */
function compare(der: Buffer, w: ParsedCertificate, seed: Seed): string | undefined {
  try {
    return compareOrThrow(der, w, seed);
  } catch (e) {
    return `a reference cannot read what Ward accepts: ${(e as Error).message}`;
  }
}

function compareOrThrow(der: Buffer, w: ParsedCertificate, seed: Seed): string | undefined {
  let ossl: X509Certificate;
  let pec: x509.X509Certificate;
  try {
    ossl = new X509Certificate(der);
  } catch (e) {
    return `OpenSSL rejects what Ward accepts: ${(e as Error).message}`;
  }
  const fromOpenssl = compareWithOpenssl(ossl, w, seed);
  if (fromOpenssl !== undefined) return fromOpenssl;
  try {
    pec = new x509.X509Certificate(der);
  } catch (e) {
    // @peculiar/x509 decodes every extension it knows eagerly; Ward (like OpenSSL's parser) reads
    // only those it processes. A broken extension Ward does not process is @peculiar's call alone.
    if (NOT_PROCESSED_BY_WARD.test((e as Error).message)) return undefined;
    return `@peculiar/x509 rejects what Ward accepts: ${(e as Error).message}`;
  }
  const pecUris = (pec.getExtension<x509.SubjectAlternativeNameExtension>('2.5.29.17')?.names.items ?? []).filter((n) => n.type === 'url').map((n) => n.value);
  if (JSON.stringify(pecUris) !== JSON.stringify(w.san.uris)) return `URI SANs: ward ${JSON.stringify(w.san.uris)} peculiar ${JSON.stringify(pecUris)}`;
  const bc = pec.getExtension<x509.BasicConstraintsExtension>('2.5.29.19');
  if ((bc?.ca ?? false) !== (w.basicConstraints?.ca ?? false) || bc?.pathLength !== w.basicConstraints?.pathLen) {
    return `basicConstraints: ward ${JSON.stringify(w.basicConstraints)} peculiar ca=${bc?.ca} pathLen=${bc?.pathLength}`;
  }
  const ku = pec.getExtension<x509.KeyUsagesExtension>('2.5.29.15');
  if ((ku === null) !== (w.keyUsage === undefined) || (ku && (ku.usages & 0xff) !== wardKuFlags(w.keyUsage!))) return `keyUsage: ward ${w.keyUsage} peculiar ${ku?.usages}`;
  const eku = pec.getExtension<x509.ExtendedKeyUsageExtension>('2.5.29.37');
  if (JSON.stringify(eku?.usages.map(String)) !== JSON.stringify(w.extKeyUsage)) return `EKU: ward ${JSON.stringify(w.extKeyUsage)} peculiar ${JSON.stringify(eku?.usages)}`;
  if (pec.notBefore.getTime() !== w.notBefore || pec.notAfter.getTime() !== w.notAfter) return `validity: ward ${w.notBefore}/${w.notAfter} peculiar ${pec.notBefore.getTime()}/${pec.notAfter.getTime()}`;
  return undefined;
}

const NOT_PROCESSED_BY_WARD = /CRLDistributionPoints|CertificatePolicies|AuthorityInfoAccess|IssuerAlternativeName|PolicyConstraints|PolicyMappings|InhibitAnyPolicy|FreshestCRL|SubjectInfoAccess|PrivateKeyUsagePeriod|SubjectDirectoryAttributes/;

function compareWithOpenssl(ossl: X509Certificate, w: ParsedCertificate, seed: Seed): string | undefined {
  // Node quotes (JSON) a value holding a separator or an escape.
  const osslUris = [...(ossl.subjectAltName ?? '').matchAll(/(?:^|, )URI:("(?:[^"\\]|\\.)*"|[^,]*)/g)].map((m) => (m[1]!.startsWith('"') ? JSON.parse(m[1]!) as string : m[1]));
  if (JSON.stringify(osslUris) !== JSON.stringify(w.san.uris)) return `URI SANs: ward ${JSON.stringify(w.san.uris)} openssl ${JSON.stringify(osslUris)}`;
  // node's `ca` is OpenSSL's X509_check_ca(): the CA flag AND keyCertSign when key usage is present.
  const wardCanSign = (w.basicConstraints?.ca ?? false) && (w.keyUsage === undefined || (w.keyUsage & 0x04) !== 0);
  if (ossl.ca !== wardCanSign) return `CA flag: ward ${w.basicConstraints?.ca} (keyUsage ${w.keyUsage}) openssl ${ossl.ca}`;
  if (Date.parse(ossl.validFrom) !== w.notBefore || Date.parse(ossl.validTo) !== w.notAfter) return `validity: ward ${w.notBefore}/${w.notAfter} openssl ${ossl.validFrom}/${ossl.validTo}`;
  const wardSig = verifySignature(w.signatureAlgorithm, w.tbs, w.signature, publicKeyOf(seed.issuerSpki));
  if (wardSig !== ossl.verify(publicKeyOf(seed.issuerSpki))) return `signature validity: ward ${wardSig} openssl ${!wardSig}`;
  return undefined;
}

function resign(tree: Node, key: KeyObject): Buffer {
  // children: [tbs, algorithm, signature]; re-sign whatever the TBS became.
  const tbs = encode(tree.children![0]!);
  const sig = sign('sha256', tbs, key);
  return encode({ tag: 0x30, children: [tree.children![0]!, tree.children![1]!, { tag: 0x03, body: Buffer.concat([Buffer.from([0]), sig]) }] });
}

const mutationArb = fc.record({ seed: fc.nat(), kind: fc.integer({ min: 0, max: 9 }), pick: fc.nat(), r: fc.nat(), twice: fc.boolean(), kind2: fc.integer({ min: 0, max: 9 }), pick2: fc.nat() });

// ------------------------------------------------------------------ tests

test('tree round trip: parse + encode reproduces every seed byte for byte', () => {
  for (const s of seeds) assert.ok(encode(parseTree(s.der)[0]!).equals(s.der));
  assert.ok(encode(parseTree(csr.der)[0]!).equals(csr.der));
});

test('controls: every seed is read identically by Ward, OpenSSL and @peculiar/x509', () => {
  for (const s of seeds) assert.equal(compare(s.der, parseCertificate(s.der), s), undefined);
});

test('re-signed DER-level mutations of certificates: whenever Ward parses, OpenSSL and @peculiar/x509 agree', () => {
  let wardAccepted = 0;
  let wardStricter = 0;
  fc.assert(fc.property(mutationArb, (m) => {
    const seed = seeds[m.seed % seeds.length]!;
    const tree = parseTree(seed.der)[0]!;
    const tbs = { tag: 0x30, children: [tree.children![0]!] };
    const what = [mutate(tbs, m.kind, m.pick, m.r)];
    if (m.twice) what.push(mutate(tbs, m.kind2, m.pick2, m.r >> 3));
    tree.children![0] = tbs.children[0]!;
    if (tree.children![0]!.tag !== 0x30 || !tree.children![0]!.children) return;
    const der = resign(tree, seed.issuerKey);
    let w: ParsedCertificate;
    try {
      w = parseCertificate(der);
    } catch (e) {
      if (!(e instanceof PkiError)) throw e;
      try {
        new X509Certificate(der);
        new x509.X509Certificate(der);
        wardStricter++;
      } catch { /* everyone rejects */ }
      return;
    }
    wardAccepted++;
    const diff = compare(der, w, seed);
    assert.equal(diff, undefined, `${what.join(' + ')}: ${diff}\n${der.toString('hex')}`);
  }), { numRuns: 1500 });
  // The generator must reach both sides, or the property says nothing.
  assert.ok(wardAccepted > 20, `only ${wardAccepted} mutants parsed`);
  assert.ok(wardStricter >= 0);
});

test('re-signed mutations of a Ward SVID: whenever verifyX509Svid accepts, `openssl verify -x509_strict` accepts too', async () => {
  const inter = signer.chainDer[0]!;
  const caFile = join(t.dir, 'bundle.pem');
  const untrusted = join(t.dir, 'inter.pem');
  writeFileSync(caFile, bundleToPem(bundle));
  writeFileSync(untrusted, certToPem(inter));
  const accepted: { der: Buffer; what: string }[] = [];
  fc.assert(fc.property(mutationArb, (m) => {
    const tree = parseTree(wardLeaf)[0]!;
    const tbs = { tag: 0x30, children: [tree.children![0]!] };
    const what = mutate(tbs, m.kind, m.pick, m.r);
    tree.children![0] = tbs.children[0]!;
    if (tree.children![0]!.tag !== 0x30 || !tree.children![0]!.children) return;
    const der = resign(tree, signer.key);
    if (der.equals(wardLeaf)) return;
    try {
      verifyX509Svid([der, inter], bundle, { at });
    } catch (e) {
      if (e instanceof PkiError) return;
      throw e;
    }
    if (accepted.length < 40) accepted.push({ der, what });
  }), { numRuns: 1200 });
  assert.ok(accepted.length > 5, `only ${accepted.length} mutants verified`);
  const attime = String(Math.floor(at / 1000));
  for (const [i, a] of accepted.entries()) {
    const leafFile = join(t.dir, `leaf-${i}.pem`);
    writeFileSync(leafFile, certToPem(a.der));
    const r = await run('openssl', ['verify', '-x509_strict', '-attime', attime, '-CAfile', caFile, '-untrusted', untrusted, leafFile]);
    assert.equal(r.code, 0, `${a.what}: Ward accepted, openssl refused: ${r.stdout}${r.stderr}\n${a.der.toString('hex')}`);
  }
});

test('re-signed mutations of a CSR: whenever checkSvidCsr accepts, @peculiar/x509 reads a valid CSR for exactly that one URI', async () => {
  const accepted: { der: Buffer; what: string }[] = [];
  fc.assert(fc.property(mutationArb, (m) => {
    const tree = parseTree(csr.der)[0]!;
    const info = { tag: 0x30, children: [tree.children![0]!] };
    const what = mutate(info, m.kind, m.pick, m.r);
    tree.children![0] = info.children[0]!;
    if (tree.children![0]!.tag !== 0x30 || !tree.children![0]!.children) return;
    const der = resign(tree, requester.privateKey);
    try {
      checkSvidCsr(der, ID);
    } catch (e) {
      if (e instanceof PkiError) return;
      throw e;
    }
    if (accepted.length < 200) accepted.push({ der, what });
  }), { numRuns: 1200 });
  assert.ok(accepted.length > 5, `only ${accepted.length} CSR mutants accepted`);
  for (const a of accepted) {
    let req: x509.Pkcs10CertificateRequest;
    try {
      req = new x509.Pkcs10CertificateRequest(a.der);
    } catch (e) {
      assert.fail(`${a.what}: Ward accepted a CSR @peculiar/x509 cannot read (${(e as Error).message}): ${a.der.toString('hex')}`);
    }
    assert.equal(await req.verify(), true, `${a.what}: signature`);
    let names: readonly x509.GeneralName[];
    try {
      names = (req.getExtension('2.5.29.17') as x509.SubjectAlternativeNameExtension | null)?.names.items ?? [];
    } catch (e) {
      assert.fail(`${a.what}: Ward accepted a CSR whose extensions @peculiar/x509 cannot read (${(e as Error).message}): ${a.der.toString('hex')}`);
    }
    assert.deepEqual(names.map((n) => [n.type, n.value]), [['url', ID]], `${a.what}: ${a.der.toString('hex')}`);
  }
});
