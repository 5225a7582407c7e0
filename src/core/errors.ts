/**
 * Errors with stable codes.
 *
 * Every layer has one `errors.ts` that declares its codes with {@link defineErrorCodes}; callers
 * branch on `code`, never on `message`. Every code is documented in `docs/reference/errors.md`
 * and `test/unit/core/error-codes.test.ts` checks that code and docs list the same set.
 * Retired codes are never reused.
 */

/** Marker so the docs test can find every code table without a global registry. */
export const ERROR_CODE_TABLE: unique symbol = Symbol.for('ward.errorCodeTable') as never;

export type ErrorCodeTable<C extends string> = Readonly<Record<C, string>> & {
  readonly [ERROR_CODE_TABLE]: string;
};

/**
 * Declares a layer's error codes with a one-line meaning each.
 *
 * @example
 * export const POLICY_ERRORS = defineErrorCodes('policy', { ERR_POLICY_PARSE: 'YAML could not be parsed' });
 */
export function defineErrorCodes<C extends string>(layer: string, codes: Record<C, string>): ErrorCodeTable<C> {
  for (const code of Object.keys(codes)) {
    if (!/^ERR_[A-Z0-9]+(_[A-Z0-9]+)*$/.test(code)) throw new Error(`bad error code name ${code}`);
  }
  return Object.freeze(Object.assign(Object.create(null), codes, { [ERROR_CODE_TABLE]: layer })) as ErrorCodeTable<C>;
}

/** The code union of a table: `type PkiErrorCode = CodeOf<typeof PKI_ERRORS>`. */
export type CodeOf<T> = Exclude<keyof T, typeof ERROR_CODE_TABLE> & string;

export interface WardErrorOptions {
  cause?: unknown;
  /** Machine-readable facts about the failure (field path, rule name...). Never secrets. */
  details?: Record<string, unknown>;
}

/**
 * The base of every error Ward raises on purpose.
 *
 * @example
 * throw new WardError('ERR_CONFIG_INVALID', 'listen: expected host:port', { details: { path: 'listen' } });
 */
export class WardError<C extends string = string> extends Error {
  override readonly name: string = 'WardError';
  readonly code: C;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: C, message: string, options: WardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details === undefined ? undefined : Object.freeze({ ...options.details });
  }

  toJSON(): { code: C; message: string; details?: Readonly<Record<string, unknown>> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export function isWardError(value: unknown): value is WardError {
  return value instanceof WardError;
}

/** Codes owned by the core layer. */
export const CORE_ERRORS = defineErrorCodes('core', {
  ERR_CONFIG_INVALID: 'A configuration value is missing, of the wrong type or out of range; `details.path` names it.',
  ERR_DURATION_INVALID: 'A duration string is not of the form `1h30m`, `10s`, `250ms`.',
  ERR_BYTE_SIZE_INVALID: 'A size string is not of the form `512`, `64KiB`, `10MB`.',
  ERR_INTERNAL: 'An unexpected failure; the message carries no internals. Report it.',
});

export type CoreErrorCode = CodeOf<typeof CORE_ERRORS>;

export class CoreError extends WardError<CoreErrorCode> {
  override readonly name = 'CoreError';
}

/** Codes for SPIFFE ID validation (src/core/spiffe-id.ts): one per rule of the SPIFFE ID spec. */
export const SPIFFE_ERRORS = defineErrorCodes('spiffe', {
  ERR_SPIFFE_ID_EMPTY: 'The SPIFFE ID is empty.',
  ERR_SPIFFE_ID_TOO_LONG: 'The SPIFFE ID is longer than 2048 bytes.',
  ERR_SPIFFE_ID_SCHEME: 'The scheme is missing or is not exactly `spiffe://` (upper case is rejected, see ADR 0010).',
  ERR_SPIFFE_ID_TRUST_DOMAIN_MISSING: 'There is no trust domain after `spiffe://`.',
  ERR_SPIFFE_ID_TRUST_DOMAIN_CHARS: 'The trust domain holds a character other than `a-z 0-9 . - _`.',
  ERR_SPIFFE_ID_TRUST_DOMAIN_TOO_LONG: 'The trust domain is longer than 255 bytes.',
  ERR_SPIFFE_ID_USERINFO: 'The ID carries userinfo (`user@`).',
  ERR_SPIFFE_ID_PORT: 'The ID carries a port (`:8443`).',
  ERR_SPIFFE_ID_QUERY: 'The ID carries a query (`?`).',
  ERR_SPIFFE_ID_FRAGMENT: 'The ID carries a fragment (`#`).',
  ERR_SPIFFE_ID_PERCENT_ENCODED: 'The ID holds percent-encoding (`%`), which the spec forbids.',
  ERR_SPIFFE_ID_EMPTY_SEGMENT: 'The path has an empty segment (`//`).',
  ERR_SPIFFE_ID_DOT_SEGMENT: 'The path has a `.` or `..` segment.',
  ERR_SPIFFE_ID_TRAILING_SLASH: 'The path ends with `/`.',
  ERR_SPIFFE_ID_PATH_CHARS: 'A path segment holds a character other than `a-z A-Z 0-9 . - _`.',
});

export type SpiffeErrorCode = CodeOf<typeof SPIFFE_ERRORS>;

export class SpiffeIdError extends WardError<SpiffeErrorCode> {
  override readonly name = 'SpiffeIdError';
}
