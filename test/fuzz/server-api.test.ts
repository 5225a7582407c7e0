// Fuzz the server's untrusted inputs over real HTTP: arbitrary JSON and arbitrary text to every
// mutating admin route and to attest. Every answer must be a 4xx with a stable code, never a
// 5xx, and nothing may be stored (the change log does not move).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ServerReplyError } from '../../src/api/errors.js';
import { ScriptedAgent, startTestServer } from '../integration/server-lifecycle/harness.js';
import { parseEntryDocument } from '../../src/server/services/entries.js';
import { ServerError } from '../../src/server/errors.js';

const RUNS = Number(process.env['WARD_FUZZ_RUNS'] ?? 60);

const entryish = fc.record({
  apiVersion: fc.constantFrom('ward.dev/v1alpha1', 'v1', 1),
  kind: fc.constantFrom('RegistrationEntry', 'AccessPolicy', 'RuntimePolicy', 'MutualTlsPolicy', 'x'),
  metadata: fc.oneof(fc.record({ name: fc.string({ maxLength: 20 }) }), fc.jsonValue()),
  spec: fc.oneof(fc.jsonValue(), fc.record({ spiffeId: fc.string(), parentId: fc.constantFrom('*', 'spiffe://ward.test/ward/agent/x', ''), nodeSelectors: fc.array(fc.string(), { maxLength: 3 }), selectors: fc.array(fc.string(), { maxLength: 3 }), ttl: fc.oneof(fc.string(), fc.integer()) }, { requiredKeys: [] }), fc.record({ subject: fc.jsonValue(), action: fc.string(), ingress: fc.jsonValue() }, { requiredKeys: [] })),
}, { requiredKeys: [] });

test('fuzz: admin and agent routes answer 4xx with a code and store nothing', { timeout: 120_000 }, async (t) => {
  const ts = await startTestServer('sqlite');
  t.after(() => ts.cleanup());
  const { admin, server } = ts;
  const agent = new ScriptedAgent(server);
  const anon = agent.bootstrapClient();
  t.after(() => anon.close());
  const before = await server.context.store.changes.latest();

  const expect4xx = async (p: Promise<unknown>): Promise<void> => {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof ServerReplyError, `not a server reply: ${String(e)}`);
      assert.ok(e.status >= 400 && e.status < 500, `status ${e.status} ${e.code}: ${e.message}`);
      assert.match(e.code, /^ERR_[A-Z0-9_]+$/);
      return;
    }
    assert.fail('accepted');
  };

  const routes: [string, string][] = [['POST', '/v1/apply'], ['POST', '/v1/scans'], ['POST', '/v1/tokens/admin'], ['POST', '/v1/tokens/join'], ['DELETE', '/v1/policies/x'], ['POST', '/v1/agents/x/revoke']];
  await fc.assert(fc.asyncProperty(fc.constantFrom(...routes), fc.oneof(fc.jsonValue(), fc.record({ documents: fc.array(entryish, { minLength: 1, maxLength: 3 }), dryRun: fc.jsonValue() }, { requiredKeys: ['documents'] })), async ([method, path], body) => {
    // join-token creation with a valid body is a legitimate change: only malformed ones are fuzzed there.
    if (path === '/v1/tokens/join' && (body === null || typeof body !== 'object' || Array.isArray(body))) return;
    if (path === '/v1/tokens/join' && Object.keys(body as object).length === 0) return;
    await expect4xx(admin.request(method, path, body));
  }), { numRuns: RUNS });
  await fc.assert(fc.asyncProperty(fc.string({ maxLength: 200 }), async (text) => {
    await expect4xx(admin.request('POST', '/v1/apply', text));
  }), { numRuns: RUNS });
  await fc.assert(fc.asyncProperty(fc.record({ attestor: fc.oneof(fc.constantFrom('join_token', 'aws_iid', 'k8s_psat', 'host', ''), fc.string()), evidence: fc.jsonValue(), csr: fc.oneof(fc.string(), fc.constant('-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n')) }, { requiredKeys: [] }), async (body) => {
    await expect4xx(anon.request('POST', '/v1/agent/attest', body));
  }), { numRuns: RUNS });
  for (const path of ['/v1/agent/renew', '/v1/agent/svids', '/v1/agent/events']) await expect4xx(anon.request('POST', path, {}));

  assert.equal(await server.context.store.changes.latest(), before, 'nothing was stored');
  assert.equal((await admin.listEntries()).items.length + (await admin.listPolicies()).items.length + (await admin.listAgents()).items.length, 0);
});

test('fuzz: the RegistrationEntry parser returns an entry or refuses with ERR_SERVER_BAD_REQUEST', () => {
  fc.assert(fc.property(fc.oneof(entryish, fc.jsonValue()), (doc) => {
    try {
      const e = parseEntryDocument(doc, 'ward.test', new Set(['join_token']), 3600);
      assert.ok(e.spiffeId.startsWith('spiffe://ward.test/') && !e.spiffeId.startsWith('spiffe://ward.test/ward/'));
      assert.ok(e.nodeSelectors.length + e.selectors.length > 0);
    } catch (error) {
      assert.ok(error instanceof ServerError && error.code === 'ERR_SERVER_BAD_REQUEST', String(error));
    }
  }), { numRuns: 2000 });
});
