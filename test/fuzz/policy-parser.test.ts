// Fuzzing the policy parser (untrusted input): hostile YAML and random structures must produce
// issues with stable codes — never an exception, a crash or a hang.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parse as parseYaml, stringify } from 'yaml';
import { parsePolicyDocuments, POLICY_ERRORS, importIstioAuthorizationPolicy, importKubernetesNetworkPolicy } from '../../src/policy/index.js';

const CODES = new Set(Object.keys(POLICY_ERRORS));

function checkParses(text: string): void {
  for (const run of [
    () => parsePolicyDocuments(text, { file: 'fuzz.yaml' }),
    () => importKubernetesNetworkPolicy(text),
    () => importIstioAuthorizationPolicy(text),
  ]) {
    const res = run();
    for (const issue of res.issues) assert.ok(CODES.has(issue.code), `unknown code ${issue.code}`);
  }
}

const VALID = `apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: api, namespace: pay}
spec:
  subject: {selector: {matchExpressions: ["vuln.critical == 0"]}}
  ingress:
  - from: [{ipBlocks: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}], spiffeIds: ["spiffe://a.b/ns/*"]}]
    to: [{ports: [80, "90-99"], methods: [GET], paths: ["/x/{*}"]}]
    when: [{key: "request.headers[x-a]", values: ["1"]}]
`;

test('anchor bombs, deep nesting, huge and numerous documents fail with ERR_POLICY_YAML', { timeout: 60_000 }, () => {
  const bomb = ['a: &a [x,x,x,x,x,x,x,x,x,x]'];
  for (let i = 1; i < 12; i++) bomb.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
  const hostile = [
    bomb.join('\n'),
    `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
    `${'- '.repeat(5000)}x`,
    `a: ${'{b: '.repeat(200)}1${'}'.repeat(200)}`,
    'x: 1\n'.repeat(1) + '---\n'.repeat(20_000),
    `key: "${'x'.repeat(5 * 1024 * 1024)}"`,
    'a: !!js/function "function(){}"',
    'a: !<tag:yaml.org,2002:js/regexp> /x/',
    '? [complex, key]\n: v',
    '<<: {a: 1}',
    'a: 1\na: 2',
    '\t- tab',
    '%YAML 9.9\n---\na: 1',
    '&a [*a]',
    `a: ${'["]]", '.repeat(3000)}x${']'.repeat(3000)}`,
    `a: ${"['don''t]', ".repeat(3000)}x${']'.repeat(3000)}`,
    `${Array.from({ length: 3000 }, (_, i) => `${' '.repeat(i)}k:`).join('\n')} x`,
  ];
  for (const text of hostile) {
    const { issues, policies } = parsePolicyDocuments(text);
    assert.equal(policies.length, 0);
    assert.ok(issues.length > 0, text.slice(0, 40));
    for (const i of issues) assert.ok(CODES.has(i.code));
  }
});

test('random text never crashes the parser', { timeout: 60_000 }, () => {
  fc.assert(fc.property(fc.string({ maxLength: 400 }), (s) => checkParses(s)), { numRuns: 400 });
  fc.assert(fc.property(fc.string({ unit: fc.constantFrom(...'{}[]:-,&*!|>\'"#%@`?\n \t.'.split('')), maxLength: 200 }), (s) => checkParses(s)), { numRuns: 400 });
});

test('wrong types anywhere in a valid document give located issues', { timeout: 60_000 }, () => {
  const wrongValue = fc.oneof(fc.constant(null), fc.integer(), fc.double(), fc.boolean(), fc.string({ maxLength: 20 }), fc.constant([]), fc.constant({}), fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }));
  const base = parsePolicyDocuments(VALID).issues;
  assert.deepEqual(base, []);
  const original = parseYaml(VALID) as unknown;
  const paths: Array<Array<string | number>> = [];
  const walk = (v: unknown, p: Array<string | number>): void => {
    paths.push(p);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
  };
  walk(original, []);
  fc.assert(fc.property(fc.constantFrom(...paths.filter((p) => p.length > 0)), wrongValue, (path, value) => {
    const copy = JSON.parse(JSON.stringify(original)) as Record<string, unknown>;
    let at: Record<string | number, unknown> = copy;
    for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
    at[path[path.length - 1]!] = value;
    const res = parsePolicyDocuments(stringify(copy));
    for (const i of res.issues) assert.ok(CODES.has(i.code));
    // A document either parses whole or contributes nothing.
    assert.ok(res.policies.length === 0 || res.issues.length === 0);
  }), { numRuns: 500 });
});

test('random JSON structures shaped like policies never crash any entry point', { timeout: 60_000 }, () => {
  const { letrec } = fc;
  const tree = letrec((tie) => ({
    node: fc.oneof({ depthSize: 'small' }, fc.string({ maxLength: 10 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(fc.constantFrom('apiVersion', 'kind', 'metadata', 'spec', 'name', 'ingress', 'egress', 'from', 'to', 'rules', 'source', 'operation', 'selector', 'podSelector', 'ports', 'when', 'key', 'values', 'cidr', 'except', 'matchLabels', 'matchExpressions', 'cases', 'expect'), tie('node'), { maxKeys: 4 })),
  })).node;
  const kinds = fc.constantFrom(
    ['ward.dev/v1alpha1', 'AccessPolicy'], ['ward.dev/v1alpha1', 'RuntimePolicy'], ['ward.dev/v1alpha1', 'MutualTLSPolicy'], ['ward.dev/v1alpha1', 'PolicyTest'], ['ward.dev/v1alpha1', 'Workload'],
    ['networking.k8s.io/v1', 'NetworkPolicy'], ['security.istio.io/v1', 'AuthorizationPolicy'], ['v1', 'List'],
  );
  fc.assert(fc.property(kinds, tree, tree, ([apiVersion, kind], metadata, spec) => {
    checkParses(stringify({ apiVersion, kind, metadata, spec, items: [{ apiVersion, kind, metadata, spec }] }));
  }), { numRuns: 600 });
});

