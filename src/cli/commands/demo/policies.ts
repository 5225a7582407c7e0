/**
 * The shop's identities and its least-privilege policy, as `ward apply` documents: one
 * registration entry per service (node selector from its join token, workload selector
 * `ward:service:<name>`), Ward AccessPolicies (ingress on every service, egress on web), a
 * DENY on the payments admin API, and PERMISSIVE mTLS only on web (the edge users reach).
 */
import type { ShopRole } from './apps/shop.js';

export const TRUST_DOMAIN = 'shop.demo';

export function serviceSpiffeId(role: ShopRole): string {
  return role === 'legacy-inventory' ? `spiffe://${TRUST_DOMAIN}/host/vm-legacy-inventory/legacy-inventory` : `spiffe://${TRUST_DOMAIN}/ns/shop/sa/${role}`;
}

const API = 'ward.dev/v1alpha1';

/** The "pods" attest with k8s_psat (cluster `demo`, namespace `shop`); the VM with a join token. */
export const DEMO_CLUSTER = 'demo';

export function attestorOf(role: ShopRole): 'k8s_psat' | 'join_token' {
  return role === 'legacy-inventory' ? 'join_token' : 'k8s_psat';
}

function entry(role: ShopRole, ttl: string): unknown {
  const nodeSelectors = attestorOf(role) === 'join_token'
    ? [`join_token:host-name:vm-${role}`]
    : [`k8s_psat:cluster:${DEMO_CLUSTER}`, 'k8s_psat:ns:shop', `k8s_psat:sa:${role}`];
  return {
    apiVersion: API, kind: 'RegistrationEntry', metadata: { name: role },
    spec: { spiffeId: serviceSpiffeId(role), parentId: '*', nodeSelectors, selectors: [`ward:service:${role}`], ttl },
  };
}

function allow(name: string, subject: ShopRole, rules: unknown[]): unknown {
  return { apiVersion: API, kind: 'AccessPolicy', metadata: { name }, spec: { subject: { spiffeIds: [serviceSpiffeId(subject)] }, action: 'ALLOW', ingress: rules } };
}

const from = (...roles: ShopRole[]) => roles.map((r) => ({ spiffeIds: [serviceSpiffeId(r)] }));

/** The policy documents alone (what `ward explain` needs). */
export function demoPolicies(): unknown[] {
  return [
    {
      apiVersion: API, kind: 'MutualTLSPolicy', metadata: { name: 'web-edge' },
      spec: { subject: { spiffeIds: [serviceSpiffeId('web')] }, mtls: { mode: 'PERMISSIVE' } },
    },
    allow('web-ingress', 'web', [{ to: [{ methods: ['GET', 'POST'], paths: ['/', '/checkout', '/whoami', '/admin/*', '/debug/*', '/healthz'] }] }]),
    {
      apiVersion: API, kind: 'AccessPolicy', metadata: { name: 'web-egress' },
      spec: { subject: { spiffeIds: [serviceSpiffeId('web')] }, action: 'ALLOW', egress: [{ to: from('orders', 'catalog') }] },
    },
    allow('orders-ingress', 'orders', [{ from: from('web'), to: [{ methods: ['GET', 'POST'], paths: ['/v1/orders'] }, { methods: ['POST'], paths: ['/v1/refund-all'] }] }]),
    allow('catalog-ingress', 'catalog', [{ from: from('web'), to: [{ methods: ['GET'], paths: ['/v1/items', '/v1/items/*'] }] }]),
    allow('payments-api', 'payments', [{
      from: [{ spiffeIds: [serviceSpiffeId('orders')], selector: { matchExpressions: ['vuln.critical == 0'] } }],
      to: [{ methods: ['POST'], paths: ['/v1/charges'] }],
    }]),
    {
      apiVersion: API, kind: 'AccessPolicy', metadata: { name: 'payments-no-admin' },
      spec: { subject: { spiffeIds: [serviceSpiffeId('payments')] }, action: 'DENY', ingress: [{ to: [{ paths: ['/v1/admin/*'] }] }] },
    },
    allow('inventory-ingress', 'legacy-inventory', [{ from: from('orders'), to: [{ methods: ['POST'], paths: ['/v1/reserve'] }, { methods: ['GET'], paths: ['/inventory/*'] }] }]),
  ];
}

/** Entries and policies, in the order `ward apply` takes them. */
export function demoDocuments(svidTtl: string): unknown[] {
  const roles: ShopRole[] = ['web', 'orders', 'payments', 'catalog', 'legacy-inventory'];
  return [...roles.map((r) => entry(r, svidTtl)), ...demoPolicies()];
}
