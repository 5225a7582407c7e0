/** Error codes of the API client: transport and protocol failures seen by the CLI and the agent. */
import { defineErrorCodes, WardError, type CodeOf } from '../core/errors.js';

export const API_ERRORS = defineErrorCodes('api', {
  ERR_API_UNREACHABLE: 'The server could not be reached (connection refused, DNS, TLS handshake, timeout).',
  ERR_API_BAD_RESPONSE: 'The server answered with something that is not the expected JSON shape.',
  ERR_API_STREAM_TOO_LARGE: 'A watch stream message exceeds the client limit.',
  ERR_API_NO_SERVER: 'No server URL given (pass `--server` or set `WARD_SERVER`), or the CLI config file or CA bundle cannot be read.',
  ERR_API_INPUT: 'A file or option given to a client command is unreadable or malformed (a scan report that is not JSON, `key=value` expected).',
});

export type ApiErrorCode = CodeOf<typeof API_ERRORS>;

export class ApiError extends WardError<ApiErrorCode> {
  override readonly name = 'ApiError';
}

/** An error answered by the server: carries the server's stable code and the HTTP status. */
export class ServerReplyError extends WardError<string> {
  override readonly name = 'ServerReplyError';
  readonly status: number;

  constructor(status: number, code: string, message: string, details?: Record<string, unknown>) {
    super(code, message, details === undefined ? {} : { details });
    this.status = status;
  }
}
