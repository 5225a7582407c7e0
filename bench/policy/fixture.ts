/**
 * The benchmark's input (bench/policy/evaluate.bench.ts): 1,000 policies over 10,000 workloads
 * with realistic attribute selectors, and realistic traffic. Deterministic: every run measures the
 * same input.
 */
import type { ConnectionQuery, PolicyWorkload } from '../../src/policy/index.js';

export const NAMESPACES = 200;
export const PER_NAMESPACE = 50;
const APPS = ['web', 'api', 'worker', 'cache', 'db'];
const TIERS: Record<string, string> = { web: 'frontend', api: 'backend', worker: 'backend', cache: 'data', db: 'data' };

// Deterministic pseudo-random numbers so every run measures the same input.
let seed = 42;
const rnd = (): number => {
  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

export function makeWorkloads(): PolicyWorkload[] {
  const out: PolicyWorkload[] = [];
  for (let n = 0; n < NAMESPACES; n++) {
    for (let i = 0; i < PER_NAMESPACE; i++) {
      const app = APPS[i % APPS.length]!;
      const attr = (value: string | number | boolean) => ({ value, source: 'bench', observedAt: 1 });
      out.push({
        spiffeId: `spiffe://bench.dev/ns/ns${n}/sa/${app}-${i}`,
        ips: [`10.${n >> 8}.${n & 255}.${i + 1}`],
        attributes: {
          'k8s.label.app': attr(app),
          'k8s.label.tier': attr(TIERS[app]!),
          'build.repo': attr(`github.com/acme/svc-${n}-${app}`),
          'build.verified': attr(rnd() < 0.9),
          'vuln.critical': attr(rnd() < 0.85 ? 0 : Math.floor(rnd() * 4)),
          'vuln.maxCvss': attr(Math.round(rnd() * 100) / 10),
          'image.digest': attr(`sha256:${(n * 1000 + i).toString(16).padStart(64, '0')}`),
        },
      });
    }
  }
  return out;
}

/** Five policies per namespace: the patterns users write in Istio/Cilium, over attributes. */
export function makePolicyYaml(): string {
  const docs: string[] = [];
  for (let n = 0; n < NAMESPACES; n++) {
    const ns = `ns${n}`;
    const next = `ns${(n + 1) % NAMESPACES}`;
    docs.push(`apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: api-ingress, namespace: ${ns}}
spec:
  subject: {selector: {matchAttributes: {k8s.namespace: ${ns}, k8s.label.app: api}}}
  ingress:
  - from:
    - selector:
        matchExpressions: ["k8s.namespace in (${ns}, ${next})", "k8s.label.tier == frontend", "build.verified == true", "vuln.critical == 0"]
    to: [{ports: [8080, 8443]}]
  - from: [{spiffeIds: ["spiffe://bench.dev/ns/${ns}/sa/worker-*"]}]
    to: [{ports: [8080], methods: [GET, POST], paths: ["/v1/{*}/jobs", "/health"]}]`);
    docs.push(`apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: data-ingress, namespace: ${ns}}
spec:
  subject: {selector: {matchExpressions: ["k8s.namespace == ${ns}", "k8s.label.tier == data"]}}
  ingress:
  - from: [{namespaces: [${ns}], selector: {matchExpressions: ["k8s.label.tier == backend", "build.repo in (github.com/acme/svc-${n}-api, github.com/acme/svc-${n}-worker)"]}}]
    to: [{ports: [5432, 6379]}]`);
    docs.push(`apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: deny-vulnerable, namespace: ${ns}}
spec:
  subject: {selector: {matchAttributes: {k8s.namespace: ${ns}}}}
  action: DENY
  ingress:
  - from: [{selector: {matchExpressions: ["vuln.critical > 2"]}}]`);
    docs.push(`apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: frontend-egress, namespace: ${ns}}
spec:
  subject: {selector: {matchAttributes: {k8s.namespace: ${ns}, k8s.label.tier: frontend}}}
  egress:
  - to: [{selector: {matchExpressions: ["k8s.label.app in (api)"]}}]
    operations: [{ports: [8080, 8443]}]
  - to: [{ipBlocks: [{cidr: 0.0.0.0/0, except: [10.0.0.0/8]}]}]
    operations: [{ports: [443]}]`);
    docs.push(`apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: ${n % 2 ? 'audit-high-cvss' : 'dry-run-cvss'}, namespace: ${ns}}
spec:
  subject: {selector: {matchAttributes: {k8s.namespace: ${ns}}}}
  action: ${n % 2 ? 'AUDIT' : 'DENY'}
  mode: ${n % 2 ? 'enforce' : 'dry-run'}
  ingress:
  - from: [{selector: {matchExpressions: ["vuln.maxCvss >= 9"]}}]`);
  }
  return docs.join('\n---\n');
}

/** Realistic traffic: mostly within a namespace or to the next one, to the services' ports. */
export function makeQueries(workloads: readonly PolicyWorkload[], count: number): ConnectionQuery[] {
  const out: ConnectionQuery[] = [];
  const ports = [8080, 8443, 5432, 6379, 9090];
  for (let k = 0; k < count; k++) {
    const n = Math.floor(rnd() * NAMESPACES);
    const target = rnd() < 0.8 ? n : (n + 1) % NAMESPACES;
    const src = workloads[n * PER_NAMESPACE + Math.floor(rnd() * PER_NAMESPACE)]!;
    const dst = workloads[target * PER_NAMESPACE + Math.floor(rnd() * PER_NAMESPACE)]!;
    out.push({ source: { spiffeId: src.spiffeId }, destination: { spiffeId: dst.spiffeId }, port: ports[Math.floor(rnd() * ports.length)]! });
  }
  return out;
}

