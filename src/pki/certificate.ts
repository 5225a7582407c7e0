/**
 * X.509 v3 certificate parsing for verification: the fields the X509-SVID spec and RFC 5280 path
 * validation need, read with the strict DER reader. Untrusted input: anything unexpected is
 * `ERR_CERT_MALFORMED` (fuzzed in test/fuzz/svid-verify.test.ts).
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject, X509Certificate } from 'node:crypto';
import { DerError, TAG, bodyOf, childrenOf, expectTag, rawOf, readBitString, readBoolean, readOid, readOnly, readSmallInt, readTime, readTlv, type Tlv } from './der.js';
import { PkiError } from './errors.js';
import { OID, SIGNATURE_DIGEST } from './oids.js';
import { pemBlocks } from './pem.js';

export interface BasicConstraints {
  readonly ca: boolean;
  readonly pathLen: number | undefined;
}

/** Counts of subject alternative names by type, plus the URI values. */
export interface SubjectAltNames {
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
  readonly ipCount: number;
  readonly emailCount: number;
  readonly otherCount: number;
}

/** A parsed certificate. Buffers are views into `der`. */
export interface ParsedCertificate {
  readonly der: Buffer;
  readonly tbs: Buffer;
  readonly serialHex: string;
  readonly signatureAlgorithm: string;
  readonly signature: Buffer;
  readonly issuer: Buffer;
  readonly subject: Buffer;
  readonly subjectHasCommonName: boolean;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly spki: Buffer;
  readonly basicConstraints: BasicConstraints | undefined;
  /** First byte of the key usage bits (see KEY_USAGE), `undefined` without the extension. */
  readonly keyUsage: number | undefined;
  readonly extKeyUsage: readonly string[] | undefined;
  readonly san: SubjectAltNames;
  readonly subjectKeyId: Buffer | undefined;
  readonly authorityKeyId: Buffer | undefined;
  readonly unknownCriticalExtensions: readonly string[];
}

const PROCESSED_EXTENSIONS = new Set<string>([
  OID.basicConstraints, OID.keyUsage, OID.extKeyUsage, OID.subjectAltName, OID.subjectKeyIdentifier, OID.authorityKeyIdentifier,
]);

function malformed(why: string, cause?: unknown): PkiError {
  return new PkiError('ERR_CERT_MALFORMED', `certificate is malformed: ${why}`, { cause });
}

/** True when the DER Name holds a commonName attribute. */
export function nameHasCommonName(buf: Uint8Array, name: Tlv): boolean {
  for (const rdn of childrenOf(buf, name)) {
    expectTag(rdn, TAG.SET, 'RDN');
    for (const atv of childrenOf(buf, rdn)) {
      const [type] = childrenOf(buf, expectTag(atv, TAG.SEQUENCE, 'attribute'));
      if (readOid(buf, type, 'attribute type') === OID.commonName) return true;
    }
  }
  return false;
}

/** Reads a GeneralNames sequence (SAN extension value). */
export function readGeneralNames(buf: Uint8Array, names: Tlv): SubjectAltNames {
  const uris: string[] = [];
  const dnsNames: string[] = [];
  let ipCount = 0;
  let emailCount = 0;
  let otherCount = 0;
  expectTag(names, TAG.SEQUENCE, 'GeneralNames');
  for (const gn of childrenOf(buf, names)) {
    switch (gn.tag) {
      case 0x86: {
        const text = bodyOf(buf, gn).toString('latin1');
        // IA5String: 7-bit only. Reject rather than let a byte trick the ID comparison.
        if (/[^\x20-\x7e]/.test(text)) throw new DerError('URI SAN is not printable IA5');
        uris.push(text);
        break;
      }
      case 0x82: dnsNames.push(bodyOf(buf, gn).toString('latin1')); break;
      case 0x87: ipCount++; break;
      case 0x81: emailCount++; break;
      default: otherCount++;
    }
  }
  return { uris, dnsNames, ipCount, emailCount, otherCount };
}

/**
 * Parses one DER certificate.
 *
 * @example const cert = parseCertificate(new X509Certificate(pem).raw);
 */
export function parseCertificate(input: Uint8Array | X509Certificate): ParsedCertificate {
  const der = input instanceof X509Certificate ? input.raw : Buffer.from(input.buffer, input.byteOffset, input.length);
  try {
    return parseCertificateDer(der);
  } catch (error) {
    if (error instanceof PkiError) throw error;
    if (error instanceof DerError) throw malformed(error.message, error);
    throw malformed('unreadable', error);
  }
}

function parseCertificateDer(der: Buffer): ParsedCertificate {
  const root = readOnly(der, TAG.SEQUENCE);
  const [tbsTlv, algTlv, sigTlv, ...extra] = childrenOf(der, root);
  if (extra.length > 0) throw new DerError('extra fields after signature');
  expectTag(tbsTlv, TAG.SEQUENCE, 'tbsCertificate');
  const signatureAlgorithm = readAlgorithm(der, expectTag(algTlv, TAG.SEQUENCE, 'signatureAlgorithm'));
  const sig = readBitString(der, expectTag(sigTlv, TAG.BIT_STRING, 'signature'));
  if (sig.unused !== 0) throw new DerError('signature has unused bits');
  const f = childrenOf(der, tbsTlv as Tlv);
  let i = 0;
  const versionTlv = f[i];
  if (versionTlv?.tag !== 0xa0) throw new DerError('only X.509 v3 certificates are accepted');
  const [versionInt, ...vExtra] = childrenOf(der, versionTlv);
  if (vExtra.length > 0 || versionInt === undefined || readSmallInt(der, versionInt) !== 2) throw new DerError('version is not v3');
  i++;
  const serialTlv = expectTag(f[i++], TAG.INTEGER, 'serialNumber');
  if (serialTlv.end - serialTlv.body === 0 || serialTlv.end - serialTlv.body > 21) throw new DerError('serial length');
  const innerAlg = expectTag(f[i++], TAG.SEQUENCE, 'signature');
  if (!rawOf(der, innerAlg).equals(rawOf(der, algTlv as Tlv))) throw new DerError('inner and outer signature algorithms differ');
  const issuerTlv = expectTag(f[i++], TAG.SEQUENCE, 'issuer');
  nameHasCommonName(der, issuerTlv);
  const validity = childrenOf(der, expectTag(f[i++], TAG.SEQUENCE, 'validity'));
  if (validity.length !== 2) throw new DerError('validity');
  const notBefore = readTime(der, validity[0]);
  const notAfter = readTime(der, validity[1]);
  const subjectTlv = expectTag(f[i++], TAG.SEQUENCE, 'subject');
  const subjectHasCommonName = nameHasCommonName(der, subjectTlv);
  const spkiTlv = expectTag(f[i++], TAG.SEQUENCE, 'subjectPublicKeyInfo');
  while (f[i] !== undefined && (f[i]?.tag === 0x81 || f[i]?.tag === 0xa1 || f[i]?.tag === 0x82 || f[i]?.tag === 0xa2)) i++;
  let basicConstraints: BasicConstraints | undefined;
  let keyUsage: number | undefined;
  let extKeyUsage: string[] | undefined;
  let san: SubjectAltNames = { uris: [], dnsNames: [], ipCount: 0, emailCount: 0, otherCount: 0 };
  let subjectKeyId: Buffer | undefined;
  let authorityKeyId: Buffer | undefined;
  const unknownCritical: string[] = [];
  const extsTlv = f[i];
  if (extsTlv !== undefined) {
    if (extsTlv.tag !== 0xa3) throw new DerError('unexpected field in tbsCertificate');
    i++;
    const [extSeq, ...more] = childrenOf(der, extsTlv);
    if (more.length > 0) throw new DerError('extensions wrapper');
    const seen = new Set<string>();
    const extensions = childrenOf(der, expectTag(extSeq, TAG.SEQUENCE, 'extensions'));
    if (extensions.length === 0) throw new DerError('empty extensions');
    for (const ext of extensions) {
      const parts = childrenOf(der, expectTag(ext, TAG.SEQUENCE, 'extension'));
      const id = readOid(der, parts[0], 'extnID');
      if (seen.has(id)) throw new DerError(`duplicate extension ${id}`);
      seen.add(id);
      let critical = false;
      let valueTlv = parts[1];
      if (valueTlv?.tag === TAG.BOOLEAN) {
        critical = readBoolean(der, valueTlv);
        if (!critical) throw new DerError('DER forbids an explicit critical=false');
        valueTlv = parts[2];
        if (parts.length !== 3) throw new DerError('extension fields');
      } else if (parts.length !== 2) throw new DerError('extension fields');
      const value = bodyOf(der, expectTag(valueTlv, TAG.OCTET_STRING, 'extnValue'));
      if (!PROCESSED_EXTENSIONS.has(id)) {
        if (critical) unknownCritical.push(id);
        continue;
      }
      const inner = readOnly(value, readTlv(value, 0).tag);
      switch (id) {
        case OID.basicConstraints: {
          expectTag(inner, TAG.SEQUENCE, 'basicConstraints');
          const bc = childrenOf(value, inner);
          let ca = false;
          let pathLen: number | undefined;
          let k = 0;
          if (bc[k]?.tag === TAG.BOOLEAN) {
            ca = readBoolean(value, bc[k] as Tlv);
            if (!ca) throw new DerError('DER forbids an explicit cA=false');
            k++;
          }
          if (bc[k] !== undefined) pathLen = readSmallInt(value, bc[k++] as Tlv);
          if (bc.length !== k) throw new DerError('basicConstraints fields');
          basicConstraints = { ca, pathLen };
          break;
        }
        case OID.keyUsage: {
          const bits = readBitString(value, inner);
          keyUsage = bits.bytes.length === 0 ? 0 : (bits.bytes[0] as number);
          break;
        }
        case OID.extKeyUsage:
          extKeyUsage = childrenOf(value, expectTag(inner, TAG.SEQUENCE, 'extKeyUsage')).map((t) => readOid(value, t, 'keyPurpose'));
          break;
        case OID.subjectAltName:
          san = readGeneralNames(value, inner);
          break;
        case OID.subjectKeyIdentifier:
          subjectKeyId = bodyOf(value, expectTag(inner, TAG.OCTET_STRING, 'subjectKeyIdentifier'));
          break;
        case OID.authorityKeyIdentifier: {
          const first = childrenOf(value, expectTag(inner, TAG.SEQUENCE, 'authorityKeyIdentifier'))[0];
          if (first?.tag === 0x80) authorityKeyId = bodyOf(value, first);
          break;
        }
      }
    }
  }
  if (i !== f.length) throw new DerError('trailing fields in tbsCertificate');
  return {
    der,
    tbs: rawOf(der, tbsTlv as Tlv),
    serialHex: bodyOf(der, serialTlv).toString('hex'),
    signatureAlgorithm,
    signature: sig.bytes,
    issuer: rawOf(der, issuerTlv),
    subject: rawOf(der, subjectTlv),
    subjectHasCommonName,
    notBefore,
    notAfter,
    spki: rawOf(der, spkiTlv),
    basicConstraints,
    keyUsage,
    extKeyUsage,
    san,
    subjectKeyId,
    authorityKeyId,
    unknownCriticalExtensions: unknownCritical,
  };
}

/** Reads an AlgorithmIdentifier and returns the OID; parameters must be absent or NULL. */
export function readAlgorithm(buf: Uint8Array, alg: Tlv): string {
  const [id, params, ...rest] = childrenOf(buf, alg);
  const oid = readOid(buf, id, 'algorithm');
  if (rest.length > 0 || (params !== undefined && (params.tag !== TAG.NULL || params.end !== params.body))) throw new DerError('algorithm parameters');
  if (!(oid in SIGNATURE_DIGEST)) throw new PkiError('ERR_CERT_MALFORMED', `unsupported signature algorithm ${oid}`);
  return oid;
}

/** Parses every certificate of a PEM text, a DER buffer, or X509Certificate objects. */
export function parseCertificates(input: string | Uint8Array | readonly (Uint8Array | X509Certificate)[] | X509Certificate): ParsedCertificate[] {
  if (typeof input === 'string') return pemBlocks(input, 'CERTIFICATE').map((d) => parseCertificate(d));
  if (input instanceof X509Certificate) return [parseCertificate(input)];
  if (input instanceof Uint8Array) return parseDerSequence(input);
  return input.map((c) => parseCertificate(c));
}

/** Splits concatenated DER certificates (as some tools write chains). */
function parseDerSequence(buf: Uint8Array): ParsedCertificate[] {
  const out: ParsedCertificate[] = [];
  let pos = 0;
  try {
    while (pos < buf.length) {
      const tlv = readTlv(buf, pos);
      out.push(parseCertificate(buf.subarray(pos, tlv.end)));
      pos = tlv.end;
    }
  } catch (error) {
    if (error instanceof PkiError) throw error;
    throw malformed(error instanceof Error ? error.message : 'unreadable', error);
  }
  return out;
}

const keyCache = new Map<string, KeyObject>();

/** SubjectPublicKeyInfo prefix of an uncompressed P-256 key: SEQ { SEQ { ecPublicKey, prime256v1 }, BIT STRING 00 04 }. */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d03010703420004', 'hex');

/** True for the SPKI of an uncompressed P-256 public key (the SVID key type). */
export function isP256Spki(spki: Buffer): boolean {
  return spki.length === 91 && spki.subarray(0, 27).equals(P256_SPKI_PREFIX);
}

/** The public key of a SubjectPublicKeyInfo, cached for CA keys seen repeatedly. */
export function publicKeyOf(spki: Buffer, cache = false): KeyObject {
  const cacheKey = cache ? spki.toString('base64') : '';
  const hit = cache ? keyCache.get(cacheKey) : undefined;
  if (hit) return hit;
  let key: KeyObject;
  try {
    key = isP256Spki(spki)
      // OpenSSL 3's DER decoder costs about twice the JWK path; this is the CSR hot path.
      ? createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: spki.subarray(27, 59).toString('base64url'), y: spki.subarray(59, 91).toString('base64url') }, format: 'jwk' })
      : createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (error) {
    throw malformed('unsupported public key', error);
  }
  if (cache) {
    if (keyCache.size > 1024) keyCache.clear();
    keyCache.set(cacheKey, key);
  }
  return key;
}

/** True when `signature` over `data` verifies under `key` with the given algorithm OID. */
export function verifySignature(algorithm: string, data: Buffer, signature: Buffer, key: KeyObject): boolean {
  const digest = SIGNATURE_DIGEST[algorithm];
  if (digest === undefined) return false;
  const type = key.asymmetricKeyType;
  const isEc = algorithm.startsWith('1.2.840.10045.4.3.');
  const isRsa = algorithm.startsWith('1.2.840.113549.1.1.');
  if ((isEc && type !== 'ec') || (isRsa && type !== 'rsa') || (digest === null && type !== 'ed25519')) return false;
  try {
    return cryptoVerify(digest, data, key, signature);
  } catch {
    return false;
  }
}
