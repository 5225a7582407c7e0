import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateConnection, evaluateRequest, evaluateProcess, evaluateFile, PolicyError } from '../../../src/policy/index.js';
import { access, build, id, workloadsYaml } from './fixtures.js';

const WORKLOADS = workloadsYaml([
  { ns: 'shop', sa: 'web', attrs: { 'build.verified': true, 'build.repo': 'github.com/acme/shop', 'vuln.critical': 0 }, ips: ['10.0.1.1'] },
  { ns: 'shop', sa: 'batch', attrs: { 'build.verified': false, 'vuln.critical': 0 }, ips: ['10.0.1.2'] },
  { ns: 'pay', sa: 'api', attrs: { 'k8s.label.app': 'payments' }, ips: ['10.0.2.1'] },
  { ns: 'db', sa: 'pg', ips: ['10.0.3.1'] },
]);
const web = { spiffeId: id('shop', 'web') };
const batch = { spiffeId: id('shop', 'batch') };
const api = { spiffeId: id('pay', 'api') };
const pg = { spiffeId: id('db', 'pg') };

const PAYMENTS = access('payments', {
  subject: { selector: { matchAttributes: { 'k8s.label.app': 'payments' } } },
  ingress: [{
    from: [{ selector: { matchAttributes: { 'build.verified': true }, matchExpressions: ['vuln.critical == 0', 'build.repo in (github.com/acme/shop)'] } }],
    to: [{ ports: [8443], methods: ['POST'], paths: ['/v1/charges', '/v1/charges/{*}'] }],
  }],
});

test('unprotected workloads are not restricted; a selecting ALLOW policy makes everything else default-deny', () => {
  const { set } = build(`${WORKLOADS}\n---\n${PAYMENTS}`);
  const open = evaluateConnection(set, { source: web, destination: pg, port: 5432 });
  assert.equal(open.allowed, true);
  assert.equal(open.reason, 'not-protected');
  const denied = evaluateConnection(set, { source: batch, destination: api, port: 8443, l7: 'http' });
  assert.deepEqual([denied.allowed, denied.reason, denied.direction], [false, 'default-deny', 'ingress']);
  const ok = evaluateRequest(set, { source: web, destination: api, port: 8443, method: 'POST', path: '/v1/charges/ch_1' });
  assert.deepEqual([ok.allowed, ok.policy, ok.rule, ok.action, ok.mode], [true, 'payments', 0, 'ALLOW', 'enforce']);
  assert.equal(evaluateRequest(set, { source: web, destination: api, port: 8443, method: 'GET', path: '/v1/charges' }).allowed, false);
  assert.equal(evaluateRequest(set, { source: web, destination: api, port: 8443, method: 'POST', path: '/v1/refunds' }).allowed, false);
  assert.equal(evaluateRequest(set, { source: web, destination: api, port: 9000, method: 'POST', path: '/v1/charges' }).allowed, false);
});

test('a raised vuln.critical on the peer takes effect on the very next decision (cache invalidated by version)', () => {
  const { set, workloads } = build(`${WORKLOADS}\n---\n${PAYMENTS}`);
  const q = { source: web, destination: api, port: 8443, l7: 'http' as const };
  const first = evaluateConnection(set, q);
  assert.equal(first.allowed, true);
  assert.equal(evaluateConnection(set, q), first, 'a repeated decision is the cached object');
  const before = workloads.find((w) => w.spiffeId === web.spiffeId)!;
  set.updateAttributes(web.spiffeId, { ...before.attributes, 'vuln.critical': { value: 2, source: 'scan:trivy', observedAt: 2 } });
  const after = evaluateConnection(set, q);
  assert.deepEqual([after.allowed, after.reason], [false, 'default-deny']);
  set.updateAttributes(web.spiffeId, before.attributes);
  assert.equal(evaluateConnection(set, q).allowed, true);
});

test('changing the destination attributes re-selects its policies', () => {
  const { set } = build(`${WORKLOADS}\n---\n${PAYMENTS}`);
  assert.equal(evaluateConnection(set, { source: batch, destination: api, port: 8443 }).allowed, false);
  set.updateAttributes(api.spiffeId, {});
  const d = evaluateConnection(set, { source: batch, destination: api, port: 8443 });
  assert.deepEqual([d.allowed, d.reason], [true, 'not-protected']);
});

test('DENY beats ALLOW, AUDIT never changes the decision but is reported', () => {
  const { set } = build([
    WORKLOADS,
    access('allow-all-to-db', { subject: { selector: { matchAttributes: { 'k8s.namespace': 'db' } } }, ingress: [{}] }),
    access('deny-batch', { action: 'DENY', subject: { selector: { matchAttributes: { 'k8s.namespace': 'db' } } }, ingress: [{ from: [{ spiffeIds: [id('shop', 'batch')] }] }] }),
    access('audit-shop', { action: 'AUDIT', subject: { selector: { matchAttributes: { 'k8s.namespace': 'db' } } }, ingress: [{ from: [{ namespaces: ['shop'] }] }] }),
  ].join('\n---\n'));
  const b = evaluateConnection(set, { source: batch, destination: pg, port: 5432 });
  assert.deepEqual([b.allowed, b.policy, b.action], [false, 'deny-batch', 'DENY']);
  assert.deepEqual(b.audit.map((a) => a.policy), ['audit-shop']);
  const w = evaluateConnection(set, { source: web, destination: pg, port: 5432 });
  assert.deepEqual([w.allowed, w.policy], [true, 'allow-all-to-db']);
  assert.deepEqual(w.audit.map((a) => a.policy), ['audit-shop']);
});

test('dry-run policies record what would have happened without changing the decision', () => {
  const { set } = build([
    WORKLOADS,
    access('lockdown-db', { mode: 'dry-run', subject: { selector: { matchAttributes: { 'k8s.namespace': 'db' } } }, ingress: [{ from: [{ namespaces: ['shop'] }], to: [{ ports: [5432] }] }] }),
  ].join('\n---\n'));
  const fromApi = evaluateConnection(set, { source: api, destination: pg, port: 5432 });
  assert.deepEqual([fromApi.allowed, fromApi.reason], [true, 'not-protected']);
  assert.deepEqual([fromApi.dryRun?.allowed, fromApi.dryRun?.reason], [false, 'default-deny']);
  const fromWeb = evaluateConnection(set, { source: web, destination: pg, port: 5432 });
  assert.deepEqual([fromWeb.allowed, fromWeb.dryRun?.allowed, fromWeb.dryRun?.policy, fromWeb.dryRun?.mode], [true, true, 'lockdown-db', 'dry-run']);
  assert.equal(JSON.parse(JSON.stringify(fromWeb)).dryRun.policy, 'lockdown-db', 'decisions are plain JSON');
});

test('a connection needs the source egress and the destination ingress', () => {
  const { set } = build([
    WORKLOADS,
    access('web-egress', { subject: { spiffeIds: [id('shop', 'web')] }, egress: [{ to: [{ namespaces: ['pay'] }], operations: [{ ports: [8443] }] }] }),
    access('db-ingress', { subject: { selector: { matchAttributes: { 'k8s.namespace': 'db' } } }, ingress: [{ from: [{ spiffeIds: [`${'spiffe://acme.com/ns/shop/*'}`] }] }] }),
  ].join('\n---\n'));
  const toDb = evaluateConnection(set, { source: web, destination: pg, port: 5432 });
  assert.deepEqual([toDb.allowed, toDb.direction, toDb.egress?.allowed, toDb.ingress?.allowed], [false, 'egress', false, true]);
  assert.equal(evaluateConnection(set, { source: web, destination: api, port: 8443 }).allowed, true);
  assert.equal(evaluateConnection(set, { source: batch, destination: pg, port: 5432 }).allowed, true);
  assert.equal(evaluateConnection(set, { source: api, destination: pg, port: 5432 }).allowed, false);
  const external = evaluateConnection(set, { source: web, destination: { ip: '93.184.216.34' }, port: 443 });
  assert.deepEqual([external.allowed, external.direction], [false, 'egress']);
});

test('mTLS STRICT by default refuses plaintext; PERMISSIVE admits it as unauthenticated', () => {
  const strict = build(`${WORKLOADS}`).set;
  const plain = evaluateConnection(strict, { source: { ip: '192.0.2.7' }, destination: pg, port: 5432 });
  assert.deepEqual([plain.allowed, plain.reason], [false, 'mtls-required']);
  const { set } = build([
    WORKLOADS,
    JSON.stringify({ apiVersion: 'ward.dev/v1alpha1', kind: 'MutualTLSPolicy', metadata: { name: 'db-migration' }, spec: { subject: { selector: { matchAttributes: { 'k8s.namespace': 'db' } } }, mtls: { mode: 'STRICT' }, portLevelMtls: { '5432': { mode: 'PERMISSIVE' } } } }),
    access('db', { subject: { selector: { matchAttributes: { 'k8s.namespace': 'db' } } }, ingress: [{ from: [{ unauthenticated: true, ipBlocks: ['192.0.2.0/24'] }] }, { from: [{ namespaces: ['shop'] }] }] }),
  ].join('\n---\n'));
  assert.equal(evaluateConnection(set, { source: { ip: '192.0.2.7' }, destination: pg, port: 5432 }).allowed, true);
  assert.equal(evaluateConnection(set, { source: { ip: '198.51.100.1' }, destination: pg, port: 5432 }).reason, 'default-deny');
  assert.equal(evaluateConnection(set, { source: { ip: '192.0.2.7' }, destination: pg, port: 6432 }).reason, 'mtls-required');
  assert.equal(evaluateConnection(set, { source: { unauthenticated: true }, destination: pg, port: 5432 }).allowed, false);
  assert.equal(evaluateConnection(set, { source: web, destination: pg, port: 6432 }).allowed, true);
});

test('HTTP-only fields narrow an ALLOW and widen a DENY on TCP; requests get full semantics', () => {
  const { set } = build([
    WORKLOADS,
    access('allow-get', { subject: { selector: { matchAttributes: { 'k8s.namespace': 'pay' } } }, ingress: [{ to: [{ ports: [80], methods: ['GET'] }] }, { to: [{ ports: [81] }] }] }),
    access('deny-delete', { action: 'DENY', subject: { selector: { matchAttributes: { 'k8s.namespace': 'pay' } } }, ingress: [{ to: [{ ports: [81], methods: ['DELETE'] }] }] }),
  ].join('\n---\n'));
  assert.equal(evaluateConnection(set, { source: web, destination: api, port: 80 }).allowed, false, 'TCP on 80: ALLOW with methods never matches');
  assert.equal(evaluateConnection(set, { source: web, destination: api, port: 80, l7: 'http' }).allowed, true, 'HTTP port: admitted for per-request checks');
  assert.equal(evaluateConnection(set, { source: web, destination: api, port: 81 }).allowed, false, 'TCP on 81: DENY with methods denies everything');
  assert.equal(evaluateConnection(set, { source: web, destination: api, port: 81, l7: 'http' }).allowed, true);
  assert.equal(evaluateRequest(set, { source: web, destination: api, port: 81, method: 'GET', path: '/' }).allowed, true);
  assert.equal(evaluateRequest(set, { source: web, destination: api, port: 81, method: 'DELETE', path: '/' }).allowed, false);
  assert.equal(evaluateRequest(set, { source: web, destination: api, port: 80, method: 'GET', path: '/' }).allowed, true);
});

test('requests that cannot be normalised safely are denied', () => {
  const { set } = build(`${WORKLOADS}\n---\n${access('open', { subject: { selector: { matchAttributes: { 'k8s.namespace': 'pay' } } }, ingress: [{}] })}`);
  for (const path of ['/a%2f..%2fadmin', '/a%zz', 'relative']) {
    const d = evaluateRequest(set, { source: web, destination: api, port: 80, method: 'GET', path });
    assert.deepEqual([d.allowed, d.reason], [false, 'invalid-request'], path);
  }
  assert.equal(evaluateRequest(set, { source: web, destination: api, port: 80, method: 'get', path: '/' }).reason, 'invalid-request');
  assert.equal(evaluateRequest(set, { source: web, destination: api, port: 80, method: 'GET', path: '/', headers: { 'x-a': 'b\r\nc' } }).reason, 'invalid-request');
  assert.throws(() => evaluateConnection(set, { source: web, destination: api, port: 0 }), (e: unknown) => e instanceof PolicyError && e.code === 'ERR_POLICY_QUERY');
});

test('runtime policy: executables by glob and sha256, files by path and access', () => {
  const sha = 'b'.repeat(64);
  const { set } = build([
    WORKLOADS,
    JSON.stringify({ apiVersion: 'ward.dev/v1alpha1', kind: 'RuntimePolicy', metadata: { name: 'web-exec' }, spec: { subject: { spiffeIds: [id('shop', 'web')] }, processes: [{ paths: ['/usr/bin/node'], sha256: [sha] }, { paths: ['/app/bin/*'] }], files: [{ paths: ['/tmp/**'], access: ['read', 'write'] }, { paths: ['/etc/**'], access: ['read'] }] } }),
    JSON.stringify({ apiVersion: 'ward.dev/v1alpha1', kind: 'RuntimePolicy', metadata: { name: 'no-shells' }, spec: { action: 'DENY', processes: [{ paths: ['/bin/*sh', '/usr/bin/*sh'] }] } }),
  ].join('\n---\n'));
  const w = web.spiffeId;
  assert.equal(evaluateProcess(set, { workload: w, path: '/usr/bin/node', sha256: sha }).allowed, true);
  assert.equal(evaluateProcess(set, { workload: w, path: '/usr/bin/node', sha256: 'c'.repeat(64) }).allowed, false);
  assert.equal(evaluateProcess(set, { workload: w, path: '/usr/bin/node' }).allowed, false, 'no digest: cannot prove the pinned binary');
  assert.equal(evaluateProcess(set, { workload: w, path: '/app/bin/worker' }).allowed, true);
  assert.equal(evaluateProcess(set, { workload: w, path: '/app/bin/../../bin/sh' }).reason, 'invalid-request');
  const shell = evaluateProcess(set, { workload: batch.spiffeId, path: '/bin/bash' });
  assert.deepEqual([shell.allowed, shell.policy], [false, 'no-shells']);
  assert.equal(evaluateProcess(set, { workload: batch.spiffeId, path: '/usr/bin/python3' }).reason, 'not-protected');
  assert.equal(evaluateFile(set, { workload: w, path: '/etc/passwd', access: 'read' }).allowed, true);
  assert.equal(evaluateFile(set, { workload: w, path: '/etc/passwd', access: 'write' }).allowed, false);
  assert.equal(evaluateFile(set, { workload: w, path: '//tmp//x', access: 'write' }).allowed, true);
});

test('end-user conditions: request principals and nested claims', () => {
  const { set } = build([
    WORKLOADS,
    access('jwt', { subject: { selector: { matchAttributes: { 'k8s.namespace': 'pay' } } }, ingress: [{ from: [{ requestPrincipals: ['https://idp.acme.com/*'] }], when: [{ key: 'request.auth.claims[realm_access][roles]', values: ['payer'] }, { key: 'request.auth.audiences', values: ['payments'] }] }] }),
  ].join('\n---\n'));
  const base = { source: web, destination: api, port: 443, method: 'POST', path: '/pay' };
  const claims = { iss: 'https://idp.acme.com', sub: 'user-1', aud: ['payments', 'x'], realm_access: { roles: ['payer'] } };
  assert.equal(evaluateRequest(set, { ...base, claims }).allowed, true);
  assert.equal(evaluateRequest(set, { ...base, claims: { ...claims, realm_access: { roles: ['viewer'] } } }).allowed, false);
  assert.equal(evaluateRequest(set, { ...base, claims: { ...claims, aud: 'other' } }).allowed, false);
  assert.equal(evaluateRequest(set, { ...base, claims: { ...claims, iss: 'https://evil.com' } }).allowed, false);
  assert.equal(evaluateRequest(set, base).allowed, false);
});

test('an explicit source address is matched and cached apart from the registered one', () => {
  const { set } = build([
    WORKLOADS,
    access('db-from-office', { subject: { selector: { matchAttributes: { 'k8s.namespace': 'db' } } }, ingress: [{ from: [{ namespaces: ['shop'], ipBlocks: ['10.0.1.0/24'] }] }] }),
  ].join('\n---\n'));
  const registered = evaluateConnection(set, { source: web, destination: pg, port: 5432 });
  assert.equal(registered.allowed, true, 'registered address 10.0.1.1 is inside the block');
  const moved = evaluateConnection(set, { source: { ...web, ip: '10.9.9.9' }, destination: pg, port: 5432 });
  assert.equal(moved.allowed, false);
  assert.equal(evaluateConnection(set, { source: { ...web, ip: '10.0.1.200' }, destination: pg, port: 5432 }).allowed, true);
  assert.equal(evaluateConnection(set, { source: web, destination: pg, port: 5432 }), registered, 'the unqualified entry survives');
  assert.equal(evaluateConnection(set, { source: { ...web, ip: '10.9.9.9' }, destination: pg, port: 5432 }), moved);
});

test('unknown peers get decisions but never grow the table; removal takes effect', () => {
  const { set } = build(`${WORKLOADS}\n---\n${access('db', { subject: { selector: { matchAttributes: { 'k8s.namespace': 'db' } } }, ingress: [{ from: [{ namespaces: ['shop'] }] }] })}`);
  const stranger = { spiffeId: 'spiffe://acme.com/ns/shop/sa/new' };
  assert.equal(evaluateConnection(set, { source: stranger, destination: pg, port: 5432 }).allowed, true, 'namespace derived from the SPIFFE path');
  assert.equal(set.workloads.has(stranger.spiffeId), false);
  assert.equal(set.removeWorkload(pg.spiffeId), true);
  const after = evaluateConnection(set, { source: web, destination: pg, port: 5432 });
  assert.equal(after.allowed, true, 'the removed workload is evaluated from its SPIFFE ID alone');
  assert.equal(set.removeWorkload(pg.spiffeId), false);
});
