import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { generateKeyPairSync } from 'node:crypto';
import {
  ProvenanceVerifier, ProvenanceError, preAuthEncoding, normalizeRepo,
} from '../../../../src/platforms/provenance/index.js';
import { envelope, makeKey, signBytes, statement, type Alg } from './sign.js';

const AT = Date.parse('2026-03-01T12:00:00Z');
const DIGEST = 'sha256:7c9e2d4b1a0f8e6d5c3b2a19087f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5';
const GH_BUILDER = 'https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ProvenanceError, String(e));
    return e.code;
  }
  assert.fail('expected a ProvenanceError');
}

const values = (attrs: Record<string, { value: unknown }>) => Object.fromEntries(Object.entries(attrs).map(([k, a]) => [k, a.value]));

test('PAE matches the DSSE spec test vector', () => {
  assert.equal(preAuthEncoding('http://example.com/HelloWorld', Buffer.from('hello world')).toString(), 'DSSEv1 29 http://example.com/HelloWorld 11 hello world');
  assert.equal(preAuthEncoding('t', Buffer.from('é')).toString(), 'DSSEv1 1 t 2 é');
});

for (const alg of ['ecdsa-p256', 'ecdsa-p384', 'ed25519', 'rsa-pss', 'rsa-pkcs1'] as Alg[]) {
  test(`SLSA v1 / Statement v1 signed with ${alg} verifies and yields build attributes`, () => {
    const key = makeKey(alg);
    const v = new ProvenanceVerifier({ keys: [{ keyid: 'release', publicKey: key.publicPem }] });
    const r = v.verify(JSON.stringify(envelope(statement('slsa-v1-github-container.statement.json'), [{ key, keyid: 'release' }])), AT);
    assert.deepEqual(r.subjectDigests, [DIGEST]);
    assert.deepEqual(values(r.attributes), {
      'build.builder': GH_BUILDER,
      'build.verified': true,
      'build.repo': 'https://github.com/acme/orders',
      'build.commit': '4e3b1f0a9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a',
    });
    for (const a of Object.values(r.attributes)) assert.ok(a.source === 'provenance:slsa' && a.observedAt === AT);
    assert.deepEqual(r.signedBy, ['release']);
  });
}

test('ECDSA signatures in IEEE P1363 form are accepted too', () => {
  const key = makeKey('ecdsa-p256');
  const v = new ProvenanceVerifier({ keys: [{ publicKey: key.publicPem }] });
  assert.equal(v.verify(envelope(statement('slsa-v1-github-container.statement.json'), [{ key }], { p1363: true }), AT).verified, true);
});

test('field drift: Statement v0.1 + SLSA v0.2, and v1 drafts with systemParameters', () => {
  const key = makeKey('ed25519');
  const v = new ProvenanceVerifier({ keys: [{ publicKey: key.publicPem }] });
  const old = v.verify(envelope(statement('slsa-v02-github-generic.statement.json'), [{ key }]), AT);
  assert.equal(old.facts.statementType, 'https://in-toto.io/Statement/v0.1');
  assert.deepEqual(old.subjectDigests, [`sha256:${'b'.repeat(64)}`, `sha256:${'c'.repeat(64)}`, `sha512:${'d'.repeat(128)}`]);
  assert.equal(values(old.attributes)['build.repo'], 'https://github.com/acme/payments');
  assert.equal(values(old.attributes)['build.commit'], '0123456789abcdef0123456789abcdef01234567');
  const rc = v.verify(envelope(statement('slsa-v1rc-systemparameters.statement.json'), [{ key }]), AT);
  assert.deepEqual(values(rc.attributes), {
    'build.builder': 'https://cloudbuild.googleapis.com/GoogleHostedWorker',
    'build.verified': true,
    'build.repo': 'https://github.com/acme/web',
    'build.commit': '89abcdef0123456789abcdef0123456789abcdef',
  });
  // v0.1 statement with a v1 predicate is fine too
  const mixed = { ...statement('slsa-v1-github-container.statement.json'), _type: 'https://in-toto.io/Statement/v0.1' };
  assert.equal(v.verify(envelope(mixed, [{ key }]), AT).verified, true);
});

test('a Sigstore bundle wrapping the envelope is unwrapped', () => {
  const key = makeKey('ecdsa-p256');
  const v = new ProvenanceVerifier({ keys: [{ publicKey: key.publicPem }] });
  const bundle = { mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.2', verificationMaterial: {}, dsseEnvelope: envelope(statement('slsa-v1-github-container.statement.json'), [{ key }]) };
  assert.equal(v.verify(bundle, AT).verified, true);
});

test('tampered payload, forged signature, wrong key, unknown key: ERR_PROVENANCE_SIGNATURE', () => {
  const key = makeKey('ecdsa-p256');
  const other = makeKey('ecdsa-p256');
  const v = new ProvenanceVerifier({ keys: [{ keyid: 'release', publicKey: key.publicPem }] });
  const good = envelope(statement('slsa-v1-github-container.statement.json'), [{ key, keyid: 'release' }]);
  // tampered: change the commit inside the signed payload
  const stmt = JSON.parse(Buffer.from(good['payload'] as string, 'base64').toString()) as { predicate: { buildDefinition: { resolvedDependencies: Array<{ digest: { gitCommit: string } }> } } };
  stmt.predicate.buildDefinition.resolvedDependencies[0]!.digest.gitCommit = 'f'.repeat(40);
  assert.equal(code(() => v.verify({ ...good, payload: Buffer.from(JSON.stringify(stmt)).toString('base64') }, AT)), 'ERR_PROVENANCE_SIGNATURE');
  // forged: random signature bytes
  const forged = { ...good, signatures: [{ keyid: 'release', sig: Buffer.alloc(72, 7).toString('base64') }] };
  assert.equal(code(() => v.verify(forged, AT)), 'ERR_PROVENANCE_SIGNATURE');
  // wrong key claiming the trusted keyid
  assert.equal(code(() => v.verify(envelope(statement('slsa-v1-github-container.statement.json'), [{ key: other, keyid: 'release' }]), AT)), 'ERR_PROVENANCE_SIGNATURE');
  // unknown key with an unknown keyid
  assert.equal(code(() => v.verify(envelope(statement('slsa-v1-github-container.statement.json'), [{ key: other, keyid: 'attacker' }]), AT)), 'ERR_PROVENANCE_SIGNATURE');
  // signature over the raw payload instead of the PAE
  const raw = Buffer.from(good['payload'] as string, 'base64');
  assert.equal(code(() => v.verify({ ...good, signatures: [{ keyid: 'release', sig: signBytes(key, raw).toString('base64') }] }, AT)), 'ERR_PROVENANCE_SIGNATURE');
  // signed for another payloadType, relabelled as in-toto
  assert.equal(code(() => v.verify(envelope(statement('slsa-v1-github-container.statement.json'), [{ key }], { signedType: 'text/plain' }), AT)), 'ERR_PROVENANCE_SIGNATURE');
  // a valid signature from an unknown key next to nothing else
  assert.equal(code(() => v.verify(envelope(statement('slsa-v1-github-container.statement.json'), [{ key: other }]), AT)), 'ERR_PROVENANCE_SIGNATURE');
});

test('threshold: two distinct keys must sign; the same key twice does not count twice', () => {
  const k1 = makeKey('ed25519');
  const k2 = makeKey('ecdsa-p256');
  const v = new ProvenanceVerifier({ keys: [{ keyid: 'a', publicKey: k1.publicPem }, { keyid: 'b', publicKey: k2.publicPem }], threshold: 2 });
  const s = statement('slsa-v1-github-container.statement.json');
  assert.deepEqual(v.verify(envelope(s, [{ key: k1, keyid: 'a' }, { key: k2, keyid: 'b' }]), AT).signedBy, ['a', 'b']);
  assert.equal(code(() => v.verify(envelope(s, [{ key: k1, keyid: 'a' }, { key: k1, keyid: 'a' }]), AT)), 'ERR_PROVENANCE_SIGNATURE');
  assert.equal(code(() => v.verify(envelope(s, [{ key: k1, keyid: 'a' }]), AT)), 'ERR_PROVENANCE_SIGNATURE');
});

test('trusted builders: a signed provenance from another builder is not build.verified', () => {
  const key = makeKey('ed25519');
  const s = statement('slsa-v1-github-container.statement.json');
  const trusted = new ProvenanceVerifier({ keys: [{ publicKey: key.publicPem }], trustedBuilders: [GH_BUILDER] });
  assert.equal(trusted.verify(envelope(s, [{ key }]), AT).verified, true);
  const strict = new ProvenanceVerifier({ keys: [{ publicKey: key.publicPem }], trustedBuilders: ['https://cloudbuild.googleapis.com/GoogleHostedWorker'] });
  const r = strict.verify(envelope(s, [{ key }]), AT);
  assert.equal(r.verified, false);
  assert.equal(values(r.attributes)['build.verified'], false);
});

test('malformed envelopes, statements and predicates fail with their codes', () => {
  const key = makeKey('ed25519');
  const v = new ProvenanceVerifier({ keys: [{ publicKey: key.publicPem }] });
  const s = statement('slsa-v1-github-container.statement.json');
  const good = envelope(s, [{ key }]);
  assert.equal(code(() => v.verify('{', AT)), 'ERR_PROVENANCE_JSON');
  assert.equal(code(() => v.verify(new Uint8Array([0xc3, 0x28]), AT)), 'ERR_PROVENANCE_JSON');
  assert.equal(code(() => v.verify('x'.repeat(100), AT)), 'ERR_PROVENANCE_JSON');
  assert.equal(code(() => new ProvenanceVerifier({ keys: [{ publicKey: key.publicPem }], maxBytes: 100 }).verify(JSON.stringify(good), AT)), 'ERR_PROVENANCE_TOO_LARGE');
  assert.equal(code(() => v.verify({ ...good, payload: 'not base64!' }, AT)), 'ERR_PROVENANCE_ENVELOPE');
  assert.equal(code(() => v.verify({ ...good, signatures: [] }, AT)), 'ERR_PROVENANCE_ENVELOPE');
  assert.equal(code(() => v.verify({ ...good, signatures: [{ sig: 42 }] }, AT)), 'ERR_PROVENANCE_ENVELOPE');
  assert.equal(code(() => v.verify([], AT)), 'ERR_PROVENANCE_ENVELOPE');
  assert.equal(code(() => v.verify(envelope(s, [{ key }], { payloadType: 'application/json' }), AT)), 'ERR_PROVENANCE_PAYLOAD_TYPE');
  const bad = (mut: (x: Record<string, unknown>) => void) => {
    const c = structuredClone(s);
    mut(c);
    return envelope(c, [{ key }]);
  };
  assert.equal(code(() => v.verify(bad((x) => { x['_type'] = 'https://in-toto.io/Statement/v2'; }), AT)), 'ERR_PROVENANCE_STATEMENT');
  assert.equal(code(() => v.verify(bad((x) => { x['subject'] = []; }), AT)), 'ERR_PROVENANCE_STATEMENT');
  assert.equal(code(() => v.verify(bad((x) => { x['subject'] = [{ name: 'a', digest: { sha256: 'xyz' } }]; }), AT)), 'ERR_PROVENANCE_STATEMENT');
  assert.equal(code(() => v.verify(bad((x) => { x['subject'] = [{ name: 'a', digest: { sha1: 'a'.repeat(40) } }]; }), AT)), 'ERR_PROVENANCE_STATEMENT');
  assert.equal(code(() => v.verify(bad((x) => { x['predicateType'] = 'https://spdx.dev/Document'; }), AT)), 'ERR_PROVENANCE_PREDICATE');
  assert.equal(code(() => v.verify(bad((x) => { (x['predicate'] as Record<string, unknown>)['runDetails'] = {}; }), AT)), 'ERR_PROVENANCE_PREDICATE');
  const notJson = { ...good, payload: Buffer.from('not json').toString('base64'), signatures: [{ keyid: '', sig: signBytes(key, preAuthEncoding('application/vnd.in-toto+json', Buffer.from('not json'))).toString('base64') }] };
  assert.equal(code(() => v.verify(notJson, AT)), 'ERR_PROVENANCE_STATEMENT');
});

test('configured keys are checked once: private keys, weak RSA, odd curves, no keys', () => {
  const ed = makeKey('ed25519');
  assert.equal(code(() => new ProvenanceVerifier({ keys: [] })), 'ERR_PROVENANCE_KEY');
  assert.equal(code(() => new ProvenanceVerifier({ keys: [{ publicKey: 'not a pem' }] })), 'ERR_PROVENANCE_KEY');
  assert.equal(code(() => new ProvenanceVerifier({ keys: [{ publicKey: ed.privateKey }] })), 'ERR_PROVENANCE_KEY');
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
  assert.equal(code(() => new ProvenanceVerifier({ keys: [{ publicKey: weak }] })), 'ERR_PROVENANCE_KEY');
  const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey;
  assert.equal(code(() => new ProvenanceVerifier({ keys: [{ publicKey: k1 }] })), 'ERR_PROVENANCE_KEY');
  assert.equal(code(() => new ProvenanceVerifier({ keys: [{ publicKey: ed.publicPem }], threshold: 2 })), 'ERR_PROVENANCE_KEY');
});

test('normalizeRepo strips git+, refs, userinfo and .git', () => {
  assert.equal(normalizeRepo('git+https://github.com/acme/orders@refs/heads/main'), 'https://github.com/acme/orders');
  assert.equal(normalizeRepo('https://github.com/acme/orders.git'), 'https://github.com/acme/orders');
  assert.equal(normalizeRepo('git+ssh://git@github.com/acme/orders.git@v1'), 'ssh://github.com/acme/orders');
  assert.equal(normalizeRepo('https://github.com/acme/orders'), 'https://github.com/acme/orders');
});

test('in-toto JSON Lines: every envelope verifies, one bad line fails the file', () => {
  const key = makeKey('ecdsa-p256');
  const v = new ProvenanceVerifier({ keys: [{ publicKey: key.publicPem }] });
  const a = JSON.stringify(envelope(statement('slsa-v1-github-container.statement.json'), [{ key }]));
  const b = JSON.stringify(envelope(statement('slsa-v02-github-generic.statement.json'), [{ key }]));
  const results = v.verifyJsonLines(`${a}\n${b}\n`, AT);
  assert.deepEqual(results.map((r) => values(r.attributes)['build.repo']), ['https://github.com/acme/orders', 'https://github.com/acme/payments']);
  const forged = JSON.stringify(envelope(statement('slsa-v1-github-container.statement.json'), [{ key: makeKey('ecdsa-p256') }]));
  assert.equal(code(() => v.verifyJsonLines(`${a}\n${forged}\n`, AT)), 'ERR_PROVENANCE_SIGNATURE');
  assert.equal(code(() => v.verifyJsonLines('\n\n', AT)), 'ERR_PROVENANCE_JSON');
});
