/**
 * X.509-SVID verification as the X509-SVID spec (sections 4 and 5) and RFC 5280 path validation
 * require, with one stable code per violated rule. The data plane calls it on TLS peer chains
 * (DER buffers or X509Certificate objects are accepted as they come from `tls`).
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { parseSpiffeId, type SpiffeId } from '../core/spiffe-id.js';
import { SpiffeIdError } from '../core/errors.js';
import type { TrustBundle, X509Authority } from './bundle.js';
import { parseCertificates, publicKeyOf, verifySignature, type ParsedCertificate } from './certificate.js';
import { PkiError, type PkiErrorCode } from './errors.js';
import { KEY_USAGE } from './oids.js';

/** Longest chain accepted (leaf + intermediates + anchor). */
export const MAX_CHAIN_LENGTH = 8;

export interface VerifyX509SvidOptions {
  /** Required trust domain; defaults to the bundle's, if it names one. */
  readonly trustDomain?: string;
  /** Verification time in epoch ms (take it from the injected clock). */
  readonly at: number;
}

export interface VerifiedX509Svid {
  readonly spiffeId: SpiffeId;
  readonly serialHex: string;
  readonly notBefore: number;
  /** The earliest notAfter along the path: when this identity stops being valid. */
  readonly notAfter: number;
  /** The leaf, as parsed. */
  readonly leaf: ParsedCertificate;
  /** Certificates from leaf to anchor as used. */
  readonly path: readonly ParsedCertificate[];
  /** True when the anchor is tainted in the bundle: the peer should re-issue soon. */
  readonly tainted: boolean;
}

export type X509ChainInput = string | Uint8Array | X509Certificate | readonly (Uint8Array | X509Certificate)[];

function fail(code: PkiErrorCode, message: string, details?: Record<string, unknown>): never {
  throw new PkiError(code, message, details ? { details } : {});
}

function checkTime(cert: ParsedCertificate, at: number, what: string): void {
  if (at < cert.notBefore) fail('ERR_SVID_NOT_YET_VALID', `${what} is not valid before ${new Date(cert.notBefore).toISOString()}`);
  if (at > cert.notAfter) fail('ERR_SVID_EXPIRED', `${what} expired at ${new Date(cert.notAfter).toISOString()}`);
}

function checkKeyIdentifiers(cert: ParsedCertificate, signing: boolean, what: string): void {
  if (signing && cert.subjectKeyId === undefined) fail('ERR_SVID_KEY_IDENTIFIER_MISSING', `${what} has no subject key identifier`);
  if (cert.authorityKeyId === undefined && !cert.issuer.equals(cert.subject)) fail('ERR_SVID_KEY_IDENTIFIER_MISSING', `${what} has no authority key identifier`);
}

function checkSigningCert(cert: ParsedCertificate, intermediatesBelow: number, what: string): void {
  checkKeyIdentifiers(cert, true, what);
  if (cert.unknownCriticalExtensions.length > 0) {
    fail('ERR_SVID_UNKNOWN_CRITICAL_EXTENSION', `${what} carries unprocessed critical extension ${cert.unknownCriticalExtensions[0]}`);
  }
  if (!cert.basicConstraints?.ca) fail('ERR_SVID_INTERMEDIATE_NOT_CA', `${what} signs certificates but has no CA flag`);
  if (cert.keyUsage === undefined || (cert.keyUsage & KEY_USAGE.keyCertSign) === 0) {
    fail('ERR_SVID_INTERMEDIATE_NO_KEY_CERT_SIGN', `${what} signs certificates but lacks keyCertSign`);
  }
  const pathLen = cert.basicConstraints.pathLen;
  if (pathLen !== undefined && intermediatesBelow > pathLen) {
    fail('ERR_SVID_PATH_LENGTH', `${what} allows ${pathLen} intermediates below it, the chain has ${intermediatesBelow}`);
  }
}

/**
 * Without a required trust domain, an anchor that names its own (a `spiffe://<td>` URI SAN, as
 * Ward roots carry) vouches only for IDs in it: one domain's CA never speaks for another's.
 */
function checkAnchorTrustDomain(anchor: ParsedCertificate, spiffeId: SpiffeId): void {
  const named = anchor.san.uris.filter((u) => /^spiffe:\/\/[^/]+$/.test(u)).map((u) => u.slice('spiffe://'.length));
  if (named.length > 0 && !named.some((td) => spiffeId.memberOf(td))) {
    fail('ERR_SVID_WRONG_TRUST_DOMAIN', `${spiffeId.toString()} is not in trust domain ${named.join(', ')} that its anchor names`, { trustDomain: spiffeId.trustDomain });
  }
}

/**
 * True when `issuer` issued `subject`: names chain byte for byte, the subject's authority key
 * identifier (if any) names the issuer's key and serial as OpenSSL's X509_check_akid requires,
 * and the signature verifies.
 */
function signs(issuer: ParsedCertificate, subject: ParsedCertificate, issuerKey?: KeyObject): boolean {
  if (!issuer.subject.equals(subject.issuer)) return false;
  if (subject.authorityKeyId !== undefined && issuer.subjectKeyId !== undefined && !subject.authorityKeyId.equals(issuer.subjectKeyId)) return false;
  if (subject.authoritySerialHex !== undefined && subject.authoritySerialHex !== issuer.serialHex) return false;
  return verifySignature(subject.signatureAlgorithm, subject.tbs, subject.signature, issuerKey ?? publicKeyOf(issuer.spki, true));
}

/**
 * Verifies an X.509-SVID chain (leaf first) against a trust bundle.
 *
 * @example
 * const { spiffeId } = verifyX509Svid(peerCertificateChain(socket.getPeerCertificate(true)), bundle, { at: clock.now() });
 */
export function verifyX509Svid(chain: X509ChainInput, bundle: TrustBundle, options: VerifyX509SvidOptions): VerifiedX509Svid {
  const certs = parseCertificates(chain);
  const leaf = certs[0];
  if (!leaf) fail('ERR_SVID_CHAIN_EMPTY', 'no certificate was presented');
  if (certs.length > MAX_CHAIN_LENGTH) fail('ERR_SVID_PATH_LENGTH', `chain of ${certs.length} certificates is longer than ${MAX_CHAIN_LENGTH}`);

  // Leaf rules (X509-SVID 4.1, 4.3, 2).
  if (leaf.basicConstraints?.ca) fail('ERR_SVID_LEAF_IS_CA', 'leaf certificate has the CA flag set');
  if (leaf.keyUsage !== undefined && (leaf.keyUsage & (KEY_USAGE.keyCertSign | KEY_USAGE.cRLSign)) !== 0) {
    fail('ERR_SVID_LEAF_KEY_CERT_SIGN', 'leaf key usage includes keyCertSign or cRLSign');
  }
  if (leaf.keyUsage === undefined || (leaf.keyUsage & KEY_USAGE.digitalSignature) === 0) {
    fail('ERR_SVID_LEAF_NO_DIGITAL_SIGNATURE', 'leaf key usage lacks digitalSignature');
  }
  if (leaf.unknownCriticalExtensions.length > 0) {
    fail('ERR_SVID_UNKNOWN_CRITICAL_EXTENSION', `leaf carries unprocessed critical extension ${leaf.unknownCriticalExtensions[0]}`);
  }
  // The leaf's key is never used below, but a peer holding a certificate whose key no TLS stack
  // can load must not be accepted as an identity (OpenSSL refuses such a certificate outright).
  publicKeyOf(leaf.spki, true);
  if (leaf.san.uris.length !== 1) fail('ERR_SVID_URI_SAN_COUNT', `leaf carries ${leaf.san.uris.length} URI SANs; an X509-SVID has exactly one`);
  let spiffeId: SpiffeId;
  try {
    spiffeId = parseSpiffeId(leaf.san.uris[0] as string);
  } catch (error) {
    if (!(error instanceof SpiffeIdError)) throw error;
    throw new PkiError('ERR_SVID_URI_NOT_SPIFFE', `leaf URI SAN is not a SPIFFE ID: ${error.message}`, { details: { spiffeCode: error.code }, cause: error });
  }
  const trustDomain = options.trustDomain ?? bundle.trustDomain;
  if (trustDomain !== undefined && !spiffeId.memberOf(trustDomain)) {
    fail('ERR_SVID_WRONG_TRUST_DOMAIN', `${spiffeId.toString()} is not in trust domain ${trustDomain}`, { trustDomain: spiffeId.trustDomain });
  }
  checkTime(leaf, options.at, 'leaf');
  checkKeyIdentifiers(leaf, false, 'leaf');

  // Path building: leaf -> presented intermediates -> an authority of the bundle.
  const path: ParsedCertificate[] = [leaf];
  const unused = certs.slice(1);
  let current = leaf;
  let notAfter = leaf.notAfter;
  for (;;) {
    const intermediatesBelow = path.length - 1;
    const anchor: X509Authority | undefined = bundle.x509Authorities.find((a) => signs(a.cert, current, a.publicKey));
    if (anchor) {
      checkSigningCert(anchor.cert, intermediatesBelow, 'trust bundle authority');
      if (trustDomain === undefined) checkAnchorTrustDomain(anchor.cert, spiffeId);
      checkTime(anchor.cert, options.at, 'trust bundle authority');
      notAfter = Math.min(notAfter, anchor.cert.notAfter);
      path.push(anchor.cert);
      return Object.freeze({ spiffeId, serialHex: leaf.serialHex, notBefore: leaf.notBefore, notAfter, leaf, path: Object.freeze(path), tainted: anchor.tainted });
    }
    const index = unused.findIndex((c) => signs(c, current));
    if (index === -1) {
      fail('ERR_SVID_UNTRUSTED', path.length === 1
        ? 'leaf is not signed by a presented intermediate or a trust bundle authority'
        : 'chain does not end at a trust bundle authority');
    }
    const next = unused.splice(index, 1)[0] as ParsedCertificate;
    checkSigningCert(next, intermediatesBelow, 'intermediate');
    checkTime(next, options.at, 'intermediate');
    notAfter = Math.min(notAfter, next.notAfter);
    path.push(next);
    current = next;
    if (path.length >= MAX_CHAIN_LENGTH) fail('ERR_SVID_PATH_LENGTH', `no trust bundle authority within ${MAX_CHAIN_LENGTH} certificates`);
  }
}

/** The part of a Node `tls` peer certificate this module reads (structural: pki does no I/O). */
export interface PeerCertificateLike {
  readonly raw: Buffer;
  readonly issuerCertificate?: PeerCertificateLike;
}

/**
 * The peer's chain as DER, leaf first, from `tlsSocket.getPeerCertificate(true)`; stops at the
 * self-issued end Node links to itself. Feed it to {@link verifyX509Svid}.
 *
 * @example
 * const chain = peerCertificateChain(socket.getPeerCertificate(true));
 * const { spiffeId } = verifyX509Svid(chain, bundle, { at: clock.now() });
 */
export function peerCertificateChain(peer: PeerCertificateLike | undefined): Buffer[] {
  const out: Buffer[] = [];
  for (let cert = peer; cert?.raw && out.length < MAX_CHAIN_LENGTH + 1; cert = cert.issuerCertificate) {
    if (out.some((d) => d.equals(cert!.raw))) break;
    out.push(cert.raw);
  }
  return out;
}
