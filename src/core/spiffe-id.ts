/**
 * SPIFFE IDs, validated exactly as the SPIFFE ID specification says
 * (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md).
 *
 * `spiffe://<trust-domain><path>`: lowercase scheme (see docs/adr/0010), trust domain of
 * `[a-z0-9._-]` up to 255 bytes, no userinfo/port/query/fragment, path segments of
 * `[a-zA-Z0-9._-]` with no empty, `.` or `..` segment and no trailing slash, no percent-encoding,
 * at most 2048 bytes in all. Every violated rule has its own stable code (`SPIFFE_ERRORS`).
 */
import { SpiffeIdError, type SpiffeErrorCode } from './errors.js';

/** Maximum length of a whole SPIFFE ID in bytes; longer IDs are rejected. */
export const MAX_SPIFFE_ID_BYTES = 2048;
/** Maximum length of a trust domain name in bytes. */
export const MAX_TRUST_DOMAIN_BYTES = 255;

const SCHEME = 'spiffe://';
const TRUST_DOMAIN_CHAR = /^[a-z0-9._-]$/;
const PATH_CHAR = /^[a-zA-Z0-9._-]$/;

/**
 * A validated SPIFFE ID. Instances are frozen; compare with {@link SpiffeId.equals} or by string.
 *
 * @example
 * const id = parseSpiffeId('spiffe://example.org/ns/prod/sa/api');
 * id.trustDomain // 'example.org'
 * id.path        // '/ns/prod/sa/api'
 */
export class SpiffeId {
  /** The trust domain name, e.g. `example.org`. */
  readonly trustDomain: string;
  /** The path including its leading `/`, or `''` for a trust domain ID. */
  readonly path: string;

  private constructor(trustDomain: string, path: string) {
    this.trustDomain = trustDomain;
    this.path = path;
    Object.freeze(this);
  }

  /** @internal used by the parser once every rule has passed. */
  static fromValidatedParts(trustDomain: string, path: string): SpiffeId {
    return new SpiffeId(trustDomain, path);
  }

  /** The path split into segments (`[]` for a trust domain ID). */
  get segments(): string[] {
    return this.path === '' ? [] : this.path.slice(1).split('/');
  }

  /** True when this ID belongs to `trustDomain` (a name such as `example.org`). */
  memberOf(trustDomain: string): boolean {
    return this.trustDomain === trustDomain;
  }

  equals(other: SpiffeId | string): boolean {
    return this.toString() === String(other);
  }

  toString(): string {
    return `${SCHEME}${this.trustDomain}${this.path}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

function fail(code: SpiffeErrorCode, rule: string, input: string): never {
  // The input can be attacker-chosen: quote at most a bounded prefix.
  const shown = input.length > 80 ? `${input.slice(0, 80)}...` : input;
  throw new SpiffeIdError(code, `${JSON.stringify(shown)}: ${rule}`, { details: { rule } });
}

function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

/** Validates a trust domain name (no scheme) and returns it; throws {@link SpiffeIdError}. */
export function parseTrustDomain(text: string): string {
  if (typeof text !== 'string' || text.length === 0) fail('ERR_SPIFFE_ID_TRUST_DOMAIN_MISSING', 'trust domain is missing', String(text));
  const name = text.startsWith(SCHEME) ? text.slice(SCHEME.length) : text;
  if (name.length === 0) fail('ERR_SPIFFE_ID_TRUST_DOMAIN_MISSING', 'trust domain is missing', text);
  checkTrustDomain(name, text);
  if (text.startsWith(SCHEME) && name.includes('/')) fail('ERR_SPIFFE_ID_TRUST_DOMAIN_CHARS', 'a trust domain has no path', text);
  return name;
}

function checkTrustDomain(name: string, input: string): void {
  if (name.includes('@')) fail('ERR_SPIFFE_ID_USERINFO', 'userinfo is not allowed', input);
  if (name.includes(':')) fail('ERR_SPIFFE_ID_PORT', 'a port is not allowed', input);
  if (name.includes('%')) fail('ERR_SPIFFE_ID_PERCENT_ENCODED', 'percent-encoding is not allowed', input);
  for (const ch of name) {
    if (!TRUST_DOMAIN_CHAR.test(ch)) {
      fail('ERR_SPIFFE_ID_TRUST_DOMAIN_CHARS', 'trust domain characters are limited to lowercase letters, digits, dots, dashes and underscores', input);
    }
  }
  if (name.length > MAX_TRUST_DOMAIN_BYTES) fail('ERR_SPIFFE_ID_TRUST_DOMAIN_TOO_LONG', `trust domain is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`, input);
}

/**
 * Parses and validates a SPIFFE ID; throws a {@link SpiffeIdError} whose `code` names the
 * first violated rule and whose `details.rule` says it in words.
 *
 * @example
 * parseSpiffeId('spiffe://example.org/ns/default/sa/web').toString()
 * parseSpiffeId('spiffe://example.org/a/')  // throws ERR_SPIFFE_ID_TRAILING_SLASH
 */
export function parseSpiffeId(text: string): SpiffeId {
  if (typeof text !== 'string' || text.length === 0) fail('ERR_SPIFFE_ID_EMPTY', 'SPIFFE ID is empty', String(text ?? ''));
  if (text.length > MAX_SPIFFE_ID_BYTES || utf8Length(text) > MAX_SPIFFE_ID_BYTES) {
    fail('ERR_SPIFFE_ID_TOO_LONG', `SPIFFE ID is longer than ${MAX_SPIFFE_ID_BYTES} bytes`, text);
  }
  if (!text.startsWith(SCHEME)) {
    const caseHint = text.slice(0, SCHEME.length).toLowerCase() === SCHEME ? ' (the scheme must be lowercase)' : '';
    fail('ERR_SPIFFE_ID_SCHEME', `scheme must be spiffe://${caseHint}`, text);
  }
  const rest = text.slice(SCHEME.length);
  const q = rest.indexOf('?');
  const h = rest.indexOf('#');
  if (q !== -1 && (h === -1 || q < h)) fail('ERR_SPIFFE_ID_QUERY', 'a query is not allowed', text);
  if (h !== -1) fail('ERR_SPIFFE_ID_FRAGMENT', 'a fragment is not allowed', text);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (trustDomain.length === 0) fail('ERR_SPIFFE_ID_TRUST_DOMAIN_MISSING', 'trust domain is missing', text);
  checkTrustDomain(trustDomain, text);
  if (path !== '') checkPath(path, text);
  return SpiffeId.fromValidatedParts(trustDomain, path);
}

function checkPath(path: string, input: string): void {
  if (path.includes('%')) fail('ERR_SPIFFE_ID_PERCENT_ENCODED', 'percent-encoding is not allowed', input);
  const segments = path.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as string;
    if (seg === '') {
      if (i === segments.length - 1) fail('ERR_SPIFFE_ID_TRAILING_SLASH', 'path cannot have a trailing slash', input);
      fail('ERR_SPIFFE_ID_EMPTY_SEGMENT', 'path cannot contain empty segments', input);
    }
    if (seg === '.' || seg === '..') fail('ERR_SPIFFE_ID_DOT_SEGMENT', 'path cannot contain dot segments', input);
    for (const ch of seg) {
      if (!PATH_CHAR.test(ch)) fail('ERR_SPIFFE_ID_PATH_CHARS', 'path segment characters are limited to letters, digits, dots, dashes and underscores', input);
    }
  }
}

/**
 * Like {@link parseSpiffeId} but returns `undefined` instead of throwing.
 *
 * @example tryParseSpiffeId('spiffe://EXAMPLE.org') // undefined
 */
export function tryParseSpiffeId(text: string): SpiffeId | undefined {
  try {
    return parseSpiffeId(text);
  } catch (error) {
    if (error instanceof SpiffeIdError) return undefined;
    throw error;
  }
}

/** Builds the SPIFFE ID of a trust domain (`spiffe://example.org`). */
export function trustDomainId(trustDomain: string): SpiffeId {
  return SpiffeId.fromValidatedParts(parseTrustDomain(trustDomain), '');
}
