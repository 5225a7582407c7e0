import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicies, evaluateConnection, evaluateRequest, generalisePath, parsePolicyDocuments, policiesToYaml, proposePolicies, type Observation } from '../../../src/policy/index.js';

const web = 'spiffe://acme.com/ns/shop/sa/web';
const job = 'spiffe://acme.com/ns/shop/sa/job';
const api = 'spiffe://acme.com/ns/pay/sa/api';
const db = 'spiffe://acme.com/ns/db/sa/pg';

const OBSERVED: Observation[] = [
  { source: { spiffeId: web }, destination: api, port: 8443, http: { method: 'POST', path: '/v1/charges/123?x=1' } },
  { source: { spiffeId: web }, destination: api, port: 8443, http: { method: 'GET', path: '/v1/charges/9f1c2d3e-1111-2222-3333-444455556666' } },
  { source: { spiffeId: job }, destination: db, port: 5432 },
  { source: { spiffeId: web }, destination: db, port: 5432 },
  { source: { ip: '192.0.2.10' }, destination: db, port: 5432 },
  { source: { ip: 'not-an-ip' }, destination: db, port: 5432 },
];

test('paths are generalised: numbers, UUIDs and long hex become {*}', () => {
  assert.equal(generalisePath('/v1/orders/42/items?x=1'), '/v1/orders/{*}/items');
  assert.equal(generalisePath('/v1/u/9f1c2d3e-1111-2222-3333-444455556666'), '/v1/u/{*}');
  assert.equal(generalisePath('/v1/%2Fadmin'), undefined);
});

test('proposals allow exactly the observed traffic, in dry-run, and are valid Ward YAML', () => {
  const proposals = proposePolicies(OBSERVED);
  assert.deepEqual(proposals.map((p) => [p.name, p.mode]), [['learned-acme-com-ns-db-sa-pg', 'dry-run'], ['learned-acme-com-ns-pay-sa-api', 'dry-run']]);
  const reparsed = parsePolicyDocuments(policiesToYaml(proposals));
  assert.deepEqual(reparsed.issues, []);
  const enforced = reparsed.policies.map((p) => ({ ...p, mode: 'enforce' as const }));
  const set = compilePolicies({ policies: enforced, workloads: [{ spiffeId: db, attributes: {} }] });
  const post = (path: string, from = web) => evaluateRequest(set, { source: { spiffeId: from }, destination: { spiffeId: api }, port: 8443, method: 'POST', path });
  assert.equal(post('/v1/charges/777').allowed, true, 'a generalised segment admits other ids');
  assert.equal(post('/v1/refunds/1').allowed, false);
  assert.equal(post('/v1/charges/777', job).allowed, false, 'job never called the api');
  assert.equal(evaluateConnection(set, { source: { spiffeId: job }, destination: { spiffeId: db }, port: 5432 }).allowed, true);
  assert.equal(evaluateConnection(set, { source: { spiffeId: job }, destination: { spiffeId: db }, port: 5433 }).allowed, false);
  assert.equal(evaluateConnection(set, { source: { spiffeId: api }, destination: { spiffeId: db }, port: 5432 }).allowed, false);
  const plain = proposals[0]!.ingress![0]!.peers!.find((p) => p.unauthenticated);
  assert.deepEqual(plain?.ipBlocks, [{ cidr: '192.0.2.10', except: [] }]);
});
