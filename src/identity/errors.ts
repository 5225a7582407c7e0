/**
 * Error codes of the identity layer (identity documents and attribute selectors).
 */
import { defineErrorCodes, WardError, type CodeOf } from '../core/errors.js';

export const IDENTITY_ERRORS = defineErrorCodes('identity', {
  ERR_SELECTOR_INVALID: 'An attribute selector is malformed: unknown operator, wrong value type or count; `details.path` names the field.',
  ERR_WORKLOAD_INVALID: 'A workload identity document is malformed (missing SPIFFE ID, bad attribute key or value); `details.path` names the field.',
});

export type IdentityErrorCode = CodeOf<typeof IDENTITY_ERRORS>;

export class IdentityError extends WardError<IdentityErrorCode> {
  override readonly name = 'IdentityError';
}
