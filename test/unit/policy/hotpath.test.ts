// The first-decision fast path (ADR 0024): selector memo, interned selectors and results,
// per-class connection plans and the integer-keyed decision cache must never change a decision.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compilePolicies, evaluateConnection, parsePolicyDocuments, type AccessPolicy, type ConnectionQuery, type Policy, type PolicyWorkload } from '../../../src/policy/index.js';
import { SelectorMemo, SelectorTable } from '../../../src/policy/compiled.js';
import { traceConnection } from '../../../src/policy/evaluate.js';
import { parseSelector } from '../../../src/identity/selector.js';
import { NaivePolicySet, naiveEvaluateConnection } from '../../../bench/policy/naive.js';

test('SelectorMemo computes each selector once per peer view and keeps outcomes apart', () => {
  const memo = new SelectorMemo(40);
  let calls = 0;
  const yes = () => (calls++, true);
  const no = () => (calls++, false);
  for (let round = 0; round < 3; round++) {
    for (let id = 0; id < 40; id++) assert.equal(memo.test(id, id % 3 === 0 ? yes : no, {}), id % 3 === 0);
  }
  assert.equal(calls, 40, 'each of the 40 selectors evaluated exactly once');
  // Ids the memo was not sized for are evaluated every time (never mixed into another id's bits).
  assert.equal(memo.test(40, yes, {}), true);
  assert.equal(memo.test(40, no, {}), false);
  assert.equal(calls, 42);
});

test('SelectorTable gives identical selectors one id and different ones different ids', () => {
  const table = new SelectorTable();
  const a = table.intern(parseSelector({ matchExpressions: ['vuln.critical > 2'] }));
  const b = table.intern(parseSelector({ matchExpressions: ['vuln.critical > 2'] }));
  const c = table.intern(parseSelector({ matchExpressions: ['vuln.critical >= 2'] }));
  const d = table.intern(parseSelector({ matchExpressions: ['k8s.label.app == a', 'vuln.critical > 2'] }));
  const e = table.intern(parseSelector({ matchExpressions: ['vuln.critical > 2', 'k8s.label.app == a'] }));
  assert.equal(a.id, b.id);
  assert.equal(a.predicate, b.predicate);
  assert.equal(new Set([a.id, c.id, d.id, e.id]).size, 4);
  assert.equal(table.size, 4);
  assert.equal(a.predicate({ 'vuln.critical': 3 }), true);
  assert.equal(c.predicate({ 'vuln.critical': 2 }), true);
  assert.equal(a.predicate({ 'vuln.critical': 2 }), false);
});

// Random worlds: workloads whose attributes change, disappear and come back, policies whose rules
// use every peer shape (single selector = the memo fast path, mixed peers, SPIFFE IDs, namespaces,
// conditions), many ports (more than the 64 fast-cache port slots) and HTTP-only fields.
const NS = ['a', 'b'];
const APPS = ['web', 'api', 'db'];
const attr = (value: string | number | boolean) => ({ value, source: 't', observedAt: 1 });
const workloadArb = fc.record({ ns: fc.constantFrom(...NS), app: fc.constantFrom(...APPS), crit: fc.integer({ min: 0, max: 3 }), verified: fc.boolean() });
type W = { ns: string; app: string; crit: number; verified: boolean };
const IDS = ['spiffe://t.dev/ns/a/sa/w0', 'spiffe://t.dev/ns/a/sa/w1', 'spiffe://t.dev/ns/b/sa/w2', 'spiffe://t.dev/ns/b/sa/w3', 'spiffe://t.dev/ns/a/sa/w4'];
const toWorkload = (i: number, w: W): PolicyWorkload => ({
  spiffeId: IDS[i]!,
  attributes: { 'k8s.namespace': attr(w.ns), 'k8s.label.app': attr(w.app), 'vuln.critical': attr(w.crit), 'build.verified': attr(w.verified) },
  ips: [`10.0.0.${i + 1}`],
});

const selectors = ['vuln.critical == 0', 'vuln.critical > 1', 'build.verified == true', 'k8s.label.app in (web, api)', 'k8s.namespace == b'].map((e) => parseSelector({ matchExpressions: [e] }));
const peer = fc.oneof(
  fc.record({ selector: fc.constantFrom(...selectors) }),
  fc.record({ selector: fc.constantFrom(...selectors), namespaces: fc.subarray(NS, { minLength: 1 }) }),
  fc.record({ spiffeIds: fc.constantFrom(['spiffe://t.dev/ns/a/*'], ['spiffe://t.dev/ns/b/sa/w2']) }),
  fc.record({ notNamespaces: fc.subarray(NS, { minLength: 1 }) }),
  fc.record({ ipBlocks: fc.constant([{ cidr: '10.0.0.0/30', except: [] }]) }),
  fc.constant({ unauthenticated: true }),
);
const port = fc.constantFrom(80, 443, 8080, 9000);
const operation = fc.oneof(
  fc.record({ ports: fc.array(port, { minLength: 1, maxLength: 2 }).map((ps) => ps.map((p) => ({ port: p, endPort: p === 9000 ? 9100 : p, protocol: 'TCP' as const }))) }),
  fc.record({ notPorts: fc.constant([{ port: 8080, endPort: 8080, protocol: 'TCP' as const }]) }),
  fc.record({ ports: fc.constant([{ port: 80, endPort: 80, protocol: 'TCP' as const }]), methods: fc.constant(['GET']) }),
);
const condition = fc.oneof(fc.record({ key: fc.constant('source.namespace'), values: fc.subarray(NS, { minLength: 1 }) }), fc.record({ key: fc.constant('destination.port'), values: fc.constant(['443']) }));
const rule = fc.record({ peers: fc.array(peer, { minLength: 1, maxLength: 2 }), operations: fc.array(operation, { maxLength: 2 }), when: fc.array(condition, { maxLength: 1 }) }, { requiredKeys: [] });
const subject = fc.oneof(
  fc.constant({ selector: parseSelector(undefined) }),
  fc.constantFrom(...NS).map((ns) => ({ selector: parseSelector({ matchAttributes: { 'k8s.namespace': ns } }) })),
  fc.constantFrom(...APPS).map((app) => ({ selector: parseSelector({ matchExpressions: [`k8s.label.app == ${app}`, 'vuln.critical < 3'] }) })),
);
let counter = 0;
const policyArb: fc.Arbitrary<AccessPolicy> = fc
  .record({ action: fc.constantFrom('ALLOW', 'DENY', 'AUDIT'), mode: fc.constantFrom('enforce', 'enforce', 'dry-run'), subject, ingress: fc.array(rule, { maxLength: 3 }), egress: fc.option(fc.array(rule, { maxLength: 2 }), { nil: undefined }) })
  .map((p) => {
    const { egress, ...rest } = p;
    return { kind: 'AccessPolicy' as const, name: `h${counter++}`, ...rest, ...(egress ? { egress } : {}) } as AccessPolicy;
  });

// Many distinct port keys: the first 64 get fast-cache slots, the rest use the general cache.
const portArb = fc.oneof(port, fc.integer({ min: 9000, max: 9120 }));
const source = fc.oneof(
  fc.integer({ min: 0, max: IDS.length - 1 }).map((i) => ({ spiffeId: IDS[i]! })),
  fc.integer({ min: 0, max: IDS.length - 1 }).map((i) => ({ spiffeId: IDS[i]!, ip: `10.0.0.${i + 1}` })),
  fc.constant({ ip: '10.0.0.2' }),
  fc.constant({ unauthenticated: true as const }),
);
const queryArb: fc.Arbitrary<ConnectionQuery> = fc.record({
  source,
  destination: fc.integer({ min: 0, max: IDS.length - 1 }).map((i) => ({ spiffeId: IDS[i]! })),
  port: portArb,
  l7: fc.constantFrom('tcp' as const, 'http' as const),
  protocol: fc.constantFrom('TCP' as const, 'TCP' as const, 'UDP' as const),
});
const step = fc.oneof(
  { weight: 6, arbitrary: fc.array(queryArb, { minLength: 1, maxLength: 6 }).map((qs) => ({ op: 'query' as const, qs })) },
  { weight: 2, arbitrary: fc.record({ i: fc.integer({ min: 0, max: IDS.length - 1 }), w: workloadArb }).map((u) => ({ op: 'update' as const, ...u })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: IDS.length - 1 }).map((i) => ({ op: 'remove' as const, i })) },
);

test('a long-lived set (memo, plans, caches warm; attributes changing) decides like a fresh compile, a full scan and a trace', () => {
  fc.assert(
    fc.property(fc.array(policyArb, { maxLength: 6 }), fc.array(workloadArb, { minLength: IDS.length, maxLength: IDS.length }), fc.array(step, { minLength: 1, maxLength: 14 }), (policies: Policy[], initial: W[], steps) => {
      const current = new Map<number, PolicyWorkload>(initial.map((w, i) => [i, toWorkload(i, w)]));
      const set = compilePolicies({ policies, workloads: [...current.values()] });
      for (const s of steps) {
        if (s.op === 'update') {
          current.set(s.i, toWorkload(s.i, s.w));
          set.updateWorkload(current.get(s.i)!);
          continue;
        }
        if (s.op === 'remove') {
          current.delete(s.i);
          set.removeWorkload(IDS[s.i]!);
          continue;
        }
        const workloads = [...current.values()];
        const fresh = compilePolicies({ policies, workloads });
        const naive = new NaivePolicySet(policies, workloads);
        // Twice: the second round is answered from the caches.
        for (const q of [...s.qs, ...s.qs]) {
          const d = evaluateConnection(set, q);
          assert.ok(Object.isFrozen(d));
          assert.deepEqual(d, evaluateConnection(fresh, q));
          assert.deepEqual(d, traceConnection(set, q, []));
          assert.deepEqual(d, naiveEvaluateConnection(naive, q));
        }
      }
    }),
    { numRuns: 120 },
  );
});

test('shared results are frozen and identical decisions are one object', () => {
  const policies: Policy[] = [
    { kind: 'AccessPolicy', name: 'allow-web', mode: 'enforce', action: 'ALLOW', subject: { selector: parseSelector({ matchAttributes: { 'k8s.label.app': 'api' } }) }, ingress: [{ peers: [{ selector: selectors[3]! }], operations: [{ ports: [{ port: 80, endPort: 80, protocol: 'TCP' }] }] }] },
    { kind: 'AccessPolicy', name: 'audit-crit', mode: 'enforce', action: 'AUDIT', subject: { selector: parseSelector(undefined) }, ingress: [{ peers: [{ selector: selectors[1]! }] }] },
  ];
  const ws = [toWorkload(0, { ns: 'a', app: 'web', crit: 2, verified: true }), toWorkload(1, { ns: 'a', app: 'web', crit: 2, verified: true }), toWorkload(2, { ns: 'b', app: 'api', crit: 0, verified: true })];
  const set = compilePolicies({ policies, workloads: ws });
  const a = evaluateConnection(set, { source: { spiffeId: IDS[0]! }, destination: { spiffeId: IDS[2]! }, port: 80 });
  const b = evaluateConnection(set, { source: { spiffeId: IDS[1]! }, destination: { spiffeId: IDS[2]! }, port: 80 });
  assert.deepEqual([a.allowed, a.policy, a.audit.map((h) => h.policy)], [true, 'allow-web', ['audit-crit']]);
  assert.equal(a, b, 'the same outcome for two sources is one shared, frozen decision');
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.audit) && Object.isFrozen(a.audit[0]) && Object.isFrozen(a.ingress));
  // An attribute change of one source takes effect on its next decision only.
  set.updateWorkload(toWorkload(0, { ns: 'a', app: 'db', crit: 0, verified: true }));
  const c = evaluateConnection(set, { source: { spiffeId: IDS[0]! }, destination: { spiffeId: IDS[2]! }, port: 80 });
  assert.deepEqual([c.allowed, c.reason, c.audit.length], [false, 'default-deny', 0]);
  assert.equal(evaluateConnection(set, { source: { spiffeId: IDS[1]! }, destination: { spiffeId: IDS[2]! }, port: 80 }), b);
});

test('transient entries (peers without a Workload document) are memoised, and a later table entry for the same ID takes over', () => {
  const TD = 'spiffe://td';
  const parsed = parsePolicyDocuments(`apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: { name: db }
spec:
  subject: { spiffeIds: ["${TD}/ns/prod/sa/db"] }
  ingress:
    - from: [{ selector: { matchAttributes: { k8s.namespace: prod }, matchExpressions: [{ key: vuln.critical, operator: Equals, values: [0] }] } }]
      to: [{ ports: [5432] }]
`);
  assert.deepEqual(parsed.issues, []);
  const set = compilePolicies({ policies: parsed.policies, workloads: [] });
  const q: ConnectionQuery = { source: { spiffeId: `${TD}/ns/prod/sa/api` }, destination: { spiffeId: `${TD}/ns/prod/sa/db` }, port: 5432 };
  // Without attributes from a document, vuln.critical is unknown: denied, the same every time.
  const first = evaluateConnection(set, q);
  assert.equal(first.allowed, false);
  assert.equal(set.transientEntry(`${TD}/ns/prod/sa/api`), set.transientEntry(`${TD}/ns/prod/sa/api`), 'memoised');
  for (let i = 0; i < 3; i++) assert.equal(evaluateConnection(set, q).allowed, false);
  // The workload gains a document with vuln.critical 0: the table entry is used, not the memo.
  const observedAt = '2026-11-24T00:00:00Z';
  set.updateWorkload({ spiffeId: `${TD}/ns/prod/sa/api`, attributes: { 'vuln.critical': { value: 0, source: 'scan:trivy', observedAt } } } as unknown as PolicyWorkload);
  assert.equal(evaluateConnection(set, q).allowed, true);
  // Removed again: back to the derived attributes only.
  set.removeWorkload(`${TD}/ns/prod/sa/api`);
  assert.equal(evaluateConnection(set, q).allowed, false);
  // The memo is bounded: many distinct peers do not grow it without limit (and decisions stay right).
  for (let i = 0; i < 5000; i++) assert.equal(evaluateConnection(set, { ...q, source: { spiffeId: `${TD}/ns/prod/sa/p${i}` } }).allowed, false);
});
