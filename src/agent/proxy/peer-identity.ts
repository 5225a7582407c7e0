/**
 * Checks of a peer certificate that OpenSSL already chained to the bundle (during the
 * handshake, against the live SecureContext):
 * - {@link checkPeerCertificate}: the light SPIFFE-ID extraction (leaf, exactly one valid
 *   SPIFFE ID URI SAN, not revoked), used on the agent's own SVID;
 * - {@link PeerVerifier}: the full X509-SVID rules of `src/pki` (`verifyX509Svid`: leaf
 *   profile, key usage, exactly one SPIFFE ID in the trust domain, validity, chain to the
 *   bundle) run once per certificate and cached by SHA-256 fingerprint, so the handshake hot
 *   path does not parse DER per connection (ADR 0046).
 */
import { hash, type X509Certificate } from 'node:crypto';
import { tryParseSpiffeId } from '../../core/spiffe-id.js';
import type { TrustBundle } from '../../pki/bundle.js';
import { PkiError, type PkiErrorCode } from '../../pki/errors.js';
import { peerCertificateChain, verifyX509Svid, type PeerCertificateLike } from '../../pki/svid-verify.js';

/** True when `id` is a SPIFFE ID as the SPIFFE spec defines it (core's parser decides). */
export function isValidSpiffeId(id: string): boolean {
  return tryParseSpiffeId(id) !== undefined;
}

/** Why a peer certificate is refused: an agent error code (metrics label and event reason). */
export type PeerRejection =
  | 'ERR_AGENT_PEER_ID_INVALID'
  | 'ERR_AGENT_PEER_REVOKED'
  | 'ERR_AGENT_PEER_UNVERIFIED'
  | 'ERR_AGENT_PEER_NOT_SVID'
  | 'ERR_AGENT_PEER_EXPIRED'
  | 'ERR_AGENT_PEER_WRONG_TRUST_DOMAIN';

export type PeerCheck =
  | {
      readonly ok: true;
      readonly spiffeId: string;
      readonly serial: string;
      readonly fingerprint256: string;
      /**
       * From {@link PeerVerifier}: the verified chain (leaf first), copied once per certificate
       * and shared by every connection of that peer. Live connections keep this one, not the
       * buffers of their own handshake, which then die young instead of piling up as external
       * memory until a major GC under connection churn.
       */
      readonly chain?: PeerCertificateLike;
    }
  /** `rule` is the `src/pki` code of the X509-SVID rule that failed, when one did. */
  | { readonly ok: false; readonly reason: PeerRejection; readonly rule?: PkiErrorCode };

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

/** The agent code for each X509-SVID rule `verifyX509Svid` can fail. */
const REJECTION_FOR: Partial<Record<PkiErrorCode, PeerRejection>> = {
  ERR_SVID_LEAF_IS_CA: 'ERR_AGENT_PEER_NOT_SVID',
  ERR_SVID_LEAF_KEY_CERT_SIGN: 'ERR_AGENT_PEER_NOT_SVID',
  ERR_SVID_LEAF_NO_DIGITAL_SIGNATURE: 'ERR_AGENT_PEER_NOT_SVID',
  ERR_SVID_UNKNOWN_CRITICAL_EXTENSION: 'ERR_AGENT_PEER_NOT_SVID',
  ERR_SVID_KEY_IDENTIFIER_MISSING: 'ERR_AGENT_PEER_NOT_SVID',
  ERR_SVID_URI_SAN_COUNT: 'ERR_AGENT_PEER_ID_INVALID',
  ERR_SVID_URI_NOT_SPIFFE: 'ERR_AGENT_PEER_ID_INVALID',
  ERR_SVID_WRONG_TRUST_DOMAIN: 'ERR_AGENT_PEER_WRONG_TRUST_DOMAIN',
  ERR_SVID_EXPIRED: 'ERR_AGENT_PEER_EXPIRED',
  ERR_SVID_NOT_YET_VALID: 'ERR_AGENT_PEER_EXPIRED',
  // CHAIN_EMPTY, UNTRUSTED, INTERMEDIATE_*, PATH_LENGTH, CERT_MALFORMED and anything else:
  // ERR_AGENT_PEER_UNVERIFIED (fail closed).
};

interface Verified {
  readonly result: PeerCheck & { ok: true };
  readonly notBefore: number;
  /** The earliest notAfter along the verified path. */
  readonly notAfter: number;
}

/**
 * Copies of the DER certificates (leaf first), linked as `issuerCertificate`s. Each copy owns
 * its memory (not a slice of Buffer's shared 8 KiB pool, which a long-lived cache entry would
 * pin together with whatever else was allocated next to it).
 */
function linkedCopy(ders: readonly Buffer[]): PeerCertificateLike {
  let link: PeerCertificateLike | undefined;
  for (let i = ders.length - 1; i >= 0; i--) {
    const der = ders[i] as Buffer;
    const raw = Buffer.allocUnsafeSlow(der.length);
    der.copy(raw);
    link = { raw, ...(link === undefined ? {} : { issuerCertificate: link }) };
  }
  return link as PeerCertificateLike;
}

/** `ab12…` → `AB:12:…`, the form of X509Certificate#fingerprint256. */
function colonHex(hex: string): string {
  return hex.toUpperCase().replace(/(..)(?!$)/g, '$1:');
}

/** Default bound of the per-fingerprint cache (entries are ≈ 300 bytes). */
export const PEER_CACHE_SIZE = 4096;

/** Bound of the set of intermediates learned from verified peer chains. */
const MAX_LEARNED_INTERMEDIATES = 32;

/**
 * Runs `verifyX509Svid` on a peer's chain against one bundle and trust domain, caching each
 * verified leaf by SHA-256 fingerprint (bounded, oldest evicted first). Cached entries are
 * re-checked for validity time and revocation on every hit; a new bundle means a new verifier,
 * and a revocation change clears the cache ({@link clear}). Failures are not cached.
 *
 * When a caller only has the leaf (a certificate made from raw DER, no chain), the path is
 * built from the leaf plus known intermediates: the agent's own (from its SVID file) and those
 * of peer chains verified earlier. Offering extra candidates weakens nothing: the path must
 * still verify, signature by signature, up to an authority of the bundle.
 */
export class PeerVerifier {
  readonly #cache = new Map<string, Verified>();
  readonly #intermediates: Buffer[];

  constructor(
    private readonly bundle: TrustBundle,
    private readonly trustDomain: string,
    private readonly maxEntries = PEER_CACHE_SIZE,
    intermediates: readonly Buffer[] = [],
  ) {
    this.#intermediates = [...intermediates];
  }

  get size(): number {
    return this.#cache.size;
  }

  clear(): void {
    this.#cache.clear();
  }

  /**
   * @param cert the peer leaf (for inbound, `getPeerX509Certificate()`, whose `issuerCertificate`
   *   links give the presented chain)
   * @param chain the peer chain as `getPeerCertificate(true)` returns it, when `cert` was made
   *   from raw DER and carries no issuer links (outbound `checkServerIdentity`)
   */
  verify(cert: PeerCertificateLike | undefined, chain: PeerCertificateLike | undefined, revokedSerials: ReadonlySet<string>, at: number): PeerCheck {
    if (cert === undefined) return { ok: false, reason: 'ERR_AGENT_PEER_UNVERIFIED', rule: 'ERR_SVID_CHAIN_EMPTY' };
    if (chain !== undefined && !chain.raw.equals(cert.raw)) return { ok: false, reason: 'ERR_AGENT_PEER_UNVERIFIED' };
    // Keyed by the SHA-256 of the DER, hashed here: the handshake path never has to parse the
    // certificate (an X509Certificate per connection holds native memory V8 does not count, so
    // under connection churn tens of thousands waited for a major GC).
    const fingerprint = hash('sha256', cert.raw, 'hex');
    let entry = this.#cache.get(fingerprint);
    if (entry === undefined) {
      const presented = peerCertificateChain(chain ?? cert);
      let verified;
      try {
        verified = verifyX509Svid(presented.length > 1 ? presented : [...presented, ...this.#intermediates], this.bundle, { at, trustDomain: this.trustDomain });
      } catch (error) {
        const rule = error instanceof PkiError ? error.code : undefined;
        return { ok: false, reason: (rule === undefined ? undefined : REJECTION_FOR[rule]) ?? 'ERR_AGENT_PEER_UNVERIFIED', ...(rule === undefined ? {} : { rule }) };
      }
      entry = {
        result: { ok: true, spiffeId: verified.spiffeId.toString(), serial: normalizeSerial(verified.serialHex), fingerprint256: colonHex(fingerprint), chain: linkedCopy(presented) },
        notBefore: verified.notBefore,
        notAfter: verified.notAfter,
      };
      if (this.#cache.size >= this.maxEntries) this.#cache.delete(this.#cache.keys().next().value as string);
      this.#cache.set(fingerprint, entry);
      if (presented.length > 1) this.#learn(verified.path.slice(1, -1).map((c) => c.der));
    }
    if (at < entry.notBefore) return { ok: false, reason: 'ERR_AGENT_PEER_EXPIRED', rule: 'ERR_SVID_NOT_YET_VALID' };
    if (at > entry.notAfter) {
      this.#cache.delete(fingerprint);
      return { ok: false, reason: 'ERR_AGENT_PEER_EXPIRED', rule: 'ERR_SVID_EXPIRED' };
    }
    if (revokedSerials.has(entry.result.serial)) return { ok: false, reason: 'ERR_AGENT_PEER_REVOKED' };
    return entry.result;
  }

  /** Remembers intermediates of a verified path, for peers that arrive without their chain. */
  #learn(ders: readonly Buffer[]): void {
    for (const der of ders) {
      if (this.#intermediates.some((d) => d.equals(der))) continue;
      if (this.#intermediates.length >= MAX_LEARNED_INTERMEDIATES) return;
      this.#intermediates.push(der);
    }
  }
}
