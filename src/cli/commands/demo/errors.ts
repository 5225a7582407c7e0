import { defineErrorCodes, WardError, type CodeOf } from '../../../core/errors.js';

export const DEMO_ERRORS = defineErrorCodes('demo', {
  ERR_NETNS_UNAVAILABLE: 'Network namespaces cannot be used here (not root, or `ip netns` missing); the demo falls back to loopback.',
  ERR_NETNS_COMMAND_FAILED: 'An `ip` command building or removing the demo network failed; `details.command` names it.',
  ERR_DEMO_START: 'A demo service or its agent did not start; the message carries the end of its output.',
});

export type DemoErrorCode = CodeOf<typeof DEMO_ERRORS>;

export class DemoError extends WardError<DemoErrorCode> {
  override readonly name = 'DemoError';
}
