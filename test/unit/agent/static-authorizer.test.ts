// StaticAuthorizer: Istio semantics (DENY before ALLOW, default deny), compiled matchers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StaticAuthorizer, parseStaticPolicy } from '../../../src/agent/proxy/static-authorizer.js';
import type { ConnectionContext, RequestContext } from '../../../src/agent/proxy/authorizer.js';
import { denyAllAuthorizer, AuthorizerHolder } from '../../../src/agent/proxy/authorizer.js';

const conn = (from: string, port = 8443, direction: 'inbound' | 'outbound' = 'inbound', destination = 'spiffe://t/orders'): ConnectionContext => ({
  direction, source: { spiffeId: from, authenticated: from !== 'unauthenticated', attributes: {} }, destination, port,
});
const req = (from: string, method: string, path: string, extra: Partial<RequestContext> = {}): RequestContext => ({
  connection: conn(from), method, path, host: 'orders', headers: {}, jwtClaims: undefined, ...extra,
});

const authz = new StaticAuthorizer([
  parseStaticPolicy({ kind: 'AgentStaticPolicy', metadata: { name: 'allow' }, spec: { rules: [
    { name: 'web', from: ['spiffe://t/web'], ports: [8443], methods: ['GET'], paths: ['/api/*', '/health'] },
    { name: 'ns', from: ['spiffe://t/ns/prod/*'], hosts: ['orders'], headers: { 'x-tenant': 'a' } },
    { name: 'user', from: ['spiffe://t/web'], paths: ['/me'], requestPrincipals: ['https://i/*'] },
    { name: 'out', direction: 'outbound', to: ['billing'] },
  ] } }),
  parseStaticPolicy({ kind: 'AgentStaticPolicy', metadata: { name: 'deny' }, spec: { action: 'DENY', rules: [
    { name: 'admin', paths: ['/api/admin*'] },
    { name: 'bad-peer', from: ['spiffe://t/web-compromised'] },
  ] } }),
  parseStaticPolicy({ kind: 'AgentStaticPolicy', metadata: { name: 'audit' }, spec: { action: 'DENY', mode: 'dry-run', rules: [{ name: 'slow', paths: ['/api/slow'] }] } }),
], 'v1');

test('connections: allowed when some ALLOW rule could match, denied by peer-only DENY rules, default deny', () => {
  assert.deepEqual(authz.authorizeConnection(conn('spiffe://t/web')), { allow: true, reference: 'allow/web', dryRun: false });
  assert.equal(authz.authorizeConnection(conn('spiffe://t/web', 9999)).allow, true, 'the user rule has no port limit');
  assert.equal(authz.authorizeConnection(conn('spiffe://t/ns/prod/a')).allow, true);
  assert.deepEqual(authz.authorizeConnection(conn('spiffe://t/batch')), { allow: false, reference: 'default-deny' });
  assert.deepEqual(authz.authorizeConnection(conn('spiffe://t/web-compromised')), { allow: false, reference: 'deny/bad-peer' });
  assert.equal(authz.authorizeConnection(conn('spiffe://t/ns/prodx')).allow, false, 'prefix is a prefix of the ID, with its slash');
  assert.equal(authz.authorizeConnection(conn('spiffe://t/web', 1, 'outbound', 'billing')).allow, true);
  assert.equal(authz.authorizeConnection(conn('spiffe://t/web', 1, 'outbound', 'orders')).allow, false);
});

test('requests: method, path, host, headers, JWT principal; DENY first; dry-run allows but names the rule', () => {
  assert.equal(authz.authorizeRequest(req('spiffe://t/web', 'GET', '/api/x')).allow, true);
  assert.equal(authz.authorizeRequest(req('spiffe://t/web', 'POST', '/api/x')).allow, false);
  assert.equal(authz.authorizeRequest(req('spiffe://t/web', 'GET', '/healthz')).allow, false);
  assert.deepEqual(authz.authorizeRequest(req('spiffe://t/web', 'GET', '/api/admin/users')), { allow: false, reference: 'deny/admin' });
  assert.deepEqual(authz.authorizeRequest(req('spiffe://t/web', 'GET', '/api/slow')), { allow: true, reference: 'audit/slow', dryRun: true });
  assert.equal(authz.authorizeRequest(req('spiffe://t/ns/prod/a', 'DELETE', '/x', { headers: { 'x-tenant': 'a' } })).allow, true);
  assert.equal(authz.authorizeRequest(req('spiffe://t/ns/prod/a', 'DELETE', '/x', { headers: { 'x-tenant': 'b' } })).allow, false);
  assert.equal(authz.authorizeRequest(req('spiffe://t/ns/prod/a', 'DELETE', '/x', { host: 'evil', headers: { 'x-tenant': 'a' } })).allow, false);
  assert.equal(authz.authorizeRequest(req('spiffe://t/web', 'GET', '/me')).allow, false, 'no JWT');
  assert.equal(authz.authorizeRequest(req('spiffe://t/web', 'GET', '/me', { jwtClaims: { iss: 'https://i', sub: 'alice' } })).allow, true);
  assert.equal(authz.authorizeRequest(req('spiffe://t/web', 'GET', '/me', { jwtClaims: { iss: 'https://evil', sub: 'alice' } })).allow, false);
});

test('before any policy the holder denies everything, and a swap notifies listeners', () => {
  const holder = new AuthorizerHolder();
  assert.equal(holder.current, denyAllAuthorizer);
  assert.equal(holder.current.authorizeConnection(conn('spiffe://t/web')).allow, false);
  let seen = '';
  holder.onChange((a) => (seen = a.version));
  holder.set(authz);
  assert.equal(seen, 'v1');
});
