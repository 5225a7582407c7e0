/** SLSA provenance in in-toto Statements in DSSE envelopes → `build.*` attributes. */
export { ProvenanceVerifier, IN_TOTO_PAYLOAD_TYPE, PROVENANCE_SOURCE, DEFAULT_MAX_PROVENANCE_BYTES, type ProvenanceVerifierConfig, type ProvenanceResult } from './verify.js';
export { preAuthEncoding, readEnvelope, type DsseEnvelope, type DsseSignature } from './dsse.js';
export { loadVerificationKey, type ProvenanceKeyConfig, type VerificationKey } from './keys.js';
export { readStatement, normalizeRepo, STATEMENT_TYPES, SLSA_V1, SLSA_V02, type BuildFacts } from './statement.js';
export { PROVENANCE_ERRORS, ProvenanceError, type ProvenanceErrorCode } from './errors.js';
