/**
 * Verification keys for provenance, parsed once at configuration time. Each key type has one
 * signature scheme: ECDSA with the curve's hash (DER or IEEE P1363 encoded signatures),
 * Ed25519, and RSA with SHA-256 (PSS or PKCS#1 v1.5, the two schemes in-toto and cosign use).
 */
import { createPublicKey, verify, constants, type KeyObject } from 'node:crypto';
import { ProvenanceError } from './errors.js';

export interface ProvenanceKeyConfig {
  /** The DSSE `keyid` this key signs with; a hint only (empty keyids try every key). */
  readonly keyid?: string;
  /** PEM (SPKI) public key, or a KeyObject. */
  readonly publicKey: string | KeyObject;
}

export interface VerificationKey {
  readonly keyid: string;
  readonly kind: 'ecdsa' | 'ed25519' | 'rsa';
  verify(data: Uint8Array, signature: Uint8Array): boolean;
}

const EC_HASH: Readonly<Record<string, string>> = { 'prime256v1': 'sha256', 'P-256': 'sha256', 'secp384r1': 'sha384', 'P-384': 'sha384', 'secp521r1': 'sha512', 'P-521': 'sha512' };

function keyError(index: number, message: string, cause?: unknown): ProvenanceError {
  return new ProvenanceError('ERR_PROVENANCE_KEY', `keys[${index}]: ${message}`, { details: { index }, ...(cause === undefined ? {} : { cause }) });
}

function safely(fn: () => boolean): boolean {
  try {
    return fn();
  } catch {
    return false;
  }
}

export function loadVerificationKey(config: ProvenanceKeyConfig, index = 0): VerificationKey {
  let key: KeyObject;
  try {
    key = typeof config.publicKey === 'string' ? createPublicKey(config.publicKey) : config.publicKey;
  } catch (e) {
    throw keyError(index, 'not a PEM public key', e);
  }
  if (key.type !== 'public') throw keyError(index, 'expected a public key');
  const keyid = config.keyid ?? '';
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? '';
    const hash = EC_HASH[curve];
    if (!hash) throw keyError(index, `unsupported EC curve ${curve}`);
    return {
      keyid, kind: 'ecdsa',
      verify: (data, sig) => safely(() => verify(hash, data, { key, dsaEncoding: 'der' }, sig))
        || safely(() => verify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, sig)),
    };
  }
  if (type === 'ed25519') return { keyid, kind: 'ed25519', verify: (data, sig) => safely(() => verify(null, data, key, sig)) };
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw keyError(index, 'RSA keys must be at least 2048 bits');
    return {
      keyid, kind: 'rsa',
      verify: (data, sig) => safely(() => verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sig))
        || safely(() => verify('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING }, sig)),
    };
  }
  throw keyError(index, `unsupported key type ${type ?? 'unknown'}`);
}
