import { test } from 'node:test';
import assert from 'node:assert/strict';
import { can, ROLES, type Permission } from '../../../src/server/auth/roles.js';
import { bearerToken, isAdminTokenShape, newAdminToken } from '../../../src/server/auth/tokens.js';
import { httpStatusOf } from '../../../src/server/errors.js';

test('role table: what each role may do, and unknown roles may do nothing', () => {
  const perms: Permission[] = ['read', 'write', 'join-token.create', 'audit.read', 'admin-token.create'];
  const table = Object.fromEntries(ROLES.map((r) => [r, perms.filter((p) => can(r, p))]));
  assert.deepEqual(table, {
    admin: ['read', 'write', 'join-token.create', 'audit.read', 'admin-token.create'],
    operator: ['read', 'write', 'join-token.create'],
    viewer: ['read'],
    auditor: ['read', 'audit.read'],
  });
  for (const p of perms) {
    assert.equal(can('root', p), false);
    assert.equal(can('', p), false);
    assert.equal(can('__proto__', p), false);
  }
});

test('admin tokens: fresh, well-formed, only exact Bearer headers accepted', () => {
  const a = newAdminToken();
  const b = newAdminToken();
  assert.notEqual(a, b);
  assert.ok(isAdminTokenShape(a));
  assert.equal(bearerToken(`Bearer ${a}`), a);
  assert.equal(bearerToken(`bearer ${a}`), a);
  for (const bad of [undefined, a, `Basic ${a}`, `Bearer  ${a}`, `Bearer ${a} x`, `Bearer ${a}x`, `Bearer ward_adm_short`, `Bearer ${a.slice(0, -1)}!`, `Bearer ${'x'.repeat(200)}`]) {
    assert.equal(bearerToken(bad), undefined, String(bad));
  }
});

test('HTTP status is chosen from the code alone, for every layer', () => {
  const cases: Record<string, number> = {
    ERR_SERVER_UNAUTHENTICATED: 401, ERR_SERVER_FORBIDDEN: 403, ERR_SERVER_NOT_FOUND: 404, ERR_SERVER_BODY_TOO_LARGE: 413,
    ERR_SERVER_CSR_IDENTITY: 403, ERR_SERVER_AGENT_UNKNOWN: 401, ERR_SERVER_CONFLICT: 409, ERR_INTERNAL: 500,
    ERR_ATTEST_REPLAYED: 401, ERR_ATTEST_FORGED: 401, ERR_ATTEST_EXPIRED: 401, ERR_ATTEST_MALFORMED: 400, ERR_ATTEST_UNKNOWN_ATTESTOR: 400, ERR_ATTEST_UPSTREAM: 502,
    ERR_POLICY_SCHEMA: 400, ERR_CSR_SPIFFE_ID_MISMATCH: 400, ERR_CSR_SIGNATURE: 400, ERR_PROVENANCE_SIGNATURE: 400, ERR_PROVENANCE_KEY: 400, ERR_EVENT_TOO_LARGE: 413, ERR_SCAN_TOO_LARGE: 413, ERR_SCAN_INVALID: 400,
    ERR_STORE_NOT_FOUND: 404, ERR_STORE_CONFLICT: 409, ERR_STORE_UNAVAILABLE: 503, ERR_STORE_QUERY: 500,
  };
  for (const [code, status] of Object.entries(cases)) assert.equal(httpStatusOf(code), status, code);
});
