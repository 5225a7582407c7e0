/**
 * `k8s_psat` attestor: a projected service-account token, checked by TokenReview against the
 * cluster's API server (which verifies signature, expiry, audience and that the bound pod still
 * exists), then the pod read from the API for namespace, service account, labels, owner, images
 * and image digests. See docs/reference/attestors.md.
 */
import { configError, deepFreeze } from '../../core/config.js';
import { agentSpiffeId, ResultBuilder, upstream, type AttestContext, type AttestationResult, type Attestor, type EvidenceCollector } from '../attestor.js';
import { configObject, configOptionalString, configString, configStringList, configUrl } from '../config.js';
import { PlatformError } from '../errors.js';
import { expectObject, expectString } from '../evidence.js';
import { KubeClient } from './client.js';
import { podFacts } from './pod.js';
import { readFile } from 'node:fs/promises';

export interface K8sClusterConfig {
  readonly name: string;
  readonly apiServer: string;
  readonly ca: string | undefined;
  readonly token: string;
  /** The audience the projected tokens are minted for (TokenReview checks it). */
  readonly audience: string;
  /** `namespace:serviceaccount` pairs allowed; empty = any. */
  readonly allowedServiceAccounts: readonly string[];
}

export interface K8sPsatConfig {
  readonly clusters: ReadonlyMap<string, K8sClusterConfig>;
}

const CLUSTER_RE = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;

export function parseK8sPsatConfig(raw: unknown, path: string): K8sPsatConfig {
  const obj = configObject(raw, path);
  const clusters = configObject(obj.clusters, `${path}.clusters`);
  const map = new Map<string, K8sClusterConfig>();
  for (const [name, c] of Object.entries(clusters)) {
    const p = `${path}.clusters.${name}`;
    if (!CLUSTER_RE.test(name)) throw configError(p, 'cluster name must be a DNS label');
    const co = configObject(c, p);
    map.set(name, {
      name,
      apiServer: configUrl(co, 'apiServer', p),
      ca: configOptionalString(co, 'caPem', p),
      token: configString(co, 'token', p),
      audience: configString(co, 'audience', p, 'ward'),
      allowedServiceAccounts: configStringList(co, 'allowedServiceAccounts', p, []),
    });
  }
  if (map.size === 0) throw configError(`${path}.clusters`, 'configure at least one cluster');
  return deepFreeze({ clusters: map });
}

/** Evidence: `{ cluster, token }`, the token read from the pod's projected volume. */
export interface K8sPsatEvidence {
  readonly cluster: string;
  readonly token: string;
}

const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export function parseK8sPsatEvidence(raw: unknown): K8sPsatEvidence {
  const o = expectObject(raw, 'k8s_psat');
  return {
    cluster: expectString(o.cluster, 'k8s_psat.cluster', { max: 63, pattern: CLUSTER_RE }),
    token: expectString(o.token, 'k8s_psat.token', { max: 8192, pattern: JWT_RE }),
  };
}

/** Unverified `exp` of a JWT (TokenReview verifies; this only tells expired from forged). */
export function unverifiedExpiry(token: string): number {
  const payload = token.split('.')[1] ?? '';
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw new PlatformError('ERR_ATTEST_MALFORMED', 'k8s_psat.token: payload is not JSON', { details: { path: 'k8s_psat.token' } });
  }
  const exp = (claims as { exp?: unknown } | null)?.exp;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) {
    throw new PlatformError('ERR_ATTEST_MALFORMED', 'k8s_psat.token: no numeric exp claim (not a projected token)', { details: { path: 'k8s_psat.token' } });
  }
  return exp * 1000;
}

const SA_USER_RE = /^system:serviceaccount:([a-z0-9]([-a-z0-9]*[a-z0-9])?):([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/;

export class K8sPsatAttestor implements Attestor {
  readonly name = 'k8s_psat' as const;
  readonly kind = 'node' as const;
  readonly #clusters: ReadonlyMap<string, { config: K8sClusterConfig; client: KubeClient }>;

  constructor(config: K8sPsatConfig) {
    this.#clusters = new Map([...config.clusters].map(([name, c]) => [name, { config: c, client: new KubeClient({ apiServer: c.apiServer, token: c.token, ...(c.ca ? { ca: c.ca } : {}) }) }]));
  }

  async attest(evidence: unknown, ctx: AttestContext): Promise<AttestationResult> {
    const { cluster, token } = parseK8sPsatEvidence(evidence);
    const expiresAt = unverifiedExpiry(token);
    const entry = this.#clusters.get(cluster);
    if (entry === undefined) throw new PlatformError('ERR_ATTEST_NOT_ALLOWED', 'cluster is not configured', { details: { cluster } });
    const now = ctx.clock.now();
    if (now >= expiresAt) throw new PlatformError('ERR_ATTEST_EXPIRED', 'projected service account token has expired', { details: { cluster } });

    const review = await upstream('TokenReview', () => entry.client.tokenReview(token, [entry.config.audience], ctx.signal));
    if (!review.authenticated) throw new PlatformError('ERR_ATTEST_FORGED', 'the API server did not authenticate the token', { details: { cluster } });
    // An empty or absent status.audiences means "valid for the API server's audience" (TokenReview
    // API docs): a client that asked for spec.audiences must see its audience echoed back.
    if (review.audiences === undefined || !review.audiences.includes(entry.config.audience)) {
      throw new PlatformError('ERR_ATTEST_FORGED', 'token is not for this audience', { details: { cluster } });
    }
    const sa = SA_USER_RE.exec(review.username ?? '');
    if (sa === null) throw new PlatformError('ERR_ATTEST_NOT_ALLOWED', 'token does not belong to a service account', { details: { cluster } });
    const namespace = sa[1]!;
    const serviceAccount = sa[3]!;
    const allowed = entry.config.allowedServiceAccounts;
    if (allowed.length > 0 && !allowed.includes(`${namespace}:${serviceAccount}`)) {
      throw new PlatformError('ERR_ATTEST_NOT_ALLOWED', 'service account is not allowed', { details: { cluster, namespace, serviceAccount } });
    }
    const podName = review.extra['authentication.kubernetes.io/pod-name']?.[0];
    const podUid = review.extra['authentication.kubernetes.io/pod-uid']?.[0];
    if (podName === undefined || podUid === undefined) {
      throw new PlatformError('ERR_ATTEST_NOT_ALLOWED', 'token is not bound to a pod (use a projected token)', { details: { cluster } });
    }
    const podJson = await upstream('get Pod', () => entry.client.getPod(namespace, podName, ctx.signal));
    if (podJson === undefined) throw new PlatformError('ERR_ATTEST_MISMATCH', 'the pod the token is bound to no longer exists', { details: { cluster, namespace, pod: podName } });
    const pod = await upstream('read Pod', async () => podFacts(podJson));
    if (pod.uid !== podUid || pod.namespace !== namespace || pod.serviceAccount !== serviceAccount) {
      throw new PlatformError('ERR_ATTEST_MISMATCH', 'the pod differs from the one the token was bound to', { details: { cluster, namespace, pod: podName } });
    }
    if (pod.phase === 'Succeeded' || pod.phase === 'Failed') {
      throw new PlatformError('ERR_ATTEST_MISMATCH', `the pod has terminated (${pod.phase})`, { details: { cluster, namespace, pod: podName } });
    }

    const out = new ResultBuilder(this.name, now)
      .selector('cluster', cluster)
      .selector('ns', namespace)
      .selector('sa', serviceAccount)
      .selector('pod-name', pod.name)
      .selector('pod-uid', pod.uid)
      .attribute('k8s.cluster', cluster)
      .attribute('k8s.namespace', namespace)
      .attribute('k8s.sa', serviceAccount)
      .attribute('k8s.pod.name', pod.name)
      .attribute('k8s.pod.uid', pod.uid);
    if (pod.nodeName !== undefined) out.selector('node-name', pod.nodeName).attribute('k8s.node.name', pod.nodeName);
    for (const [k, v] of Object.entries(pod.labels)) out.selector('pod-label', `${k}:${v}`).attribute(`k8s.label.${k}`, v);
    if (pod.owner !== undefined) {
      out.selector('pod-owner', `${pod.owner.kind}:${pod.owner.name}`).selector('pod-owner-uid', `${pod.owner.kind}:${pod.owner.uid}`)
        .attribute('k8s.owner.kind', pod.owner.kind).attribute('k8s.owner.name', pod.owner.name);
    }
    for (const c of pod.containers) {
      out.selector('container-name', c.name).selector('container-image', c.image);
      if (c.imageDigest !== undefined) out.selector('image-digest', c.imageDigest);
    }
    const images = [...new Set(pod.containers.map((c) => c.image))];
    if (images.length === 1) out.attribute('image.name', images[0]!);
    const digests = [...new Set(pod.containers.map((c) => c.imageDigest).filter((d): d is string => d !== undefined))];
    if (digests.length === 1 && pod.containers.every((c) => c.imageDigest !== undefined)) out.attribute('image.digest', digests[0]!);
    else if (digests.length > 1) out.attribute('image.digests', digests.sort());
    return out.build(agentSpiffeId(ctx.trustDomain, this.name, [cluster, pod.uid]), expiresAt);
  }
}

export function createK8sPsatAttestor(config: unknown, path: string): Attestor {
  return new K8sPsatAttestor(parseK8sPsatConfig(config, path));
}

/** Agent side: reads the projected token the kubelet keeps fresh in the pod's volume. */
export class ProjectedTokenCollector implements EvidenceCollector<K8sPsatEvidence> {
  readonly name = 'k8s_psat' as const;
  readonly #cluster: string;
  readonly #tokenPath: string;

  constructor(cluster: string, tokenPath = '/var/run/secrets/tokens/ward-agent') {
    this.#cluster = cluster;
    this.#tokenPath = tokenPath;
  }

  async collect(): Promise<K8sPsatEvidence> {
    const token = (await readFile(this.#tokenPath, 'utf8')).trim();
    return parseK8sPsatEvidence({ cluster: this.#cluster, token });
  }
}
