/**
 * End-user JWT validation against a JWKS (jose): signature, `exp`/`nbf` with the injected
 * clock, `iss`, `aud`. Only asymmetric algorithms are accepted (no `none`, no HMAC with a
 * public key as secret).
 */
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import type { Clock } from '../../../core/clock.js';

export interface JwtConfig {
  readonly issuer: string;
  readonly audiences: readonly string[];
  /** A JWKS document, or a URL to fetch (and cache) it from. */
  readonly jwks: JSONWebKeySet | URL;
  readonly clockToleranceSec?: number;
}

export interface JwtVerifier {
  /** Resolves to the claims, or undefined when the token is not valid. Never throws. */
  verify(token: string): Promise<JWTPayload | undefined>;
}

const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const MAX_TOKEN_LENGTH = 8192;

export function createJwtVerifier(config: JwtConfig, clock: Clock): JwtVerifier {
  const keys = config.jwks instanceof URL ? createRemoteJWKSet(config.jwks, { timeoutDuration: 2000, cooldownDuration: 30_000 }) : createLocalJWKSet(config.jwks);
  return {
    async verify(token: string): Promise<JWTPayload | undefined> {
      if (token.length > MAX_TOKEN_LENGTH) return undefined;
      try {
        const { payload } = await jwtVerify(token, keys, {
          issuer: config.issuer,
          audience: [...config.audiences],
          algorithms: ALGORITHMS,
          currentDate: new Date(clock.now()),
          clockTolerance: config.clockToleranceSec ?? 0,
          requiredClaims: ['exp'],
        });
        return payload;
      } catch {
        return undefined;
      }
    },
  };
}
