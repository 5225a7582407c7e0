/**
 * `x509pop` node attestor: proof of possession of the private key of an X.509 certificate that
 * chains to a configured CA. Single-shot: the agent signs a statement naming the server's trust
 * domain, the time, and the leaf certificate's fingerprint; the server accepts each proof once
 * within a short freshness window (no challenge round trip needed). See
 * docs/reference/attestors.md and docs/adr/0057-vsphere-hints-only.md.
 */
import { createHash, sign as signData, verify as verifySignature, X509Certificate, type KeyObject } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import { configError, deepFreeze, parseDuration } from '../../core/config.js';
import { agentSpiffeId, ResultBuilder, type AttestContext, type AttestationResult, type Attestor, type EvidenceCollector } from '../attestor.js';
import { configObject } from '../config.js';
import { PlatformError } from '../errors.js';
import { expectArray, expectInteger, expectObject, expectString } from '../evidence.js';

export interface X509PopConfig {
  readonly roots: readonly X509Certificate[];
  /** How far `signedAt` may be from the server clock (ms); default 60 s. */
  readonly maxSkewMs: number;
}

export interface X509PopEvidence {
  /** Base64 DER: the leaf first, then intermediates. */
  readonly certificates: readonly string[];
  /** ms since epoch at signing. */
  readonly signedAt: number;
  /** Base64 signature over {@link popStatement}. */
  readonly signature: string;
}

export function parseX509PopConfig(raw: unknown, path: string): X509PopConfig {
  const obj = configObject(raw, path);
  const pems = obj.caBundle;
  if (!Array.isArray(pems) || pems.length === 0) throw configError(`${path}.caBundle`, 'expected a non-empty list of PEM CA certificates');
  const roots = pems.map((pem, i) => {
    try {
      if (typeof pem !== 'string') throw new Error('not a string');
      const cert = new X509Certificate(pem);
      if (!cert.ca) throw new Error('not a CA');
      return cert;
    } catch {
      throw configError(`${path}.caBundle[${i}]`, 'is not a PEM CA certificate');
    }
  });
  return deepFreeze({ roots, maxSkewMs: obj.maxSkew === undefined ? 60_000 : parseDuration(obj.maxSkew as string, `${path}.maxSkew`) });
}

/** The exact bytes an agent signs. */
export function popStatement(trustDomain: string, signedAt: number, leafFingerprint: string): Buffer {
  return Buffer.from(`ward-x509pop-v1\n${trustDomain}\n${signedAt}\n${leafFingerprint}\n`, 'utf8');
}

function fingerprint(cert: X509Certificate): string {
  return createHash('sha256').update(cert.raw).digest('hex');
}

function signatureAlgorithm(key: KeyObject): string | null {
  return key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448' ? null : 'sha256';
}

export function parseX509PopEvidence(raw: unknown): X509PopEvidence {
  const o = expectObject(raw, 'x509pop');
  const certificates = expectArray(o.certificates, 'x509pop.certificates', 4).map((c, i) => expectString(c, `x509pop.certificates[${i}]`, { max: 12_000, pattern: /^[A-Za-z0-9+/=]+$/ }));
  if (certificates.length === 0) throw new PlatformError('ERR_ATTEST_MALFORMED', 'x509pop.certificates: must hold the leaf', { details: { path: 'x509pop.certificates' } });
  return {
    certificates,
    signedAt: expectInteger(o.signedAt, 'x509pop.signedAt', 0, 8_640_000_000_000_000),
    signature: expectString(o.signature, 'x509pop.signature', { max: 2048, pattern: /^[A-Za-z0-9+/=]+$/ }),
  };
}

export class X509PopAttestor implements Attestor {
  readonly name = 'x509pop' as const;
  readonly kind = 'node' as const;
  readonly #config: X509PopConfig;

  constructor(config: X509PopConfig) {
    this.#config = config;
  }

  async attest(evidence: unknown, ctx: AttestContext): Promise<AttestationResult> {
    const e = parseX509PopEvidence(evidence);
    let chain: X509Certificate[];
    try {
      chain = e.certificates.map((b64) => new X509Certificate(Buffer.from(b64, 'base64')));
    } catch {
      throw new PlatformError('ERR_ATTEST_MALFORMED', 'x509pop.certificates: not DER certificates', { details: { path: 'x509pop.certificates' } });
    }
    const now = ctx.clock.now();
    const leaf = chain[0]!;
    // Chain: each certificate issued and signed by the next; the last by a configured root.
    let root: X509Certificate | undefined;
    for (let i = 0; i < chain.length; i++) {
      const cert = chain[i]!;
      if (i > 0 && !cert.ca) throw new PlatformError('ERR_ATTEST_FORGED', 'an intermediate is not a CA certificate');
      const issuer = chain[i + 1];
      if (issuer !== undefined) {
        if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) throw new PlatformError('ERR_ATTEST_FORGED', 'certificate chain does not verify');
      } else {
        root = this.#config.roots.find((r) => cert.checkIssued(r) && cert.verify(r.publicKey));
        if (root === undefined) throw new PlatformError('ERR_ATTEST_FORGED', 'certificate does not chain to a configured CA');
      }
    }
    for (const cert of [...chain, root!]) {
      if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) {
        throw new PlatformError('ERR_ATTEST_EXPIRED', 'a certificate in the chain is outside its validity period');
      }
    }
    const leafFp = fingerprint(leaf);
    const statement = popStatement(ctx.trustDomain, e.signedAt, leafFp);
    const signature = Buffer.from(e.signature, 'base64');
    let ok = false;
    try {
      ok = verifySignature(signatureAlgorithm(leaf.publicKey), statement, leaf.publicKey, signature);
    } catch {
      ok = false;
    }
    if (!ok) throw new PlatformError('ERR_ATTEST_FORGED', 'proof of possession does not verify');
    if (Math.abs(now - e.signedAt) > this.#config.maxSkewMs) throw new PlatformError('ERR_ATTEST_EXPIRED', 'proof of possession is not fresh');
    // Key the replay record on what was proven (the signed statement), never on the signature
    // bytes: ECDSA signatures are malleable ((r, s) and (r, n - s) both verify), so a captured proof
    // re-encoded would otherwise count as a new one.
    const fresh = await ctx.state.consumeOnce('x509pop', createHash('sha256').update(statement).digest('hex'), e.signedAt + this.#config.maxSkewMs);
    if (!fresh) throw new PlatformError('ERR_ATTEST_REPLAYED', 'this proof of possession was already used');

    const cn = /(?:^|\n)CN=([^\n]*)/.exec(leaf.subject)?.[1];
    const out = new ResultBuilder(this.name, now)
      .selector('fingerprint', leafFp)
      .selector('serialnumber', leaf.serialNumber.toLowerCase())
      .selector('ca-fingerprint', fingerprint(root!))
      .attribute('x509.fingerprint', leafFp)
      .attribute('x509.serial', leaf.serialNumber.toLowerCase());
    if (cn !== undefined && cn.length > 0) out.selector('subject-cn', cn).attribute('x509.subject.cn', cn);
    return out.build(agentSpiffeId(ctx.trustDomain, this.name, [leafFp]));
  }
}

export function createX509PopAttestor(config: unknown, path: string): Attestor {
  return new X509PopAttestor(parseX509PopConfig(config, path));
}

/** Agent side: signs a fresh statement with the agent's key. */
export class X509PopCollector implements EvidenceCollector<X509PopEvidence> {
  readonly name = 'x509pop' as const;
  readonly #chain: readonly X509Certificate[];
  readonly #key: KeyObject;
  readonly #trustDomain: string;
  readonly #clock: Clock;

  /** `chainPem`: the leaf first, then intermediates; `key`: the leaf's private key. */
  constructor(chainPem: readonly string[], key: KeyObject, trustDomain: string, clock: Clock) {
    this.#chain = chainPem.map((pem) => new X509Certificate(pem));
    this.#key = key;
    this.#trustDomain = trustDomain;
    this.#clock = clock;
  }

  async collect(): Promise<X509PopEvidence> {
    const leaf = this.#chain[0];
    if (leaf === undefined) throw new PlatformError('ERR_ATTEST_MALFORMED', 'x509pop: no certificate configured', { details: { path: 'x509pop.certificates' } });
    const signedAt = this.#clock.now();
    const signature = signData(signatureAlgorithm(this.#key), popStatement(this.#trustDomain, signedAt, fingerprint(leaf)), this.#key);
    return { certificates: this.#chain.map((c) => c.raw.toString('base64')), signedAt, signature: signature.toString('base64') };
  }
}
