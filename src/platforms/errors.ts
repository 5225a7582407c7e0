/**
 * Error codes of the platforms layer (attestors and the platform API clients under them).
 *
 * Attestation failures are split so that callers (the server's attest route, the audit log) can
 * tell a forgery from a replay from an expiry without reading messages. An attestor's `attest`
 * rejects only with `ERR_ATTEST_*` codes; the `ERR_PLATFORM_*` codes come from the clients of
 * platform APIs (Kubernetes, IMDS, ECS metadata, vCenter) and are wrapped as
 * `ERR_ATTEST_UPSTREAM` when they happen during attestation.
 */
import { defineErrorCodes, WardError, type CodeOf } from '../core/errors.js';

export const PLATFORM_ERRORS = defineErrorCodes('platforms', {
  ERR_ATTEST_MALFORMED: 'Attestation evidence is not of the shape the attestor expects; `details.path` names the field.',
  ERR_ATTEST_FORGED: 'Attestation evidence does not verify: unknown token, bad signature, or rejected by the platform.',
  ERR_ATTEST_EXPIRED: 'Attestation evidence (or the certificate that signs it) is outside its validity window.',
  ERR_ATTEST_REPLAYED: 'One-time attestation evidence (a join token, an EC2 instance) was already used.',
  ERR_ATTEST_MISMATCH: 'Attestation evidence contradicts facts verified another way (pod UID, VM UUID, account, node).',
  ERR_ATTEST_NOT_ALLOWED: 'Attestation evidence verifies but its subject is outside the configured allow-list (cluster, account, audience).',
  ERR_ATTEST_NOT_BOUND: 'A hint-only or workload attestor was used without an acceptable prior node attestation.',
  ERR_ATTEST_UNKNOWN_ATTESTOR: 'The evidence names an attestor that is not configured on this server.',
  ERR_ATTEST_UPSTREAM: 'The platform API needed to verify the evidence failed or answered nonsense; attestation fails closed.',
  ERR_PLATFORM_UNREACHABLE: 'A platform API (Kubernetes, IMDS, ECS metadata, vCenter) could not be reached or timed out.',
  ERR_PLATFORM_HTTP_STATUS: 'A platform API answered with an unexpected HTTP status; `details.status` has it.',
  ERR_PLATFORM_RESPONSE_INVALID: 'A platform API answered with a body that is not the documented JSON shape.',
  ERR_PLATFORM_RESPONSE_TOO_LARGE: 'A platform API answered with a body larger than the configured limit.',
  ERR_PLATFORM_PEER_UNKNOWN: 'The peer process of a local unix socket could not be identified from the kernel.',
});

export type PlatformErrorCode = CodeOf<typeof PLATFORM_ERRORS>;

export class PlatformError extends WardError<PlatformErrorCode> {
  override readonly name = 'PlatformError';
}
