/**
 * Admin API bearer tokens: `ward_adm_<43 base64url chars>` (256 random bits). The prefix makes
 * leaked tokens findable by secret scanners; the store keeps only the SHA-256 of the whole
 * token. Anything not exactly of this shape is refused before the store is asked.
 */
import { newSecretToken } from '../../store/index.js';

export const ADMIN_TOKEN_PREFIX = 'ward_adm_';
const ADMIN_TOKEN_RE = /^ward_adm_[A-Za-z0-9_-]{43}$/;
export const MAX_AUTHORIZATION_HEADER = 128;

/** A fresh admin token; shown to the user once, never stored or logged. */
export function newAdminToken(): string {
  return `${ADMIN_TOKEN_PREFIX}${newSecretToken()}`;
}

export function isAdminTokenShape(text: string): boolean {
  return ADMIN_TOKEN_RE.test(text);
}

/** The token of an `Authorization: Bearer <token>` header, or undefined for anything else. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined || header.length > MAX_AUTHORIZATION_HEADER) return undefined;
  const m = /^Bearer ([^\s]+)$/i.exec(header);
  return m !== null && isAdminTokenShape(m[1] as string) ? m[1] : undefined;
}
