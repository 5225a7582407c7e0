/**
 * Error codes of the agent's control-plane client (attest, SVIDs, watch, event shipping).
 * Documented in docs/reference/errors.md under `agent-control`.
 */
import { defineErrorCodes, WardError, type CodeOf } from '../../core/errors.js';

export const CONTROL_ERRORS = defineErrorCodes('agent-control', {
  ERR_CONTROL_CONFIG: 'The control-plane options are invalid (server URL, bundle, attestor, service); `details.path` names the option.',
  ERR_CONTROL_ATTEST: 'The agent could not attest to the server (evidence refused, server unreachable); `details.code` carries the server\'s code.',
  ERR_CONTROL_NO_ENTRY: 'No registration entry lets this agent mint an SVID for the service it serves.',
  ERR_CONTROL_SVID: 'The server answered an SVID request with a certificate that does not verify or does not match the key or SPIFFE ID.',
  ERR_CONTROL_STREAM: 'A watch message could not be applied (malformed policy, bundle or attributes); the last good state stays in force.',
  ERR_CONTROL_WATCH_IDLE: 'Nothing (no event, no heartbeat) arrived on the watch stream within `--watch-idle-timeout`: the agent dropped the stream and reconnects; the last good state stays in force.',
  ERR_CONTROL_JOIN_TOKEN_SPENT: 'The agent SVID expired (or the server no longer accepts it) and the agent attested with a single-use join token, so it cannot re-attest: restart it with a new `--join-token`. Workload SVIDs serve until they expire, then it fails closed; `/readyz` says `join_token_spent`.',
});

export type ControlErrorCode = CodeOf<typeof CONTROL_ERRORS>;

export class ControlError extends WardError<ControlErrorCode> {
  override readonly name = 'ControlError';
}
