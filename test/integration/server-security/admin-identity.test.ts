// Privilege escalation through registration entries, on both stores: an operator may register
// entries and create join tokens, so if an entry could name an admin identity (adminSpiffeIds)
// the operator could run an agent, mint an SVID for that identity and use it as an admin client
// certificate. Entries for admin identities are refused, agents never get SVIDs for them (even
// from an entry stored before the ID was made an admin), and /ward/ IDs cannot be admins.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WardClient } from '../../../src/api/client.js';
import { ServerReplyError } from '../../../src/api/errors.js';
import { configCodeOf } from './config-code.js';
import { parseServerConfig } from '../../../src/server/config.js';
import { entryToStore, parseEntryDocument } from '../../../src/server/services/entries.js';
import { ScriptedAgent, TRUST_DOMAIN, startTestServer } from '../server-lifecycle/harness.js';

const ALICE = `spiffe://${TRUST_DOMAIN}/ops/alice`;
const entry = (name: string, spiffeId: string, hostName: string) => ({
  apiVersion: 'ward.dev/v1alpha1', kind: 'RegistrationEntry', metadata: { name },
  spec: { spiffeId, parentId: '*', nodeSelectors: [`join_token:host-name:${hostName}`], ttl: '1h' },
});

async function status(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof ServerReplyError ? `${e.status} ${e.code}` : `error ${(e as Error).message}`;
  }
}

test('adminSpiffeIds: /ward/ identities (server, agents) and other trust domains are refused', () => {
  assert.equal(configCodeOf(() => parseServerConfig({ dataDir: 'd', trustDomain: 'ward.test', adminSpiffeIds: ['spiffe://ward.test/ward/agent/join_token/abc'] })), 'ERR_CONFIG_INVALID adminSpiffeIds[0]');
  assert.equal(configCodeOf(() => parseServerConfig({ dataDir: 'd', trustDomain: 'ward.test', adminSpiffeIds: ['spiffe://ward.test/ops/a', 'spiffe://ward.test/ward/server'] })), 'ERR_CONFIG_INVALID adminSpiffeIds[1]');
  assert.equal(configCodeOf(() => parseServerConfig({ dataDir: 'd', trustDomain: 'ward.test', adminSpiffeIds: ['not a spiffe id'] })), 'ERR_CONFIG_INVALID adminSpiffeIds[0]');
  assert.deepEqual(parseServerConfig({ dataDir: 'd', trustDomain: 'ward.test', adminSpiffeIds: [ALICE] }).adminSpiffeIds, [ALICE]);
});

for (const kind of ['sqlite', 'postgres'] as const) {
  test(`${kind}: an operator cannot turn a registration entry into an admin client certificate`, { timeout: 60_000 }, async (t) => {
    const ts = await startTestServer(kind, { adminTls: true, adminSpiffeIds: [ALICE] });
    const { server } = ts;
    const tls = { ca: [...server.bundle], serverSpiffeId: server.serverSpiffeId };
    const admin = new WardClient({ baseUrl: server.adminUrl, tls, token: ts.bootstrapToken });
    const operator = new WardClient({ baseUrl: server.adminUrl, tls, token: (await admin.createAdminToken({ role: 'operator', name: 'op' })).token });
    const agent = new ScriptedAgent(server);
    t.after(async () => {
      admin.close();
      operator.close();
      agent.close();
      await ts.cleanup();
    });
    const version = await server.context.store.changes.latest();
    assert.equal(await status(operator.apply([entry('alice', ALICE, 'vm-x')])), '400 ERR_SERVER_BAD_REQUEST');
    assert.equal(await status(admin.apply([entry('alice', ALICE, 'vm-x')])), '400 ERR_SERVER_BAD_REQUEST', 'not even an admin registers it');
    assert.equal(await server.context.store.changes.latest(), version, 'nothing stored');

    // An entry stored before ALICE was made an admin (written straight to the store here).
    const stale = parseEntryDocument(entry('alice', ALICE, 'vm-x'), TRUST_DOMAIN, server.context.nodeAttestors, 3600);
    await server.context.store.entries.create(entryToStore(stale, TRUST_DOMAIN));
    await server.context.view.refresh();
    await agent.attest((await operator.createJoinToken({ attributes: { 'host.name': 'vm-x' } })).token);
    assert.equal(await status(agent.workloadSvid(ALICE)), '403 ERR_SERVER_CSR_IDENTITY');
    const audit = (await admin.listAudit({ limit: 1000 })).items;
    assert.ok(audit.some((r) => r.action === 'svid.issue' && r.outcome === 'denied' && r.code === 'ERR_SERVER_CSR_IDENTITY'));
    assert.ok(!audit.some((r) => r.action === 'workload.register' && r.resource === `workload/${ALICE}`));
  });
}
