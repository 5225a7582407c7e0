// `ward policy validate|test|import` and `ward explain`, run in-process on real files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runCli } from '../../helpers/cli.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ward-policy-cli-'));
  mkdirSync(join(dir, 'policies'));
  writeFileSync(join(dir, 'policies', 'payments.yaml'), `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: payments-api, namespace: pay}
spec:
  subject: {selector: {matchAttributes: {k8s.namespace: pay}}}
  ingress:
  - from: [{selector: {matchExpressions: ["vuln.critical == 0", "build.verified == true"]}}]
    to: [{ports: [8443], methods: [POST], paths: ["/v1/charges"]}]
---
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: no-debug, namespace: pay}
spec:
  subject: {selector: {matchAttributes: {k8s.namespace: pay}}}
  action: DENY
  mode: dry-run
  ingress:
  - when: [{key: "request.headers[x-debug]", values: ["*"]}]
`);
  writeFileSync(join(dir, 'policies', 'k8s.yaml'), `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: db}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: pay}}}]
    ports: [{port: 5432}]
`);
  writeFileSync(join(dir, 'workloads.yaml'), `
apiVersion: ward.dev/v1alpha1
kind: Workload
metadata: {name: web}
spec: {spiffeId: "spiffe://acme.com/ns/shop/sa/web", attributes: {vuln.critical: 0, build.verified: true}}
---
apiVersion: ward.dev/v1alpha1
kind: Workload
metadata: {name: legacy}
spec: {spiffeId: "spiffe://acme.com/ns/shop/sa/legacy", attributes: {vuln.critical: 4, build.verified: true}}
---
apiVersion: ward.dev/v1alpha1
kind: Workload
metadata: {name: api}
spec: {spiffeId: "spiffe://acme.com/ns/pay/sa/api"}
---
apiVersion: ward.dev/v1alpha1
kind: Workload
metadata: {name: pg}
spec: {spiffeId: "spiffe://acme.com/ns/db/sa/pg"}
`);
  writeFileSync(join(dir, 'bad.yaml'), `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: ok}
spec: {ingress: [{}]}
---
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: broken}
spec:
  ingress:
  - to: [{ports: [70000]}]
    from: [{ipBlocks: [10.0.0.1/8]}]
`);
  writeFileSync(join(dir, 'test.yaml'), `
apiVersion: ward.dev/v1alpha1
kind: PolicyTest
metadata: {name: payments}
spec:
  policies: [policies]
  workloads: [workloads.yaml]
  cases:
  - {name: verified web may charge, from: web, to: api, port: 8443, http: {method: POST, path: /v1/charges}, expect: allow, expectPolicy: pay/payments-api}
  - {name: vulnerable legacy may not, from: legacy, to: api, port: 8443, http: {method: POST, path: /v1/charges}, expect: deny}
  - {name: pay reaches the database, from: api, to: pg, port: 5432, expect: allow, expectPolicy: db/db}
  - {name: shop does not, from: web, to: pg, port: 5432, expect: deny}
  - {name: wrong on purpose, from: web, to: pg, port: 5432, expect: allow}
`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('policy validate lists every problem with file, document, path and code; exit 1', async () => {
  const run = await runCli(['policy', 'validate', '-f', join(dir, 'bad.yaml')]);
  assert.equal(run.code, 1);
  assert.match(run.stdout, /bad\.yaml#1 spec\.ingress\[0\]\.to\[0\]\.ports\[0\]: ERR_POLICY_VALUE: must be between 1 and 65535/);
  assert.match(run.stdout, /bad\.yaml#1 spec\.ingress\[0\]\.from\[0\]\.ipBlocks\[0\]: ERR_POLICY_VALUE: host bits set/);
  assert.match(run.stdout, /2 problem\(s\)/);
  const json = await runCli(['policy', 'validate', '-f', join(dir, 'bad.yaml'), '-o', 'json']);
  const body = JSON.parse(json.stdout) as { valid: boolean; issues: Array<{ code: string; document: number; path: string }> };
  assert.equal(body.valid, false);
  assert.deepEqual(body.issues.map((i) => [i.document, i.code]), [[1, 'ERR_POLICY_VALUE'], [1, 'ERR_POLICY_VALUE']]);
  const ok = await runCli(['policy', 'validate', '-f', join(dir, 'policies'), '-f', join(dir, 'workloads.yaml')]);
  assert.equal(ok.code, 0, ok.stdout);
  assert.match(ok.stdout, /valid: 3 policies, 4 workloads, 0 tests/);
  const missing = await runCli(['policy', 'validate', '-f', join(dir, 'nope')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /ERR_POLICY_YAML/);
});

test('policy test prints failing cases with explanations and a summary; exit 1', async () => {
  const run = await runCli(['policy', 'test', join(dir, 'test.yaml')]);
  assert.equal(run.code, 1);
  assert.match(run.stdout, /FAIL payments: wrong on purpose/);
  assert.match(run.stdout, /expected allow, got deny/);
  assert.match(run.stdout, /decision: DENY: no rule allows \(default deny on ingress\)/);
  assert.ok(run.stdout.endsWith('4 passed, 1 failed\n'), run.stdout);
  const verbose = await runCli(['policy', 'test', '-v', join(dir, 'test.yaml')]);
  assert.match(verbose.stdout, /PASS payments: verified web may charge/);
  const none = await runCli(['policy', 'test', join(dir, 'workloads.yaml')]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /ERR_POLICY_TEST/);
});

test('policy import converts Kubernetes and Istio, or refuses with every problem', async () => {
  const k8s = await runCli(['policy', 'import', 'kubernetes', '-f', join(dir, 'policies', 'k8s.yaml')]);
  assert.equal(k8s.code, 0, k8s.stderr);
  assert.match(k8s.stdout, /kind: AccessPolicy/);
  assert.match(k8s.stdout, /ward\.dev\/imported-from: networking\.k8s\.io\/v1\/NetworkPolicy/);
  assert.match(k8s.stdout, /key: k8s\.namespace\.label\.kubernetes\.io\/metadata\.name/);
  writeFileSync(join(dir, 'converted.yaml'), k8s.stdout);
  assert.equal((await runCli(['policy', 'validate', '-f', join(dir, 'converted.yaml')])).code, 0, 'the output is valid Ward');
  writeFileSync(join(dir, 'istio.yaml'), 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x, namespace: foo}\nspec:\n  action: CUSTOM\n  provider: {name: ext}\n');
  const istio = await runCli(['policy', 'import', 'istio', '-f', join(dir, 'istio.yaml')]);
  assert.equal(istio.code, 1);
  assert.equal(istio.stdout, '', 'nothing half-imported');
  assert.match(istio.stderr, /spec\.action: ERR_POLICY_IMPORT_UNSUPPORTED/);
  assert.equal((await runCli(['policy', 'import', 'cilium', '-f', join(dir, 'istio.yaml')])).code, 1);
});

test('explain shows the deciding policy, the dry-run outcome and works with -o json', async () => {
  const base = ['explain', '--policies', join(dir, 'policies'), '--workloads', join(dir, 'workloads.yaml'), '--to', 'spiffe://acme.com/ns/pay/sa/api', '--port', '8443'];
  const run = await runCli([...base, '--from', 'spiffe://acme.com/ns/shop/sa/web', '--method', 'POST', '--path', '/v1/charges', '--header', 'X-Debug=1']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^decision: ALLOW by pay\/payments-api rule 0 \(ALLOW, enforce\)/);
  assert.match(run.stdout, /dry-run: would DENY by pay\/no-debug rule 0 \(DENY, dry-run\)/);
  const json = await runCli([...base, '--from', 'unauthenticated', '-o', 'json']);
  const body = JSON.parse(json.stdout) as { decision: { allowed: boolean; reason: string } };
  assert.deepEqual([body.decision.allowed, body.decision.reason], [false, 'mtls-required']);
  const tcp = await runCli([...base, '--from', 'spiffe://acme.com/ns/shop/sa/web']);
  assert.match(tcp.stdout, /rule 0: no match \(uses HTTP-only fields/);
  const bad = await runCli([...base, '--from', 'nobody']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /ERR_POLICY_QUERY/);
});
