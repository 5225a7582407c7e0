import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ManualClock } from '../../../src/core/clock.js';
import { bundleToJwks, bundleToPem, parseTrustBundle } from '../../../src/pki/bundle.js';
import { CertificateAuthority } from '../../../src/pki/ca.js';
import { KeySealer } from '../../../src/pki/envelope.js';
import { PkiError } from '../../../src/pki/errors.js';

const clock = new ManualClock('2026-06-01T00:00:00Z');
const ca = CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer: new KeySealer(randomBytes(32)), refreshHintSeconds: 120 });
ca.prepare(clock);

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
    return 'OK';
  } catch (e) {
    assert.ok(e instanceof PkiError, String(e));
    return e.code;
  }
};

test('JWKS follows the SPIFFE bundle format and round-trips', () => {
  const jwks = bundleToJwks(ca.trustBundle());
  assert.equal(jwks.spiffe_sequence, 2);
  assert.equal(jwks.spiffe_refresh_hint, 120);
  const x = jwks.keys.filter((k) => (k as { use?: string }).use === 'x509-svid');
  const j = jwks.keys.filter((k) => (k as { use?: string }).use === 'jwt-svid');
  assert.equal(x.length, 2);
  assert.equal(j.length, 2);
  for (const k of [...x, ...j]) {
    assert.equal(k.kty, 'EC');
    assert.equal(k.crv, 'P-256');
    assert.equal(k.d, undefined, 'no private material');
  }
  for (const k of x) assert.equal((k as { x5c?: string[] }).x5c?.length, 1);
  for (const k of j) assert.equal(typeof (k as { kid?: string }).kid, 'string');
  const back = parseTrustBundle(JSON.stringify(jwks), { trustDomain: 'example.org' });
  assert.equal(back.sequence, 2);
  assert.equal(back.x509Authorities.length, 2);
  assert.equal(back.jwtAuthorities.length, 2);
  assert.equal(bundleToPem(back), bundleToPem(ca.trustBundle()));
});

test('PEM bundles parse back; junk is refused', () => {
  const pem = bundleToPem(ca.trustBundle());
  assert.equal(parseTrustBundle(pem).x509Authorities.length, 2);
  assert.equal(parseTrustBundle(pem).trustDomain, undefined);
  assert.equal(codeOf(() => parseTrustBundle('')), 'ERR_BUNDLE_EMPTY');
  assert.equal(codeOf(() => parseTrustBundle('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')), 'ERR_BUNDLE_MALFORMED');
  assert.equal(codeOf(() => parseTrustBundle('{')), 'ERR_BUNDLE_MALFORMED');
  assert.equal(codeOf(() => parseTrustBundle('{"keys":[]}')), 'ERR_BUNDLE_EMPTY');
});

test('malformed JWKS entries fail closed', () => {
  const jwks = bundleToJwks(ca.trustBundle());
  const [x0, x1, j0] = jwks.keys as Record<string, unknown>[];
  const variants: [string, unknown][] = [
    ['x5c with two certificates', { keys: [{ ...x0, x5c: [...(x0!.x5c as string[]), ...(x1!.x5c as string[])] }] }],
    ['key that does not match its certificate', { keys: [{ ...x0, x: x1!.x }] }],
    ['jwt key without kid', { keys: [{ ...j0, kid: undefined }] }],
    ['jwt key with private d', { keys: [{ ...j0, d: 'AAAA' }] }],
    ['duplicate kid', { keys: [j0, j0] }],
    ['negative sequence', { ...jwks, spiffe_sequence: -1 }],
    ['non-object key', { keys: [1] }],
    ['keys not an array', { keys: {} }],
  ];
  for (const [what, doc] of variants) assert.equal(codeOf(() => parseTrustBundle(JSON.stringify(doc))), 'ERR_BUNDLE_MALFORMED', what);
  // Keys of unknown use are ignored, as the spec says.
  assert.equal(parseTrustBundle(JSON.stringify({ keys: [{ ...j0, use: 'other' }, x0] })).x509Authorities.length, 1);
});
