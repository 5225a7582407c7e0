/**
 * JWT-SVIDs (SPIFFE JWT-SVID spec) with jose: minted under the CA's active JWT authority,
 * verified against the bundle's JWT authorities. Only ES256, RS256 and PS256 are accepted;
 * `none` and HMAC never are. `sub`, `aud` and `exp` are required.
 */
import { SignJWT, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Clock } from '../core/clock.js';
import { parseSpiffeId, type SpiffeId } from '../core/spiffe-id.js';
import type { TrustBundle } from './bundle.js';
import type { CertificateAuthority } from './ca.js';
import { PkiError, type PkiErrorCode } from './errors.js';

export const JWT_SVID_ALGORITHMS: readonly string[] = Object.freeze(['ES256', 'RS256', 'PS256']);
/** Default JWT-SVID lifetime: short, as bearer tokens should be. */
export const JWT_SVID_DEFAULT_TTL_MS = 5 * 60_000;

export interface MintJwtSvidOptions {
  readonly ca: CertificateAuthority;
  readonly spiffeId: string | SpiffeId;
  readonly audience: string | readonly string[];
  readonly ttlMs?: number;
  readonly clock: Clock;
  /** Extra claims; cannot override sub, aud, exp, iat. */
  readonly claims?: Readonly<Record<string, unknown>>;
}

/**
 * Mints a JWT-SVID (ES256, `kid` of the active JWT authority).
 *
 * @example const token = await mintJwtSvid({ ca, spiffeId: 'spiffe://example.org/web', audience: 'api', clock });
 */
export async function mintJwtSvid(options: MintJwtSvidOptions): Promise<string> {
  const id = typeof options.spiffeId === 'string' ? parseSpiffeId(options.spiffeId) : options.spiffeId;
  if (!id.memberOf(options.ca.trustDomain)) throw new PkiError('ERR_JWT_SVID_WRONG_TRUST_DOMAIN', `${id.toString()} is not in trust domain ${options.ca.trustDomain}`);
  const audience = typeof options.audience === 'string' ? [options.audience] : [...options.audience];
  if (audience.length === 0 || audience.some((a) => typeof a !== 'string' || a.length === 0)) {
    throw new PkiError('ERR_JWT_SVID_CLAIMS', 'at least one non-empty audience is required');
  }
  const ttl = options.ttlMs ?? JWT_SVID_DEFAULT_TTL_MS;
  if (!(ttl >= 1000 && ttl <= options.ca.maxSvidTtlMs)) throw new PkiError('ERR_SVID_TTL_INVALID', `TTL ${ttl}ms must be between 1s and ${options.ca.maxSvidTtlMs}ms`);
  const signer = options.ca.jwtSigner(options.clock);
  const now = Math.floor(options.clock.now() / 1000);
  const exp = Math.min(now + Math.floor(ttl / 1000), Math.floor(signer.notAfter / 1000));
  return new SignJWT({ ...(options.claims ?? {}) })
    .setProtectedHeader({ alg: 'ES256', kid: signer.kid, typ: 'JWT' })
    .setSubject(id.toString())
    .setAudience(audience.length === 1 ? (audience[0] as string) : audience)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(signer.key);
}

export interface VerifyJwtSvidOptions {
  /** The audience this verifier is; the token's `aud` must include it. */
  readonly audience: string;
  /** Verification time in epoch ms. */
  readonly at: number;
  /** Required trust domain; defaults to the bundle's. */
  readonly trustDomain?: string;
}

export interface VerifiedJwtSvid {
  readonly spiffeId: SpiffeId;
  readonly audience: readonly string[];
  readonly expiresAt: number;
  readonly claims: JWTPayload;
}

function fail(code: PkiErrorCode, message: string, cause?: unknown): never {
  throw new PkiError(code, message, cause === undefined ? {} : { cause });
}

/**
 * Verifies a JWT-SVID against the bundle's JWT authorities.
 *
 * @example const { spiffeId } = await verifyJwtSvid(token, bundle, { audience: 'api', at: clock.now() });
 */
export async function verifyJwtSvid(token: string, bundle: TrustBundle, options: VerifyJwtSvidOptions): Promise<VerifiedJwtSvid> {
  if (typeof token !== 'string' || token.length > 16_384 || token.split('.').length !== 3) fail('ERR_JWT_SVID_MALFORMED', 'token is not a compact JWS');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch (error) {
    fail('ERR_JWT_SVID_MALFORMED', 'token header is not valid base64url JSON', error);
  }
  if (typeof header.alg !== 'string' || !JWT_SVID_ALGORITHMS.includes(header.alg)) {
    fail('ERR_JWT_SVID_ALGORITHM', `algorithm ${JSON.stringify(header.alg)} is not one of ${JWT_SVID_ALGORITHMS.join(', ')}`);
  }
  if (header.crit !== undefined) fail('ERR_JWT_SVID_MALFORMED', 'token header carries crit parameters');
  const authority = typeof header.kid === 'string' ? bundle.jwtAuthorities.find((a) => a.kid === header.kid) : undefined;
  if (!authority) fail('ERR_JWT_SVID_KID_UNKNOWN', 'token kid is missing or names no JWT authority of the bundle');
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, authority.publicKey, {
      algorithms: [header.alg],
      audience: options.audience,
      currentDate: new Date(options.at),
      requiredClaims: ['sub', 'aud', 'exp'],
      clockTolerance: 0,
    }));
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) fail('ERR_JWT_SVID_EXPIRED', 'token has expired', error);
    if (error instanceof joseErrors.JWTClaimValidationFailed) {
      if (error.claim === 'aud' && error.reason === 'check_failed') fail('ERR_JWT_SVID_AUDIENCE', `token audience does not include ${options.audience}`, error);
      fail('ERR_JWT_SVID_CLAIMS', `claim ${error.claim} is invalid: ${error.reason}`, error);
    }
    if (error instanceof joseErrors.JWSSignatureVerificationFailed) fail('ERR_JWT_SVID_SIGNATURE', 'token signature does not verify', error);
    if (error instanceof joseErrors.JOSEAlgNotAllowed) fail('ERR_JWT_SVID_ALGORITHM', 'token algorithm does not fit the key', error);
    if (error instanceof TypeError || error instanceof joseErrors.JOSEError) fail('ERR_JWT_SVID_MALFORMED', 'token could not be verified with its key', error);
    throw error;
  }
  if (typeof payload.sub !== 'string') fail('ERR_JWT_SVID_CLAIMS', 'sub must be a string');
  let spiffeId: SpiffeId;
  try {
    spiffeId = parseSpiffeId(payload.sub);
  } catch (error) {
    fail('ERR_JWT_SVID_CLAIMS', 'sub is not a SPIFFE ID', error);
  }
  const trustDomain = options.trustDomain ?? bundle.trustDomain;
  if (trustDomain !== undefined && !spiffeId.memberOf(trustDomain)) fail('ERR_JWT_SVID_WRONG_TRUST_DOMAIN', `${spiffeId.toString()} is not in trust domain ${trustDomain}`);
  const audience = typeof payload.aud === 'string' ? [payload.aud] : (payload.aud as string[]);
  return Object.freeze({ spiffeId, audience: Object.freeze(audience), expiresAt: (payload.exp as number) * 1000, claims: payload });
}
