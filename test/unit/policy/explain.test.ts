import { test } from 'node:test';
import assert from 'node:assert/strict';
import { explain, parseDestinationRef, parseSourceRef, PolicyError } from '../../../src/policy/index.js';
import { access, build, id, workloadsYaml } from './fixtures.js';

const YAML = [
  workloadsYaml([{ ns: 'a', sa: 'web' }, { ns: 'b', sa: 'api' }]),
  access('api-allow', { subject: { selector: { matchAttributes: { 'k8s.namespace': 'b' } } }, ingress: [{ from: [{ namespaces: ['c'] }] }, { from: [{ namespaces: ['a'] }], to: [{ ports: [80] }] }] }),
  access('api-dry-deny', { mode: 'dry-run', action: 'DENY', subject: { selector: { matchAttributes: { 'k8s.namespace': 'b' } } }, ingress: [{ to: [{ ports: [80] }] }] }),
].join('\n---\n');

test('explain names the deciding rule, every considered rule and the dry-run outcome', () => {
  const { set } = build(YAML);
  const e = explain(set, { source: parseSourceRef(id('a', 'web')), destination: parseDestinationRef(id('b', 'api')), port: 80 });
  assert.deepEqual([e.decision.allowed, e.decision.policy, e.decision.rule], [true, 'api-allow', 1]);
  assert.deepEqual([e.decision.dryRun?.allowed, e.decision.dryRun?.policy], [false, 'api-dry-deny']);
  assert.deepEqual(e.policies.map((p) => [p.policy, p.direction, p.rules.map((r) => r.failed ?? 'match')]), [
    ['api-allow', 'ingress', ['peers', 'match']],
    ['api-dry-deny', 'ingress', ['match']],
  ]);
  assert.match(e.summary[0]!, /^decision: ALLOW by api-allow rule 1 \(ALLOW, enforce\)/);
  assert.ok(e.summary.some((l) => l.includes('dry-run: would DENY by api-dry-deny')));
  const denied = explain(set, { source: parseSourceRef(id('a', 'web')), destination: parseDestinationRef(id('b', 'api')), port: 81 });
  assert.match(denied.summary[0]!, /no rule allows \(default deny on ingress\)/);
});

test('source and destination references are parsed strictly', () => {
  assert.deepEqual(parseSourceRef('unauthenticated'), { unauthenticated: true });
  assert.deepEqual(parseSourceRef('::1'), { ip: '::1' });
  for (const bad of ['web', '10.0.0.300', '']) assert.throws(() => parseSourceRef(bad), (e: unknown) => e instanceof PolicyError && e.code === 'ERR_POLICY_QUERY');
  assert.throws(() => parseDestinationRef('unauthenticated'), PolicyError);
});
