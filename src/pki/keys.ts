/**
 * Key helpers: generate the P-256 keys SVIDs use, read/write PEM, and pick the signature
 * algorithm that matches a CA key. Uses node:crypto only (no I/O).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { DER_NULL, TAG, childrenOf, expectTag, oid, readBitString, readOnly, seq } from './der.js';
import { PkiError } from './errors.js';
import { OID } from './oids.js';
import { isP256Spki } from './certificate.js';

export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/**
 * Generates an ECDSA P-256 key pair (the key type of every Ward SVID and CA).
 *
 * @example const { privateKey } = generateP256KeyPair();
 */
export function generateP256KeyPair(): KeyPair {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

/** PKCS#8 PEM of a private key. Treat the result as a secret. */
export function privateKeyToPem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }) as string;
}

/** Reads a private key from PEM (PKCS#8, SEC1 or PKCS#1) or PKCS#8 DER. */
export function loadPrivateKey(input: string | Uint8Array): KeyObject {
  try {
    return typeof input === 'string'
      ? createPrivateKey({ key: input, format: 'pem' })
      : createPrivateKey({ key: Buffer.from(input), format: 'der', type: 'pkcs8' });
  } catch (error) {
    throw new PkiError('ERR_KEY_INVALID', 'private key could not be read', { cause: error });
  }
}

/** SubjectPublicKeyInfo DER of a public or private key. */
export function spkiOf(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ format: 'der', type: 'spki' });
}

/** RFC 5280 method 1 key identifier: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Buffer): Buffer {
  // Uncompressed P-256 (every SVID key): the 65 key bytes start at offset 26.
  const bits = isP256Spki(spki) ? spki.subarray(26) : subjectPublicKeyBits(spki);
  return createHash('sha1').update(bits).digest();
}

function subjectPublicKeyBits(spki: Buffer): Buffer {
  const root = readOnly(spki, TAG.SEQUENCE);
  const [, bits] = childrenOf(spki, root);
  return readBitString(spki, expectTag(bits, TAG.BIT_STRING, 'subjectPublicKey')).bytes;
}

/** How a key signs certificates: digest for node:crypto and the DER AlgorithmIdentifier. */
export interface SignatureScheme {
  readonly digest: string | null;
  readonly algorithmOid: string;
  readonly algorithmIdentifier: Buffer;
}

/** The X.509 signature scheme for a CA private key (ECDSA P-256/P-384, RSA, Ed25519). */
export function signatureSchemeFor(key: KeyObject): SignatureScheme {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1' || curve === 'P-256') return { digest: 'sha256', algorithmOid: OID.ecdsaSha256, algorithmIdentifier: seq(oid(OID.ecdsaSha256)) };
    if (curve === 'secp384r1' || curve === 'P-384') return { digest: 'sha384', algorithmOid: OID.ecdsaSha384, algorithmIdentifier: seq(oid(OID.ecdsaSha384)) };
  }
  if (type === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048) {
    return { digest: 'sha256', algorithmOid: OID.rsaSha256, algorithmIdentifier: seq(oid(OID.rsaSha256), DER_NULL) };
  }
  if (type === 'ed25519') return { digest: null, algorithmOid: OID.ed25519, algorithmIdentifier: seq(oid(OID.ed25519)) };
  throw new PkiError('ERR_KEY_INVALID', `unsupported signing key type ${type ?? 'unknown'}`);
}

/** Signs `data` with the scheme of `key` (ECDSA signatures DER-encoded, as X.509 wants). */
export function signWith(key: KeyObject, scheme: SignatureScheme, data: Uint8Array): Buffer {
  return cryptoSign(scheme.digest, data, key);
}
