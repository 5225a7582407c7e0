/**
 * Extracts and checks the SPIFFE ID of a peer certificate that OpenSSL already chained to the
 * bundle (during the handshake, against the live SecureContext). `src/pki`'s `verifyX509Svid`
 * checks more (key usage, EKU, validity with an injected clock); binding it here costs a DER
 * parse per handshake and is left to a follow-up measured with bench/proxy.
 */
import type { X509Certificate } from 'node:crypto';
import { tryParseSpiffeId } from '../../core/spiffe-id.js';

/** True when `id` is a SPIFFE ID as the SPIFFE spec defines it (core's parser decides). */
export function isValidSpiffeId(id: string): boolean {
  return tryParseSpiffeId(id) !== undefined;
}

export type PeerCheck =
  | { readonly ok: true; readonly spiffeId: string; readonly serial: string; readonly fingerprint256: string }
  | { readonly ok: false; readonly reason: 'ERR_AGENT_PEER_ID_INVALID' | 'ERR_AGENT_PEER_REVOKED' };

/**
 * Checks a certificate that already chained to the bundle: a leaf (not a CA), exactly one URI
 * SAN, and that URI a valid SPIFFE ID; and not in `revokedSerials` (upper-case hex).
 */
export function checkPeerCertificate(cert: X509Certificate | undefined, revokedSerials: ReadonlySet<string>): PeerCheck {
  if (cert === undefined || cert.ca) return { ok: false, reason: 'ERR_AGENT_PEER_ID_INVALID' };
  const san = cert.subjectAltName;
  if (san === undefined) return { ok: false, reason: 'ERR_AGENT_PEER_ID_INVALID' };
  let uri: string | undefined;
  let count = 0;
  for (const entry of san.split(', ')) {
    if (entry.startsWith('URI:')) {
      count += 1;
      uri = entry.slice(4);
    }
  }
  // Node quotes SAN values holding separators; a quoted value is never a valid SPIFFE ID.
  if (count !== 1 || uri === undefined || !isValidSpiffeId(uri)) return { ok: false, reason: 'ERR_AGENT_PEER_ID_INVALID' };
  const serial = normalizeSerial(cert.serialNumber);
  if (revokedSerials.has(serial)) return { ok: false, reason: 'ERR_AGENT_PEER_REVOKED' };
  return { ok: true, spiffeId: uri, serial, fingerprint256: cert.fingerprint256 };
}

/** Upper-case hex without leading zeros, so `0x05AB`, `5ab` and `05AB` compare equal. */
export function normalizeSerial(serial: string): string {
  const s = serial.replace(/^0x/i, '').replace(/^0+/, '').toUpperCase();
  return s === '' ? '0' : s;
}
