/**
 * The narrow edges the routes see of the CA, the policy library and the scan parsers.
 * `server.ts` binds them to src/pki, src/policy and src/platforms/scanners; keeping them this
 * small lets a route test swap one (a scan parser that is not built yet) without touching
 * the others.
 */
import type { AttributeSet } from '../identity/attributes.js';

export interface SvidIssued {
  readonly spiffeId: string;
  /** PEM certificates, leaf first. */
  readonly certChain: readonly string[];
  /** Lower-case hex. */
  readonly serial: string;
  readonly expiresAt: number;
}

/** The CA as the server uses it. */
export interface CaPort {
  readonly trustDomain: string;
  /** PEM CA certificates of the trust domain (current and, during rotation, next/previous). */
  bundle(): readonly string[];
  /**
   * Checks a PEM PKCS#10 request (self-signature, key type, exactly one URI SAN equal to
   * `spiffeId`, no CN/email) and issues an X.509-SVID for it. Throws a PKI error otherwise.
   */
  issueSvid(request: { readonly spiffeId: string; readonly csr: string; readonly ttlMs: number }): SvidIssued;
  /**
   * Everything {@link issueSvid} checks, run before attestation consumes one-time evidence so a
   * bad CSR does not burn a join token: with `spiffeId` (the agent ID the evidence will yield,
   * when the attestor can tell beforehand) also that the CSR names it; without, anything but
   * which SPIFFE ID it names.
   */
  precheckCsr(csr: string, spiffeId?: string): void;
  /**
   * Reads the SPIFFE ID of a client certificate chain (DER, leaf first) that TLS already
   * verified against the bundle: exactly one URI SAN in this trust domain, not a CA, within its
   * validity at the clock's time. Throws when any of that fails.
   */
  verifyClientSvid(chainDer: readonly Buffer[]): { spiffeId: string; serial: string; expiresAt: number };
}

/** One validated policy, ready to store. */
export interface ValidatedPolicy {
  readonly kind: string;
  /** `name` or `namespace/name`: the store's key. */
  readonly name: string;
  readonly document: unknown;
  readonly policy: unknown;
}

/** Policy documents, validated by the policy library. */
export interface PolicyPort {
  /** Validates one document; returns its stored form or throws a WardError with a stable code. */
  validate(document: unknown): ValidatedPolicy;
}

export interface ScanResult {
  readonly scanner: string;
  readonly images: ReadonlyMap<string, AttributeSet>;
  /** Parser summary (counts, CVE list), stored with the scan for display. */
  readonly summary: unknown;
}

/** Scanner reports (Trivy, Grype, CycloneDX VEX) turned into per-image vulnerability attributes. */
export interface ScanPort {
  /**
   * Parses an untrusted report (JSON text); returns the `vuln.*` attributes of each image digest
   * it covers, or throws a WardError. `imageDigest` names the image of a report that names none.
   */
  parse(reportJson: string, options: { readonly observedAt: number; readonly imageDigest?: string }): ScanResult;
}

/** Build provenance (DSSE + in-toto + SLSA) verified against configured keys into `build.*` attributes. */
export interface ProvenancePort {
  /** Verifies an envelope; throws a WardError (forged, unknown key, malformed) or returns the attributes per subject digest. */
  verify(envelope: unknown, observedAt: number): { readonly digests: readonly string[]; readonly attributes: AttributeSet; readonly statement: unknown; readonly verified: boolean };
}
