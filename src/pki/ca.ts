/**
 * The certificate authority of one trust domain and its rotation model (docs/adr/0012).
 *
 * The CA is a list of *authorities*. Each authority is a trust anchor (a fresh self-signed root,
 * or the upstream enterprise CA) with an intermediate signing CA under it, plus a JWT signing
 * key. Exactly one authority is `active` (issues); rotation is two steps so the trust bundle
 * always leads issuance:
 *
 *   prepare   new authority created and published in the bundle (state `prepared`)
 *   activate  issuance moves to it; the previous one becomes `retired` and stays trusted
 *             until its intermediate expires (no leaf outlives its issuer)
 *   taint     a retired authority is marked compromised: workloads under it re-issue now
 *   revoke    a tainted authority leaves the bundle; its keys are destroyed
 *
 * State is plain JSON with every private key sealed by {@link KeySealer}, so the same object
 * lives in `<dir>/ca.json` or in an SQL row. Pure: no I/O, time from the injected clock.
 */
import { createPublicKey, randomBytes, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { parseTrustDomain } from '../core/spiffe-id.js';
import { createTrustBundle, type TrustBundle } from './bundle.js';
import { parseCertificate, parseCertificates, publicKeyOf, verifySignature, type ParsedCertificate } from './certificate.js';
import { buildCertificate, caExtensions, distinguishedName, randomSerial } from './certificate-builder.js';
import type { KeySealer, SealedBox } from './envelope.js';
import { PkiError } from './errors.js';
import { generateP256KeyPair, keyIdentifier, loadPrivateKey, signatureSchemeFor, spkiOf } from './keys.js';
import { KEY_USAGE, OID } from './oids.js';
import { certToPem, pemBlocks } from './pem.js';

export type AuthorityState = 'prepared' | 'active' | 'retired' | 'tainted' | 'revoked';

/** One authority as stored. Keys are sealed; revoked authorities keep no key. */
export interface AuthorityRecord {
  id: string;
  state: AuthorityState;
  createdAt: string;
  notAfter: string;
  activatedAt?: string;
  retiredAt?: string;
  taintedAt?: string;
  revokedAt?: string;
  /** Self-signed root of this authority; absent under an upstream CA. */
  rootCertPem?: string;
  rootKey?: SealedBox;
  intermediateCertPem: string;
  intermediateKey?: SealedBox;
  jwtKid: string;
  jwtPublicJwk: JsonWebKey;
  jwtKey?: SealedBox;
}

/** The serialisable CA state (`<dir>/ca.json`, or a database row). */
export interface CaState {
  format: 'ward.ca/v1';
  trustDomain: string;
  /** SPIFFE bundle sequence: bumped whenever the bundle's content changes. */
  sequence: number;
  refreshHintSeconds: number;
  caTtlMs: number;
  defaultSvidTtlMs: number;
  maxSvidTtlMs: number;
  upstream?: { certPem: string; key: SealedBox };
  authorities: AuthorityRecord[];
}

/** What callers see of an authority (no key material). */
export interface AuthoritySummary {
  readonly id: string;
  readonly state: AuthorityState;
  readonly notAfter: string;
  readonly createdAt: string;
  readonly jwtKid: string;
  readonly anchorSubjectKeyId: string;
}

export interface CaOptions {
  readonly trustDomain: string;
  readonly clock: Clock;
  readonly sealer: KeySealer;
  /** Lifetime of each authority's root and intermediate; default 365 days. */
  readonly caTtlMs?: number;
  readonly defaultSvidTtlMs?: number;
  readonly maxSvidTtlMs?: number;
  readonly refreshHintSeconds?: number;
  /** Chain under an enterprise CA instead of a self-signed root. */
  readonly upstream?: { readonly certPem: string; readonly keyPem: string };
}

export const CA_DEFAULTS = Object.freeze({
  caTtlMs: 365 * 86_400_000,
  defaultSvidTtlMs: 3_600_000,
  maxSvidTtlMs: 24 * 3_600_000,
  refreshHintSeconds: 300,
});

/** Key, certificate and precomputed pieces of the active intermediate: what issuance needs. */
export interface X509Signer {
  readonly authorityId: string;
  readonly trustDomain: string;
  readonly key: KeyObject;
  readonly cert: ParsedCertificate;
  /** Intermediate first, then the upstream chain if any: what a leaf presents after itself. */
  readonly chainDer: readonly Buffer[];
  readonly notAfter: number;
}

export interface JwtSigner {
  readonly kid: string;
  readonly key: KeyObject;
  readonly trustDomain: string;
  readonly notAfter: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const slot = (id: string, what: string): string => `authority/${id}/${what}`;
const BACKDATE_MS = 60_000;

function invalid(message: string, cause?: unknown): PkiError {
  return new PkiError('ERR_CA_STATE_INVALID', message, { cause });
}

/**
 * A trust domain's CA. Mutating methods change the state in place; persist {@link toJSON}
 * afterwards (ca-dir.ts does it for a directory).
 *
 * @example
 * const ca = CertificateAuthority.create({ trustDomain: 'example.org', clock, sealer });
 * const svid = issueX509Svid({ ca, csr, spiffeId: 'spiffe://example.org/web', clock });
 */
export class CertificateAuthority {
  #state: CaState;
  readonly #sealer: KeySealer;
  #signer: X509Signer | undefined;
  #jwtSigner: JwtSigner | undefined;

  private constructor(state: CaState, sealer: KeySealer) {
    this.#state = state;
    this.#sealer = sealer;
  }

  /** Creates a CA with one active authority (root + intermediate + JWT key, or intermediate under `upstream`). */
  static create(options: CaOptions): CertificateAuthority {
    const trustDomain = parseTrustDomain(options.trustDomain);
    const state: CaState = {
      format: 'ward.ca/v1',
      trustDomain,
      sequence: 0,
      refreshHintSeconds: options.refreshHintSeconds ?? CA_DEFAULTS.refreshHintSeconds,
      caTtlMs: options.caTtlMs ?? CA_DEFAULTS.caTtlMs,
      defaultSvidTtlMs: options.defaultSvidTtlMs ?? CA_DEFAULTS.defaultSvidTtlMs,
      maxSvidTtlMs: options.maxSvidTtlMs ?? CA_DEFAULTS.maxSvidTtlMs,
      authorities: [],
    };
    if (!(state.caTtlMs > 0 && state.defaultSvidTtlMs > 0 && state.maxSvidTtlMs >= state.defaultSvidTtlMs)) {
      throw new PkiError('ERR_SVID_TTL_INVALID', 'TTLs must be positive and the default no larger than the maximum');
    }
    if (options.upstream) state.upstream = checkUpstream(options.upstream, options.sealer, options.clock);
    const ca = new CertificateAuthority(state, options.sealer);
    const first = ca.#newAuthority(options.clock);
    first.state = 'active';
    first.activatedAt = first.createdAt;
    state.authorities.push(first);
    state.sequence = 1;
    return ca;
  }

  /** Loads a CA from its JSON state; keys stay sealed until first use. */
  static fromJSON(json: unknown, sealer: KeySealer): CertificateAuthority {
    const state = validateState(json);
    const boxes = state.authorities.flatMap((a) => [a.rootKey, a.intermediateKey, a.jwtKey]).filter((b): b is SealedBox => b !== undefined);
    if (state.upstream) boxes.push(state.upstream.key);
    const foreign = boxes.find((b) => b.kek !== sealer.keyId);
    if (foreign) throw new PkiError('ERR_MASTER_KEY_MISMATCH', `CA keys are sealed under master key ${foreign.kek}, not ${sealer.keyId}`);
    checkExportsBound(state, sealer);
    return new CertificateAuthority(structuredClone(state), sealer);
  }

  /** The state as JSON (sealed keys only). */
  toJSON(): CaState {
    return structuredClone(this.#state);
  }

  get trustDomain(): string {
    return this.#state.trustDomain;
  }

  get sequence(): number {
    return this.#state.sequence;
  }

  get defaultSvidTtlMs(): number {
    return this.#state.defaultSvidTtlMs;
  }

  get maxSvidTtlMs(): number {
    return this.#state.maxSvidTtlMs;
  }

  get upstream(): boolean {
    return this.#state.upstream !== undefined;
  }

  authorities(): AuthoritySummary[] {
    return this.#state.authorities.map((a) => ({
      id: a.id,
      state: a.state,
      createdAt: a.createdAt,
      notAfter: a.notAfter,
      jwtKid: a.jwtKid,
      anchorSubjectKeyId: (parseCertificate(this.#anchorDer(a)).subjectKeyId ?? Buffer.alloc(0)).toString('hex'),
    }));
  }

  /** Step 1 of rotation: a new authority, published in the bundle, not yet issuing. */
  prepare(clock: Clock): AuthoritySummary {
    this.prune(clock);
    if (this.#state.authorities.some((a) => a.state === 'prepared')) {
      throw new PkiError('ERR_CA_ALREADY_PREPARED', 'an authority is already prepared; activate it first');
    }
    const next = this.#newAuthority(clock);
    this.#state.authorities.push(next);
    this.#state.sequence++;
    return this.#summary(next.id);
  }

  /** Step 2: issuance moves to the prepared authority; the old active one retires (still trusted). */
  activate(clock: Clock): AuthoritySummary {
    const prepared = this.#state.authorities.find((a) => a.state === 'prepared');
    if (!prepared) throw new PkiError('ERR_CA_NOTHING_PREPARED', 'no prepared authority; run `ward ca rotate prepare` first');
    const now = clock.now();
    for (const a of this.#state.authorities) {
      if (a.state === 'active') {
        a.state = 'retired';
        a.retiredAt = iso(now);
      }
    }
    prepared.state = 'active';
    prepared.activatedAt = iso(now);
    this.#signer = undefined;
    this.#jwtSigner = undefined;
    return this.#summary(prepared.id);
  }

  /** Marks a non-active authority compromised: still trusted, but workloads must re-issue. */
  taint(id: string, clock: Clock): AuthoritySummary {
    const a = this.#find(id);
    if (a.state === 'active' || a.state === 'prepared') {
      throw new PkiError('ERR_CA_TAINT_ACTIVE', `authority ${id} is ${a.state}; prepare and activate a new authority first`);
    }
    if (a.state === 'retired') {
      a.state = 'tainted';
      a.taintedAt = iso(clock.now());
      this.#state.sequence++;
    }
    return this.#summary(id);
  }

  /** Removes a tainted authority from the bundle and destroys its keys. */
  revoke(id: string, clock: Clock): AuthoritySummary {
    const a = this.#find(id);
    if (a.state !== 'tainted') throw new PkiError('ERR_CA_REVOKE_NOT_TAINTED', `authority ${id} is ${a.state}; only a tainted authority can be revoked`);
    if (this.#state.upstream) {
      throw new PkiError('ERR_CA_REVOKE_UPSTREAM', 'the bundle holds the upstream root, which still vouches for this intermediate; revoke it at the upstream CA');
    }
    a.state = 'revoked';
    a.revokedAt = iso(clock.now());
    delete a.rootKey;
    delete a.intermediateKey;
    delete a.jwtKey;
    this.#state.sequence++;
    return this.#summary(id);
  }

  /** Drops retired/tainted/revoked authorities that expired; bumps the sequence if the bundle changed. */
  prune(clock: Clock): string[] {
    const now = clock.now();
    const gone = this.#state.authorities.filter((a) => a.state !== 'active' && a.state !== 'prepared' && Date.parse(a.notAfter) <= now);
    if (gone.length === 0) return [];
    this.#state.authorities = this.#state.authorities.filter((a) => !gone.includes(a));
    if (gone.some((a) => a.state !== 'revoked')) this.#state.sequence++;
    return gone.map((a) => a.id);
  }

  /**
   * Every authority that must be trusted now: prepared, active, retired and tainted ones.
   *
   * @example writeFileSync('bundle.pem', bundleToPem(ca.trustBundle()));
   */
  trustBundle(): TrustBundle {
    const live = this.#state.authorities.filter((a) => a.state !== 'revoked');
    const x509 = new Map<string, { der: Buffer; tainted: boolean }>();
    for (const a of live) {
      const der = this.#anchorDer(a);
      const key = der.toString('base64');
      const prev = x509.get(key);
      // Under an upstream CA all authorities share one anchor; it is tainted only if all are.
      x509.set(key, { der, tainted: (prev?.tainted ?? true) && a.state === 'tainted' });
    }
    return createTrustBundle({
      trustDomain: this.#state.trustDomain,
      sequence: this.#state.sequence,
      refreshHintSeconds: this.#state.refreshHintSeconds,
      x509Authorities: [...x509.values()],
      jwtAuthorities: live.map((a) => ({ kid: a.jwtKid, jwk: a.jwtPublicJwk, tainted: a.state === 'tainted' })),
    });
  }

  /** The active authority's signing key and chain (key unsealed once and cached). */
  x509Signer(clock: Clock): X509Signer {
    const active = this.#active(clock);
    if (this.#signer?.authorityId !== active.id) {
      const key = loadPrivateKey(this.#sealer.open(required(active.intermediateKey), slot(active.id, 'intermediate')));
      const chain = [...pemBlocks(active.intermediateCertPem, 'CERTIFICATE')];
      if (this.#state.upstream) {
        const upstream = pemBlocks(this.#state.upstream.certPem, 'CERTIFICATE');
        // Present the upstream chain except a self-signed root (peers hold it in the bundle).
        for (const der of upstream) if (!isSelfSigned(parseCertificate(der))) chain.push(der);
      }
      const cert = parseCertificate(chain[0] as Buffer);
      // Fail closed if ca.json was edited: the sealed key must be the certificate's key.
      if (!spkiOf(key).equals(spkiOf(publicKeyOf(cert.spki)))) throw invalid(`authority ${active.id}: intermediate key does not match its certificate`);
      this.#signer = Object.freeze({ authorityId: active.id, trustDomain: this.#state.trustDomain, key, cert, chainDer: Object.freeze(chain), notAfter: cert.notAfter });
    }
    return this.#signer;
  }

  /** The active authority's JWT signing key. */
  jwtSigner(clock: Clock): JwtSigner {
    const active = this.#active(clock);
    if (this.#jwtSigner?.kid !== active.jwtKid) {
      const key = loadPrivateKey(this.#sealer.open(required(active.jwtKey), slot(active.id, 'jwt')));
      this.#jwtSigner = Object.freeze({ kid: active.jwtKid, key, trustDomain: this.#state.trustDomain, notAfter: Date.parse(active.notAfter) });
    }
    return this.#jwtSigner;
  }

  #active(clock: Clock): AuthorityRecord {
    const active = this.#state.authorities.find((a) => a.state === 'active');
    if (!active || Date.parse(active.notAfter) <= clock.now()) {
      throw new PkiError('ERR_CA_NO_ACTIVE_AUTHORITY', active ? `active authority ${active.id} expired at ${active.notAfter}` : 'the CA has no active authority');
    }
    return active;
  }

  #find(id: string): AuthorityRecord {
    const a = this.#state.authorities.find((x) => x.id === id);
    if (!a) throw new PkiError('ERR_CA_AUTHORITY_UNKNOWN', `no authority ${JSON.stringify(id)}`);
    return a;
  }

  #summary(id: string): AuthoritySummary {
    return this.authorities().find((a) => a.id === id) as AuthoritySummary;
  }

  #anchorDer(a: AuthorityRecord): Buffer {
    const pem = a.rootCertPem ?? this.#state.upstream?.certPem;
    const blocks = pem === undefined ? [] : pemBlocks(pem, 'CERTIFICATE');
    if (blocks.length === 0) throw invalid(`authority ${a.id} has no trust anchor`);
    // Under an upstream chain the anchor is its last certificate (the root).
    return blocks[blocks.length - 1] as Buffer;
  }

  #newAuthority(clock: Clock): AuthorityRecord {
    const now = clock.now();
    const td = this.#state.trustDomain;
    const intermediate = generateP256KeyPair();
    const interSpki = spkiOf(intermediate.publicKey);
    const id = keyIdentifier(interSpki).toString('hex').slice(0, 16);
    let notAfter = now + this.#state.caTtlMs;
    let issuerName: Buffer;
    let issuerKey: KeyObject;
    let issuerKeyId: Buffer;
    const record: Partial<AuthorityRecord> = {};
    if (this.#state.upstream) {
      const upstreamCert = parseCertificate(pemBlocks(this.#state.upstream.certPem, 'CERTIFICATE')[0] as Buffer);
      issuerKey = loadPrivateKey(this.#sealer.open(this.#state.upstream.key, 'upstream'));
      issuerName = upstreamCert.subject;
      issuerKeyId = upstreamCert.subjectKeyId ?? keyIdentifier(upstreamCert.spki);
      notAfter = Math.min(notAfter, upstreamCert.notAfter);
      if (notAfter <= now) throw new PkiError('ERR_CA_UPSTREAM_INVALID', 'the upstream CA certificate has expired');
    } else {
      const root = generateP256KeyPair();
      const rootSpki = spkiOf(root.publicKey);
      issuerName = distinguishedName([[OID.organization, 'Ward'], [OID.commonName, `Ward root ${td} ${id}`]]);
      issuerKey = root.privateKey;
      issuerKeyId = keyIdentifier(rootSpki);
      const rootDer = buildCertificate({
        serial: randomSerial(), issuer: issuerName, subject: issuerName, notBefore: now - BACKDATE_MS, notAfter, spki: rootSpki,
        extensions: caExtensions({ spki: rootSpki, pathLen: 1, trustDomain: td }),
        signingKey: root.privateKey, scheme: signatureSchemeFor(root.privateKey),
      });
      record.rootCertPem = certToPem(rootDer);
      record.rootKey = this.#sealer.seal(root.privateKey.export({ format: 'der', type: 'pkcs8' }), slot(id, 'root'));
    }
    const interDer = buildCertificate({
      serial: randomSerial(), issuer: issuerName,
      subject: distinguishedName([[OID.organization, 'Ward'], [OID.commonName, `Ward signing CA ${td} ${id}`]]),
      notBefore: now - BACKDATE_MS, notAfter, spki: interSpki,
      extensions: caExtensions({ spki: interSpki, issuerKeyId, pathLen: 0, trustDomain: td }),
      signingKey: issuerKey, scheme: signatureSchemeFor(issuerKey),
    });
    const jwt = generateP256KeyPair();
    return {
      id,
      state: 'prepared',
      createdAt: iso(now),
      notAfter: iso(notAfter),
      ...record,
      intermediateCertPem: certToPem(interDer),
      intermediateKey: this.#sealer.seal(intermediate.privateKey.export({ format: 'der', type: 'pkcs8' }), slot(id, 'intermediate')),
      jwtKid: randomBytes(24).toString('base64url'),
      jwtPublicJwk: jwt.publicKey.export({ format: 'jwk' }),
      jwtKey: this.#sealer.seal(jwt.privateKey.export({ format: 'der', type: 'pkcs8' }), slot(id, 'jwt')),
    };
  }
}

function required(box: SealedBox | undefined): SealedBox {
  if (!box) throw new PkiError('ERR_CA_STATE_INVALID', 'authority key is missing');
  return box;
}

function isSelfSigned(cert: ParsedCertificate): boolean {
  return cert.issuer.equals(cert.subject) && verifySignature(cert.signatureAlgorithm, cert.tbs, cert.signature, publicKeyOf(cert.spki));
}

function checkUpstream(upstream: { certPem: string; keyPem: string }, sealer: KeySealer, clock: Clock): { certPem: string; key: SealedBox } {
  let certs: ParsedCertificate[];
  try {
    certs = parseCertificates(upstream.certPem);
  } catch (error) {
    throw new PkiError('ERR_CA_UPSTREAM_INVALID', 'upstream certificate is unreadable', { cause: error });
  }
  const cert = certs[0];
  if (!cert) throw new PkiError('ERR_CA_UPSTREAM_INVALID', 'upstream certificate file holds no certificate');
  if (!cert.basicConstraints?.ca || cert.keyUsage === undefined || (cert.keyUsage & KEY_USAGE.keyCertSign) === 0) {
    throw new PkiError('ERR_CA_UPSTREAM_INVALID', 'upstream certificate is not a CA with keyCertSign');
  }
  if (cert.basicConstraints.pathLen !== undefined && cert.basicConstraints.pathLen < 1) {
    throw new PkiError('ERR_CA_UPSTREAM_INVALID', 'upstream pathLenConstraint leaves no room for an intermediate');
  }
  if (cert.notAfter <= clock.now()) throw new PkiError('ERR_CA_UPSTREAM_INVALID', 'upstream certificate has expired');
  // Verifiers (Ward's and `openssl verify -x509_strict`) require signing certificates to carry one.
  if (cert.subjectKeyId === undefined) throw new PkiError('ERR_CA_UPSTREAM_INVALID', 'upstream certificate has no subject key identifier');
  let key: KeyObject;
  try {
    key = loadPrivateKey(upstream.keyPem);
    signatureSchemeFor(key);
  } catch (error) {
    throw new PkiError('ERR_CA_UPSTREAM_INVALID', 'upstream key is unreadable or of an unsupported type', { cause: error });
  }
  if (!spkiOf(key).equals(spkiOf(publicKeyOf(cert.spki)))) {
    throw new PkiError('ERR_CA_UPSTREAM_INVALID', 'upstream key does not match the upstream certificate');
  }
  const certPem = certs.map((c) => certToPem(c.der)).join('');
  return { certPem, key: sealer.seal(key.export({ format: 'der', type: 'pkcs8' }), 'upstream') };
}

/**
 * The state holds certificates and public JWKs in clear; only keys are sealed. Everything the
 * trust bundle exports must therefore be bound to a key sealed (with its slot as AAD) under the
 * master key, or write access to the state alone (a stolen database row) could slip a rogue
 * root or JWT key into every verifier's bundle.
 */
function checkExportsBound(state: CaState, sealer: KeySealer): void {
  const spkiOfSealed = (box: SealedBox | undefined, aad: string, what: string): Buffer => {
    if (!box) throw invalid(`${what} has no sealed key`);
    return spkiOf(loadPrivateKey(sealer.open(box, aad)));
  };
  const lastCert = (pem: string, what: string): ParsedCertificate => {
    const certs = parseCertificates(pem);
    const last = certs[certs.length - 1];
    if (!last) throw invalid(`${what} has no certificate`);
    return last;
  };
  for (const a of state.authorities) {
    if (a.state === 'revoked') continue;
    if (a.rootCertPem !== undefined) {
      const root = lastCert(a.rootCertPem, `authority ${a.id} root`);
      if (!spkiOf(publicKeyOf(root.spki)).equals(spkiOfSealed(a.rootKey, slot(a.id, 'root'), `authority ${a.id} root`))) {
        throw invalid(`authority ${a.id}: root certificate does not match its sealed key`);
      }
    }
    const jwtSpki = spkiOfSealed(a.jwtKey, slot(a.id, 'jwt'), `authority ${a.id} JWT`);
    let published: Buffer;
    try {
      published = spkiOf(createPublicKey({ key: a.jwtPublicJwk, format: 'jwk' }));
    } catch (error) {
      throw invalid(`authority ${a.id}: JWT public key is unreadable`, error);
    }
    if (!published.equals(jwtSpki)) throw invalid(`authority ${a.id}: JWT public key does not match its sealed key`);
  }
  if (state.upstream) {
    const certs = parseCertificates(state.upstream.certPem);
    const first = certs[0];
    if (!first || !spkiOf(publicKeyOf(first.spki)).equals(spkiOfSealed(state.upstream.key, 'upstream', 'upstream'))) {
      throw invalid('upstream certificate does not match its sealed key');
    }
    // The anchor is the chain's last certificate: each must be signed by the next.
    for (let i = 0; i + 1 < certs.length; i++) {
      const [c, issuer] = [certs[i] as ParsedCertificate, certs[i + 1] as ParsedCertificate];
      if (!c.issuer.equals(issuer.subject) || !verifySignature(c.signatureAlgorithm, c.tbs, c.signature, publicKeyOf(issuer.spki))) {
        throw invalid('upstream chain does not verify up to its last certificate');
      }
    }
  }
}

const STATES: readonly AuthorityState[] = ['prepared', 'active', 'retired', 'tainted', 'revoked'];

function validateState(json: unknown): CaState {
  const s = json as CaState;
  if (s === null || typeof s !== 'object' || s.format !== 'ward.ca/v1') throw invalid('not a ward.ca/v1 state');
  try {
    parseTrustDomain(s.trustDomain);
  } catch (error) {
    throw invalid('trustDomain is invalid', error);
  }
  for (const k of ['sequence', 'refreshHintSeconds', 'caTtlMs', 'defaultSvidTtlMs', 'maxSvidTtlMs'] as const) {
    if (!Number.isSafeInteger(s[k]) || s[k] < 0) throw invalid(`${k} must be a non-negative integer`);
  }
  if (!Array.isArray(s.authorities)) throw invalid('authorities must be an array');
  const ids = new Set<string>();
  let active = 0;
  for (const a of s.authorities) {
    if (a === null || typeof a !== 'object' || typeof a.id !== 'string' || !STATES.includes(a.state)) throw invalid('an authority record is malformed');
    if (ids.has(a.id)) throw invalid(`authority ${a.id} appears twice`);
    ids.add(a.id);
    if (a.state === 'active') active++;
    if (typeof a.intermediateCertPem !== 'string' || typeof a.jwtKid !== 'string' || typeof a.jwtPublicJwk !== 'object' || Number.isNaN(Date.parse(a.notAfter))) {
      throw invalid(`authority ${a.id} is missing fields`);
    }
    if (a.state !== 'revoked' && (!a.intermediateKey || !a.jwtKey)) throw invalid(`authority ${a.id} has no sealed keys`);
    if (a.rootCertPem === undefined && !s.upstream) throw invalid(`authority ${a.id} has no root and there is no upstream`);
  }
  if (active > 1) throw invalid('more than one active authority');
  return s;
}
