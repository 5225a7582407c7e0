/**
 * Join tokens: 32 random bytes (base64url, 43 chars), single use, 10-minute default TTL. Only the
 * SHA-256 of the token is stored; the token itself is shown once to whoever created it.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import { isAttributeKey } from '../../identity/attributes.js';
import type { AttestationState } from '../attestor.js';
import { PlatformError } from '../errors.js';

export const JOIN_TOKEN_KIND = 'join_token';
export const JOIN_TOKEN_DEFAULT_TTL_MS = 10 * 60_000;
export const JOIN_TOKEN_MAX_TTL_MS = 7 * 24 * 3_600_000;
export const JOIN_TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

export interface IssueJoinTokenOptions {
  readonly clock: Clock;
  readonly state: AttestationState;
  /** Default 10 minutes; at most 7 days. */
  readonly ttlMs?: number;
  /**
   * Attributes the admin vouches for at issue time (`host.name`, `vm.uuid`...). They become
   * attributes of the node that redeems the token, and bind hint attestors such as vsphere.
   */
  readonly attributes?: Readonly<Record<string, string>>;
  /** Injected randomness for tests; default crypto.randomBytes. */
  readonly random?: (size: number) => Buffer;
}

export interface IssuedJoinToken {
  /** The secret: show once, never log. */
  readonly token: string;
  /** Non-secret id (first 32 hex chars of the hash): safe to show and audit. */
  readonly id: string;
  readonly expiresAt: number;
}

/** SHA-256 hex of a token; what the store keys on. */
export function hashJoinToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The public id of a token (or its hash). */
export function joinTokenId(hash: string): string {
  return hash.slice(0, 32);
}

/**
 * Creates and stores a join token.
 *
 * @example
 * const { token, expiresAt } = await issueJoinToken({ clock, state });
 */
export async function issueJoinToken(options: IssueJoinTokenOptions): Promise<IssuedJoinToken> {
  const ttlMs = options.ttlMs ?? JOIN_TOKEN_DEFAULT_TTL_MS;
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0 || ttlMs > JOIN_TOKEN_MAX_TTL_MS) {
    throw new PlatformError('ERR_ATTEST_MALFORMED', `join token ttl must be between 1 ms and 7 days`, { details: { path: 'ttl' } });
  }
  const data: Record<string, string> = {};
  for (const [key, value] of Object.entries(options.attributes ?? {})) {
    if (!isAttributeKey(key) || typeof value !== 'string' || value.length > 1024) {
      throw new PlatformError('ERR_ATTEST_MALFORMED', `join token attribute ${JSON.stringify(key).slice(0, 80)} is not a valid attribute`, { details: { path: 'attributes' } });
    }
    data[key] = value;
  }
  const bytes = (options.random ?? randomBytes)(32);
  if (bytes.length !== 32) throw new Error('join token randomness must be 32 bytes');
  const token = bytes.toString('base64url');
  const hash = hashJoinToken(token);
  const expiresAt = options.clock.now() + ttlMs;
  await options.state.putCredential(JOIN_TOKEN_KIND, hash, { expiresAt, data: { ...data, '@hash': hash } });
  return Object.freeze({ token, id: joinTokenId(hash), expiresAt });
}
