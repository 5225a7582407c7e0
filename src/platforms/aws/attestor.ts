/**
 * `aws_iid` node attestor: the EC2 instance identity document plus its PKCS#7/RSA-2048
 * signature, verified against AWS's public certificate for the region (configured, never
 * fetched). Each instance attests once. See docs/reference/attestors.md.
 */
import { X509Certificate } from 'node:crypto';
import { configError, deepFreeze, parseDuration } from '../../core/config.js';
import { agentSpiffeId, ResultBuilder, type AttestContext, type AttestationResult, type Attestor } from '../attestor.js';
import { PlatformError } from '../errors.js';
import { expectObject, expectString, isPlainObject } from '../evidence.js';
import { parseInstanceIdentityDocument } from './document.js';
import { verifyPkcs7 } from './pkcs7.js';

/** Evidence: the document text exactly as served, and the base64 PKCS#7 from `rsa2048`. */
export interface AwsIidEvidence {
  readonly document: string;
  readonly signature: string;
}

export interface AwsIidConfig {
  /** PEM certificates (AWS's RSA-2048 certificates for the regions you run in). */
  readonly certificates: readonly X509Certificate[];
  /** Allowed account ids; empty = any. */
  readonly accounts: readonly string[];
  /** Allowed regions; empty = any. */
  readonly regions: readonly string[];
  /** Refuse documents whose pendingTime is older than this (ms); undefined = no limit. */
  readonly maxInstanceAgeMs: number | undefined;
}

export function parseAwsIidConfig(raw: unknown, path: string): AwsIidConfig {
  if (!isPlainObject(raw)) throw configError(path, 'expected an object with `certificates`');
  const pems = raw.certificates;
  if (!Array.isArray(pems) || pems.length === 0) throw configError(`${path}.certificates`, 'expected a non-empty list of PEM certificates');
  const certificates = pems.map((pem, i) => {
    try {
      if (typeof pem !== 'string') throw new Error('not a string');
      return new X509Certificate(pem);
    } catch {
      throw configError(`${path}.certificates[${i}]`, 'is not a PEM certificate');
    }
  });
  const list = (key: string, re: RegExp): string[] => {
    const v = raw[key];
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && re.test(x))) throw configError(`${path}.${key}`, 'expected a list of valid values');
    return v as string[];
  };
  return deepFreeze({
    certificates,
    accounts: list('accounts', /^\d{12}$/),
    regions: list('regions', /^[a-z]{2}(-[a-z]+)+-\d+$/),
    maxInstanceAgeMs: raw.maxInstanceAge === undefined ? undefined : parseDuration(raw.maxInstanceAge as string, `${path}.maxInstanceAge`),
  });
}

export function parseAwsIidEvidence(raw: unknown): AwsIidEvidence {
  const obj = expectObject(raw, 'aws_iid');
  return {
    document: expectString(obj.document, 'aws_iid.document', { max: 8192 }),
    signature: expectString(obj.signature, 'aws_iid.signature', { max: 22_000, pattern: /^[A-Za-z0-9+/=\s]+$/ }),
  };
}

/** Instance ids are consumed forever: a second attestation of one instance is a replay. */
const CONSUMED_FOREVER = Number.MAX_SAFE_INTEGER;

export class AwsIidAttestor implements Attestor {
  readonly name = 'aws_iid' as const;
  readonly kind = 'node' as const;
  readonly #config: AwsIidConfig;

  constructor(config: AwsIidConfig) {
    this.#config = config;
  }

  async attest(evidence: unknown, ctx: AttestContext): Promise<AttestationResult> {
    const { document, signature } = parseAwsIidEvidence(evidence);
    const der = Buffer.from(signature.replace(/\s+/g, ''), 'base64');
    const doc = parseInstanceIdentityDocument(document);
    const now = ctx.clock.now();
    // Signature first: nothing about an unverified document is trusted, not even to burn its id.
    const { signer } = verifyPkcs7(der, Buffer.from(document, 'utf8'), this.#config.certificates);
    if (now < Date.parse(signer.validFrom) || now > Date.parse(signer.validTo)) {
      throw new PlatformError('ERR_ATTEST_EXPIRED', 'the signing certificate is outside its validity period', { details: { validTo: signer.validTo } });
    }
    const max = this.#config.maxInstanceAgeMs;
    if (max !== undefined && now - doc.pendingTime > max) {
      throw new PlatformError('ERR_ATTEST_EXPIRED', 'instance identity document is older than maxInstanceAge');
    }
    if (this.#config.accounts.length > 0 && !this.#config.accounts.includes(doc.accountId)) {
      throw new PlatformError('ERR_ATTEST_NOT_ALLOWED', 'account is not allowed', { details: { account: doc.accountId } });
    }
    if (this.#config.regions.length > 0 && !this.#config.regions.includes(doc.region)) {
      throw new PlatformError('ERR_ATTEST_NOT_ALLOWED', 'region is not allowed', { details: { region: doc.region } });
    }
    const fresh = await ctx.state.consumeOnce('aws_iid', `${doc.accountId}/${doc.region}/${doc.instanceId}`, CONSUMED_FOREVER);
    if (!fresh) throw new PlatformError('ERR_ATTEST_REPLAYED', 'this instance has already attested', { details: { instanceId: doc.instanceId } });

    const out = new ResultBuilder(this.name, now)
      .selector('account', doc.accountId)
      .selector('region', doc.region)
      .selector('az', doc.availabilityZone)
      .selector('instance-id', doc.instanceId)
      .selector('image-id', doc.imageId)
      .selector('instance-type', doc.instanceType)
      .attribute('aws.account', doc.accountId)
      .attribute('aws.region', doc.region)
      .attribute('aws.az', doc.availabilityZone)
      .attribute('aws.instance_id', doc.instanceId)
      .attribute('aws.image_id', doc.imageId)
      .attribute('aws.instance_type', doc.instanceType);
    return out.build(agentSpiffeId(ctx.trustDomain, this.name, [doc.accountId, doc.region, doc.instanceId]));
  }
}

export function createAwsIidAttestor(config: unknown, path: string): Attestor {
  return new AwsIidAttestor(parseAwsIidConfig(config, path));
}
