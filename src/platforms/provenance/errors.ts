/** Error codes of provenance verification. Any failure means: attach no build attributes. */
import { defineErrorCodes, WardError, type CodeOf } from '../../core/errors.js';

export const PROVENANCE_ERRORS = defineErrorCodes('provenance', {
  ERR_PROVENANCE_JSON: 'A provenance document is not well-formed JSON.',
  ERR_PROVENANCE_TOO_LARGE: 'A provenance document exceeds the size limit.',
  ERR_PROVENANCE_ENVELOPE: 'A DSSE envelope is malformed (payload, payloadType, signatures, base64); `details.path` names the field.',
  ERR_PROVENANCE_PAYLOAD_TYPE: 'The DSSE payloadType is not `application/vnd.in-toto+json`.',
  ERR_PROVENANCE_SIGNATURE: 'No signature on the envelope verifies with a configured key (forged, tampered, wrong or unknown key, or below the threshold).',
  ERR_PROVENANCE_STATEMENT: 'The payload is not an in-toto Statement (v0.1 or v1) with at least one sha256 subject; `details.path` names the field.',
  ERR_PROVENANCE_PREDICATE: 'The predicate is not SLSA provenance v0.2 or v1, or lacks the builder; `details.path` names the field.',
  ERR_PROVENANCE_KEY: 'A configured verification key is unusable (not a public EC P-256/384/521, Ed25519 or RSA ≥ 2048-bit key), or none is configured.',
});

export type ProvenanceErrorCode = CodeOf<typeof PROVENANCE_ERRORS>;

export class ProvenanceError extends WardError<ProvenanceErrorCode> {
  override readonly name = 'ProvenanceError';
}
