/**
 * PKCS#10 certificate signing requests for SPIFFE IDs: agents build them with
 * {@link createSvidCsr}; the CA checks them with {@link checkSvidCsr} before issuing.
 */
import type { KeyObject } from 'node:crypto';
import { parseSpiffeId, type SpiffeId } from '../core/spiffe-id.js';
import { checkSpki, isP256Spki, readGeneralNames, nameHasCommonName, publicKeyOf, readAlgorithm, verifySignature } from './certificate.js';
import { DerError, TAG, bitString, bodyOf, childrenOf, expectTag, octets, oid, rawOf, readBitString, readBoolean, readOid, readOnly, readSmallInt, readTlv, seq, set, tlv, type Tlv } from './der.js';
import { PkiError } from './errors.js';
import { signWith, signatureSchemeFor, spkiOf } from './keys.js';
import { OID } from './oids.js';
import { pemBlocks, toPem } from './pem.js';

export interface SvidCsr {
  readonly der: Buffer;
  readonly pem: string;
}

/** Encodes a SubjectAltName extension value holding one URI. */
export function uriSanValue(uri: string): Buffer {
  return seq(tlv(0x86, Buffer.from(uri, 'latin1')));
}

/**
 * Builds a CSR for a SPIFFE ID: empty subject, one URI SAN, signed by `privateKey`.
 *
 * @example
 * const { privateKey } = generateP256KeyPair();
 * const csr = createSvidCsr({ spiffeId: 'spiffe://example.org/web', privateKey });
 */
export function createSvidCsr(options: { spiffeId: string | SpiffeId; privateKey: KeyObject }): SvidCsr {
  const id = typeof options.spiffeId === 'string' ? parseSpiffeId(options.spiffeId) : options.spiffeId;
  const scheme = signatureSchemeFor(options.privateKey);
  const extensions = seq(seq(oid(OID.subjectAltName), octets(uriSanValue(id.toString()))));
  const attributes = tlv(0xa0, seq(oid(OID.extensionRequest), set(extensions)));
  const info = seq(Buffer.from([0x02, 0x01, 0x00]), seq(), spkiOf(options.privateKey), attributes);
  const der = seq(info, scheme.algorithmIdentifier, bitString(signWith(options.privateKey, scheme, info)));
  return { der, pem: toPem(der, 'CERTIFICATE REQUEST') };
}

/** What a checked CSR yields: the requester's public key. */
export interface CheckedCsr {
  readonly spki: Buffer;
  readonly publicKey: KeyObject;
}

function csrError(code: 'ERR_CSR_MALFORMED' | 'ERR_CSR_FORBIDDEN_NAME' | 'ERR_CSR_SPIFFE_ID_MISMATCH' | 'ERR_CSR_SIGNATURE' | 'ERR_CSR_KEY_UNSUPPORTED', message: string, cause?: unknown): PkiError {
  return new PkiError(code, message, { cause });
}

function checkKey(publicKey: KeyObject): void {
  const type = publicKey.asymmetricKeyType;
  const curve = publicKey.asymmetricKeyDetails?.namedCurve;
  const ok = (type === 'ec' && (curve === 'prime256v1' || curve === 'secp384r1'))
    || (type === 'rsa' && (publicKey.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048)
    || type === 'ed25519';
  if (!ok) throw csrError('ERR_CSR_KEY_UNSUPPORTED', `CSR key ${type ?? 'unknown'} ${curve ?? ''} is not supported`);
}

/**
 * Checks a CSR before issuance: valid PKCS#10 whose signature verifies with its own key, no
 * subject CN or email, and a SAN extension with exactly one URI equal to `authorised` and no
 * other name. Returns the public key to certify.
 *
 * @example const { spki } = checkSvidCsr(csrPem, 'spiffe://example.org/web');
 */
export function checkSvidCsr(csr: string | Uint8Array, authorised: string | SpiffeId): CheckedCsr {
  let der: Buffer;
  if (typeof csr === 'string') {
    const blocks = pemBlocks(csr, 'CERTIFICATE REQUEST', 'ERR_CSR_MALFORMED');
    if (blocks.length !== 1) throw csrError('ERR_CSR_MALFORMED', 'expected exactly one PEM CERTIFICATE REQUEST');
    der = blocks[0] as Buffer;
  } else der = Buffer.from(csr.buffer, csr.byteOffset, csr.length);
  const expected = String(authorised);
  try {
    return checkDer(der, expected);
  } catch (error) {
    if (error instanceof PkiError && error.code !== 'ERR_CERT_MALFORMED') throw error;
    throw csrError('ERR_CSR_MALFORMED', `CSR is malformed: ${error instanceof Error ? error.message : 'unreadable'}`, error);
  }
}

function checkDer(der: Buffer, expected: string): CheckedCsr {
  const root = readOnly(der, TAG.SEQUENCE);
  const [infoTlv, algTlv, sigTlv, ...extra] = childrenOf(der, root);
  if (extra.length > 0) throw new DerError('extra fields');
  const info = expectTag(infoTlv, TAG.SEQUENCE, 'certificationRequestInfo');
  const algorithm = readAlgorithm(der, expectTag(algTlv, TAG.SEQUENCE, 'signatureAlgorithm'));
  const sig = readBitString(der, expectTag(sigTlv, TAG.BIT_STRING, 'signature'));
  if (sig.unused !== 0) throw new DerError('signature has unused bits');
  const [version, subject, spkiTlv, attrs, ...more] = childrenOf(der, info);
  if (more.length > 0 || version === undefined || readSmallInt(der, version) !== 0) throw new DerError('version');
  const subjectTlv = expectTag(subject, TAG.SEQUENCE, 'subject');
  checkSpki(der, expectTag(spkiTlv, TAG.SEQUENCE, 'subjectPKInfo'));
  const spki = rawOf(der, spkiTlv as Tlv);
  const publicKey = publicKeyOf(spki);
  if (!isP256Spki(spki)) checkKey(publicKey);
  if (!verifySignature(algorithm, rawOf(der, info), sig.bytes, publicKey)) {
    throw csrError('ERR_CSR_SIGNATURE', 'CSR signature does not verify with its public key');
  }
  if (nameHasCommonName(der, subjectTlv) || subjectHasEmail(der, subjectTlv)) {
    throw csrError('ERR_CSR_FORBIDDEN_NAME', 'CSR subject carries a CN or email; only the SPIFFE ID URI SAN is allowed');
  }
  const uris = sanUris(der, attrs);
  if (uris.length !== 1) throw csrError('ERR_CSR_SPIFFE_ID_MISMATCH', `CSR carries ${uris.length} URI SANs; exactly one (the SPIFFE ID) is required`);
  if (uris[0] !== expected) throw csrError('ERR_CSR_SPIFFE_ID_MISMATCH', 'CSR asks for a SPIFFE ID other than the authorised one');
  return { spki, publicKey };
}

function subjectHasEmail(der: Buffer, name: Tlv): boolean {
  for (const rdn of childrenOf(der, name)) {
    for (const atv of childrenOf(der, rdn)) {
      if (readOid(der, childrenOf(der, atv)[0], 'attribute') === '1.2.840.113549.1.9.1') return true;
    }
  }
  return false;
}

function sanUris(der: Buffer, attrs: Tlv | undefined): string[] {
  if (attrs === undefined) return [];
  expectTag(attrs, 0xa0, 'attributes');
  const uris: string[] = [];
  const seenAttributes = new Set<string>();
  const seenExtensions = new Set<string>();
  for (const attr of childrenOf(der, attrs)) {
    const fields = childrenOf(der, expectTag(attr, TAG.SEQUENCE, 'attribute'));
    const [typeTlv, valuesTlv] = fields;
    const type = readOid(der, typeTlv, 'attribute type');
    const values = childrenOf(der, expectTag(valuesTlv, TAG.SET, 'attribute values'));
    if (fields.length !== 2 || values.length === 0) throw new DerError('attribute fields');
    if (seenAttributes.has(type)) throw new DerError(`duplicate attribute ${type}`);
    seenAttributes.add(type);
    if (type !== OID.extensionRequest) continue;
    // PKCS#9: extensionRequest is single-valued; each Extension is { extnID, critical DEFAULT FALSE, extnValue }.
    if (values.length !== 1) throw new DerError('extensionRequest values');
    for (const exts of values) {
      const list = childrenOf(der, expectTag(exts, TAG.SEQUENCE, 'extensions'));
      if (list.length === 0) throw new DerError('empty extensions');
      for (const ext of list) {
        const parts = childrenOf(der, expectTag(ext, TAG.SEQUENCE, 'extension'));
        const id = readOid(der, parts[0], 'extnID');
        if (seenExtensions.has(id)) throw new DerError(`duplicate extension ${id}`);
        seenExtensions.add(id);
        if (parts.length === 3 && !readBoolean(der, parts[1] as Tlv)) throw new DerError('DER forbids an explicit critical=false');
        if (parts.length !== 2 && parts.length !== 3) throw new DerError('extension fields');
        const value = bodyOf(der, expectTag(parts[parts.length - 1], TAG.OCTET_STRING, 'extnValue'));
        readOnly(value, readTlv(value, 0).tag);
        if (id !== OID.subjectAltName) continue;
        const names = readGeneralNames(value, readOnly(value, readTlv(value, 0).tag));
        if (names.dnsNames.length + names.ipCount + names.emailCount + names.otherCount > 0) {
          throw csrError('ERR_CSR_FORBIDDEN_NAME', 'CSR asks for DNS, IP, email or other names; only the SPIFFE ID URI SAN is allowed');
        }
        uris.push(...names.uris);
      }
    }
  }
  return uris;
}
