import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePath } from '../../../src/policy/path.js';

test('normalisation removes dot segments, decodes unreserved escapes, merges slashes, strips the query', () => {
  const ok: Array<[string, string]> = [
    ['/a/./b/../c', '/a/c'],
    ['/a/b/..', '/a/'],
    ['/../../etc/passwd', '/etc/passwd'],
    ['/%2e%2e/%2E%2e/admin', '/admin'],
    ['/%61dmin', '/admin'],
    ['/%7Euser', '/~user'],
    ['/a%20b', '/a%20b'],
    ['/a%e2%82%ac', '/a%E2%82%AC'],
    ['//a///b', '/a/b'],
    ['\\a\\..\\admin', '/admin'],
    ['/a?x=/../admin', '/a'],
    ['/a#frag', '/a'],
    ['/', '/'],
  ];
  for (const [raw, want] of ok) assert.deepEqual(normalizePath(raw), { ok: true, path: want }, raw);
  assert.deepEqual(normalizePath('//a//b', { mergeSlashes: false }), { ok: true, path: '//a//b' });
});

test('unsafe paths are refused, never guessed', () => {
  for (const raw of ['/a%2Fb', '/a%2fb', '/a%5Cb', '/a%00', '/a%0a', '/a%', '/a%g1', 'a/b', '', '*', 'http://x/a', '/a\u0000b', '/a\nb', `/${'a'.repeat(9000)}`]) {
    const r = normalizePath(raw);
    assert.equal(r.ok, false, raw);
  }
});

test('normalisation is idempotent', () => {
  for (const raw of ['/a/./b/../c', '/%61/%2e/x', '//x//y/..', '/a%20b/%7e']) {
    const once = normalizePath(raw);
    assert.ok(once.ok);
    assert.deepEqual(normalizePath(once.path), once);
  }
});
