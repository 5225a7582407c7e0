/**
 * Binds the scan-report parsers of src/platforms/scanners (Trivy JSON v2, Grype JSON, CycloneDX
 * with VEX `not_affected` suppressed) to {@link ScanPort}. One report yields the same `vuln.*`
 * attributes for every image digest it covers.
 */
import { ProvenanceVerifier, ProvenanceError } from '../../platforms/provenance/index.js';
import { importScanReport } from '../../platforms/scanners/index.js';
import type { ProvenancePort, ScanPort, ScanResult } from '../ports.js';

export function createScanPort(maxBytes: number): ScanPort {
  return {
    parse(reportJson, options): ScanResult {
      const scan = importScanReport(reportJson, { observedAt: options.observedAt, maxBytes, ...(options.imageDigest === undefined ? {} : { imageDigest: options.imageDigest }) });
      return { scanner: scan.format, images: new Map(scan.imageDigests.map((d) => [d, scan.attributes])), summary: scan.summary };
    },
  };
}

/**
 * Binds the SLSA provenance verifier (src/platforms/provenance). Without configured keys every
 * import is refused (ERR_PROVENANCE_KEY): unverifiable provenance never becomes attributes.
 */
export function createProvenancePort(config: Readonly<Record<string, unknown>> | undefined): ProvenancePort {
  const verifier = config === undefined ? undefined : new ProvenanceVerifier(config as never);
  return {
    verify(envelope, observedAt) {
      if (verifier === undefined) throw new ProvenanceError('ERR_PROVENANCE_KEY', 'no provenance verification key is configured on this server');
      const r = verifier.verify(envelope as object, observedAt);
      return { digests: r.subjectDigests, attributes: r.attributes, statement: r.facts, verified: r.verified };
    },
  };
}
