import { test } from 'node:test';
import assert from 'node:assert/strict';
import { importIstioAuthorizationPolicy, importKubernetesNetworkPolicy, formatSelectorOf } from './import-helpers.js';

test('NetworkPolicy: subject, peers, ports and policyTypes keep their meaning', () => {
  const { policies, issues } = importKubernetesNetworkPolicy(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: prod}
spec:
  podSelector:
    matchLabels: {app: api}
    matchExpressions: [{key: tier, operator: NotIn, values: [debug]}]
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - podSelector: {matchLabels: {app: web}}
    - namespaceSelector: {matchLabels: {team: ops}}
      podSelector: {}
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.9.0.0/16]}
    ports:
    - {port: 8080}
    - {port: 9000, endPort: 9100, protocol: UDP}
    - {protocol: SCTP}
`, { file: 'np.yaml' });
  assert.deepEqual(issues, []);
  const p = policies[0]!;
  assert.equal(p.name, 'api');
  assert.equal(p.origin?.importedFrom, 'networking.k8s.io/v1/NetworkPolicy');
  assert.equal(formatSelectorOf(p.subject.selector), 'k8s.namespace == prod, k8s.label.app == api, k8s.label.tier notin (debug)');
  assert.deepEqual(p.egress, [], 'Egress listed without rules: isolated, nothing allowed');
  const rule = p.ingress![0]!;
  assert.equal(formatSelectorOf(rule.peers![0]!.selector!), 'k8s.namespace == prod, k8s.label.app == web');
  assert.equal(formatSelectorOf(rule.peers![1]!.selector!), 'k8s.namespace.label.team == ops');
  assert.deepEqual(rule.peers![2], { ipBlocks: [{ cidr: '10.0.0.0/8', except: ['10.9.0.0/16'] }] });
  assert.deepEqual(rule.operations, [{ ports: [{ port: 8080, endPort: 8080, protocol: 'TCP' }, { port: 9000, endPort: 9100, protocol: 'UDP' }, { port: 1, endPort: 65535, protocol: 'SCTP' }] }]);
});

test('NetworkPolicy defaults: namespace default, Ingress only unless egress is present; empty from matches all', () => {
  const { policies } = importKubernetesNetworkPolicy('apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: a}\nspec:\n  podSelector: {}\n  ingress: [{from: []}]\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: b}\nspec:\n  podSelector: {}\n  egress: [{}]\n');
  assert.equal(policies[0]!.namespace, 'default');
  assert.deepEqual(policies[0]!.ingress, [{}]);
  assert.equal(policies[0]!.egress, undefined);
  assert.deepEqual([policies[1]!.ingress, policies[1]!.egress], [[], [{}]]);
});

test('NetworkPolicy features without a faithful equivalent are refused, with paths', () => {
  const { policies, issues } = importKubernetesNetworkPolicy(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x, namespace: n}
spec:
  podSelector: {}
  ingress:
  - ports: [{port: http}]
    from:
    - ipBlock: {cidr: 10.0.0.0/8}
      podSelector: {}
    - ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/8]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: y}
`);
  assert.equal(policies.length, 0);
  assert.deepEqual(issues.map((i) => [i.document, i.path, i.code]), [
    [0, 'spec.ingress[0].from[0]', 'ERR_POLICY_SCHEMA'],
    [0, 'spec.ingress[0].from[1].ipBlock.except[0]', 'ERR_POLICY_VALUE'],
    [0, 'spec.ingress[0].ports[0].port', 'ERR_POLICY_IMPORT_UNSUPPORTED'],
    [1, 'kind', 'ERR_POLICY_KIND'],
  ]);
});

test('AuthorizationPolicy: principals become SPIFFE patterns; root namespace is mesh-wide', () => {
  const { policies, issues } = importIstioAuthorizationPolicy(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: viewer, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: [cluster.local/ns/foo/sa/sleep, "*/sa/admin"], notNamespaces: [dev]}
    to:
    - operation: {ports: ["8000"], methods: [GET], paths: ["/api/{*}"]}
    when:
    - {key: source.principal, values: [cluster.local/ns/foo/*]}
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: mesh, namespace: istio-system}
spec:
  action: DENY
  rules: [{from: [{source: {notPrincipals: ["*"]}}]}]
`);
  assert.deepEqual(issues, []);
  const [viewer, mesh] = policies;
  assert.equal(formatSelectorOf(viewer!.subject.selector), 'k8s.namespace == foo, k8s.label.app == httpbin');
  assert.deepEqual(viewer!.ingress![0]!.peers, [{ spiffeIds: ['spiffe://cluster.local/ns/foo/sa/sleep', '*/sa/admin'], notNamespaces: ['dev'] }]);
  assert.deepEqual(viewer!.ingress![0]!.operations, [{ ports: [{ port: 8000, endPort: 8000, protocol: 'TCP' }], methods: ['GET'], paths: ['/api/{*}'] }]);
  assert.deepEqual(viewer!.ingress![0]!.when, [{ key: 'source.principal', values: ['spiffe://cluster.local/ns/foo/*'] }]);
  assert.equal(formatSelectorOf(mesh!.subject.selector), '(all)');
  assert.equal(mesh!.action, 'DENY');
});

test('AuthorizationPolicy features Ward cannot honour are refused as a whole', () => {
  const { policies, issues } = importIstioAuthorizationPolicy(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: foo}
spec:
  action: CUSTOM
  provider: {name: opa}
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: gw, namespace: foo}
spec:
  targetRefs: [{kind: Gateway, name: g}]
  rules:
  - when: [{key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: [x]}]
`);
  assert.equal(policies.length, 0);
  assert.deepEqual(issues.map((i) => [i.document, i.path, i.code]), [
    [0, 'spec.provider', 'ERR_POLICY_IMPORT_UNSUPPORTED'],
    [0, 'spec.action', 'ERR_POLICY_IMPORT_UNSUPPORTED'],
    [1, 'spec.targetRefs', 'ERR_POLICY_IMPORT_UNSUPPORTED'],
    [1, 'spec.rules[0].when[0].key', 'ERR_POLICY_IMPORT_UNSUPPORTED'],
  ]);
});
