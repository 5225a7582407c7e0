// Route templates for HTTP events: identifiers become placeholders, everything else stays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pathTemplate, MAX_TEMPLATE_INPUT } from '../../../src/events/path-template.js';

test('identifier-looking segments become placeholders; words, versions and short codes stay', () => {
  const cases: [string, string][] = [
    ['/v1/orders/8123', '/v1/orders/{id}'],
    ['/v1/orders/8123/items/3f2a6c1e-1b2d-4c3e-9f00-aa11bb22cc33', '/v1/orders/{id}/items/{uuid}'],
    ['/users/0123456789abcdef0123/avatar', '/users/{token}/avatar'],
    ['/s/AbCdEfGh1JkLmNoPqRsT_u', '/s/{token}'],
    ['/v2/public/health', '/v2/public/health'],
    ['/api/en-US/products', '/api/en-US/products'],
    ['/orders/8123?expand=items#x', '/orders/{id}'],
    ['/', '/'],
    ['', ''],
    ['/a//b/', '/a//b/'],
    ['/deadbeef', '/deadbeef'],
  ];
  for (const [path, template] of cases) assert.equal(pathTemplate(path), template, path);
});

test('total and bounded: any string gives a string of at most the input bound, idempotent, same number of segments', () => {
  fc.assert(fc.property(fc.string({ maxLength: 300 }), fc.array(fc.oneof(fc.constantFrom('orders', 'v1', '42', 'ff00ff00ff00ff00ff', 'x'), fc.string({ maxLength: 24 })), { maxLength: 12 }), (raw, parts) => {
    for (const path of [raw, `/${parts.join('/')}`]) {
      const t = pathTemplate(path);
      assert.equal(typeof t, 'string');
      assert.ok(t.length <= MAX_TEMPLATE_INPUT);
      assert.equal(pathTemplate(t), t);
      const clean = path.split(/[?#]/)[0] as string;
      assert.equal(t.split('/').length, clean.split('/').length);
    }
  }));
  assert.ok(pathTemplate(`/${'1/'.repeat(3000)}`).length <= MAX_TEMPLATE_INPUT);
});
