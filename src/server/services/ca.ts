/**
 * Binds the PKI library to the server's {@link CaPort}: issuance through `issueX509Svid`, the
 * bundle from the CA state, and the server's own TLS certificate (an SVID for
 * `spiffe://<td>/ward/server`, which agents check instead of a host name).
 */
import type { Clock } from '../../core/clock.js';
import { tryParseSpiffeId } from '../../core/spiffe-id.js';
import type { CertificateAuthority } from '../../pki/ca.js';
import { bundleToPem } from '../../pki/bundle.js';
import { parseCertificate } from '../../pki/certificate.js';
import { checkSvidCsr, createSvidCsr } from '../../pki/csr.js';
import { PkiError } from '../../pki/errors.js';
import { generateP256KeyPair, privateKeyToPem } from '../../pki/keys.js';
import { issueX509Svid } from '../../pki/svid-issue.js';
import { ServerError } from '../errors.js';
import type { CaPort, SvidIssued } from '../ports.js';

export function serverSpiffeId(trustDomain: string): string {
  return `spiffe://${trustDomain}/ward/server`;
}

function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)?.map((b) => (b.endsWith('\n') ? b : `${b}\n`)) ?? [];
}

export function createCaPort(ca: CertificateAuthority, clock: Clock): CaPort {
  let bundleCache: { sequence: number; pems: readonly string[] } | undefined;
  return {
    trustDomain: ca.trustDomain,
    bundle() {
      if (bundleCache?.sequence !== ca.sequence) {
        bundleCache = { sequence: ca.sequence, pems: Object.freeze(splitPem(bundleToPem(ca.trustBundle()))) };
      }
      return bundleCache.pems;
    },
    issueSvid({ spiffeId, csr, ttlMs }): SvidIssued {
      const svid = issueX509Svid({ ca, csr, spiffeId, ttlMs: Math.min(ttlMs, ca.maxSvidTtlMs), clock });
      return { spiffeId: svid.spiffeId, certChain: splitPem(svid.chainPem), serial: svid.serialHex, expiresAt: svid.notAfter };
    },
    precheckCsr(csr, spiffeId) {
      if (spiffeId !== undefined) {
        checkSvidCsr(csr, spiffeId);
        return;
      }
      try {
        checkSvidCsr(csr, `spiffe://${ca.trustDomain}/ward/csr-precheck`);
      } catch (error) {
        // Naming another ID is expected here; every other refusal is final.
        if (error instanceof PkiError && error.code === 'ERR_CSR_SPIFFE_ID_MISMATCH') return;
        throw error;
      }
    },
    verifyClientSvid(chainDer) {
      const leafDer = chainDer[0];
      if (leafDer === undefined) throw new ServerError('ERR_SERVER_UNAUTHENTICATED', 'no client certificate');
      const leaf = parseCertificate(leafDer);
      const now = clock.now();
      const uri = leaf.san.uris.length === 1 ? leaf.san.uris[0] : undefined;
      const id = uri === undefined ? undefined : tryParseSpiffeId(uri);
      if (id === undefined || id.trustDomain !== ca.trustDomain || leaf.basicConstraints?.ca === true || now < leaf.notBefore || now >= leaf.notAfter) {
        throw new ServerError('ERR_SERVER_UNAUTHENTICATED', 'client certificate is not a current X.509-SVID of this trust domain');
      }
      return { spiffeId: id.toString(), serial: leaf.serialHex, expiresAt: leaf.notAfter };
    },
  };
}

/** Issues the server's own TLS certificate and key (kept in memory; re-issued at each start). */
export function issueServerCertificate(ca: CertificateAuthority, clock: Clock, ttlMs: number): { keyPem: string; certPem: string; expiresAt: number } {
  const spiffeId = serverSpiffeId(ca.trustDomain);
  const { privateKey } = generateP256KeyPair();
  const csr = createSvidCsr({ spiffeId, privateKey });
  const svid = issueX509Svid({ ca, csr: csr.pem, spiffeId, ttlMs: Math.min(ttlMs, ca.maxSvidTtlMs), clock });
  return { keyPem: privateKeyToPem(privateKey), certPem: svid.chainPem, expiresAt: svid.notAfter };
}
