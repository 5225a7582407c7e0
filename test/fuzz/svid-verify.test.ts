// Fuzz the certificate verifier and the other parsers of untrusted PKI input (CSRs, bundles):
// random and mutated inputs never crash (only PkiError) and a mutated SVID is never accepted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { ManualClock } from '../../src/core/clock.js';
import { bundleToJwks, bundleToPem, parseTrustBundle } from '../../src/pki/bundle.js';
import { CertificateAuthority } from '../../src/pki/ca.js';
import { checkSvidCsr, createSvidCsr } from '../../src/pki/csr.js';
import { KeySealer } from '../../src/pki/envelope.js';
import { PkiError } from '../../src/pki/errors.js';
import { generateP256KeyPair } from '../../src/pki/keys.js';
import { issueX509Svid } from '../../src/pki/svid-issue.js';
import { verifyX509Svid } from '../../src/pki/svid-verify.js';

const clock = new ManualClock('2026-06-01T00:00:00Z');
const ca = CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer: new KeySealer(randomBytes(32)) });
const ID = 'spiffe://example.org/ns/prod/sa/api';
const { privateKey } = generateP256KeyPair();
const csr = createSvidCsr({ spiffeId: ID, privateKey });
const svid = issueX509Svid({ ca, csr: csr.der, spiffeId: ID, clock });
const bundle = ca.trustBundle();
const leaf = svid.chainDer[0]!;
const inter = svid.chainDer[1]!;
const at = clock.now();

function onlyPkiErrors(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (e instanceof PkiError) return false;
    throw e;
  }
}

/** Byte-level mutations: flips, overwrites, truncations, insertions, deletions. */
const mutation = (input: Buffer) => fc.oneof(
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([pos, x]) => {
    const b = Buffer.from(input);
    b[pos % b.length] = (b[pos % b.length] as number) ^ x;
    return b;
  }),
  fc.nat().map((len) => input.subarray(0, len % input.length)),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([pos, bytes]) => {
    const at2 = pos % input.length;
    return Buffer.concat([input.subarray(0, at2), Buffer.from(bytes), input.subarray(at2)]);
  }),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 16 })).map(([pos, n]) => {
    const at2 = pos % input.length;
    return Buffer.concat([input.subarray(0, at2), input.subarray(at2 + n)]);
  }),
);

test('control: the unmutated SVID verifies', () => {
  assert.equal(verifyX509Svid([leaf, inter], bundle, { at }).spiffeId.toString(), ID);
});

test('random bytes and random DER-ish input never crash the verifier and are never accepted', () => {
  const derish = fc.tuple(fc.constantFrom(0x30, 0x02, 0x03, 0x04, 0x06, 0xa0, 0xa3), fc.uint8Array({ maxLength: 300 })).map(([tag, body]) => {
    const len = body.length;
    return Buffer.concat([Buffer.from(len < 128 ? [tag, len] : [tag, 0x82, len >> 8, len & 0xff]), Buffer.from(body)]);
  });
  fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 600 }).map((u) => Buffer.from(u)), derish), (bytes) => {
    assert.equal(onlyPkiErrors(() => verifyX509Svid([bytes], bundle, { at })), false);
    assert.equal(onlyPkiErrors(() => verifyX509Svid([bytes, inter], bundle, { at })), false);
  }), { numRuns: 1500 });
});

test('a mutated leaf is never accepted; a mutated intermediate never lets a leaf through', () => {
  fc.assert(fc.property(mutation(leaf), (mutated) => {
    fc.pre(!mutated.equals(leaf));
    assert.equal(onlyPkiErrors(() => verifyX509Svid([mutated, inter], bundle, { at })), false, mutated.toString('hex'));
  }), { numRuns: 1500 });
  fc.assert(fc.property(mutation(inter), (mutated) => {
    fc.pre(!mutated.equals(inter));
    assert.equal(onlyPkiErrors(() => verifyX509Svid([leaf, mutated], bundle, { at })), false);
  }), { numRuns: 500 });
});

test('mutated PEM text never crashes the verifier', () => {
  const pem = svid.chainPem;
  fc.assert(fc.property(fc.nat(), fc.string({ maxLength: 4 }), (pos, piece) => {
    const at2 = pos % pem.length;
    const text = pem.slice(0, at2) + piece + pem.slice(at2 + 1);
    onlyPkiErrors(() => verifyX509Svid(text, bundle, { at }));
  }), { numRuns: 800 });
});

test('mutated CSRs never crash the checker and never pass with a changed body', () => {
  fc.assert(fc.property(mutation(csr.der), (mutated) => {
    fc.pre(!mutated.equals(csr.der));
    assert.equal(onlyPkiErrors(() => checkSvidCsr(mutated, ID)), false);
  }), { numRuns: 1000 });
});

test('mutated bundles (PEM and JWKS) never crash the parser', () => {
  const pem = bundleToPem(bundle);
  const jwks = JSON.stringify(bundleToJwks(bundle));
  fc.assert(fc.property(fc.constantFrom(pem, jwks), fc.nat(), fc.string({ maxLength: 3 }), (text, pos, piece) => {
    const at2 = pos % text.length;
    onlyPkiErrors(() => parseTrustBundle(text.slice(0, at2) + piece + text.slice(at2 + 1)));
  }), { numRuns: 800 });
  fc.assert(fc.property(fc.json(), (doc) => {
    onlyPkiErrors(() => parseTrustBundle(doc));
  }), { numRuns: 500 });
});
