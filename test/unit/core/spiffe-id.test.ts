import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_SPIFFE_ID_BYTES, parseSpiffeId, parseTrustDomain, tryParseSpiffeId, trustDomainId } from '../../../src/core/spiffe-id.js';
import { SpiffeIdError } from '../../../src/core/errors.js';

const codeOf = (text: string): string => {
  try {
    parseSpiffeId(text);
    return 'OK';
  } catch (error) {
    assert.ok(error instanceof SpiffeIdError, `unexpected error type for ${text}`);
    return error.code;
  }
};

test('valid IDs parse into trust domain and path', () => {
  const cases: [string, string, string][] = [
    ['spiffe://example.org', 'example.org', ''],
    ['spiffe://example.org/ns/default/sa/web', 'example.org', '/ns/default/sa/web'],
    ['spiffe://trust-domain.example_1/Path.With-Mixed_Case/0', 'trust-domain.example_1', '/Path.With-Mixed_Case/0'],
    ['spiffe://1.2.3.4/x', '1.2.3.4', '/x'],
    ['spiffe://example.org/...', 'example.org', '/...'],
    ['spiffe://example.org/.a/a.', 'example.org', '/.a/a.'],
  ];
  for (const [text, td, path] of cases) {
    const id = parseSpiffeId(text);
    assert.equal(id.trustDomain, td, text);
    assert.equal(id.path, path, text);
    assert.equal(id.toString(), text);
    assert.equal(JSON.stringify(id), JSON.stringify(text));
  }
  assert.deepEqual(parseSpiffeId('spiffe://example.org/a/b').segments, ['a', 'b']);
  assert.ok(Object.isFrozen(parseSpiffeId('spiffe://example.org/a')));
});

test('each violated rule has its own stable code', () => {
  const cases: [string, string][] = [
    ['', 'ERR_SPIFFE_ID_EMPTY'],
    ['example.org/a', 'ERR_SPIFFE_ID_SCHEME'],
    ['https://example.org/a', 'ERR_SPIFFE_ID_SCHEME'],
    ['spiffe:/example.org/a', 'ERR_SPIFFE_ID_SCHEME'],
    ['spiffe:example.org', 'ERR_SPIFFE_ID_SCHEME'],
    ['SPIFFE://example.org/a', 'ERR_SPIFFE_ID_SCHEME'],
    ['Spiffe://example.org/a', 'ERR_SPIFFE_ID_SCHEME'],
    [' spiffe://example.org/a', 'ERR_SPIFFE_ID_SCHEME'],
    ['spiffe://', 'ERR_SPIFFE_ID_TRUST_DOMAIN_MISSING'],
    ['spiffe:///path', 'ERR_SPIFFE_ID_TRUST_DOMAIN_MISSING'],
    ['spiffe://Example.org/a', 'ERR_SPIFFE_ID_TRUST_DOMAIN_CHARS'],
    ['spiffe://exa mple.org', 'ERR_SPIFFE_ID_TRUST_DOMAIN_CHARS'],
    ['spiffe://exämple.org', 'ERR_SPIFFE_ID_TRUST_DOMAIN_CHARS'],
    ['spiffe://[::1]/a', 'ERR_SPIFFE_ID_PORT'],
    ['spiffe://user@example.org/a', 'ERR_SPIFFE_ID_USERINFO'],
    ['spiffe://user:pw@example.org/a', 'ERR_SPIFFE_ID_USERINFO'],
    ['spiffe://example.org:8443/a', 'ERR_SPIFFE_ID_PORT'],
    ['spiffe://example.org/a?x=1', 'ERR_SPIFFE_ID_QUERY'],
    ['spiffe://example.org?x', 'ERR_SPIFFE_ID_QUERY'],
    ['spiffe://example.org/a#frag', 'ERR_SPIFFE_ID_FRAGMENT'],
    ['spiffe://example.org/a#f?q', 'ERR_SPIFFE_ID_FRAGMENT'],
    ['spiffe://example.org/a%20b', 'ERR_SPIFFE_ID_PERCENT_ENCODED'],
    ['spiffe://exa%6dple.org/a', 'ERR_SPIFFE_ID_PERCENT_ENCODED'],
    ['spiffe://example.org//a', 'ERR_SPIFFE_ID_EMPTY_SEGMENT'],
    ['spiffe://example.org/a//b', 'ERR_SPIFFE_ID_EMPTY_SEGMENT'],
    ['spiffe://example.org/./a', 'ERR_SPIFFE_ID_DOT_SEGMENT'],
    ['spiffe://example.org/a/..', 'ERR_SPIFFE_ID_DOT_SEGMENT'],
    ['spiffe://example.org/a/', 'ERR_SPIFFE_ID_TRAILING_SLASH'],
    ['spiffe://example.org/', 'ERR_SPIFFE_ID_TRAILING_SLASH'],
    ['spiffe://example.org/a b', 'ERR_SPIFFE_ID_PATH_CHARS'],
    ['spiffe://example.org/a+b', 'ERR_SPIFFE_ID_PATH_CHARS'],
    ['spiffe://example.org/é', 'ERR_SPIFFE_ID_PATH_CHARS'],
    ['spiffe://example.org/a\u0000', 'ERR_SPIFFE_ID_PATH_CHARS'],
  ];
  for (const [text, code] of cases) assert.equal(codeOf(text), code, text);
});

test('length limits: 2048-byte IDs accepted, 2049 rejected; 255-byte trust domains accepted, 256 rejected', () => {
  const prefix = 'spiffe://example.org/';
  const exact = prefix + 'a'.repeat(MAX_SPIFFE_ID_BYTES - prefix.length);
  assert.equal(Buffer.byteLength(exact), 2048);
  assert.equal(parseSpiffeId(exact).toString(), exact);
  assert.equal(codeOf(exact + 'a'), 'ERR_SPIFFE_ID_TOO_LONG');
  const td255 = 'a'.repeat(255);
  assert.equal(parseSpiffeId(`spiffe://${td255}/x`).trustDomain, td255);
  assert.equal(codeOf(`spiffe://${'a'.repeat(256)}/x`), 'ERR_SPIFFE_ID_TRUST_DOMAIN_TOO_LONG');
});

test('errors name the rule and quote a bounded prefix of the input', () => {
  try {
    parseSpiffeId(`spiffe://example.org/${'x'.repeat(500)}/`);
    assert.fail('should throw');
  } catch (error) {
    assert.ok(error instanceof SpiffeIdError);
    assert.equal(error.code, 'ERR_SPIFFE_ID_TRAILING_SLASH');
    assert.equal(error.details?.rule, 'path cannot have a trailing slash');
    assert.ok(error.message.length < 200);
  }
});

test('tryParseSpiffeId returns undefined instead of throwing', () => {
  assert.equal(tryParseSpiffeId('SPIFFE://example.org'), undefined);
  assert.equal(tryParseSpiffeId('spiffe://example.org/a')?.path, '/a');
});

test('trust domain helpers', () => {
  assert.equal(parseTrustDomain('example.org'), 'example.org');
  assert.equal(parseTrustDomain('spiffe://example.org'), 'example.org');
  assert.throws(() => parseTrustDomain('Example.org'), (e: unknown) => e instanceof SpiffeIdError && e.code === 'ERR_SPIFFE_ID_TRUST_DOMAIN_CHARS');
  assert.throws(() => parseTrustDomain(''), (e: unknown) => e instanceof SpiffeIdError && e.code === 'ERR_SPIFFE_ID_TRUST_DOMAIN_MISSING');
  assert.throws(() => parseTrustDomain('spiffe://example.org/a'), (e: unknown) => e instanceof SpiffeIdError);
  assert.equal(trustDomainId('example.org').toString(), 'spiffe://example.org');
  assert.ok(parseSpiffeId('spiffe://example.org/a').memberOf('example.org'));
  assert.ok(!parseSpiffeId('spiffe://example.org/a').memberOf('example.com'));
  assert.ok(parseSpiffeId('spiffe://example.org/a').equals('spiffe://example.org/a'));
});
