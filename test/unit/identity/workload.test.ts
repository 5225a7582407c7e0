import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWorkloadIdentity, workloadAttributeView, splitSpiffeId } from '../../../src/identity/workload.js';
import { IdentityError } from '../../../src/identity/errors.js';

test('the attribute view derives Kubernetes facts from the SPIFFE path only when absent', () => {
  const w = parseWorkloadIdentity({ spiffeId: 'spiffe://acme.com/ns/pay/sa/api', attributes: { 'vuln.critical': 0 } }, 1000);
  const view = workloadAttributeView(w);
  assert.equal(view['k8s.namespace'], 'pay');
  assert.equal(view['k8s.serviceAccount'], 'api');
  assert.equal(view['k8s.namespace.label.kubernetes.io/metadata.name'], 'pay');
  assert.equal(view['spiffe.trustDomain'], 'acme.com');
  assert.equal(view['vuln.critical'], 0);
  const attested = parseWorkloadIdentity({ spiffeId: 'spiffe://acme.com/ns/pay/sa/api', attributes: { 'k8s.namespace': { value: 'real', source: 'attestor:k8s_psat', observedAt: 5 } } }, 1000);
  assert.equal(workloadAttributeView(attested)['k8s.namespace'], 'real');
  assert.equal(attested.attributes['k8s.namespace']?.source, 'attestor:k8s_psat');
  assert.equal(w.attributes['vuln.critical']?.observedAt, 1000);
});

test('invalid workload documents fail with ERR_WORKLOAD_INVALID', () => {
  for (const raw of [
    { spiffeId: 'http://x' },
    { spiffeId: 'spiffe://ACME/x' },
    { spiffeId: 'spiffe://acme.com/x', attributes: { bad: 1 } },
    { spiffeId: 'spiffe://acme.com/x', attributes: { 'a.b': { value: 'x', observedAt: 'yesterday' } } },
    { spiffeId: 'spiffe://acme.com/x', attributes: { 'a.b': Infinity } },
    { spiffeId: 'spiffe://acme.com/x', attributes: { 'a.b': [1, 2] } },
    'spiffe://acme.com/x',
  ]) {
    assert.throws(() => parseWorkloadIdentity(raw, 0), (e: unknown) => e instanceof IdentityError && e.code === 'ERR_WORKLOAD_INVALID', JSON.stringify(raw));
  }
  assert.equal(splitSpiffeId('not-an-id'), undefined);
});
