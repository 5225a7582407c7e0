/** Error codes of the scan-report parsers. Every malformed report fails with one of these. */
import { defineErrorCodes, WardError, type CodeOf } from '../../core/errors.js';

export const SCAN_ERRORS = defineErrorCodes('scanners', {
  ERR_SCAN_JSON: 'A scan report is not well-formed JSON.',
  ERR_SCAN_TOO_LARGE: 'A scan report exceeds the size or finding-count limit.',
  ERR_SCAN_FORMAT_UNKNOWN: 'A scan report is not in a format any registered parser recognises (or the named format is not registered).',
  ERR_SCAN_INVALID: 'A scan report field Ward relies on is missing or of the wrong type, or the schema version is unsupported; `details.path` names it.',
  ERR_SCAN_NO_DIGEST: 'A scan report names no image digest and none was given, so it cannot be matched to workloads.',
});

export type ScanErrorCode = CodeOf<typeof SCAN_ERRORS>;

export class ScanError extends WardError<ScanErrorCode> {
  override readonly name = 'ScanError';
}
