/**
 * X.509-SVID issuance from a CSR: the hot path of a CA rotation (every workload re-issues).
 * The leaf is encoded from a template pre-built per signing authority (issuer, algorithm,
 * constant extensions) and signed with node:crypto; bench/pki measures it against raw ECDSA
 * signing, and the tests prove the output with @peculiar/x509, `openssl verify` and real TLS.
 */
import type { Clock } from '../core/clock.js';
import { parseSpiffeId, type SpiffeId } from '../core/spiffe-id.js';
import type { CertificateAuthority, X509Signer } from './ca.js';
import { extension, authorityKeyIdValue, basicConstraintsValue, distinguishedName, keyUsageValue, randomSerial, V3 } from './certificate-builder.js';
import { checkSvidCsr, uriSanValue } from './csr.js';
import { bitString, octets, oid, seq, time, tlv, uint } from './der.js';
import { PkiError } from './errors.js';
import { keyIdentifier, signWith, signatureSchemeFor, type SignatureScheme } from './keys.js';
import { KEY_USAGE, OID } from './oids.js';
import { certToPem } from './pem.js';

/** Leaves are backdated this much so a peer whose clock lags a little still accepts them. */
export const SVID_BACKDATE_MS = 10_000;

export interface IssueX509SvidOptions {
  readonly ca: CertificateAuthority;
  /** PEM or DER PKCS#10 CSR from the workload (see createSvidCsr). */
  readonly csr: string | Uint8Array;
  /** The SPIFFE ID the caller is authorised to receive; the CSR must ask for exactly it. */
  readonly spiffeId: string | SpiffeId;
  /** Default: the CA's default SVID TTL (1h). Capped by the signing authority's expiry. */
  readonly ttlMs?: number;
  readonly clock: Clock;
}

/** An issued X.509-SVID. `chainPem` = leaf then intermediates (what a TLS endpoint presents). */
export interface IssuedX509Svid {
  readonly spiffeId: string;
  readonly serialHex: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly authorityId: string;
  readonly certDer: Buffer;
  readonly chainDer: readonly Buffer[];
  readonly certPem: string;
  readonly chainPem: string;
}

interface LeafTemplate {
  readonly signer: X509Signer;
  readonly scheme: SignatureScheme;
  readonly head: Buffer;
  readonly subject: Buffer;
  readonly constantExtensions: Buffer;
  readonly chainPem: string;
}

const templates = new WeakMap<X509Signer, LeafTemplate>();

function templateFor(signer: X509Signer): LeafTemplate {
  let t = templates.get(signer);
  if (!t) {
    const scheme = signatureSchemeFor(signer.key);
    t = {
      signer,
      scheme,
      // version and (after the serial) algorithm + issuer never change under one signer
      head: Buffer.concat([scheme.algorithmIdentifier, signer.cert.subject]),
      subject: distinguishedName([[OID.organization, 'Ward']]),
      constantExtensions: Buffer.concat([
        extension(OID.basicConstraints, true, basicConstraintsValue(false)),
        extension(OID.keyUsage, true, keyUsageValue(KEY_USAGE.digitalSignature)),
        extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth))),
        extension(OID.authorityKeyIdentifier, false, authorityKeyIdValue(signer.cert.subjectKeyId ?? keyIdentifier(signer.cert.spki))),
      ]),
      chainPem: signer.chainDer.map((d) => certToPem(d)).join(''),
    };
    templates.set(signer, t);
  }
  return t;
}

/**
 * Checks the CSR and issues an X.509-SVID under the CA's active authority: one URI SAN, cA=false,
 * digitalSignature (critical), EKU serverAuth+clientAuth, random 128-bit serial.
 *
 * @example
 * const svid = issueX509Svid({ ca, csr: createSvidCsr({ spiffeId, privateKey }).pem, spiffeId, clock });
 * tls.createServer({ key: privateKey, cert: svid.chainPem, ca: bundleToPem(ca.trustBundle()) });
 */
export function issueX509Svid(options: IssueX509SvidOptions): IssuedX509Svid {
  const id = typeof options.spiffeId === 'string' ? parseSpiffeId(options.spiffeId) : options.spiffeId;
  const ca = options.ca;
  if (!id.memberOf(ca.trustDomain)) {
    throw new PkiError('ERR_SVID_WRONG_TRUST_DOMAIN', `${id.toString()} is not in trust domain ${ca.trustDomain}`);
  }
  const ttl = options.ttlMs ?? ca.defaultSvidTtlMs;
  if (!(Number.isFinite(ttl) && ttl >= 1000 && ttl <= ca.maxSvidTtlMs)) {
    throw new PkiError('ERR_SVID_TTL_INVALID', `TTL ${ttl}ms must be between 1s and ${ca.maxSvidTtlMs}ms`);
  }
  const { spki } = checkSvidCsr(options.csr, id);
  const signer = ca.x509Signer(options.clock);
  const t = templateFor(signer);
  const now = options.clock.now();
  const notBefore = now - SVID_BACKDATE_MS;
  const notAfter = Math.min(now + ttl, signer.notAfter);
  const serial = randomSerial();
  const ski = keyIdentifier(spki);
  const tbs = seq(
    V3,
    uint(serial),
    t.head,
    seq(time(notBefore), time(notAfter)),
    t.subject,
    spki,
    tlv(0xa3, seq(
      t.constantExtensions,
      extension(OID.subjectKeyIdentifier, false, octets(ski)),
      extension(OID.subjectAltName, false, uriSanValue(id.toString())),
    )),
  );
  const certDer = seq(tbs, t.scheme.algorithmIdentifier, bitString(signWith(signer.key, t.scheme, tbs)));
  const certPem = certToPem(certDer);
  return {
    spiffeId: id.toString(),
    serialHex: serial.toString('hex'),
    notBefore: Math.floor(notBefore / 1000) * 1000,
    notAfter: Math.floor(notAfter / 1000) * 1000,
    authorityId: signer.authorityId,
    certDer,
    chainDer: [certDer, ...signer.chainDer],
    certPem,
    chainPem: certPem + t.chainPem,
  };
}
