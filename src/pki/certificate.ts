/**
 * X.509 v3 certificate parsing for verification: the fields the X509-SVID spec and RFC 5280 path
 * validation need, read with the strict DER reader. Untrusted input: anything unexpected is
 * `ERR_CERT_MALFORMED` (fuzzed in test/fuzz/svid-verify.test.ts).
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject, X509Certificate } from 'node:crypto';
import { DerError, TAG, bodyOf, checkPositiveInteger, childrenOf, expectTag, rawOf, readBitString, readBoolean, readOid, readOnly, readSmallInt, readTime, readTlv, type Tlv } from './der.js';
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
  /** authorityCertSerialNumber of the AKI extension, as hex of its content octets, if present. */
  readonly authoritySerialHex: string | undefined;
  readonly unknownCriticalExtensions: readonly string[];
}

const PROCESSED_EXTENSIONS = new Set<string>([
  OID.basicConstraints, OID.keyUsage, OID.extKeyUsage, OID.subjectAltName, OID.subjectKeyIdentifier, OID.authorityKeyIdentifier,
]);

function malformed(why: string, cause?: unknown): PkiError {
  return new PkiError('ERR_CERT_MALFORMED', `certificate is malformed: ${why}`, { cause });
}

/**
 * True when the DER Name holds a commonName attribute. Also checks the Name's shape (every RDN a
 * non-empty SET of {type, primitive value}) so a Name other readers refuse is refused here too.
 */
export function nameHasCommonName(buf: Uint8Array, name: Tlv): boolean {
  let found = false;
  for (const rdn of childrenOf(buf, name)) {
    const atvs = childrenOf(buf, expectTag(rdn, TAG.SET, 'RDN'));
    if (atvs.length === 0) throw new DerError('empty RDN');
    for (const atv of atvs) {
      const parts = childrenOf(buf, expectTag(atv, TAG.SEQUENCE, 'attribute'));
      const [type, value] = parts;
      if (parts.length !== 2 || value === undefined) throw new DerError('attribute fields');
      checkDirectoryString(buf, value);
      if (readOid(buf, type, 'attribute type') === OID.commonName) found = true;
    }
  }
  return found;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
const PRINTABLE_RE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** An attribute value: one of the string types, well formed (OpenSSL refuses bad UTF-8 or PrintableString). */
function checkDirectoryString(buf: Uint8Array, value: Tlv): void {
  const bytes = buf.subarray(value.body, value.end);
  switch (value.tag) {
    case TAG.UTF8_STRING:
      try {
        UTF8.decode(bytes);
      } catch {
        throw new DerError('UTF8String is not UTF-8');
      }
      return;
    case TAG.PRINTABLE_STRING:
      if (!PRINTABLE_RE.test(Buffer.from(bytes).toString('latin1'))) throw new DerError('PrintableString character');
      return;
    case TAG.IA5_STRING:
      if (bytes.some((b) => b > 0x7f)) throw new DerError('IA5String character');
      return;
    case 0x14: // TeletexString
    case 0x1c: // UniversalString
    case 0x1e: // BMPString
      if (value.tag === 0x1e ? bytes.length % 2 !== 0 : value.tag === 0x1c && bytes.length % 4 !== 0) throw new DerError('string length');
      return;
    default:
      throw new DerError(`attribute value tag 0x${value.tag.toString(16)} is not a string`);
  }
}

/** GeneralName CHOICE tags (RFC 5280 4.2.1.6): context-specific, constructed exactly where the ASN.1 says. */
const GENERAL_NAME_TAGS = new Set([0xa0, 0x81, 0x82, 0xa3, 0xa4, 0xa5, 0x86, 0x87, 0x88]);

const EC_CURVES = new Set([OID.p256, OID.p384, '1.3.132.0.35']);

/** Checks a SubjectPublicKeyInfo is SEQUENCE { AlgorithmIdentifier, BIT STRING with no unused bits }. */
export function checkSpki(buf: Uint8Array, spki: Tlv): void {
  const parts = childrenOf(buf, spki);
  if (parts.length !== 2) throw new DerError('subjectPublicKeyInfo fields');
  const alg = childrenOf(buf, expectTag(parts[0], TAG.SEQUENCE, 'subjectPublicKeyInfo algorithm'));
  const keyAlg = readOid(buf, alg[0], 'public key algorithm');
  const params = alg[1];
  if (alg.length > 2) throw new DerError('public key algorithm fields');
  // Only the key types Ward verifies, with the parameters RFC 5480 / 3279 / 8410 give them.
  if (keyAlg === OID.ecPublicKey) {
    if (!EC_CURVES.has(readOid(buf, params, 'namedCurve'))) throw new DerError('unsupported EC curve');
  } else if (keyAlg === OID.rsaEncryption) {
    if (params === undefined || params.tag !== TAG.NULL || params.end !== params.body) throw new DerError('RSA key parameters');
  } else if (keyAlg === OID.ed25519) {
    if (params !== undefined) throw new DerError('Ed25519 key parameters');
  } else throw new DerError(`unsupported public key algorithm ${keyAlg}`);
  if (readBitString(buf, parts[1] as Tlv).unused !== 0) throw new DerError('subjectPublicKey has unused bits');
}

/** Reads a GeneralNames sequence (SAN extension value). */
export function readGeneralNames(buf: Uint8Array, names: Tlv): SubjectAltNames {
  const uris: string[] = [];
  const dnsNames: string[] = [];
  let ipCount = 0;
  let emailCount = 0;
  let otherCount = 0;
  expectTag(names, TAG.SEQUENCE, 'GeneralNames');
  const all = childrenOf(buf, names);
  if (all.length === 0) throw new DerError('empty GeneralNames');
  for (const gn of all) {
    if (!GENERAL_NAME_TAGS.has(gn.tag)) throw new DerError(`GeneralName tag 0x${gn.tag.toString(16)} is not a GeneralName`);
    if ((gn.tag & 0x20) !== 0) childrenOf(buf, gn);
    switch (gn.tag) {
      case 0x86: {
        const text = bodyOf(buf, gn).toString('latin1');
        // IA5String: 7-bit only. Reject rather than let a byte trick the ID comparison.
        if (/[^\x20-\x7e]/.test(text)) throw new DerError('URI SAN is not printable IA5');
        uris.push(text);
        break;
      }
      case 0x82: {
        const text = bodyOf(buf, gn).toString('latin1');
        if (/[^\x20-\x7e]/.test(text)) throw new DerError('DNS SAN is not printable IA5');
        dnsNames.push(text);
        break;
      }
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
  checkPositiveInteger(der, serialTlv, 21);
  const innerAlg = expectTag(f[i++], TAG.SEQUENCE, 'signature');
  if (!rawOf(der, innerAlg).equals(rawOf(der, algTlv as Tlv))) throw new DerError('inner and outer signature algorithms differ');
  const issuerTlv = expectTag(f[i++], TAG.SEQUENCE, 'issuer');
  nameHasCommonName(der, issuerTlv);
  if (issuerTlv.end === issuerTlv.body) throw new DerError('empty issuer name'); // RFC 5280 4.1.2.4
  const validity = childrenOf(der, expectTag(f[i++], TAG.SEQUENCE, 'validity'));
  if (validity.length !== 2) throw new DerError('validity');
  const notBefore = readTime(der, validity[0]);
  const notAfter = readTime(der, validity[1]);
  const subjectTlv = expectTag(f[i++], TAG.SEQUENCE, 'subject');
  const subjectHasCommonName = nameHasCommonName(der, subjectTlv);
  const spkiTlv = expectTag(f[i++], TAG.SEQUENCE, 'subjectPublicKeyInfo');
  checkSpki(der, spkiTlv);
  // issuerUniqueID [1] and subjectUniqueID [2]: IMPLICIT BIT STRING, so primitive, in order.
  if (f[i]?.tag === 0x81) readBitString(der, { ...(f[i++] as Tlv), tag: TAG.BIT_STRING });
  if (f[i]?.tag === 0x82) readBitString(der, { ...(f[i++] as Tlv), tag: TAG.BIT_STRING });
  let basicConstraints: BasicConstraints | undefined;
  let keyUsage: number | undefined;
  let extKeyUsage: string[] | undefined;
  let san: SubjectAltNames = { uris: [], dnsNames: [], ipCount: 0, emailCount: 0, otherCount: 0 };
  let subjectKeyId: Buffer | undefined;
  let authorityKeyId: Buffer | undefined;
  let authoritySerialHex: string | undefined;
  const unknownCritical: string[] = [];
  let sanCritical = false;
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
          if (bc[k] !== undefined) {
            // RFC 5280 4.2.1.9: pathLenConstraint only when cA is asserted (OpenSSL marks it invalid otherwise).
            if (!ca) throw new DerError('pathLenConstraint without cA');
            pathLen = readSmallInt(value, bc[k++] as Tlv);
          }
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
          if (extKeyUsage.length === 0) throw new DerError('empty extKeyUsage');
          break;
        case OID.subjectAltName:
          san = readGeneralNames(value, inner);
          sanCritical = critical;
          break;
        case OID.subjectKeyIdentifier:
          subjectKeyId = bodyOf(value, expectTag(inner, TAG.OCTET_STRING, 'subjectKeyIdentifier'));
          break;
        case OID.authorityKeyIdentifier: {
          // SEQUENCE { [0] keyIdentifier OPTIONAL, [1] authorityCertIssuer OPTIONAL, [2] serial OPTIONAL }, in order.
          const fields = childrenOf(value, expectTag(inner, TAG.SEQUENCE, 'authorityKeyIdentifier'));
          let last = -1;
          for (const field of fields) {
            const n = [0x80, 0xa1, 0x82].indexOf(field.tag);
            if (n <= last) throw new DerError('authorityKeyIdentifier fields');
            last = n;
            if (field.tag === 0xa1) readGeneralNames(value, { ...field, tag: TAG.SEQUENCE });
            if (field.tag === 0x82) {
              checkPositiveInteger(value, { ...field, tag: TAG.INTEGER }, 21);
              authoritySerialHex = bodyOf(value, field).toString('hex');
            }
          }
          if (fields[0]?.tag === 0x80) authorityKeyId = bodyOf(value, fields[0]);
          break;
        }
      }
    }
  }
  if (i !== f.length) throw new DerError('trailing fields in tbsCertificate');
  // RFC 5280 4.1.2.6: with an empty subject the names live in a SAN extension that MUST be critical.
  if (subjectTlv.end === subjectTlv.body && !sanCritical) throw new DerError('empty subject without a critical subjectAltName');
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
    authoritySerialHex,
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
