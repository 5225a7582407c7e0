/**
 * Error codes of the agent (data plane). Denials on the wire carry one of these codes and
 * nothing else: no policy internals, no stack, no peer details.
 */
import { defineErrorCodes, WardError, type CodeOf } from '../core/errors.js';

export const AGENT_ERRORS = defineErrorCodes('agent', {
  ERR_AGENT_CONFIG: 'The agent configuration (file or flags) is invalid; `details.path` names the field.',
  ERR_AGENT_TLS_MATERIAL: 'The SVID, key or trust bundle files could not be read or do not match.',
  ERR_AGENT_PEER_UNVERIFIED: 'The peer certificate does not chain to the trust bundle.',
  ERR_AGENT_PEER_ID_INVALID: 'The peer certificate does not carry exactly one valid SPIFFE ID URI SAN.',
  ERR_AGENT_PEER_REVOKED: 'The peer certificate is revoked.',
  ERR_AGENT_PEER_UNEXPECTED: 'The upstream server presented a SPIFFE ID the target service is not allowed to present.',
  ERR_AGENT_PEER_NOT_SVID: 'The peer certificate breaks the X509-SVID leaf profile (CA flag, key usage without digitalSignature or with keyCertSign/cRLSign, unknown critical extension, missing key identifier).',
  ERR_AGENT_PEER_EXPIRED: 'The peer certificate, or a certificate of its chain, is expired or not yet valid at the agent clock.',
  ERR_AGENT_PEER_WRONG_TRUST_DOMAIN: 'The peer SPIFFE ID is not in the trust domain of the agent bundle.',
  ERR_AGENT_CONNECTION_DENIED: 'Network policy denies this connection.',
  ERR_AGENT_REQUEST_DENIED: 'API policy denies this request.',
  ERR_AGENT_JWT_INVALID: 'The end-user JWT is malformed, expired, or fails signature, issuer or audience checks.',
  ERR_AGENT_BAD_REQUEST: 'The request is malformed or ambiguous (path tricks, smuggling, bad headers) and was rejected.',
  ERR_AGENT_UPSTREAM: 'The application or upstream service could not be reached.',
  ERR_AGENT_SPOOL_CORRUPT: 'A spool file holds a record that fails its checksum; the tail after it is discarded.',
  ERR_AGENT_MTLS_MISMATCH: 'An inbound port\'s mode (STRICT/PERMISSIVE) in the agent config disagrees with the MutualTLSPolicy in force for this workload; the policy version is refused.',
  ERR_AGENT_CHILD: 'The wrapped application could not be started.',
  ERR_AGENT_LISTEN: 'An inbound port or upstream listener could not be bound (address in use, not permitted, or not an address of this host); `details` names the host, port and system error.',
});

export type AgentErrorCode = CodeOf<typeof AGENT_ERRORS>;

export class AgentError extends WardError<AgentErrorCode> {
  override readonly name = 'AgentError';
}
