/**
 * Trust bundles: the X.509 authorities (root certificates) and JWT authorities (public keys
 * with a `kid`) a verifier must trust for one trust domain, with the SPIFFE bundle sequence.
 * Exported as PEM or as a SPIFFE bundle JWKS (SPIFFE Trust Domain and Bundle spec, section 4),
 * and parsed back from either (untrusted input: strict, fail closed).
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { parseTrustDomain } from '../core/spiffe-id.js';
import { parseCertificate, parseCertificates, publicKeyOf, type ParsedCertificate } from './certificate.js';
import { PkiError } from './errors.js';
import { certToPem } from './pem.js';

export interface X509Authority {
  readonly cert: ParsedCertificate;
  readonly publicKey: KeyObject;
  /** Set by the CA for an authority being phased out: workloads under it should re-issue. */
  readonly tainted: boolean;
}

export interface JwtAuthority {
  readonly kid: string;
  readonly jwk: JsonWebKey;
  readonly publicKey: KeyObject;
  readonly tainted: boolean;
}

/**
 * Everything a verifier trusts for one trust domain.
 * `trustDomain` is unknown for a bare PEM bundle unless the caller names it.
 */
export interface TrustBundle {
  readonly trustDomain: string | undefined;
  readonly sequence: number | undefined;
  readonly refreshHintSeconds: number | undefined;
  readonly x509Authorities: readonly X509Authority[];
  readonly jwtAuthorities: readonly JwtAuthority[];
}

export interface TrustBundleInput {
  trustDomain?: string;
  sequence?: number;
  refreshHintSeconds?: number;
  x509Authorities: readonly { der: Uint8Array; tainted?: boolean }[];
  jwtAuthorities?: readonly { kid: string; jwk: JsonWebKey; tainted?: boolean }[];
}

function bundleError(message: string, cause?: unknown): PkiError {
  return new PkiError('ERR_BUNDLE_MALFORMED', message, { cause });
}

/** Builds a bundle from DER certificates and JWKs; parses and freezes everything once. */
export function createTrustBundle(input: TrustBundleInput): TrustBundle {
  const x509 = input.x509Authorities.map(({ der, tainted }) => {
    const cert = parseCertificate(der);
    return Object.freeze({ cert, publicKey: publicKeyOf(cert.spki), tainted: tainted === true });
  });
  const jwt = (input.jwtAuthorities ?? []).map(({ kid, jwk, tainted }) => {
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: publicJwk(jwk), format: 'jwk' });
    } catch (error) {
      throw bundleError(`JWT authority ${kid}: unusable key`, error);
    }
    return Object.freeze({ kid, jwk: publicJwk(jwk), publicKey, tainted: tainted === true });
  });
  const kids = new Set<string>();
  for (const a of jwt) {
    if (kids.has(a.kid)) throw bundleError(`JWT authority kid ${a.kid} appears twice`);
    kids.add(a.kid);
  }
  return Object.freeze({
    trustDomain: input.trustDomain === undefined ? undefined : parseTrustDomain(input.trustDomain),
    sequence: input.sequence,
    refreshHintSeconds: input.refreshHintSeconds,
    x509Authorities: Object.freeze(x509),
    jwtAuthorities: Object.freeze(jwt),
  });
}

/** Only the public members of a JWK (never let a private `d` into a bundle). */
function publicJwk(jwk: JsonWebKey): JsonWebKey {
  const out: JsonWebKey = { kty: jwk.kty };
  for (const k of ['crv', 'x', 'y', 'n', 'e'] as const) if (typeof jwk[k] === 'string') out[k] = jwk[k];
  return out;
}

/** The X.509 authorities as concatenated PEM (what `openssl verify -CAfile` and `tls` take). */
export function bundleToPem(bundle: TrustBundle): string {
  return bundle.x509Authorities.map((a) => certToPem(a.cert.der)).join('');
}

export interface SpiffeBundleJwks {
  keys: JsonWebKey[];
  spiffe_sequence?: number;
  spiffe_refresh_hint?: number;
}

/** The SPIFFE bundle JWKS: `use: x509-svid` keys with `x5c`, `use: jwt-svid` keys with `kid`. */
export function bundleToJwks(bundle: TrustBundle): SpiffeBundleJwks {
  const keys: JsonWebKey[] = [];
  for (const a of bundle.x509Authorities) {
    keys.push({ ...publicJwk(a.publicKey.export({ format: 'jwk' })), use: 'x509-svid', x5c: [a.cert.der.toString('base64')] } as JsonWebKey);
  }
  for (const a of bundle.jwtAuthorities) keys.push({ ...a.jwk, kid: a.kid, use: 'jwt-svid' } as JsonWebKey);
  const out: SpiffeBundleJwks = { keys };
  if (bundle.sequence !== undefined) out.spiffe_sequence = bundle.sequence;
  if (bundle.refreshHintSeconds !== undefined) out.spiffe_refresh_hint = bundle.refreshHintSeconds;
  return out;
}

/**
 * Parses a trust bundle from PEM certificates or a SPIFFE bundle JWKS (detected by the first
 * non-blank character). Keys of unknown `use` are ignored as the spec says; malformed ones fail.
 *
 * @example const bundle = parseTrustBundle(readFileSync('bundle.pem', 'utf8'), { trustDomain: 'example.org' });
 */
export function parseTrustBundle(text: string, options: { trustDomain?: string } = {}): TrustBundle {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{')) return parseJwks(trimmed, options.trustDomain);
  let certs: ParsedCertificate[];
  try {
    certs = parseCertificates(text);
  } catch (error) {
    throw bundleError('bundle PEM holds an unreadable certificate', error);
  }
  if (certs.length === 0) throw new PkiError('ERR_BUNDLE_EMPTY', 'bundle PEM holds no CERTIFICATE block');
  return createTrustBundle({ trustDomain: options.trustDomain, x509Authorities: certs.map((c) => ({ der: c.der })) });
}

function parseJwks(text: string, trustDomain: string | undefined): TrustBundle {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw bundleError('bundle is not valid JSON', error);
  }
  if (doc === null || typeof doc !== 'object' || !Array.isArray((doc as SpiffeBundleJwks).keys)) throw bundleError('bundle JWKS has no "keys" array');
  const { keys, spiffe_sequence: sequence, spiffe_refresh_hint: hint } = doc as SpiffeBundleJwks;
  if (sequence !== undefined && !(Number.isSafeInteger(sequence) && sequence >= 0)) throw bundleError('spiffe_sequence must be a non-negative integer');
  if (hint !== undefined && !(Number.isSafeInteger(hint) && hint >= 0)) throw bundleError('spiffe_refresh_hint must be a non-negative integer');
  const x509: { der: Uint8Array }[] = [];
  const jwt: { kid: string; jwk: JsonWebKey }[] = [];
  for (const key of keys as unknown[]) {
    if (key === null || typeof key !== 'object') throw bundleError('a JWKS entry is not an object');
    const k = key as JsonWebKey & { use?: unknown; x5c?: unknown; kid?: unknown };
    if (k.use === 'x509-svid') {
      if (!Array.isArray(k.x5c) || k.x5c.length !== 1 || typeof k.x5c[0] !== 'string') throw bundleError('an x509-svid key must have exactly one x5c certificate');
      const der = Buffer.from(k.x5c[0], 'base64');
      if (der.toString('base64') !== k.x5c[0]) throw bundleError('x5c is not canonical base64');
      let cert: ParsedCertificate;
      try {
        cert = parseCertificate(der);
      } catch (error) {
        throw bundleError('an x5c certificate is unreadable', error);
      }
      const certJwk = publicKeyOf(cert.spki).export({ format: 'jwk' });
      for (const m of ['kty', 'crv', 'x', 'y', 'n', 'e'] as const) {
        if (certJwk[m] !== k[m]) throw bundleError(`x509-svid key parameter ${m} does not match its certificate`);
      }
      x509.push({ der });
    } else if (k.use === 'jwt-svid') {
      if (typeof k.kid !== 'string' || k.kid.length === 0) throw bundleError('a jwt-svid key must have a kid');
      if (typeof k.d === 'string') throw bundleError('a jwt-svid key carries private material');
      jwt.push({ kid: k.kid, jwk: k });
    }
  }
  if (x509.length === 0 && jwt.length === 0) throw new PkiError('ERR_BUNDLE_EMPTY', 'bundle JWKS holds no x509-svid or jwt-svid key');
  return createTrustBundle({ trustDomain, sequence, refreshHintSeconds: hint, x509Authorities: x509, jwtAuthorities: jwt });
}
