/**
 * Static mode's source of truth: SVID, key, bundle and revocation files plus a policy
 * directory, re-read when their content changes. A bad new version is refused and the last
 * good one stays in force (fail-static); the failure is counted and logged.
 */
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { Logger } from '../core/logging.js';
import type { AgentConfig } from './config.js';
import { AgentError } from './errors.js';
import type { AgentMetrics } from './metrics.js';
import type { AuthorizerHolder } from './proxy/authorizer.js';
import { StaticAuthorizer, parseStaticPolicy, type StaticPolicy } from './proxy/static-authorizer.js';
import type { TlsMaterial, TrustState } from './proxy/trust.js';

export async function readTlsMaterial(config: Pick<AgentConfig, 'svidFile' | 'keyFile' | 'bundleFile'>): Promise<TlsMaterial> {
  try {
    const [certPem, keyPem, bundlePem] = await Promise.all([readFile(config.svidFile, 'utf8'), readFile(config.keyFile, 'utf8'), readFile(config.bundleFile, 'utf8')]);
    return { certPem, keyPem, bundlePem };
  } catch (cause) {
    throw new AgentError('ERR_AGENT_TLS_MATERIAL', 'SVID, key or bundle file could not be read', { cause });
  }
}

export async function readRevocations(path: string | undefined): Promise<string[]> {
  if (path === undefined) return [];
  const text = await readFile(path, 'utf8');
  return text.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter((l) => l.length > 0).map((l) => {
    if (!/^(0x)?[0-9a-fA-F:]+$/.test(l)) throw new AgentError('ERR_AGENT_CONFIG', 'revocations: expected hex serial numbers, one per line');
    return l.replaceAll(':', '');
  });
}

/** Reads every `*.yaml`/`*.yml` in `dir`; documents of kind `AgentStaticPolicy` become policies. */
export async function readPolicyDir(dir: string): Promise<{ policies: StaticPolicy[]; digest: string }> {
  const names = (await readdir(dir)).filter((n) => /\.ya?ml$/.test(n)).sort();
  const hash = createHash('sha256');
  const policies: StaticPolicy[] = [];
  for (const name of names) {
    const text = await readFile(join(dir, name), 'utf8');
    hash.update(name).update('\0').update(text).update('\0');
    const docs = parseAllDocuments(text);
    for (const [i, doc] of (Array.isArray(docs) ? docs : [docs]).entries()) {
      if (doc.errors.length > 0) throw new AgentError('ERR_AGENT_CONFIG', `${name}: YAML could not be parsed`, { details: { path: `${name}#${i}` } });
      const value: unknown = doc.toJS({ maxAliasCount: 10 });
      if (value === null || value === undefined) continue;
      if ((value as { kind?: unknown }).kind !== 'AgentStaticPolicy') continue;
      policies.push(parseStaticPolicy(value, `${name}#${i}`));
    }
  }
  return { policies, digest: hash.digest('hex').slice(0, 16) };
}

export class StaticSource {
  #timer: NodeJS.Timeout | undefined;
  #lastMaterial = '';
  #lastRevocations = '';
  #lastPolicy = '';
  #running: Promise<void> | undefined;

  constructor(
    private readonly config: AgentConfig,
    private readonly trust: TrustState,
    private readonly authorizers: AuthorizerHolder,
    private readonly metrics: AgentMetrics,
    private readonly logger: Logger,
  ) {}

  /** Loads everything once; throws if the first load fails (nothing to fall back on). */
  async load(): Promise<void> {
    await this.#reload(true);
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#running ??= this.#reload(false).finally(() => (this.#running = undefined));
    }, this.config.reloadIntervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  async #reload(initial: boolean): Promise<void> {
    const { metrics, logger } = this;
    try {
      const material = await readTlsMaterial(this.config);
      const key = createHash('sha256').update(material.certPem).update(material.keyPem).update(material.bundlePem).digest('hex');
      if (key !== this.#lastMaterial) {
        if (!initial) this.trust.setMaterial(material);
        this.#lastMaterial = key;
        if (!initial) {
          metrics.policyReloads.labels('tls', 'ok').inc();
          logger.info({ spiffeId: this.trust.spiffeId }, 'TLS material reloaded');
        }
      }
    } catch (error) {
      if (initial) throw error;
      metrics.policyReloads.labels('tls', 'error').inc();
      logger.warn({ code: (error as AgentError).code }, 'TLS material reload refused; keeping the last good one');
    }
    try {
      const revoked = await readRevocations(this.config.revocationsFile);
      const key = revoked.join(',');
      if (key !== this.#lastRevocations) {
        this.trust.setRevoked(revoked);
        this.#lastRevocations = key;
        if (!initial) metrics.policyReloads.labels('revocations', 'ok').inc();
      }
    } catch (error) {
      if (initial) throw error;
      metrics.policyReloads.labels('revocations', 'error').inc();
      logger.warn('revocation list reload refused; keeping the last good one');
    }
    try {
      const { policies, digest } = await readPolicyDir(this.config.policyDir);
      if (digest !== this.#lastPolicy) {
        this.authorizers.set(new StaticAuthorizer(policies, digest));
        this.#lastPolicy = digest;
        metrics.policyReloads.labels('policy', 'ok').inc();
        logger.info({ version: digest, policies: policies.length }, 'policy loaded');
      }
    } catch (error) {
      if (initial) throw error;
      metrics.policyReloads.labels('policy', 'error').inc();
      logger.warn({ code: (error as AgentError).code, details: (error as AgentError).details }, 'policy reload refused; keeping the last good one');
    }
  }
}
