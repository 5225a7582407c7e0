// The policy-engine authorizer with real ward.dev/v1alpha1 policies (parsed from YAML by the
// policy layer): L4 and L7 decisions, DENY before ALLOW, dry-run carried, mTLS STRICT, attribute
// changes at run time, outbound egress by service name, and fail-closed on the unknown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicyDocuments } from '../../../../src/policy/index.js';
import { PolicyAuthorizer } from '../../../../src/agent/policy-authorizer.js';
import { AuthorizerHolder, type ConnectionContext, type PeerIdentity } from '../../../../src/agent/proxy/authorizer.js';

const TD = 'spiffe://shop.test';
const WEB = `${TD}/ns/shop/sa/web`;
const ORDERS = `${TD}/ns/shop/sa/orders`;
const PAYMENTS = `${TD}/ns/shop/sa/payments`;

const POLICIES = `
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: payments-api}
spec:
  subject: {spiffeIds: ["${PAYMENTS}"]}
  action: ALLOW
  ingress:
  - from:
    - spiffeIds: ["${ORDERS}"]
      selector: {matchExpressions: ["vuln.critical == 0"]}
    to:
    - ports: [8443]
      methods: [POST]
      paths: [/v1/charges]
---
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: payments-no-admin}
spec:
  subject: {spiffeIds: ["${PAYMENTS}"]}
  action: DENY
  ingress:
  - to: [{paths: ["/v1/admin/*"]}]
---
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: orders-egress}
spec:
  subject: {spiffeIds: ["${ORDERS}"]}
  action: ALLOW
  egress:
  - to: [{spiffeIds: ["${PAYMENTS}"]}]
    operations: [{ports: [8443]}]
---
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: payments-audit-get}
spec:
  subject: {spiffeIds: ["${PAYMENTS}"]}
  action: DENY
  mode: dry-run
  ingress:
  - to: [{methods: [POST], paths: [/v1/charges]}]
    when: [{key: "request.headers[x-test-dry]", values: ["yes"]}]
`;

function attrs(critical: number) {
  return { 'vuln.critical': { value: critical, source: 'scan:trivy', observedAt: 1 } };
}

function build(critical = 0): PolicyAuthorizer {
  const parsed = parsePolicyDocuments(POLICIES, { file: 'shop.yaml' });
  assert.deepEqual(parsed.issues, []);
  return PolicyAuthorizer.compile({ policies: parsed.policies, workloads: [{ spiffeId: ORDERS, attributes: attrs(critical) }, { spiffeId: WEB, attributes: {} }] }, 'rv1', {
    httpPorts: [8443],
    outbound: new Map([['payments', { spiffeId: PAYMENTS, port: 8443, http: true }]]),
  });
}

const peer = (spiffeId: string): PeerIdentity => ({ spiffeId, authenticated: true, attributes: {} });
const inbound = (from: PeerIdentity, port = 8443): ConnectionContext => ({ direction: 'inbound', source: from, destination: PAYMENTS, port });
const req = (from: PeerIdentity, method: string, path: string, headers: Record<string, string> = {}) => ({
  connection: inbound(from), method, path, host: 'payments:8443', headers, jwtClaims: undefined,
});

test('connection: orders may connect to the HTTP port, web may not; another port is default-deny', () => {
  const a = build();
  assert.equal(a.authorizeConnection(inbound(peer(ORDERS))).allow, true);
  const web = a.authorizeConnection(inbound(peer(WEB)));
  assert.deepEqual({ allow: web.allow, reference: web.reference }, { allow: false, reference: 'default-deny' });
  assert.equal(a.authorizeConnection(inbound(peer(ORDERS), 9000)).allow, false);
});

test('plaintext on a STRICT port: mtls-required', () => {
  const d = build().authorizeConnection(inbound({ spiffeId: 'unauthenticated', authenticated: false, attributes: {} }));
  assert.equal(d.allow, false);
  assert.equal(d.reference, 'mtls-required');
});

test('request: POST /v1/charges allowed with the deciding rule; other method/path denied; DENY before ALLOW', () => {
  const a = build();
  const ok = a.authorizeRequest(req(peer(ORDERS), 'POST', '/v1/charges'));
  assert.deepEqual({ allow: ok.allow, reference: ok.reference }, { allow: true, reference: 'payments-api/ingress[0]' });
  assert.equal(ok.engine?.reason, 'allowed');
  assert.equal(a.authorizeRequest(req(peer(ORDERS), 'GET', '/v1/charges')).allow, false);
  const admin = a.authorizeRequest(req(peer(ORDERS), 'POST', '/v1/admin/refund-all'));
  assert.deepEqual({ allow: admin.allow, reference: admin.reference }, { allow: false, reference: 'payments-no-admin/ingress[0]' });
  assert.equal(a.authorizeRequest(req(peer(WEB), 'POST', '/v1/charges')).allow, false);
});

test('request: a path trick is refused by the engine (invalid-request), never allowed', () => {
  const d = build().authorizeRequest(req(peer(ORDERS), 'POST', '/v1/admin/../charges/%2e%2e/x'));
  assert.equal(d.allow, false);
});

test('dry-run: a dry-run DENY leaves the request allowed and marks the decision', () => {
  const a = build();
  const d = a.authorizeRequest(req(peer(ORDERS), 'POST', '/v1/charges', { 'x-test-dry': 'yes' }));
  assert.equal(d.allow, true);
  assert.equal(d.dryRun, true);
  assert.equal(d.engine?.dryRun?.policy, 'payments-audit-get');
  assert.equal(a.authorizeRequest(req(peer(ORDERS), 'POST', '/v1/charges')).dryRun, undefined);
});

test('attributes at run time: a critical scan on orders denies the next decision and changes the version', () => {
  const holder = new AuthorizerHolder(build(0));
  const seen: string[] = [];
  holder.onChange((n) => seen.push(n.version));
  const before = holder.current.version;
  assert.equal(holder.current.authorizeRequest(req(peer(ORDERS), 'POST', '/v1/charges')).allow, true);
  const next = (holder.current as PolicyAuthorizer).withWorkloads({ upsert: [{ spiffeId: ORDERS, attributes: attrs(2) }] });
  holder.set(next);
  assert.notEqual(next.version, before);
  assert.deepEqual(seen, [next.version]);
  assert.equal(holder.current.authorizeConnection(inbound(peer(ORDERS))).allow, false);
  assert.equal(holder.current.authorizeRequest(req(peer(ORDERS), 'POST', '/v1/charges')).allow, false);
  // Fixed again: allowed again. A reset without orders makes it unknown, so the selector fails.
  const fixed = next.withWorkloads({ upsert: [{ spiffeId: ORDERS, attributes: attrs(0) }] });
  assert.equal(fixed.authorizeRequest(req(peer(ORDERS), 'POST', '/v1/charges')).allow, true);
  const reset = fixed.withWorkloads({ reset: true, upsert: [{ spiffeId: WEB, attributes: {} }] });
  assert.deepEqual(reset.knownWorkloads(), [WEB]);
  assert.equal(reset.authorizeRequest(req(peer(ORDERS), 'POST', '/v1/charges')).allow, false);
});

test('outbound: egress by service name; an unknown service is denied (fail closed)', () => {
  const a = build();
  const out = (source: string, destination: string): ConnectionContext => ({ direction: 'outbound', source: peer(source), destination, port: 15001 });
  assert.equal(a.authorizeConnection(out(ORDERS, 'payments')).allow, true);
  const web = a.authorizeConnection(out(WEB, 'payments'));
  assert.equal(web.allow, false, 'web → payments: payments ingress has no rule for web');
  const unknown = a.authorizeConnection(out(ORDERS, 'ledger'));
  assert.deepEqual({ allow: unknown.allow, reference: unknown.reference }, { allow: false, reference: 'unknown-service' });
});

test('no policies at all: nothing is protected (the engine says not-protected), the reference says so', () => {
  const a = PolicyAuthorizer.compile({ policies: [], workloads: [] }, 'empty');
  const d = a.authorizeConnection({ direction: 'inbound', source: peer(WEB), destination: PAYMENTS, port: 8443 });
  assert.equal(d.reference, 'not-protected');
  assert.equal(d.allow, true);
});
