// Test helper: builds DSSE envelopes signed with node:crypto keys, exactly as a signer would.
import { generateKeyPairSync, sign, constants, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { preAuthEncoding } from '../../../../src/platforms/provenance/index.js';

export type Alg = 'ecdsa-p256' | 'ecdsa-p384' | 'ed25519' | 'rsa-pss' | 'rsa-pkcs1';

export interface TestKey {
  readonly alg: Alg;
  readonly privateKey: KeyObject;
  readonly publicPem: string;
}

export function makeKey(alg: Alg): TestKey {
  const pair = alg === 'ecdsa-p256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : alg === 'ecdsa-p384' ? generateKeyPairSync('ec', { namedCurve: 'P-384' })
    : alg === 'ed25519' ? generateKeyPairSync('ed25519')
    : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { alg, privateKey: pair.privateKey, publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

export function signBytes(key: TestKey, data: Uint8Array, p1363 = false): Buffer {
  switch (key.alg) {
    case 'ecdsa-p256': return sign('sha256', data, { key: key.privateKey, dsaEncoding: p1363 ? 'ieee-p1363' : 'der' });
    case 'ecdsa-p384': return sign('sha384', data, { key: key.privateKey, dsaEncoding: p1363 ? 'ieee-p1363' : 'der' });
    case 'ed25519': return sign(null, data, key.privateKey);
    case 'rsa-pss': return sign('sha256', data, { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    case 'rsa-pkcs1': return sign('sha256', data, { key: key.privateKey, padding: constants.RSA_PKCS1_PADDING });
  }
}

export const PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export function statement(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(`test/fixtures/provenance/${name}`, 'utf8')) as Record<string, unknown>;
}

export function envelope(stmt: unknown, signers: Array<{ key: TestKey; keyid?: string }>, opts: { payloadType?: string; signedType?: string; p1363?: boolean } = {}): Record<string, unknown> {
  const payload = Buffer.from(JSON.stringify(stmt), 'utf8');
  const payloadType = opts.payloadType ?? PAYLOAD_TYPE;
  const pae = preAuthEncoding(opts.signedType ?? payloadType, payload);
  return {
    payloadType,
    payload: payload.toString('base64'),
    signatures: signers.map(({ key, keyid }) => ({ keyid: keyid ?? '', sig: signBytes(key, pae, opts.p1363).toString('base64') })),
  };
}
