import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicyDocuments, validatePolicies, policiesToYaml, type PolicyIssue } from '../../../src/policy/index.js';

const find = (issues: PolicyIssue[], path: string) => issues.find((i) => i.path === path);

test('every problem is reported with file, document, field path and code, and nothing half-applies', () => {
  const text = `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: ok}
spec:
  ingress: [{}]
---
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: Bad_Name}
spec:
  action: PERMIT
  mode: shadow
  subject: {selector: {matchExpressions: [{key: vuln.critical, operator: Gt, values: [high]}]}}
  ingress:
  - from:
    - ipBlocks: [{cidr: 10.0.0.0/8, except: [192.168.0.0/16]}]
      spiffeIds: [not-a-spiffe-id]
    to:
    - ports: [0, "9000-8000", {port: 80, protocol: ICMP}]
      methods: [get]
      paths: ["/a/{**}/b/{**}"]
      color: blue
    when:
    - {key: request.color, values: [x]}
`;
  const { policies, issues } = parsePolicyDocuments(text, { file: 'p.yaml' });
  assert.deepEqual(policies.map((p) => p.name), ['ok'], 'only the valid document yields a policy');
  assert.ok(issues.every((i) => i.file === 'p.yaml' && i.document === 1));
  const expect: Array<[string, string]> = [
    ['metadata.name', 'ERR_POLICY_VALUE'],
    ['spec.action', 'ERR_POLICY_SCHEMA'],
    ['spec.mode', 'ERR_POLICY_SCHEMA'],
    ['spec.subject.selector.matchExpressions[0]', 'ERR_POLICY_SELECTOR'],
    ['spec.ingress[0].from[0].ipBlocks[0].except[0]', 'ERR_POLICY_VALUE'],
    ['spec.ingress[0].from[0].spiffeIds[0]', 'ERR_POLICY_VALUE'],
    ['spec.ingress[0].to[0].ports[0]', 'ERR_POLICY_VALUE'],
    ['spec.ingress[0].to[0].ports[1]', 'ERR_POLICY_VALUE'],
    ['spec.ingress[0].to[0].ports[2].protocol', 'ERR_POLICY_SCHEMA'],
    ['spec.ingress[0].to[0].methods[0]', 'ERR_POLICY_VALUE'],
    ['spec.ingress[0].to[0].paths[0]', 'ERR_POLICY_VALUE'],
    ['spec.ingress[0].to[0].color', 'ERR_POLICY_SCHEMA'],
    ['spec.ingress[0].when[0].key', 'ERR_POLICY_VALUE'],
  ];
  for (const [path, code] of expect) assert.equal(find(issues, path)?.code, code, `${path}: ${JSON.stringify(issues.map((i) => [i.path, i.code]))}`);
});

test('unknown kinds, missing apiVersion and duplicates are reported', () => {
  const issues = validatePolicies([
    { file: 'a.yaml', text: 'apiVersion: ward.dev/v1alpha1\nkind: Gizmo\nmetadata: {name: x}\n---\nkind: AccessPolicy\n---\n- 1\n' },
    { file: 'b.yaml', text: 'apiVersion: ward.dev/v1alpha1\nkind: AccessPolicy\nmetadata: {name: dup}\nspec: {ingress: []}\n' },
    { file: 'c.yaml', text: 'apiVersion: ward.dev/v1alpha1\nkind: AccessPolicy\nmetadata: {name: dup}\nspec: {egress: []}\n' },
  ]);
  assert.deepEqual(issues.map((i) => [i.file, i.document, i.code]), [
    ['a.yaml', 0, 'ERR_POLICY_KIND'],
    ['a.yaml', 1, 'ERR_POLICY_KIND'],
    ['a.yaml', 2, 'ERR_POLICY_SCHEMA'],
    ['c.yaml', 0, 'ERR_POLICY_DUPLICATE'],
  ]);
});

test('runtime and mTLS policies parse; sha256 and globs are checked', () => {
  const good = parsePolicyDocuments(`
apiVersion: ward.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: web-runtime}
spec:
  subject: {selector: {matchAttributes: {k8s.namespace: web}}}
  processes:
  - paths: [/usr/bin/node, "/app/**"]
    sha256: [${'a'.repeat(64)}]
  files:
  - {paths: ["/tmp/**"], access: [write]}
---
apiVersion: ward.dev/v1alpha1
kind: MutualTLSPolicy
metadata: {name: legacy}
spec:
  mtls: {mode: STRICT}
  portLevelMtls: {"8080": {mode: PERMISSIVE}}
`);
  assert.deepEqual(good.issues, []);
  assert.deepEqual(good.policies.map((p) => p.kind), ['RuntimePolicy', 'MutualTLSPolicy']);
  const bad = parsePolicyDocuments(`
apiVersion: ward.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: r}
spec:
  processes:
  - {paths: [relative/path], sha256: [ABC]}
  files:
  - {paths: [/x], access: [execute]}
`);
  assert.deepEqual(bad.issues.map((i) => i.path), ['spec.processes[0].paths[0]', 'spec.processes[0].sha256[0]', 'spec.files[0].access[0]']);
});

test('Workload and PolicyTest documents, List wrappers and reachability tables', () => {
  const { workloads, tests, issues } = parsePolicyDocuments(`
apiVersion: v1
kind: List
items:
- apiVersion: ward.dev/v1alpha1
  kind: Workload
  metadata: {name: a}
  spec: {spiffeId: "spiffe://t/a", ips: [10.0.0.1]}
---
apiVersion: ward.dev/v1alpha1
kind: PolicyTest
metadata: {name: t}
spec:
  policies: [p.yaml]
  reachability:
  - port: 80
    to: [a, b]
    rows: {a: "-.", b: "X."}
`);
  assert.deepEqual(issues, []);
  assert.equal(workloads[0]?.name, 'a');
  assert.deepEqual(tests[0]?.cases.map((c) => [c.from, c.to, c.expect]), [['a', 'b', 'allow'], ['b', 'a', 'deny'], ['b', 'b', 'allow']]);
  const badTable = parsePolicyDocuments('apiVersion: ward.dev/v1alpha1\nkind: PolicyTest\nmetadata: {name: t}\nspec:\n  reachability:\n  - {port: 80, to: [a, b], rows: {a: ".?"}}\n');
  assert.equal(badTable.issues[0]?.code, 'ERR_POLICY_TEST');
});

test('policies survive a round trip through the Ward YAML they serialise to', () => {
  const text = `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: api, namespace: pay}
spec:
  subject: {selector: {matchExpressions: ["k8s.namespace == pay"]}}
  action: DENY
  mode: dry-run
  ingress:
  - from: [{ipBlocks: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}], notSpiffeIds: ["spiffe://acme.com/ns/ops/*"]}]
    to: [{ports: [443, "8000-8080", {port: 53, protocol: UDP}], paths: ["/admin*"], headers: {x-debug: ["1"]}}]
    when: [{key: "request.auth.claims[groups]", notValues: [admins]}]
  egress:
  - to: [{namespaces: [db]}]
    operations: [{ports: [5432]}]
`;
  const first = parsePolicyDocuments(text);
  assert.deepEqual(first.issues, []);
  const again = parsePolicyDocuments(policiesToYaml(first.policies));
  assert.deepEqual(again.issues, []);
  const strip = (ps: typeof first.policies) => ps.map(({ origin: _o, ...rest }) => rest);
  assert.deepEqual(strip(again.policies), strip(first.policies));
});
