/**
 * Verification of the PKCS#7 (CMS SignedData) signature AWS puts on the EC2 instance identity
 * document (`/latest/dynamic/instance-identity/rsa2048`): RSA PKCS#1 v1.5 over SHA-256, content
 * detached (the document is fetched separately), signed attributes carrying contentType and
 * messageDigest, no certificates embedded: the verifier supplies AWS's public certificate for
 * the region. Parsing uses @peculiar/asn1-cms; the cryptography is node:crypto.
 */
import { createHash, timingSafeEqual, verify as verifySignature, type X509Certificate } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { ContentInfo, SignedData, id_data, id_signedData } from '@peculiar/asn1-cms';
import { PlatformError } from '../errors.js';

const OID_CONTENT_TYPE = '1.2.840.113549.1.9.3';
const OID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
const OID_RSA = '1.2.840.113549.1.1.1';

/** Digest algorithms accepted (SHA-1 is refused: fail closed on weak digests). */
const DIGESTS: Readonly<Record<string, string>> = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
/** RSA signature algorithm OIDs -> the digest they imply. */
const RSA_SIG: Readonly<Record<string, string | undefined>> = {
  [OID_RSA]: undefined,
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
};

/** Max DER size of a signature (AWS's is about 1.2 KB). */
export const MAX_PKCS7_BYTES = 16_384;

export interface Pkcs7Verified {
  /** The certificate whose key verified the signature. */
  readonly signer: X509Certificate;
  /** The content that was signed (the document bytes). */
  readonly content: Buffer;
}

const malformed = (message: string): PlatformError =>
  new PlatformError('ERR_ATTEST_MALFORMED', `pkcs7: ${message}`, { details: { path: 'aws_iid.signature' } });
const forged = (message: string): PlatformError => new PlatformError('ERR_ATTEST_FORGED', `pkcs7: ${message}`);

function normalizeSerial(hex: string): string {
  return hex.toLowerCase().replace(/^(00)+(?=.)/, '');
}

interface ParsedSignedData {
  readonly signed: SignedData;
  readonly attached: Buffer | undefined;
}

/** Parses the DER ContentInfo; any structural problem is ERR_ATTEST_MALFORMED. */
export function parsePkcs7(der: Buffer): ParsedSignedData {
  if (der.length === 0 || der.length > MAX_PKCS7_BYTES) throw malformed(`size ${der.length} out of range`);
  let info: ContentInfo;
  let signed: SignedData;
  try {
    info = AsnConvert.parse(der, ContentInfo);
    if (info.contentType !== id_signedData) throw malformed('not a SignedData');
    signed = AsnConvert.parse(info.content, SignedData);
  } catch (error) {
    if (error instanceof PlatformError) throw error;
    throw malformed('not DER-encoded CMS SignedData');
  }
  if (signed.encapContentInfo.eContentType !== id_data) throw malformed('encapsulated content is not id-data');
  const e = signed.encapContentInfo.eContent;
  let attached: Buffer | undefined;
  if (e?.single !== undefined) attached = Buffer.from(e.single.buffer);
  else if (e?.any !== undefined) {
    // IMDS streams the document as a constructed, indefinite-length OCTET STRING (BER).
    try {
      const { value, end } = decodeBerOctetString(Buffer.from(e.any), 0, 0);
      if (end !== e.any.byteLength) throw new Error('trailing bytes');
      attached = value;
    } catch {
      throw malformed('encapsulated content is not an OCTET STRING');
    }
  }
  if (signed.signerInfos.length !== 1) throw malformed(`expected exactly one signer, found ${signed.signerInfos.length}`);
  return { signed, attached };
}

/**
 * Verifies `der` over `content` (detached) against `trusted` certificates.
 * Throws ERR_ATTEST_MALFORMED for structure, ERR_ATTEST_FORGED for anything that does not verify.
 */
export function verifyPkcs7(der: Buffer, content: Buffer, trusted: readonly X509Certificate[]): Pkcs7Verified {
  const { signed, attached } = parsePkcs7(der);
  if (attached !== undefined && (attached.length !== content.length || !timingSafeEqual(attached, content))) {
    throw forged('attached content differs from the document');
  }
  const signer = signed.signerInfos[0]!;
  const digestName = DIGESTS[signer.digestAlgorithm.algorithm];
  if (digestName === undefined) throw forged(`digest algorithm ${signer.digestAlgorithm.algorithm} is not accepted`);
  const sigAlg = signer.signatureAlgorithm.algorithm;
  if (!(sigAlg in RSA_SIG)) throw forged(`signature algorithm ${sigAlg} is not RSA`);
  const implied = RSA_SIG[sigAlg];
  if (implied !== undefined && implied !== digestName) throw forged('signature and digest algorithms disagree');

  let signedBytes: Buffer;
  if (signer.signedAttrs !== undefined) {
    // Signed attributes are signed as an explicit SET OF (tag 0x31), not as the [0] IMPLICIT
    // form they are transmitted in (RFC 5652 §5.4). Re-encode them and insist the transmitted
    // bytes are exactly that encoding, so what we verify is what was sent.
    let body: Buffer;
    try {
      body = Buffer.concat(signer.signedAttrs.map((a) => Buffer.from(AsnConvert.serialize(a))));
    } catch {
      throw malformed('signed attributes could not be re-encoded');
    }
    const header = derHeader(0x31, body.length);
    signedBytes = Buffer.concat([header, body]);
    const transmitted = Buffer.concat([Buffer.from([0xa0]), header.subarray(1), body]);
    if (der.indexOf(transmitted) === -1) throw malformed('signed attributes are not DER-encoded');
    const attr = (oid: string): ArrayBuffer => {
      const found = signer.signedAttrs!.filter((a) => a.attrType === oid);
      if (found.length !== 1 || found[0]!.attrValues.length !== 1) throw forged(`signed attribute ${oid} must appear exactly once`);
      return found[0]!.attrValues[0]!;
    };
    let digestAttr: Buffer;
    let contentTypeOid: string;
    try {
      digestAttr = Buffer.from(AsnConvert.parse(attr(OID_MESSAGE_DIGEST), OctetString).buffer);
      contentTypeOid = decodeOid(Buffer.from(attr(OID_CONTENT_TYPE)));
    } catch (error) {
      if (error instanceof PlatformError) throw error;
      throw malformed('signed attributes are not well-formed');
    }
    if (contentTypeOid !== id_data) throw forged('signed contentType is not id-data');
    const digest = createHash(digestName).update(content).digest();
    if (digestAttr.length !== digest.length || !timingSafeEqual(digestAttr, digest)) throw forged('message digest does not match the document');
  } else {
    signedBytes = content;
  }

  const signature = Buffer.from(signer.signature.buffer);
  const sid = signer.sid.issuerAndSerialNumber;
  const serial = sid === undefined ? undefined : normalizeSerial(Buffer.from(sid.serialNumber).toString('hex'));
  const candidates = trusted.filter((cert) => serial === undefined || normalizeSerial(cert.serialNumber) === serial);
  if (candidates.length === 0) throw forged('signed by a certificate that is not configured');
  for (const cert of candidates) {
    if (cert.publicKey.asymmetricKeyType !== 'rsa') continue;
    if (verifySignature(digestName, signedBytes, cert.publicKey, signature)) return { signer: cert, content };
  }
  throw forged('signature does not verify');
}

/**
 * Decodes a BER OCTET STRING at `at`: primitive (`04`), or constructed (`24`) of nested
 * segments with a definite or indefinite (`80` … `00 00`) length. Throws on anything else.
 */
export function decodeBerOctetString(buf: Buffer, at: number, depth: number): { value: Buffer; end: number } {
  if (depth > 8) throw new Error('too deeply nested');
  const tag = buf[at];
  if (tag !== 0x04 && tag !== 0x24) throw new Error('not an OCTET STRING');
  let pos = at + 1;
  const first = buf[pos++];
  if (first === undefined) throw new Error('truncated');
  let length: number | undefined;
  if (first === 0x80) {
    if (tag === 0x04) throw new Error('indefinite primitive');
    length = undefined;
  } else if (first < 0x80) {
    length = first;
  } else {
    const n = first & 0x7f;
    if (n > 4) throw new Error('length too long');
    length = 0;
    for (let i = 0; i < n; i++) {
      const b = buf[pos++];
      if (b === undefined) throw new Error('truncated');
      length = length * 256 + b;
    }
  }
  if (tag === 0x04) {
    const end = pos + length!;
    if (end > buf.length) throw new Error('truncated');
    return { value: buf.subarray(pos, end), end };
  }
  const parts: Buffer[] = [];
  const limit = length === undefined ? buf.length : pos + length;
  if (limit > buf.length) throw new Error('truncated');
  for (;;) {
    if (length === undefined && buf[pos] === 0x00 && buf[pos + 1] === 0x00) return { value: Buffer.concat(parts), end: pos + 2 };
    if (length !== undefined && pos === limit) return { value: Buffer.concat(parts), end: pos };
    if (pos >= limit) throw new Error('truncated');
    const seg = decodeBerOctetString(buf, pos, depth + 1);
    parts.push(seg.value);
    pos = seg.end;
  }
}

/** A DER tag + definite length header. */
function derHeader(tag: number, length: number): Buffer {
  if (length < 0x80) return Buffer.from([tag, length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
}

/** Decodes a DER OBJECT IDENTIFIER (the `contentType` attribute value). */
export function decodeOid(der: Buffer): string {
  if (der.length < 3 || der[0] !== 0x06 || der[1]! > 0x7f || der[1] !== der.length - 2) throw new Error('not a short-form OID');
  const parts: number[] = [];
  let value = 0;
  for (let i = 2; i < der.length; i++) {
    const byte = der[i]!;
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw new Error('OID arc too large');
    if ((byte & 0x80) === 0) {
      parts.push(value);
      value = 0;
    } else if (i === der.length - 1) throw new Error('truncated OID');
  }
  const first = parts.shift()!;
  const a = first < 80 ? Math.floor(first / 40) : 2;
  return [a, first - a * 40, ...parts].join('.');
}
