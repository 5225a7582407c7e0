/**
 * The agent's TLS material (its SVID, key, and the trust bundle) and the revocation list, as
 * one swappable state. Listeners and upstream connectors read it on every new handshake, so a
 * rotation (`setMaterial`) takes effect without dropping live connections, and a revocation
 * (`setRevoked`) notifies the connection registry to close what is no longer trusted.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { systemClock, type Clock } from '../../core/clock.js';
import { tryParseSpiffeId } from '../../core/spiffe-id.js';
// Module paths, not the pki index: the index re-exports the JWT-SVID code and with it jose (≈ 7 MB, ADR 0044).
import { createTrustBundle } from '../../pki/bundle.js';
import type { PeerCertificateLike } from '../../pki/svid-verify.js';
import { AgentError } from '../errors.js';
import { checkPeerCertificate, normalizeSerial, PEER_CACHE_SIZE, PeerVerifier, type PeerCheck } from './peer-identity.js';

export interface TlsMaterial {
  /** The SVID leaf followed by any intermediates, PEM. */
  readonly certPem: string;
  readonly keyPem: string;
  /** The trust bundle (CA certificates), PEM. */
  readonly bundlePem: string;
}

export const ALPN_PROTOCOLS: readonly string[] = ['h2', 'http/1.1'];

/** TLS 1.3 suites, then TLS 1.2 ECDHE AEAD suites, in preference order (ADR 0043). */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

export class TrustState {
  #material: TlsMaterial;
  #spiffeId: string;
  #context: SecureContext;
  #contextOptions: SecureContextOptions;
  #verifier: PeerVerifier;
  #revoked: ReadonlySet<string> = new Set();
  #bundleVersion = 0;
  readonly #listeners = new Set<(what: 'material' | 'revocations') => void>();

  /** @param clock the time peer certificates are verified at (validity windows). */
  constructor(material: TlsMaterial, private readonly clock: Clock = systemClock) {
    const built = TrustState.#build(material);
    this.#material = material;
    this.#spiffeId = built.spiffeId;
    this.#context = built.context;
    this.#contextOptions = built.options;
    this.#verifier = built.verifier;
  }

  static #build(material: TlsMaterial): { spiffeId: string; context: SecureContext; options: SecureContextOptions; verifier: PeerVerifier } {
    const certs = splitPem(material.certPem);
    const cas = splitPem(material.bundlePem);
    if (certs.length === 0 || cas.length === 0) throw new AgentError('ERR_AGENT_TLS_MATERIAL', 'SVID and bundle must each hold at least one PEM certificate');
    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(certs[0] as string);
      if (!leaf.checkPrivateKey(createPrivateKey(material.keyPem))) throw new Error('key does not match');
    } catch (cause) {
      throw new AgentError('ERR_AGENT_TLS_MATERIAL', 'SVID or key could not be parsed, or they do not match', { cause });
    }
    const check = checkPeerCertificate(leaf, new Set());
    if (!check.ok) throw new AgentError('ERR_AGENT_TLS_MATERIAL', 'own SVID does not carry exactly one valid SPIFFE ID');
    const options: SecureContextOptions = {
      cert: material.certPem,
      key: material.keyPem,
      ca: cas,
      minVersion: 'TLSv1.2',
      ecdhCurve: 'X25519:P-256',
      // AEAD only; AES-128-GCM first (AES-NI, cheapest per record on the proxy's small writes).
      ciphers: TLS_CIPHERS,
      honorCipherOrder: true,
    };
    return { spiffeId: check.spiffeId, context: createSecureContext(options), options, verifier: TrustState.#makeVerifier(cas, certs.slice(1), check.spiffeId) };
  }

  /**
   * The X509-SVID verifier for peers: the bundle's authorities, the agent's own trust domain,
   * and the intermediates of its own SVID as candidates for peers presented without a chain.
   */
  static #makeVerifier(cas: readonly string[], ownIntermediates: readonly string[], ownId: string): PeerVerifier {
    const trustDomain = (tryParseSpiffeId(ownId) as NonNullable<ReturnType<typeof tryParseSpiffeId>>).trustDomain;
    const authorities: { der: Buffer }[] = [];
    for (const pem of cas) {
      try {
        const der = new X509Certificate(pem).raw;
        createTrustBundle({ x509Authorities: [{ der }] });
        authorities.push({ der });
      } catch {
        // An authority `src/pki` cannot read (unsupported algorithm) anchors nothing: its peers fail closed.
      }
    }
    if (authorities.length === 0) throw new AgentError('ERR_AGENT_TLS_MATERIAL', 'the trust bundle holds no certificate usable as an X509-SVID authority');
    const intermediates = ownIntermediates.map((pem) => new X509Certificate(pem).raw);
    return new PeerVerifier(createTrustBundle({ trustDomain, x509Authorities: authorities }), trustDomain, PEER_CACHE_SIZE, intermediates);
  }

  get spiffeId(): string {
    return this.#spiffeId;
  }

  get material(): TlsMaterial {
    return this.#material;
  }

  /** The context for new handshakes (both server and client side). */
  get secureContext(): SecureContext {
    return this.#context;
  }

  /** The options behind {@link secureContext}, for `tls.Server#setSecureContext`. */
  get contextOptions(): SecureContextOptions {
    return this.#contextOptions;
  }

  /** Increments whenever the trust bundle (not just the SVID) changes. */
  get bundleVersion(): number {
    return this.#bundleVersion;
  }

  get revoked(): ReadonlySet<string> {
    return this.#revoked;
  }

  /** Rotates the SVID and/or bundle. Throws (keeping the old material) if the new one is bad. */
  setMaterial(material: TlsMaterial): void {
    const built = TrustState.#build(material);
    if (material.bundlePem !== this.#material.bundlePem) this.#bundleVersion += 1;
    this.#material = material;
    this.#spiffeId = built.spiffeId;
    this.#context = built.context;
    this.#contextOptions = built.options;
    // A new verifier (empty cache) for every new material: the bundle or the trust domain may differ.
    this.#verifier = built.verifier;
    this.#emit('material');
  }

  /** Replaces the revoked serial numbers (hex, any case). */
  setRevoked(serials: Iterable<string>): void {
    this.#revoked = new Set([...serials].map(normalizeSerial));
    this.#verifier.clear();
    this.#emit('revocations');
  }

  /**
   * Verifies a peer leaf that OpenSSL chained to the bundle with the full X509-SVID rules
   * (`src/pki` `verifyX509Svid`) at the injected clock's time, once per certificate
   * (cached by fingerprint, see {@link PeerVerifier}), and checks revocation.
   *
   * @param chain `getPeerCertificate(true)` when `cert` carries no issuer links (made from raw
   *   DER); without it, the issuer links of `cert` (as `getPeerX509Certificate()` sets them).
   */
  checkPeer(cert: PeerCertificateLike | undefined, chain?: PeerCertificateLike): PeerCheck {
    return this.#verifier.verify(cert, chain, this.#revoked, this.clock.now());
  }

  /** Number of verified peer certificates cached (for tests and the admin endpoint). */
  get verifiedPeers(): number {
    return this.#verifier.size;
  }



  onChange(listener: (what: 'material' | 'revocations') => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(what: 'material' | 'revocations'): void {
    for (const l of this.#listeners) l(what);
  }
}
