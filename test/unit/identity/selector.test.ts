import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileSelector, formatSelector, parseRequirementShorthand, parseSelector, selectorAnchor } from '../../../src/identity/selector.js';
import { IdentityError } from '../../../src/identity/errors.js';

const sel = (raw: unknown) => compileSelector(parseSelector(raw));

test('matchAttributes compares canonical values across types', () => {
  const s = sel({ matchAttributes: { 'build.verified': true, 'vuln.critical': 0, 'build.repo': 'github.com/acme/pay' } });
  assert.equal(s({ 'build.verified': true, 'vuln.critical': 0, 'build.repo': 'github.com/acme/pay' }), true);
  assert.equal(s({ 'build.verified': 'true', 'vuln.critical': '0', 'build.repo': 'github.com/acme/pay' }), true);
  assert.equal(s({ 'build.verified': false, 'vuln.critical': 0, 'build.repo': 'github.com/acme/pay' }), false);
  assert.equal(s({ 'vuln.critical': 0, 'build.repo': 'github.com/acme/pay' }), false, 'missing attribute never equals');
});

test('set operators follow Kubernetes label selectors, including on list attributes', () => {
  const inSel = sel({ matchExpressions: [{ key: 'k8s.namespace', operator: 'In', values: ['a', 'b'] }] });
  assert.equal(inSel({ 'k8s.namespace': 'a' }), true);
  assert.equal(inSel({ 'k8s.namespace': 'c' }), false);
  assert.equal(inSel({}), false);
  const notIn = sel({ matchExpressions: [{ key: 'vuln.cves', operator: 'NotIn', values: ['CVE-2024-1'] }] });
  assert.equal(notIn({ 'vuln.cves': ['CVE-2023-9', 'CVE-2024-1'] }), false);
  assert.equal(notIn({ 'vuln.cves': ['CVE-2023-9'] }), true);
  assert.equal(notIn({}), true, 'NotIn matches an absent key, as in Kubernetes');
  const exists = sel({ matchExpressions: [{ key: 'build.commit', operator: 'Exists' }] });
  assert.equal(exists({ 'build.commit': 'abc' }), true);
  assert.equal(exists({}), false);
  const absent = sel({ matchExpressions: [{ key: 'build.commit', operator: 'DoesNotExist' }] });
  assert.equal(absent({}), true);
  assert.equal(absent({ 'build.commit': 'abc' }), false);
});

test('numeric comparisons never match missing or non-numeric values', () => {
  const lt = sel({ matchExpressions: ['vuln.maxCvss < 7.5'] });
  assert.equal(lt({ 'vuln.maxCvss': 7.4 }), true);
  assert.equal(lt({ 'vuln.maxCvss': 7.5 }), false);
  assert.equal(lt({ 'vuln.maxCvss': '6' }), true);
  assert.equal(lt({}), false);
  assert.equal(lt({ 'vuln.maxCvss': 'high' }), false);
  assert.equal(lt({ 'vuln.maxCvss': '' }), false);
  const gte = sel({ matchExpressions: [{ key: 'vuln.critical', operator: 'Gte', values: [1] }] });
  assert.equal(gte({ 'vuln.critical': 1 }), true);
  assert.equal(gte({ 'vuln.critical': 0 }), false);
});

test('the shorthand covers every operator', () => {
  assert.deepEqual(parseRequirementShorthand('vuln.critical == 0'), { key: 'vuln.critical', operator: 'Equals', values: ['0'] });
  assert.deepEqual(parseRequirementShorthand('vuln.critical != 0'), { key: 'vuln.critical', operator: 'NotEquals', values: ['0'] });
  assert.deepEqual(parseRequirementShorthand('vuln.high >= 3'), { key: 'vuln.high', operator: 'Gte', values: ['3'] });
  assert.deepEqual(parseRequirementShorthand('vuln.high <= 3'), { key: 'vuln.high', operator: 'Lte', values: ['3'] });
  assert.deepEqual(parseRequirementShorthand('vuln.high > 3'), { key: 'vuln.high', operator: 'Gt', values: ['3'] });
  assert.deepEqual(parseRequirementShorthand('build.repo in (a, b)'), { key: 'build.repo', operator: 'In', values: ['a', 'b'] });
  assert.deepEqual(parseRequirementShorthand('build.repo notin (a)'), { key: 'build.repo', operator: 'NotIn', values: ['a'] });
  assert.deepEqual(parseRequirementShorthand('build.commit'), { key: 'build.commit', operator: 'Exists', values: [] });
  assert.deepEqual(parseRequirementShorthand('!build.commit'), { key: 'build.commit', operator: 'DoesNotExist', values: [] });
});

test('invalid selectors fail with ERR_SELECTOR_INVALID and the field path', () => {
  const cases: Array<[unknown, string]> = [
    [{ matchExpressions: [{ key: 'vuln.critical', operator: 'Between', values: [1] }] }, 'selector.matchExpressions[0].operator'],
    [{ matchExpressions: [{ key: 'vuln.critical', operator: 'Gt', values: ['x'] }] }, 'selector.matchExpressions[0]'],
    [{ matchExpressions: [{ key: 'vuln.critical', operator: 'In', values: [] }] }, 'selector.matchExpressions[0]'],
    [{ matchExpressions: [{ key: 'vuln.critical', operator: 'Exists', values: ['1'] }] }, 'selector.matchExpressions[0]'],
    [{ matchAttributes: { NoNamespace: 'x' } }, 'selector.matchAttributes.NoNamespace'],
    [{ matchAttributes: { 'a.b': { nested: true } } }, 'selector.matchAttributes.a.b'],
    [{ matchLabels: { app: 'x' } }, 'selector.matchLabels'],
    ['vuln.critical == 0', 'selector'],
    [{ matchExpressions: ['vuln.critical =='] }, 'selector.matchExpressions[0]'],
  ];
  for (const [raw, path] of cases) {
    assert.throws(() => parseSelector(raw), (e: unknown) => e instanceof IdentityError && e.code === 'ERR_SELECTOR_INVALID' && e.details?.['path'] === path, JSON.stringify(raw));
  }
});

test('anchors expose the first equality for indexing; format renders the shorthand', () => {
  const s = parseSelector({ matchExpressions: ['vuln.critical < 1', 'k8s.namespace in (a, b)'] });
  assert.deepEqual(selectorAnchor(s), { key: 'k8s.namespace', values: ['a', 'b'] });
  assert.equal(selectorAnchor(parseSelector({ matchExpressions: ['vuln.critical < 1'] })), undefined);
  assert.equal(formatSelector(s), 'vuln.critical < 1, k8s.namespace in (a, b)');
  assert.equal(compileSelector(parseSelector(undefined))({}), true);
});
