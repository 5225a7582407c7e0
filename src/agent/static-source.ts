/**
 * Static mode's source of truth: SVID, key, bundle and revocation files plus a policy
 * directory, re-read when their content changes. The policy directory holds the documents
 * `ward policy validate` accepts (Ward AccessPolicy / MutualTLSPolicy / Workload, Kubernetes
 * NetworkPolicy, Istio AuthorizationPolicy), parsed and compiled by the policy layer and decided
 * by {@link PolicyAuthorizer}, exactly as in control mode (ADR 0045). A bad new version is
 * refused and the last good one stays in force (fail-static); the failure is counted and logged.
 */
import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logging.js';
import { assertNoIssues, parsePolicySources, type ParsedDocuments, type PolicySource } from '../policy/parse.js';
import { evaluateConnection } from '../policy/evaluate.js';
import { formatIssue, PolicyError, PolicyValidationError } from '../policy/errors.js';
import type { AgentConfig } from './config.js';
import { AgentError } from './errors.js';
import type { AgentMetrics } from './metrics.js';
import { outboundTargets, PolicyAuthorizer, type PolicyAuthorizerOptions } from './policy-authorizer.js';
import type { AuthorizerHolder } from './proxy/authorizer.js';
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

/** Bounds on the policy directory (the same as `ward policy validate`'s). */
export const MAX_POLICY_FILES = 10_000;
export const MAX_POLICY_FILE_BYTES = 4 * 1024 * 1024;

/**
 * Reads every `.yaml`/`.yml`/`.json` file under `dir` (recursively, sorted; names starting with
 * `.` are skipped, so a Kubernetes ConfigMap mount's `..data` links are read once) and a digest
 * of names and contents. File names in the sources are relative to `dir`.
 */
export async function readPolicySources(dir: string): Promise<{ sources: PolicySource[]; digest: string }> {
  const files: string[] = [];
  const walk = async (d: string, depth: number): Promise<void> => {
    if (depth > 16) return;
    for (const name of (await readdir(d)).sort()) {
      if (name.startsWith('.')) continue;
      const path = join(d, name);
      const st = await stat(path);
      if (st.isDirectory()) await walk(path, depth + 1);
      else if (/\.(ya?ml|json)$/i.test(name)) {
        if (st.size > MAX_POLICY_FILE_BYTES) throw new PolicyError('ERR_POLICY_YAML', `${relative(dir, path)} is larger than ${MAX_POLICY_FILE_BYTES} bytes`, { details: { file: relative(dir, path) } });
        files.push(path);
        if (files.length > MAX_POLICY_FILES) throw new PolicyError('ERR_POLICY_YAML', `more than ${MAX_POLICY_FILES} policy files under the policy directory`);
      }
    }
  };
  try {
    await walk(dir, 0);
  } catch (cause) {
    if (cause instanceof PolicyError) throw cause;
    throw new PolicyError('ERR_POLICY_YAML', 'the policy directory could not be read', { cause, details: { file: dir } });
  }
  const hash = createHash('sha256');
  const sources: PolicySource[] = [];
  for (const path of files) {
    const file = relative(dir, path);
    const text = await readFile(path, 'utf8');
    hash.update(file).update('\0').update(text).update('\0');
    sources.push({ file, text });
  }
  return { sources, digest: hash.digest('hex').slice(0, 16) };
}

/**
 * Parses the sources as one unit (cross-document checks included). Throws
 * {@link PolicyValidationError} (code: the first issue's `ERR_POLICY_*`) carrying every issue:
 * one bad document refuses the whole version.
 */
export function parsePolicyDir(sources: readonly PolicySource[], now: number): ParsedDocuments {
  const parsed = parsePolicySources(sources, { now });
  assertNoIssues(parsed.issues);
  return parsed;
}

/** The authorizer options static mode derives from its config: HTTP inbound ports, outbound targets. */
export function staticAuthorizerOptions(config: Pick<AgentConfig, 'inbound' | 'outbound'>): PolicyAuthorizerOptions {
  return { httpPorts: config.inbound.filter((p) => p.protocol === 'http').map((p) => p.port), outbound: outboundTargets(config) };
}

/**
 * Checks that the MutualTLSPolicy in force for this workload agrees with each inbound port's
 * mode in the agent config (ADR 0045): STRICT in both, or PERMISSIVE in both. The policy's
 * effective mode is read through the engine itself: a plaintext peer is refused with
 * `mtls-required` exactly when the port is STRICT. Ports configured as 0 (chosen by the OS)
 * cannot be named by a policy and are not checked.
 */
export function checkMtlsAgreement(authz: PolicyAuthorizer, self: string, config: Pick<AgentConfig, 'inbound'>): void {
  for (const port of config.inbound) {
    if (port.port === 0) continue;
    const probe = evaluateConnection(authz.compiled, { source: { unauthenticated: true }, destination: { spiffeId: self }, port: port.port, l7: port.protocol === 'http' ? 'http' : 'tcp' });
    const policyMode = probe.reason === 'mtls-required' ? 'STRICT' : 'PERMISSIVE';
    if (policyMode !== port.mode) {
      throw new AgentError('ERR_AGENT_MTLS_MISMATCH', `inbound port ${port.port} is ${port.mode} in the agent config but ${policyMode} by the MutualTLSPolicy in force for ${self}${policyMode === 'STRICT' ? ' (the default without a MutualTLSPolicy)' : ''}`, {
        details: { port: port.port, config: port.mode, policy: policyMode },
      });
    }
  }
}

/**
 * Compiles a parsed policy directory into the agent's authorizer and checks it against the
 * config. Throws the policy layer's error or `ERR_AGENT_MTLS_MISMATCH`; the caller keeps its
 * previous authorizer then.
 */
export function compileStaticPolicy(parsed: ParsedDocuments, version: string, self: string, config: Pick<AgentConfig, 'inbound' | 'outbound'>): PolicyAuthorizer {
  const authz = PolicyAuthorizer.compile({ policies: parsed.policies, workloads: parsed.workloads }, version, staticAuthorizerOptions(config));
  checkMtlsAgreement(authz, self, config);
  return authz;
}

/** Whether any policy selects `self` for ingress (otherwise every authenticated peer is allowed: not protected). */
function protects(authz: PolicyAuthorizer, self: string): boolean {
  const set = authz.compiled;
  return set.applied(set.workloads.get(self) ?? set.transientEntry(self)).ingress.length > 0;
}

/** What a refused load logs: the stable code and, for policy problems, the first few located issues. */
function describeFailure(error: unknown): Record<string, unknown> {
  const code = (error as { code?: unknown }).code;
  if (error instanceof PolicyValidationError) return { code, issues: error.issues.length, first: error.issues.slice(0, 5).map(formatIssue) };
  return { code, details: (error as AgentError).details, message: (error as Error).message };
}

export class StaticSource {
  #timer: NodeJS.Timeout | undefined;
  #lastMaterial = '';
  #lastRevocations = '';
  /** Digest and own SPIFFE ID of the policy version in force, and of the last refused one. */
  #lastPolicy = '';
  #lastRefused = '';
  #running: Promise<void> | undefined;

  constructor(
    private readonly config: AgentConfig,
    private readonly trust: TrustState,
    private readonly authorizers: AuthorizerHolder,
    private readonly metrics: AgentMetrics,
    private readonly logger: Logger,
    private readonly clock: Clock,
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
    await this.#reloadPolicy(initial);
  }

  /**
   * Re-reads the policy directory; a new version (content digest, or a new own SPIFFE ID after a
   * rotation) is parsed, compiled and checked, then swapped in. A refused version is logged and
   * counted once, and the last good one stays in force.
   */
  async #reloadPolicy(initial: boolean): Promise<void> {
    const { metrics, logger } = this;
    let key = '';
    try {
      const { sources, digest } = await readPolicySources(this.config.policyDir);
      const self = this.trust.spiffeId;
      key = `${digest}|${self}`;
      if (key === this.#lastPolicy || key === this.#lastRefused) return;
      const parsed = parsePolicyDir(sources, this.clock.now());
      const authz = compileStaticPolicy(parsed, digest, self, this.config);
      this.authorizers.set(authz);
      this.#lastPolicy = key;
      this.#lastRefused = '';
      metrics.policyReloads.labels('policy', 'ok').inc();
      logger.info({ version: digest, policies: parsed.policies.length, workloads: parsed.workloads.length }, 'policy loaded');
      if (!protects(authz, self)) logger.warn({ spiffeId: self }, 'no policy selects this workload for ingress: it is not protected and every authenticated peer is allowed');
    } catch (error) {
      if (initial) throw error;
      const refusal = key === '' ? `unreadable|${String((error as { code?: unknown }).code)}` : key;
      if (refusal === this.#lastRefused) return;
      this.#lastRefused = refusal;
      metrics.policyReloads.labels('policy', 'error').inc();
      logger.warn(describeFailure(error), 'policy reload refused; keeping the last good one');
    }
  }
}
