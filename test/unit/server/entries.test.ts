import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServerError } from '../../../src/server/errors.js';
import { entryBelongsTo } from '../../../src/server/services/registry-view.js';
import { entryFromStore, entryToStore, parseEntryDocument } from '../../../src/server/services/entries.js';

const TD = 'example.org';
const NODE = new Set(['join_token', 'k8s_psat', 'aws_iid']);
const doc = (spec: Record<string, unknown>, name = 'orders'): unknown => ({ apiVersion: 'ward.dev/v1alpha1', kind: 'RegistrationEntry', metadata: { name }, spec });

function refused(d: unknown): string {
  try {
    parseEntryDocument(d, TD, NODE, 3600);
  } catch (e) {
    assert.ok(e instanceof ServerError, String(e));
    assert.equal(e.code, 'ERR_SERVER_BAD_REQUEST');
    return String(e.details?.['path']);
  }
  assert.fail('expected a refusal');
}

test('a RegistrationEntry document becomes an entry, and survives the store form both ways', () => {
  const e = parseEntryDocument(doc({ spiffeId: `spiffe://${TD}/ns/shop/sa/orders`, parentId: '*', nodeSelectors: ['k8s_psat:cluster:prod', 'join_token:host-name:vm-1'], selectors: ['host:uid:1000'], ttl: '30m' }), TD, NODE, 3600);
  assert.deepEqual(e, { id: 'orders', spiffeId: `spiffe://${TD}/ns/shop/sa/orders`, parentId: '*', nodeSelectors: ['join_token:host-name:vm-1', 'k8s_psat:cluster:prod'], selectors: ['host:uid:1000'], ttlSeconds: 1800 });
  const stored = entryToStore(e, TD);
  assert.equal(stored.parentId, `spiffe://${TD}/ward/server`);
  const back = entryFromStore({ ...stored, id: 'orders', selectors: [...stored.selectors].sort(), admin: false, downstream: false, revision: 3, createdAt: 0, updatedAt: 0 }, TD, NODE);
  assert.deepEqual(back, { ...e, revision: 3 });
  assert.equal(parseEntryDocument(doc({ spiffeId: `spiffe://${TD}/a`, parentId: `spiffe://${TD}/ward/agent/join_token/abc`, selectors: ['host:uid:0'] }), TD, NODE, 3600).ttlSeconds, 3600);
});

test('refusals name the field: shape, trust domain, reserved paths, selectors, ttl', () => {
  const ok = { spiffeId: `spiffe://${TD}/x`, parentId: '*', nodeSelectors: ['join_token:id:a'] };
  assert.equal(refused(null), 'document');
  assert.equal(refused({ ...(doc(ok) as object), apiVersion: 'v1' }), 'document.apiVersion');
  assert.equal(refused(doc(ok, 'Bad_Name')), 'document.metadata.name');
  assert.equal(refused(doc({ ...ok, extra: 1 })), 'document.spec.extra');
  assert.equal(refused(doc({ ...ok, spiffeId: 'spiffe://other.org/x' })), 'document.spec.spiffeId');
  assert.equal(refused(doc({ ...ok, spiffeId: `spiffe://${TD}/ward/server` })), 'document.spec.spiffeId');
  assert.equal(refused(doc({ ...ok, spiffeId: `spiffe://${TD}/a/../b` })), 'document.spec.spiffeId');
  assert.equal(refused(doc({ ...ok, parentId: `spiffe://${TD}/shop/orders` })), 'document.spec.parentId');
  assert.equal(refused(doc({ ...ok, nodeSelectors: [] })), 'document.spec.nodeSelectors');
  assert.equal(refused(doc({ ...ok, nodeSelectors: ['host:uid:0'] })), 'document.spec.nodeSelectors[0]');
  assert.equal(refused(doc({ ...ok, selectors: ['join_token:id:a'] })), 'document.spec.selectors[0]');
  assert.equal(refused(doc({ ...ok, selectors: ['no-colons'] })), 'document.spec.selectors[0]');
  assert.equal(refused(doc({ ...ok, ttl: '5s' })), 'document.spec.ttl');
  assert.equal(refused(doc({ ...ok, ttl: 'forever' })), 'document.spec.ttl');
});

test('which agent may mint an entry: its parent, or any agent holding every node selector', () => {
  const agent = { agentId: `spiffe://${TD}/ward/agent/join_token/a1`, selectors: ['join_token:host-name:vm-1', 'join_token:id:a1'] };
  const base = { id: 'e', spiffeId: `spiffe://${TD}/x`, selectors: [], ttlSeconds: 60, revision: 1 };
  assert.ok(entryBelongsTo({ ...base, parentId: agent.agentId, nodeSelectors: [] }, agent));
  assert.ok(entryBelongsTo({ ...base, parentId: '*', nodeSelectors: ['join_token:host-name:vm-1'] }, agent));
  assert.ok(!entryBelongsTo({ ...base, parentId: '*', nodeSelectors: ['join_token:host-name:vm-1', 'k8s_psat:cluster:prod'] }, agent));
  assert.ok(!entryBelongsTo({ ...base, parentId: '*', nodeSelectors: [] }, agent), '`*` without selectors matches nobody');
  assert.ok(!entryBelongsTo({ ...base, parentId: `spiffe://${TD}/ward/agent/join_token/other`, nodeSelectors: [] }, agent));
});
