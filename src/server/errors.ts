/**
 * Error codes of the control plane. Codes from lower layers (policy, events, pki, store,
 * platforms) pass through unchanged; this file only adds what the API edge itself decides, and
 * {@link httpStatusOf} is the single place where a code becomes an HTTP status.
 */
import { defineErrorCodes, WardError, type CodeOf } from '../core/errors.js';

export const SERVER_ERRORS = defineErrorCodes('server', {
  ERR_SERVER_UNAUTHENTICATED: 'No credential, or a token or client certificate that is unknown, forged, revoked or expired.',
  ERR_SERVER_FORBIDDEN: "The caller's role does not allow this operation; `details.permission` names what was needed.",
  ERR_SERVER_NOT_FOUND: 'The route or the named resource does not exist.',
  ERR_SERVER_BAD_REQUEST: 'The request body or query does not match the API schema; `details.path` names the field.',
  ERR_SERVER_BODY_TOO_LARGE: 'The request body exceeds the `bodyLimit` (or `scanBodyLimit` for scan reports) of the server configuration.',
  ERR_SERVER_UNSUPPORTED_MEDIA: 'The request body is not sent as `application/json`.',
  ERR_SERVER_CONFLICT: 'The resource already exists or changed since it was read.',
  ERR_SERVER_CSR_IDENTITY: 'A CSR names a SPIFFE ID the calling agent is not entitled to.',
  ERR_SERVER_AGENT_UNKNOWN: 'The client certificate names an agent that is unknown or revoked, or its serial is revoked; a revoked agent cannot attest again.',
  ERR_SERVER_TOO_MANY_STREAMS: 'The agent already holds `maxWatchStreamsPerAgent` open watch streams; close one first.',
  ERR_SERVER_RATE_LIMITED: 'Too many refused requests (bad or missing credentials, forbidden role, failed attestation) from this source or from all sources together (`refusalRateLimit`); wait `Retry-After` seconds. Authenticated, authorised requests are never limited.',
  ERR_SERVER_WATCH_VERSION: 'A watch was resumed from a resource version the server cannot parse.',
  ERR_SERVER_DATA_DIR: 'The data directory is missing, not initialised, or already initialised (for `init`).',
});

export type ServerErrorCode = CodeOf<typeof SERVER_ERRORS>;

export class ServerError extends WardError<ServerErrorCode> {
  override readonly name = 'ServerError';
}

const STATUS: Readonly<Record<string, number>> = {
  ERR_SERVER_UNAUTHENTICATED: 401,
  ERR_SERVER_FORBIDDEN: 403,
  ERR_SERVER_NOT_FOUND: 404,
  ERR_SERVER_BAD_REQUEST: 400,
  ERR_SERVER_BODY_TOO_LARGE: 413,
  ERR_SERVER_UNSUPPORTED_MEDIA: 415,
  ERR_SERVER_CONFLICT: 409,
  ERR_SERVER_CSR_IDENTITY: 403,
  ERR_SERVER_AGENT_UNKNOWN: 401,
  ERR_SERVER_WATCH_VERSION: 400,
  ERR_SERVER_TOO_MANY_STREAMS: 429,
  ERR_SERVER_RATE_LIMITED: 429,
  ERR_SERVER_DATA_DIR: 500,
  ERR_INTERNAL: 500,
};

/**
 * HTTP status for a stable code. Codes of other layers are client errors (400) unless they name
 * an attestation failure (401), a missing thing (404), a duplicate (409) or a size limit (413):
 * the layers below raise codes only for input they refused.
 */
export function httpStatusOf(code: string): number {
  const fixed = STATUS[code];
  if (fixed !== undefined) return fixed;
  if (/_(TOO_LARGE|OVERSIZE|TOO_BIG)$/.test(code) || code.includes('_TOO_LARGE')) return 413;
  if (/_NOT_FOUND$/.test(code)) return 404;
  if (/_(CONFLICT|EXISTS|DUPLICATE)$/.test(code)) return 409;
  if (code === 'ERR_ATTEST_MALFORMED' || code === 'ERR_ATTEST_UNKNOWN_ATTESTOR') return 400;
  if (code === 'ERR_ATTEST_UPSTREAM') return 502;
  // Attestation refusals are authentication failures of the caller; a bad signature on a document
  // (CSR, provenance) is bad input.
  if (/^ERR_ATTEST_/.test(code)) return 401;
  if (/^ERR_STORE_/.test(code)) return /UNAVAILABLE|CONNECT/.test(code) ? 503 : 500;
  return 400;
}
