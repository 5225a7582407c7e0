import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { ManualClock } from '../../../src/core/clock.js';
import { bundleToJwks, createTrustBundle, parseTrustBundle } from '../../../src/pki/bundle.js';
import { CertificateAuthority } from '../../../src/pki/ca.js';
import { KeySealer } from '../../../src/pki/envelope.js';
import { PkiError } from '../../../src/pki/errors.js';
import { mintJwtSvid, verifyJwtSvid } from '../../../src/pki/jwt-svid.js';

const clock = new ManualClock('2026-06-01T00:00:00Z');
const ca = CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer: new KeySealer(randomBytes(32)) });
const ID = 'spiffe://example.org/web';
const now = Math.floor(clock.now() / 1000);

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const bundle = createTrustBundle({
  trustDomain: 'example.org',
  x509Authorities: ca.trustBundle().x509Authorities.map((a) => ({ der: a.cert.der })),
  jwtAuthorities: [
    ...ca.trustBundle().jwtAuthorities.map((a) => ({ kid: a.kid, jwk: a.jwk })),
    { kid: 'rsa-1', jwk: rsa.publicKey.export({ format: 'jwk' }) },
    { kid: 'ec384', jwk: ec384.publicKey.export({ format: 'jwk' }) },
  ],
});

async function expectCode(token: string, code: string, audience = 'api'): Promise<void> {
  await assert.rejects(verifyJwtSvid(token, bundle, { audience, at: clock.now() }), (e: unknown) => {
    assert.ok(e instanceof PkiError, String(e));
    assert.equal(e.code, code);
    return true;
  });
}

const sign = (alg: string, key: KeyObject | Uint8Array, claims: Record<string, unknown>, kid = 'rsa-1') =>
  new SignJWT(claims).setProtectedHeader({ alg, kid }).sign(key);

test('mint then verify, through a JWKS round trip', async () => {
  const token = await mintJwtSvid({ ca, spiffeId: ID, audience: ['api', 'billing'], clock });
  const jwks = parseTrustBundle(JSON.stringify(bundleToJwks(ca.trustBundle())));
  const v = await verifyJwtSvid(token, jwks, { audience: 'billing', at: clock.now() });
  assert.equal(v.spiffeId.toString(), ID);
  assert.deepEqual(v.audience, ['api', 'billing']);
  assert.equal(v.expiresAt, clock.now() + 5 * 60_000);
  const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString());
  assert.equal(header.alg, 'ES256');
  assert.equal(header.kid, ca.authorities()[0]!.jwtKid);
});

test('RS256 and PS256 are accepted with a bundle RSA key', async () => {
  for (const alg of ['RS256', 'PS256']) {
    const token = await sign(alg, rsa.privateKey, { sub: ID, aud: 'api', exp: now + 60 });
    assert.equal((await verifyJwtSvid(token, bundle, { audience: 'api', at: clock.now() })).spiffeId.toString(), ID);
  }
});

test('alg none, HMAC and other algorithms are rejected', async () => {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const claims = { sub: ID, aud: 'api', exp: now + 60 };
  await expectCode(`${b64({ alg: 'none', kid: 'rsa-1' })}.${b64(claims)}.`, 'ERR_JWT_SVID_ALGORITHM');
  await expectCode(await sign('HS256', Buffer.from('secret-secret-secret-secret-32by'), claims), 'ERR_JWT_SVID_ALGORITHM');
  await expectCode(await sign('ES384', ec384.privateKey, claims, 'ec384'), 'ERR_JWT_SVID_ALGORITHM');
  await expectCode(await sign('RS512', rsa.privateKey, claims), 'ERR_JWT_SVID_ALGORITHM');
  // ES256 header on an RSA key: key/alg mismatch must not verify.
  const forged = `${b64({ alg: 'ES256', kid: 'rsa-1' })}.${b64(claims)}.${Buffer.alloc(64).toString('base64url')}`;
  await assert.rejects(verifyJwtSvid(forged, bundle, { audience: 'api', at: clock.now() }), (e: unknown) => e instanceof PkiError && ['ERR_JWT_SVID_ALGORITHM', 'ERR_JWT_SVID_MALFORMED', 'ERR_JWT_SVID_SIGNATURE'].includes(e.code));
});

test('unknown or missing kid, bad signature, malformed tokens', async () => {
  const claims = { sub: ID, aud: 'api', exp: now + 60 };
  await expectCode(await sign('RS256', rsa.privateKey, claims, 'nope'), 'ERR_JWT_SVID_KID_UNKNOWN');
  await expectCode(await new SignJWT(claims).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey), 'ERR_JWT_SVID_KID_UNKNOWN');
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  await expectCode(await sign('RS256', other.privateKey, claims), 'ERR_JWT_SVID_SIGNATURE');
  await expectCode('not-a-token', 'ERR_JWT_SVID_MALFORMED');
  await expectCode('a.b.c', 'ERR_JWT_SVID_MALFORMED');
  await expectCode('', 'ERR_JWT_SVID_MALFORMED');
});

test('expired, wrong audience, missing claims, foreign trust domain', async () => {
  await expectCode(await sign('RS256', rsa.privateKey, { sub: ID, aud: 'api', exp: now - 1 }), 'ERR_JWT_SVID_EXPIRED');
  await expectCode(await sign('RS256', rsa.privateKey, { sub: ID, aud: 'other', exp: now + 60 }), 'ERR_JWT_SVID_AUDIENCE');
  await expectCode(await sign('RS256', rsa.privateKey, { sub: ID, exp: now + 60 }), 'ERR_JWT_SVID_CLAIMS');
  await expectCode(await sign('RS256', rsa.privateKey, { sub: ID, aud: 'api' }), 'ERR_JWT_SVID_CLAIMS');
  await expectCode(await sign('RS256', rsa.privateKey, { aud: 'api', exp: now + 60 }), 'ERR_JWT_SVID_CLAIMS');
  await expectCode(await sign('RS256', rsa.privateKey, { sub: 'spiffe://example.org/a/', aud: 'api', exp: now + 60 }), 'ERR_JWT_SVID_CLAIMS');
  await expectCode(await sign('RS256', rsa.privateKey, { sub: 'spiffe://evil.org/web', aud: 'api', exp: now + 60 }), 'ERR_JWT_SVID_WRONG_TRUST_DOMAIN');
  const token = await mintJwtSvid({ ca, spiffeId: ID, audience: 'api', clock, ttlMs: 60_000 });
  await assert.rejects(verifyJwtSvid(token, bundle, { audience: 'api', at: clock.now() + 61_000 }), (e: unknown) => e instanceof PkiError && e.code === 'ERR_JWT_SVID_EXPIRED');
  await assert.rejects(mintJwtSvid({ ca, spiffeId: 'spiffe://evil.org/x', audience: 'api', clock }), (e: unknown) => e instanceof PkiError && e.code === 'ERR_JWT_SVID_WRONG_TRUST_DOMAIN');
  await assert.rejects(mintJwtSvid({ ca, spiffeId: ID, audience: [], clock }), (e: unknown) => e instanceof PkiError && e.code === 'ERR_JWT_SVID_CLAIMS');
});

test('after rotation and revocation the old JWT authority is no longer trusted', async () => {
  const c = new ManualClock('2026-06-01T00:00:00Z');
  const ca2 = CertificateAuthority.create({ trustDomain: 'example.org', clock: c, sealer: new KeySealer(randomBytes(32)) });
  const oldToken = await mintJwtSvid({ ca: ca2, spiffeId: ID, audience: 'api', clock: c });
  const first = ca2.authorities()[0]!.id;
  ca2.prepare(c);
  ca2.activate(c);
  assert.ok(await verifyJwtSvid(oldToken, ca2.trustBundle(), { audience: 'api', at: c.now() }));
  ca2.taint(first, c);
  ca2.revoke(first, c);
  await assert.rejects(verifyJwtSvid(oldToken, ca2.trustBundle(), { audience: 'api', at: c.now() }), (e: unknown) => e instanceof PkiError && e.code === 'ERR_JWT_SVID_KID_UNKNOWN');
  const fresh = await mintJwtSvid({ ca: ca2, spiffeId: ID, audience: 'api', clock: c });
  assert.ok(await verifyJwtSvid(fresh, ca2.trustBundle(), { audience: 'api', at: c.now() }));
});
