/**
 * Agent side of `aws_iid`: an IMDSv2 client (session token by PUT, then GETs carrying it) that
 * fetches the identity document and its RSA-2048 PKCS#7 signature.
 */
import type { EvidenceCollector } from '../attestor.js';
import { expectStatus, platformRequest } from '../http.js';
import type { AwsIidEvidence } from './attestor.js';

export const IMDS_DEFAULT_ENDPOINT = 'http://169.254.169.254';

export interface ImdsOptions {
  /** Base URL; default the link-local IMDS address. */
  readonly endpoint?: string;
  readonly timeoutMs?: number;
  /** Session token lifetime asked for, seconds (IMDS allows 1..21600). */
  readonly tokenTtlSeconds?: number;
}

export class ImdsCollector implements EvidenceCollector<AwsIidEvidence> {
  readonly name = 'aws_iid' as const;
  readonly #endpoint: string;
  readonly #timeoutMs: number;
  readonly #ttl: number;

  constructor(options: ImdsOptions = {}) {
    this.#endpoint = (options.endpoint ?? IMDS_DEFAULT_ENDPOINT).replace(/\/+$/, '');
    this.#timeoutMs = options.timeoutMs ?? 2000;
    this.#ttl = options.tokenTtlSeconds ?? 60;
  }

  async collect(signal?: AbortSignal): Promise<AwsIidEvidence> {
    const common = { timeoutMs: this.#timeoutMs, maxBodyBytes: 64 * 1024, ...(signal ? { signal } : {}) };
    const tokenRes = expectStatus(
      await platformRequest({ ...common, url: `${this.#endpoint}/latest/api/token`, method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': String(this.#ttl) } }),
      'IMDS token',
    );
    const headers = { 'x-aws-ec2-metadata-token': tokenRes.body.toString('utf8').trim() };
    const get = async (path: string): Promise<string> =>
      expectStatus(await platformRequest({ ...common, url: `${this.#endpoint}${path}`, headers }), `IMDS ${path}`).body.toString('utf8');
    const document = await get('/latest/dynamic/instance-identity/document');
    const signature = await get('/latest/dynamic/instance-identity/rsa2048');
    return { document, signature: signature.trim() };
  }
}
