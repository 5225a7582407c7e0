// Fuzzing request path normalisation and the request evaluator with hostile paths, methods and
// headers: no exception, idempotent output, and nothing that escapes a protected prefix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { normalizePath } from '../../src/policy/path.js';
import { compilePolicies, evaluateRequest, parsePolicyDocuments } from '../../src/policy/index.js';
import { compileGlob, compilePathPattern, parseCidr, parseIp } from '../../src/policy/match.js';

const pathChars = fc.constantFrom(...'/\\.%2e2E5c5C2f2F0aA?#~-_ %00'.split(''), '%2e', '%2F', '%5c', '..', '//', '%25', '%u002e', '\u0000', '\u00e9', '\uffff');
const hostilePath = fc.array(pathChars, { maxLength: 40 }).map((xs) => `/${xs.join('')}`);

test('normalizePath never throws, is idempotent and yields only safe absolute paths', { timeout: 60_000 }, () => {
  fc.assert(fc.property(fc.oneof(hostilePath, fc.string({ maxLength: 200 }), fc.string({ unit: "binary", maxLength: 100 })), (raw) => {
    const r = normalizePath(raw);
    if (!r.ok) {
      assert.equal(typeof r.reason, 'string');
      return;
    }
    assert.ok(r.path.startsWith('/'));
    assert.ok(!/(^|\/)\.\.?(\/|$)/.test(r.path), `dot segment left in ${r.path}`);
    assert.ok(!r.path.includes('\\') && !r.path.includes('?') && !r.path.includes('//'));
    assert.ok(!/%(2[eE]|2[fF]|5[cC]|[46][1-9a-fA-F]|[57][0-9aA])/.test(r.path), `unreserved or separator escape left in ${r.path}`);
    assert.deepEqual(normalizePath(r.path), r);
  }), { numRuns: 3000 });
});

test('no hostile spelling of /admin reaches an ALLOW for /public/*', { timeout: 60_000 }, () => {
  const { policies, workloads } = parsePolicyDocuments(`
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: public}
spec:
  ingress: [{to: [{paths: ["/public/*"]}]}]
---
apiVersion: ward.dev/v1alpha1
kind: AccessPolicy
metadata: {name: no-admin}
spec:
  action: DENY
  ingress: [{to: [{paths: ["/admin", "/admin/*"]}]}]
---
apiVersion: ward.dev/v1alpha1
kind: Workload
metadata: {name: s}
spec: {spiffeId: "spiffe://t.dev/s"}
`);
  const set = compilePolicies({ policies, workloads });
  const spellings = fc.array(fc.constantFrom('/public', '/..', '/.', '/%2e%2e', '/%2E.', '//', '\\..', '/%61dmin', '/admin', '/ADMIN', '/x'), { minLength: 1, maxLength: 8 }).map((xs) => xs.join(''));
  fc.assert(fc.property(spellings, fc.constantFrom('GET', 'POST', 'get', 'G ET', ''), fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }), (path, method, headers) => {
    const d = evaluateRequest(set, { source: { spiffeId: 'spiffe://t.dev/c' }, destination: { spiffeId: 'spiffe://t.dev/s' }, port: 80, method, path, headers });
    const norm = normalizePath(path);
    if (d.allowed) {
      assert.ok(norm.ok && norm.path.startsWith('/public/'), `${path} allowed as ${norm.ok ? norm.path : '?'}`);
      assert.ok(!(norm.ok && (norm.path === '/admin' || norm.path.startsWith('/admin/'))));
    }
  }), { numRuns: 2000 });
});

test('pattern, glob, IP and CIDR parsers reject or accept, never throw anything but RangeError', () => {
  fc.assert(fc.property(fc.string({ maxLength: 60 }), (s) => {
    for (const f of [compilePathPattern, compileGlob, parseCidr]) {
      try {
        const out = f(s);
        if (typeof out === 'function') (out as (x: string) => boolean)(s);
      } catch (e) {
        assert.ok(e instanceof RangeError, String(e));
      }
    }
    parseIp(s);
  }), { numRuns: 2000 });
});
