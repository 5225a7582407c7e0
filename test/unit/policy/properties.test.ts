// Property-based tests of the semantics, over random policy sets, workloads and queries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compilePolicies, evaluateConnection, evaluateRequest, type AccessPolicy, type Policy, type PolicyWorkload } from '../../../src/policy/index.js';
import { parseSelector } from '../../../src/identity/selector.js';
import { traceConnection } from '../../../src/policy/evaluate.js';
import { NaivePolicySet, naiveEvaluateConnection } from '../../../bench/policy/naive.js';

const NAMESPACES = ['a', 'b', 'c'];
const WORKLOADS: PolicyWorkload[] = [
  ['a', 'web', 0, '10.0.0.1'], ['a', 'job', 3, '10.0.0.2'], ['b', 'api', 0, '10.0.1.1'], ['c', 'db', 1, '10.0.2.1'],
].map(([ns, sa, crit, ip]) => ({
  spiffeId: `spiffe://t.dev/ns/${ns}/sa/${sa}`,
  attributes: { 'vuln.critical': { value: crit as number, source: 'scan', observedAt: 1 }, 'k8s.label.app': { value: sa as string, source: 'k8s', observedAt: 1 } },
  ips: [ip as string],
}));

const sources = fc.oneof(
  fc.constantFrom(...WORKLOADS.map((w) => ({ spiffeId: w.spiffeId }))),
  fc.constantFrom({ ip: '10.0.0.1' }, { ip: '192.168.1.1' }),
  fc.constant({ unauthenticated: true as const }),
);
const destinations = fc.constantFrom(...WORKLOADS.map((w) => ({ spiffeId: w.spiffeId })));
const ports = fc.constantFrom(80, 443, 5432);

const peer = fc.oneof(
  fc.record({ namespaces: fc.subarray(NAMESPACES, { minLength: 1 }) }),
  fc.record({ notNamespaces: fc.subarray(NAMESPACES, { minLength: 1 }) }),
  fc.record({ spiffeIds: fc.constantFrom(['spiffe://t.dev/ns/a/*'], ['spiffe://t.dev/ns/b/sa/api'], ['*']) }),
  fc.record({ selector: fc.constantFrom(parseSelector({ matchExpressions: ['vuln.critical == 0'] }), parseSelector({ matchExpressions: ['vuln.critical > 0'] })) }),
  fc.record({ ipBlocks: fc.constantFrom([{ cidr: '10.0.0.0/16', except: [] }], [{ cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] }]) }),
  fc.constant({ unauthenticated: true }),
);
const operation = fc.oneof(
  fc.record({ ports: fc.subarray([80, 443, 5432], { minLength: 1 }).map((ps) => ps.map((p) => ({ port: p, endPort: p, protocol: 'TCP' as const }))) }),
  fc.record({ methods: fc.subarray(['GET', 'POST'], { minLength: 1 }) }),
  fc.record({ paths: fc.constantFrom(['/admin*'], ['/api/{*}'], ['/']) }),
);
const rule = fc.record({ peers: fc.array(peer, { maxLength: 2 }), operations: fc.array(operation, { maxLength: 2 }) }, { requiredKeys: [] });
const subject = fc.oneof(
  fc.constant({ selector: parseSelector(undefined) }),
  fc.constantFrom(...NAMESPACES).map((ns) => ({ selector: parseSelector({ matchAttributes: { 'k8s.namespace': ns } }) })),
);

let counter = 0;
const policy = (action: fc.Arbitrary<'ALLOW' | 'DENY' | 'AUDIT'>, mode: fc.Arbitrary<'enforce' | 'dry-run'> = fc.constantFrom('enforce', 'dry-run')): fc.Arbitrary<AccessPolicy> =>
  fc.record({ action, mode, subject, ingress: fc.array(rule, { maxLength: 3 }), egress: fc.option(fc.array(rule, { maxLength: 2 }), { nil: undefined }) }).map((p) => {
    const { egress, ...rest } = p;
    return { kind: 'AccessPolicy', name: `p${counter++}`, ...rest, ...(egress ? { egress } : {}) };
  });
const policies = fc.array(policy(fc.constantFrom('ALLOW', 'DENY', 'AUDIT')), { maxLength: 5 });
const query = fc.record({ source: sources, destination: destinations, port: ports, l7: fc.constantFrom('tcp' as const, 'http' as const) });
const request = fc.record({ source: sources, destination: destinations, port: ports, method: fc.constantFrom('GET', 'POST'), path: fc.constantFrom('/', '/admin/x', '/api/v1', '/a/../admin') });

// Every destination is protected by a mesh-wide ALLOW that allows nothing, so adding an ALLOW can only add.
const PROTECT_ALL: AccessPolicy = { kind: 'AccessPolicy', name: 'protect-all', mode: 'enforce', action: 'ALLOW', subject: { selector: parseSelector(undefined) }, ingress: [], egress: [] };
const compile = (ps: readonly Policy[]) => compilePolicies({ policies: ps, workloads: WORKLOADS });
const RUNS = { numRuns: 150 };

test('adding a DENY policy never widens access', () => {
  fc.assert(fc.property(policies, policy(fc.constant('DENY'), fc.constant('enforce')), fc.array(query, { minLength: 1, maxLength: 8 }), (ps, deny, qs) => {
    const before = compile(ps);
    const after = compile([...ps, deny]);
    for (const q of qs) if (evaluateConnection(after, q).allowed) assert.equal(evaluateConnection(before, q).allowed, true);
  }), RUNS);
});

test('adding an ALLOW policy never narrows access of protected workloads', () => {
  fc.assert(fc.property(policies, policy(fc.constant('ALLOW'), fc.constant('enforce')), fc.array(request, { minLength: 1, maxLength: 8 }), (ps, allow, qs) => {
    const before = compile([PROTECT_ALL, ...ps]);
    const after = compile([PROTECT_ALL, ...ps, allow]);
    for (const q of qs) if (evaluateRequest(before, q).allowed) assert.equal(evaluateRequest(after, q).allowed, true);
  }), RUNS);
});

test('dry-run policies never change a decision, only its dryRun verdict', () => {
  fc.assert(fc.property(policies, fc.array(policy(fc.constantFrom('ALLOW', 'DENY', 'AUDIT'), fc.constant('dry-run')), { minLength: 1, maxLength: 3 }), fc.array(query, { minLength: 1, maxLength: 8 }), (ps, dry, qs) => {
    const base = compile(ps);
    const withDry = compile([...ps, ...dry]);
    for (const q of qs) {
      const a = evaluateConnection(base, q);
      const b = evaluateConnection(withDry, q);
      assert.deepEqual([b.allowed, b.reason, b.policy, b.rule, b.audit], [a.allowed, a.reason, a.policy, a.rule, a.audit]);
    }
  }), RUNS);
});

test('AUDIT policies never change a decision', () => {
  fc.assert(fc.property(policies, policy(fc.constant('AUDIT'), fc.constant('enforce')), fc.array(request, { minLength: 1, maxLength: 8 }), (ps, audit, qs) => {
    const base = compile(ps);
    const withAudit = compile([...ps, audit]);
    for (const q of qs) assert.equal(evaluateRequest(withAudit, q).allowed, evaluateRequest(base, q).allowed);
  }), RUNS);
});

test('the indexed, cached evaluator agrees with a full scan and with an uncached trace', () => {
  fc.assert(fc.property(policies, fc.array(query, { minLength: 1, maxLength: 12 }), (ps, qs) => {
    const set = compile(ps);
    const naive = new NaivePolicySet(ps, WORKLOADS);
    for (const q of [...qs, ...qs]) {
      const d = evaluateConnection(set, q);
      assert.deepEqual(d, naiveEvaluateConnection(naive, q));
      assert.deepEqual(d, traceConnection(set, q, []));
    }
  }), RUNS);
});

test('an attribute update gives the same decisions as recompiling with the new attributes', () => {
  fc.assert(fc.property(policies, fc.constantFrom(...WORKLOADS.map((_, i) => i)), fc.integer({ min: 0, max: 4 }), fc.array(query, { minLength: 1, maxLength: 8 }), (ps, which, crit, qs) => {
    const set = compile(ps);
    for (const q of qs) evaluateConnection(set, q); // warm the caches
    const updated = WORKLOADS.map((w, i) => (i === which ? { ...w, attributes: { ...w.attributes, 'vuln.critical': { value: crit, source: 'scan', observedAt: 2 } } } : w));
    set.updateWorkload(updated[which]!);
    const fresh = compilePolicies({ policies: ps, workloads: updated });
    for (const q of qs) assert.deepEqual(evaluateConnection(set, q), evaluateConnection(fresh, q));
  }), RUNS);
});
