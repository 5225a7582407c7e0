/**
 * Encodes and signs X.509 v3 certificates with the DER writer and node:crypto. CA certificates
 * are built here once per rotation; leaves go through the pre-encoded template of
 * svid-issue.ts, which uses the same pieces (see docs/adr/0011).
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { DER_TRUE, bitString, octets, oid, seq, set, smallInt, time, tlv, uint } from './der.js';
import { keyIdentifier, signWith, type SignatureScheme } from './keys.js';
import { KEY_USAGE, OID } from './oids.js';
import { uriSanValue } from './csr.js';

export const V3: Buffer = tlv(0xa0, smallInt(2));

const oidCache = new Map<string, Buffer>();

/** Encodes one Extension (extension OIDs are encoded once and cached: this is on the issuance path). */
export function extension(id: string, critical: boolean, value: Buffer): Buffer {
  let idDer = oidCache.get(id);
  if (!idDer) oidCache.set(id, (idDer = oid(id)));
  return critical ? seq(idDer, DER_TRUE, octets(value)) : seq(idDer, octets(value));
}

/** A Name from (type OID, value) pairs, one RDN each; country as PrintableString, others UTF8. */
export function distinguishedName(attributes: readonly (readonly [string, string])[]): Buffer {
  return seq(...attributes.map(([type, value]) => set(seq(oid(type), tlv(type === OID.country ? 0x13 : 0x0c, Buffer.from(value, 'utf8'))))));
}

/** A random positive 128-bit serial (RFC 5280 allows 20 octets; collision odds are 2^-64 at 2^32 certs). */
let serialPool = Buffer.alloc(0);
let serialPoolOffset = 0;

export function randomSerial(): Buffer {
  // One CSPRNG call per 256 serials instead of one each: issuance is a hot path.
  if (serialPoolOffset + 16 > serialPool.length) {
    serialPool = randomBytes(4096);
    serialPoolOffset = 0;
  }
  const bytes = Buffer.from(serialPool.subarray(serialPoolOffset, serialPoolOffset + 16));
  serialPool.fill(0, serialPoolOffset, serialPoolOffset + 16);
  serialPoolOffset += 16;
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x40;
  return bytes;
}

export const basicConstraintsValue = (ca: boolean, pathLen?: number): Buffer =>
  ca ? seq(DER_TRUE, ...(pathLen === undefined ? [] : [smallInt(pathLen)])) : seq();

export const keyUsageValue = (bits: number): Buffer => {
  let unused = 0;
  while (unused < 7 && (bits & (1 << unused)) === 0) unused++;
  return bitString(Buffer.from([bits]), unused);
};

export const authorityKeyIdValue = (keyId: Buffer): Buffer => seq(tlv(0x80, keyId));

export interface CertificateSpec {
  readonly serial: Buffer;
  readonly issuer: Buffer;
  readonly subject: Buffer;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly spki: Buffer;
  readonly extensions: readonly Buffer[];
  readonly signingKey: KeyObject;
  readonly scheme: SignatureScheme;
}

/** Encodes and signs a certificate; returns its DER. */
export function buildCertificate(spec: CertificateSpec): Buffer {
  const tbs = seq(
    V3,
    uint(spec.serial),
    spec.scheme.algorithmIdentifier,
    spec.issuer,
    seq(time(spec.notBefore), time(spec.notAfter)),
    spec.subject,
    spec.spki,
    tlv(0xa3, seq(...spec.extensions)),
  );
  return seq(tbs, spec.scheme.algorithmIdentifier, bitString(signWith(spec.signingKey, spec.scheme, tbs)));
}

/** Extensions of a Ward CA certificate: CA flag (with path length), keyCertSign+cRLSign, key ids, trust domain URI. */
export function caExtensions(options: { spki: Buffer; issuerKeyId?: Buffer; pathLen: number; trustDomain: string }): Buffer[] {
  const ski = keyIdentifier(options.spki);
  const exts = [
    extension(OID.basicConstraints, true, basicConstraintsValue(true, options.pathLen)),
    extension(OID.keyUsage, true, keyUsageValue(KEY_USAGE.keyCertSign | KEY_USAGE.cRLSign)),
    extension(OID.subjectKeyIdentifier, false, octets(ski)),
  ];
  if (options.issuerKeyId) exts.push(extension(OID.authorityKeyIdentifier, false, authorityKeyIdValue(options.issuerKeyId)));
  exts.push(extension(OID.subjectAltName, false, uriSanValue(`spiffe://${options.trustDomain}`)));
  return exts;
}
